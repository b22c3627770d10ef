"""``python scripts/lr_find.py ARGS`` is ``lrlab find ARGS``: see ``lrlab find --help``."""

from lrlab.cli import find

raise SystemExit(find.main())
