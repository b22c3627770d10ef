"""``python scripts/lr_find.py ARGS`` is ``lrlab find ARGS``: see ``lrlab find --help``."""

from lrlab.cli import common, find

common.run_program(find.main)
