"""``python scripts/schedule_demo.py ARGS`` is ``lrlab schedules ARGS``: see its ``--help``."""

from lrlab.cli import common, schedules

common.run_program(schedules.main)
