"""``python -m lrlab ...`` is the ``lrlab`` command."""

from lrlab.cli import program

program()
