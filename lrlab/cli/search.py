"""``lrlab sweep --search halving|hyperband|pbt``: the sweep's grid searched, not trained in full.

  lrlab sweep --task digits-mlp --search halving --eta 3 --min-steps 100 --steps 2700
  lrlab sweep --task digits-mlp --search pbt --interval 300 --grid lr=1e-4:1e-2:8:log
  lrlab sweep --task digits-mlp --search pbt --interval 300 --grid lr=1e-4:1e-2:8:log \
      --perturb 0.5,2 --resample-probability 0.25 --resample lr=1e-4:1:27:log

The flags of ``lrlab sweep`` (task, optimizer, schedule, grid, seeds, steps,
batch size, evaluation interval, chunk size, ``--out``, ``--fresh``) mean what
they mean there; the grid is the candidate set (successive halving, Hyperband)
or the initial population (PBT). The results folder holds the members' curves
as a sweep's (``results.csv``, ``curves.npz``, ``sweep.json``; NaN after a
member stopped), ``search.json`` (where each member stopped, PBT's lineage and
schedules, the answer, model-steps spent) and figures. Ctrl-C saves a
checkpoint at the next segment boundary; the same command continues.
"""

import json
import os
import shutil
import sys
import time

from lrlab.cli import common

METHODS = ("halving", "hyperband", "pbt")
PERTURB = (0.8, 1.25)  # lrlab.search.pbt's default (kept here: no JAX at start-up; a test checks)
EXPLOITS = ("truncation", "tournament")  # lrlab.search.pbt's, its default first (a test checks)


def factors(text: str) -> tuple[float, ...]:
  """An argparse ``type=`` for ``--perturb``: comma-separated positive finite numbers."""
  try:
    values = tuple(float(part) for part in text.split(","))
  except ValueError:
    values = ()
  if not values or not all(0 < v < float("inf") for v in values):
    raise common.argparse.ArgumentTypeError(
      f"must be comma-separated positive numbers, e.g. 0.8,1.25; got {text!r}"
    )
  return values


# --metric (a sweep's summary) as the metric the search ranks members by at each decision.
RANKING = {"final_val_loss": "val_loss", "final_val_accuracy": "val_accuracy",
           "final_train_loss": "train_loss"}  # fmt: skip


def default_metric(task) -> str:
  """What the search ranks by without ``--metric``: ``val_accuracy``, or ``val_loss`` for a task
  without accuracy."""
  return "val_accuracy" if task.num_classes else "val_loss"


def ranking_metric(args, task) -> str:
  """The metric the search ranks by: ``--metric``'s, or :func:`default_metric`; a one-line
  ValueError for a ``--metric`` it cannot rank by."""
  if args.metric is None:
    return default_metric(task)
  if args.metric not in RANKING:
    raise ValueError(
      f"--metric with --search must be one of {', '.join(RANKING)} (the search ranks members "
      f"by a metric's value at each decision); got {args.metric!r}."
    )
  return RANKING[args.metric]


probability = common._number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def add_arguments(parser: common.Parser) -> None:
  """The search flags of ``lrlab sweep``."""
  parser.add_argument(
    "--search", default=None, choices=METHODS, metavar="METHOD",
    help="search the grid instead of training all of it: halving (successive halving), "
    "hyperband or pbt (population-based training) (default: the full grid)",
  )  # fmt: skip
  parser.add_argument(
    "--eta", type=common.positive_int, default=3,
    help="halving, hyperband: keep the best 1/eta at each rung (an integer >= 2)",
  )  # fmt: skip
  parser.add_argument(
    "--min-steps", type=common.positive_int, default=None,
    help="halving, hyperband: the first rung's steps, dividing --steps (default: --eval-every "
    "for halving; for hyperband the least --steps / eta**k that --eval-every divides)",
  )  # fmt: skip
  parser.add_argument(
    "--interval", type=common.positive_int, default=None,
    help="pbt: steps between exploits, dividing --steps (default: --eval-every)",
  )  # fmt: skip
  parser.add_argument(
    "--exploit", choices=EXPLOITS, default=None,
    help="pbt: truncation (the worst quarter copy the best quarter) or tournament (each member "
    "copies a random other that ranks above it) (default: truncation)",
  )  # fmt: skip
  parser.add_argument(
    "--perturb", type=factors, default=None, metavar="F1,F2,...",
    help="pbt: a replaced member's hyperparameters are its parent's times one of these "
    "factors, drawn uniformly (default: 0.8,1.25)",
  )  # fmt: skip
  parser.add_argument(
    "--resample-probability", type=probability, default=0.0, metavar="P",
    help="pbt: the probability that a replaced member's axis is redrawn from --resample's "
    "values instead of perturbed (default: 0)",
  )  # fmt: skip
  parser.add_argument(
    "--resample", action="append", default=[], metavar="AXIS=SPEC",
    help="pbt: the values an axis is redrawn from, lo:hi:n:log|lin or v1,v2,... like --grid "
    "(repeatable; needed when --resample-probability > 0; default: none)",
  )  # fmt: skip


