"""What every experiment shares: sizes, the results folder, the summary, figures from saved results.

An experiment module defines

- ``CLAIM``: the claim under test, quoted briefly;
- ``SIZES``: ``{"tiny": {...}, "default": {...}, "full": {...}}`` of keyword
  arguments for ``run`` (tiny: seconds, for the test suite; default: minutes on a
  2-core CPU; full: an accelerator);
- ``run(out, **size) -> None``: train, and save raw results under ``out``
  (e.g. ``SweepResult.save(out / "adam")``);
- ``report(out) -> (numbers, verdict, figures)``: read the saved results only,
  draw the figures, and judge the claim (one of ``lrlab.analysis.VERDICTS``, or
  ``"depends on ..."``);

and ends with ``if __name__ == "__main__": sys.exit(common.main(sys.modules[__name__]))``.
``--replot`` re-makes figures and summary from saved results without training.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from lrlab.cli.common import Parser
from lrlab.sweep import storage

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"  # the committed results of the default and full sizes
SCRATCH = HERE.parent / "results" / "experiments-tiny"  # tiny runs: ignored by git, never RESULTS
SIZES = ("tiny", "default", "full")
DERIVED = ("experiment", "claim", "verdict", "numbers", "figures", "replotted_with")
"""The keys of ``summary.json`` that ``--replot`` re-derives from the saved results; it keeps
every other key of the summary it redraws (the size, settings, command, seconds, versions and
device of the training run, and any note added by hand)."""


def name_of(module: ModuleType) -> str:
  """The experiment's name: its module's file name."""
  return Path(module.__file__).stem


def default_out(module: ModuleType, size: str) -> Path:
  """Where an experiment writes without ``--out``: :data:`SCRATCH` for the tiny size."""
  return (SCRATCH if size == "tiny" else RESULTS) / name_of(module)


def parse_args(module: ModuleType, argv: list[str] | None) -> argparse.Namespace:
  parser = Parser(description=f"Claim: {module.CLAIM}")
  size = parser.add_mutually_exclusive_group()
  size.add_argument(
    "--full", dest="size", action="store_const", const="full", help="the accelerator size"
  )
  size.add_argument(
    "--tiny", dest="size", action="store_const", const="tiny", help="seconds, for tests"
  )
  parser.add_argument(
    "--out",
    default=None,
    help="results folder (default: experiments/results/NAME; with --tiny, "
    "results/experiments-tiny/NAME, so a tiny run never replaces the committed results)",
  )
  parser.add_argument("--replot", action="store_true", help="only redraw from saved results")
  parser.set_defaults(size="default")
  return parser.parse_args(argv)


def _plain(value: Any) -> Any:
  """Strict JSON: NumPy values as Python ones, non-finite numbers as ``null``."""
  if hasattr(value, "tolist"):
    value = value.tolist()
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, dict):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [_plain(v) for v in value]
  return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
  """Write strict JSON atomically (:func:`lrlab.sweep.storage.atomic_write`: a temporary file
  of a random name, removed if the write fails, then a rename)."""
  text = json.dumps(_plain(data), indent=2, allow_nan=False) + "\n"
  storage.atomic_write(path, lambda file: file.write(text))


def grid_slope_se(x, step: float) -> float:
  """The standard error a grid's rounding gives a least-squares slope against ``x``.

  Each fitted value (a best rate read off a log grid of spacing ``step``, in the fitted
  value's units) is taken to be off by an independent error uniform over one step, of SD
  ``step / sqrt(12)``. The slope ``sum((x - mean x) y) / sum((x - mean x)^2)`` is linear in
  the values, so its SD from the rounding is ``step / sqrt(12) / sqrt(sum((x - mean x)^2))``.
  It is added to a seed bootstrap's SE by ``math.hypot`` (the two errors independent): where
  a best rate sits on one grid point in every bootstrap draw the bootstrap alone says 0.
  NaN with fewer than two distinct ``x``.

  Example:
    >>> grid_slope_se([0.0, 1.0], 0.5)  # 0.5 / sqrt(12) / sqrt(0.5)
    0.2041241452319315
  """
  x = np.asarray(x, np.float64)
  spread = float(np.sum((x - x.mean()) ** 2)) if x.size else 0.0
  return step / math.sqrt(12) / math.sqrt(spread) if spread > 0 else math.nan


def main(module: ModuleType, argv: list[str] | None = None) -> int:
  """Run (unless ``--replot``), report, write ``summary.json``; print the verdict.

  A run into a folder that holds another size's results is refused before training: the
  report reads every result saved there, and a size with other tasks or cases leaves some.
  The size is read from ``summary.json``, or, for a run stopped before writing it, from
  ``size.json``, which a run writes before it trains. ``--replot`` rewrites only the keys in
  :data:`DERIVED`; without a previous summary it takes the size from ``size.json`` and records
  the training's command, seconds, versions and device as ``null`` (unknown), never the redraw's.
  """
  args = parse_args(module, argv)
  out = Path(args.out) if args.out else default_out(module, args.size)
  previous, marker = out / "summary.json", out / "size.json"
  trained = None
  for record in (previous, marker):
    if trained is None and record.exists():
      trained = json.loads(record.read_text()).get("size")
  if not args.replot and trained not in (None, args.size):  # report reads every saved result
    raise ValueError(
      f"--out {out} holds results of the {trained!r} size; a {args.size!r} run there would be "
      "judged with those it does not replace: remove them or pass another --out."
    )
  out.mkdir(parents=True, exist_ok=True)
  started = time.perf_counter()
  if not args.replot:
    _write_json(marker, {"size": args.size})  # a run stopped before its summary still says it
    module.run(out, **module.SIZES[args.size])
  numbers, verdict, figures = module.report(out)
  import jax

  import lrlab

  summary = {
    "experiment": name_of(module),
    "claim": module.CLAIM,
    "verdict": verdict,
    "numbers": numbers,
    "figures": [str(Path(f).relative_to(out)) for f in figures],
    "size": args.size,
    "settings": module.SIZES[args.size],
    "command": " ".join(["python", *sys.argv]) if argv is None else f"main({argv!r})",
    "seconds": round(time.perf_counter() - started, 1),
    "versions": {"lrlab": lrlab.__version__, "jax": jax.__version__},
    "device": jax.devices()[0].device_kind,
  }
  if args.replot:  # keep what trained the results: a redraw cannot recompute it
    summary["replotted_with"] = summary["command"]
    before = json.loads(previous.read_text()) if previous.exists() else {}
    if not before:  # only size.json says how they were trained: the rest is unknown
      summary["size"] = trained or args.size
      summary["settings"] = module.SIZES[summary["size"]]
      summary.update(command=None, seconds=None, versions=None, device=None)
    for key, value in before.items():
      if key not in DERIVED:
        summary[key] = value
  _write_json(out / "summary.json", summary)
  seconds = "time unknown" if summary["seconds"] is None else f"{summary['seconds']} s"
  print(f"{name_of(module)}: {verdict}  ({seconds}; {out}/summary.json)")
  return 0


def read_summary(out: str | os.PathLike) -> dict[str, Any]:
  """The ``summary.json`` an experiment wrote."""
  return json.loads((Path(out) / "summary.json").read_text())
