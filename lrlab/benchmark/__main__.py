"""``python -m lrlab.benchmark``: the benchmark's command line (also its worker processes)."""

import sys

from lrlab.benchmark.command import main

sys.exit(main())