def _resample(args) -> dict:
  """``--resample`` as ``{axis: values}``; one-line errors for specs and flags that disagree."""
  from lrlab import sweep

  pool = {}
  for spec in args.resample:
    try:
      name, values = sweep.parse_axis(spec)
    except ValueError as error:
      raise ValueError(f"--resample {error}") from None
    if name in pool:
      raise ValueError(f"--resample gives the axis {name!r} more than once; give it once.")
    pool[name] = values.astype(float).tolist()
  if args.resample_probability > 0 and not pool:
    raise ValueError(
      f"--resample-probability {args.resample_probability} needs --resample AXIS=SPEC "
      "(the values to redraw from)."
    )
  if pool and args.resample_probability == 0:
    raise ValueError("--resample is used only with --resample-probability > 0; give both.")
  return pool


def check_unused(args) -> None:
  """A one-line ValueError for a search flag the command would ignore: any of them without
  --search, --eta or --min-steps with pbt, --interval with halving or hyperband."""
  pbt_only = [("--interval", args.interval is not None), ("--exploit", args.exploit),
              ("--perturb", args.perturb), ("--resample", args.resample),
              ("--resample-probability", args.resample_probability)]  # fmt: skip
  rungs_only = [("--eta", args.eta != 3), ("--min-steps", args.min_steps is not None)]
  unused = {None: pbt_only + rungs_only, "pbt": rungs_only}.get(args.search, pbt_only[:1])
  for flag, given in unused:
    if given:
      method = "pbt" if flag in dict(pbt_only) else "halving or hyperband"
      got = f"--search {args.search}" if args.search else "no --search"
      raise ValueError(f"{flag} applies to --search {method} only; got {got}.")


def settings(args) -> dict:
  """What the search adds to the sweep's settings (and so to the results folder's hash); a
  one-line ValueError for a PBT flag given with another method, resample flags that
  disagree, or a full sweep's flag (--folds, --target, --tolerance) the search ignores."""
  if args.folds or args.target:
    raise ValueError("--search takes neither --folds nor --target; leave them out.")
  if args.tolerance != common.TOLERANCE:  # the search answers one best member, not a usable range
    raise ValueError(
      f"--tolerance applies to a full sweep only (its usable range); got --tolerance "
      f"{args.tolerance:g} with --search {args.search}."
    )
  every = args.interval if args.search == "pbt" else args.min_steps
  flag = "--interval" if args.search == "pbt" else "--min-steps"
  if every is not None and (args.steps % every or every % args.eval_every):
    raise ValueError(
      f"{flag} must divide --steps ({args.steps}) and be a multiple of --eval-every "
      f"({args.eval_every}); got {every}."
    )
  # As the search refuses them (no exploit; one bracket of one random member), but here by
  # the flags' names and before the results folder is claimed.
  if args.search in ("pbt", "hyperband") and (every or args.eval_every) == args.steps:
    raise ValueError(
      f"{flag} must be less than --steps ({args.steps}) with --search {args.search}; got "
      f"{every or args.eval_every}{'' if every else ' (--eval-every, its default)'}."
    )
  if args.search == "pbt":
    extra = {"method": "pbt", "interval": args.interval or args.eval_every}
    if args.perturb is not None and tuple(args.perturb) != PERTURB:
      extra["perturb"] = list(args.perturb)  # only when set: older results keep their folder
    if args.exploit not in (None, EXPLOITS[0]):
      extra["exploit"] = args.exploit  # likewise
    if args.resample_probability > 0 or args.resample:
      extra["resample_probability"] = args.resample_probability
      extra["resample"] = _resample(args)
    return extra
  given = [flag for flag, value in (("--exploit", args.exploit), ("--perturb", args.perturb),
           ("--resample", args.resample), ("--resample-probability", args.resample_probability))
           if value]  # fmt: skip
  if given:
    raise ValueError(f"{given[0]} applies to --search pbt only; got --search {args.search}.")
  if args.eta < 2:
    raise ValueError(f"--eta must be an integer >= 2; got {args.eta}.")
  min_steps = args.min_steps or args.eval_every
  if args.search == "hyperband" and args.min_steps is None:
    min_steps = hyperband_min_steps(args.steps, args.eta, args.eval_every)
  return {"method": args.search, "eta": args.eta, "min_steps": min_steps}


