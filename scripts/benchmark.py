"""Throughput of lrlab's sweep against a loop of single runs and a PyTorch loop: the command
line of :mod:`lrlab.benchmark` (also ``lrlab bench``); ``--help`` lists its flags.

``--search`` runs the time-to-the-answer benchmark of :mod:`lrlab.search` instead
(:mod:`lrlab.benchmark.search`; ``--search --help`` lists its flags).
"""

import sys

from lrlab.benchmark import main

if __name__ == "__main__":
  sys.exit(main())
