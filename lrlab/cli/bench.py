"""``lrlab bench``: the throughput benchmark, :mod:`lrlab.benchmark`, with its own flags.

The benchmark compares lrlab's sweep against a loop of single runs and a
PyTorch loop; this subcommand hands it the rest of the command line
(``lrlab bench --help`` shows its flags), as ``scripts/benchmark.py`` does.
"""

import sys


def main(argv: list[str] | None = None) -> int:
  """``lrlab bench ARGS``: :func:`lrlab.benchmark.main` of ``ARGS``; the exit code."""
  from lrlab import benchmark  # imported late: it sets the device flag before JAX starts

  argv = list(sys.argv[1:] if argv is None else argv)
  program, sys.argv[0] = sys.argv[0], "lrlab bench"  # its usage line names this command
  try:
    code = benchmark.main(argv)
  finally:
    sys.argv[0] = program
  return code if isinstance(code, int) else 0
