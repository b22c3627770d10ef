"""Run every experiment (or some, with ``--only``), each in its own process, with progress.

python experiments/run_all.py [--only u_curve,schedules] [--full | --tiny]

The default and full sizes write each experiment's committed results under
``experiments/results/NAME``; ``--tiny`` writes to ``results/experiments-tiny/NAME``. A
size is refused where another size's results lie (remove the folder first, e.g. before
``--full`` over the committed default results).
"""

import subprocess
import sys
import time
from pathlib import Path

from lrlab.cli.common import Parser

HERE = Path(__file__).resolve().parent
SKIP = {"__init__", "common", "run_all"}


def experiments() -> list[str]:
  """Names of every experiment module, in file order."""
  return sorted(
    p.stem for p in HERE.glob("*.py") if p.stem not in SKIP and not p.stem.startswith("_")
  )  # _name: a helper module (e.g. an experiment's figures), not an experiment


def main(argv: list[str] | None = None) -> int:
  names = experiments()
  parser = Parser(description=__doc__)
  parser.add_argument(
    "--only",
    default="",
    help=f"comma-separated experiment names, from {', '.join(names)} (default: all)",
  )
  size = parser.add_mutually_exclusive_group()
  size.add_argument("--full", action="store_true", help="the accelerator size (default: off)")
  size.add_argument(
    "--tiny", action="store_true", help="seconds each, into a scratch folder (default: off)"
  )
  args = parser.parse_args(argv)
  chosen = [n.strip() for n in args.only.split(",") if n.strip()] or names
  unknown = sorted(set(chosen) - set(names))
  if unknown:
    parser.error(f"--only names unknown experiments {unknown}; known: {', '.join(names)}")
  flags = ["--full"] if args.full else ["--tiny"] if args.tiny else []
  failed = []
  for i, name in enumerate(chosen, 1):
    print(f"[{i}/{len(chosen)}] {name} ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *flags])
    status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
    print(
      f"[{i}/{len(chosen)}] {name}: {status} in {time.perf_counter() - started:.0f} s", flush=True
    )
    if done.returncode:
      failed.append(name)
  if failed:
    print(f"failed: {', '.join(failed)}", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