def hyperband_min_steps(steps: int, eta: int, eval_every: int) -> int:
  """``--min-steps``'s default for hyperband: the least ``steps / eta**k`` (``k >= 1``) that is a
  multiple of ``eval_every``, as Li et al.'s brackets need ``steps = min_steps * eta**k``; a
  one-line ValueError, with budgets that have one, where there is none.

  Example:
    >>> hyperband_min_steps(2700, 3, 100), hyperband_min_steps(3000, 3, 100)
    (100, 1000)
  """
  found, k = None, 1
  while steps % eta**k == 0 and steps // eta**k >= eval_every:
    if (steps // eta**k) % eval_every == 0:
      found = steps // eta**k
    k += 1
  if found is None:
    fits = [eval_every * eta**k for k in (1, 2, 3, 4)]
    raise ValueError(
      f"--search hyperband needs --steps = --min-steps * {eta}**k with --min-steps a multiple "
      f"of --eval-every ({eval_every}); --steps {steps} has none: give e.g. --steps "
      f"{', '.join(map(str, fits))}, or --eval-every and --min-steps that fit."
    )
  return found


def preflight(args, grid) -> None:
  """The population checks :func:`lrlab.search.pbt` makes once it starts, made here with the
  flags' names, before :func:`lrlab.cli.output.claim` removes any file (``--overwrite``): a
  population of at least 2 members (4 for truncation, which replaces the worst quarter), and
  ``--resample`` axes that are float axes of ``--grid`` (those PBT explores)."""
  from lrlab import sweep

  if args.search != "pbt":
    return
  size = sweep.grid_size(grid)
  exploit = args.exploit or EXPLOITS[0]
  least = 4 if exploit == "truncation" else 2  # truncation replaces floor(0.25 * K) >= 1
  if size < least:
    raise ValueError(
      f"--search pbt with --exploit {exploit} needs a population of at least {least} members "
      f"(the --grid's size); got {size}."
    )
  floats = [name for name, values in grid.items() if values.dtype.kind == "f"]
  for name in _resample(args):
    if name not in floats:
      raise ValueError(
        f"--resample must name a float axis of --grid, one of {', '.join(floats) or 'none'}; "
        f"got {name!r}."
      )


def run(args, task, make_tx, tx_config, grid, out: str, checkpoint_dir: str, finished: bool) -> int:
  """Run (or, ``finished``, re-read) the search ``args.search`` into ``out``; the exit code."""
  import jax

  from lrlab import search, sweep

  path = os.path.join(out, "search.json")
  if finished and os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        answer = json.load(f)["answer"]
      if not isinstance(answer, list) or not all(isinstance(line, str) for line in answer):
        raise ValueError("its answer is not a list of lines")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
      reason = common.first_line(error) if not isinstance(error, KeyError) else "no answer"
      return common.fail(
        f"{path!r} is not a search.json that lrlab wrote ({reason}). Pass --fresh to run the "
        "search again."
      )
    print(f"{out}/ holds this search, finished (--fresh to run it again):")
    print("\n".join(answer))
    print(f"Results: {out}/ (search.json, results.csv, curves.npz, sweep.json, figures)")
    return 0
  common_kwargs = dict(
    steps=args.steps, key=jax.random.key(args.seed), seeds=args.seeds, batch_size=args.batch_size,
    eval_every=args.eval_every, chunk_size=args.chunk_size, checkpoint_dir=checkpoint_dir,
    metric=ranking_metric(args, task), keep_checkpoint=True,  # removed once the results are saved
  )  # fmt: skip
  extra = settings(args)
  with common.StopRequest() as stop:
    started = time.perf_counter()
    try:
      if args.search == "pbt":
        result = search.pbt(
          task, make_tx, grid, interval=extra["interval"], exploit=args.exploit or EXPLOITS[0],
          perturb=args.perturb or PERTURB,
          resample_probability=args.resample_probability, resample=extra.get("resample"),
          should_stop=stop, **common_kwargs,
        )  # fmt: skip
      else:
        method = search.successive_halving if args.search == "halving" else search.hyperband
        result = method(
          task, make_tx, grid, eta=args.eta, min_steps=extra["min_steps"], should_stop=stop,
          **common_kwargs,
        )  # fmt: skip
    except sweep.Stopped as stopped:
      print(
        f"Stopped ({stop.received}): checkpoint saved in {checkpoint_dir}/ at "
        f"{', '.join(f'{k} {v}' for k, v in stopped.position.items())};"
        " run the same command again to continue.",
        file=sys.stderr,
      )
      return common.EXIT_INTERRUPTED
    except ValueError as error:
      hint = " Pass --fresh to start over." if "checkpoint" in str(error) else ""
      return common.fail(f"{error}{hint}")
  seconds = time.perf_counter() - started
  answer = result.summary(sweep.grid_size(grid)).splitlines()
  answer.append(f"Time: {seconds:.1f} s ({result.metadata['compile_seconds']:.1f} s compiling).")
  figures = [f"curves_{result.metric}.png"]
  # The line through the search's answer (a stopped member has no seed mean for the sweep's
  # own best); PBT's populations answer alone, and seed 0's is drawn.
  best = result.best(seed=0 if result.schedule is not None else None)["index"]
  sweep.plot_curves(result.sweep, os.path.join(out, figures[0]), result.metric, index=best)
  if result.schedule is not None:
    figures.append("pbt.png")
    search.plot_pbt(result, os.path.join(out, figures[-1]))
  result.save(out, answer=answer, tx=tx_config)  # search.json last: the run is finished
  shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the results hold everything it held
  print("\n".join(answer))
  print(f"Results: {out}/ (search.json, results.csv, curves.npz, sweep.json, {', '.join(figures)})")
  return 0
