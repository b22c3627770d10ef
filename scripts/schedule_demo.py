"""``python scripts/schedule_demo.py ARGS`` is ``lrlab schedules ARGS``: see its ``--help``."""

from lrlab.cli import schedules

raise SystemExit(schedules.main())
