"""``python scripts/vmap_sweep.py ARGS`` is ``lrlab sweep ARGS``: see ``lrlab sweep --help``."""

from lrlab.cli import common, sweep

common.run_program(sweep.main)
