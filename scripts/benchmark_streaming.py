"""Throughput of lrlab.sweep.run on data streamed from the host against the same data resident:
the command line of :mod:`lrlab.benchmark.streaming`; ``--help`` lists its flags."""

import sys

from lrlab.benchmark.streaming import main

if __name__ == "__main__":
  sys.exit(main())
