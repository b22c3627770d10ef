"""How ``lrlab sweep`` routes its flags into ``make_tx(hp)``: the rate, the optimizer, the schedule.

``lr`` is the peak learning rate; a grid axis named after a numeric argument of
the optimizer (``momentum``, ``b1``, ...) or of the schedule (``pct_start``,
``period``, ...) becomes that argument, traced; ``--opt`` and ``--schedule-arg``
fix the others, structural options (``nesterov``, ``three_phase``) included.
What ``make_tx`` builds is what the results record.
"""

import inspect

from lrlab.cli import common

# Learning-rate schedules by command-line name: (factory, its default arguments for a budget).
SCHEDULES = {
  "constant": ("constant", lambda steps: {}),
  "cosine": ("cosine_annealing", lambda steps: {"total_steps": steps}),
  # The cosine's own length follows the warmup (``warmup_length`` steps), as it trains.
  "warmup-cosine": (
    "cosine_annealing",
    lambda steps: {"total_steps": steps - warmup_length(steps)},
  ),
  "one-cycle": ("one_cycle", lambda steps: {"total_steps": steps}),
  "step": ("step_decay", lambda steps: {"step_size": max(1, steps // 3)}),
  "exponential": ("exponential_decay", lambda steps: {"gamma": 0.01 ** (1 / steps)}),
  "warm-restarts": ("warm_restarts", lambda steps: {"period": max(1, steps // 4)}),
  "inverse-sqrt": ("inverse_sqrt", lambda steps: {"warmup_steps": max(1, steps // 20)}),
  "wsd": (
    "warmup_stable_decay",
    lambda steps: {
      "total_steps": steps,
      "warmup_steps": steps // 20,
      "decay_steps": max(1, steps // 5),
    },
  ),
}
STRUCTURAL = (bool, str, "bool", "str")  # annotations of static options: never a grid axis
LR = 1e-3  # --lr's default: the rate of a sweep without an lr axis


def warmup_length(steps: int) -> int:
  """The linear warmup of ``--schedule warmup-cosine`` over ``steps``: a twentieth, at least 1."""
  return max(1, steps // 20)


def build_make_tx(args, axes: list[str]):
  """``(hp -> optimizer, tx_config)``: route every grid axis to the rate, optimizer or schedule.

  ``tx_config`` describes what ``make_tx`` builds (the optimizer and its fixed
  arguments, the schedule and its fixed arguments, the rate when ``lr`` is
  not an axis), for the result's config, the figures' titles and the
  checkpoint's fingerprint: a resumed sweep must train the same optimizer.
  """
  from lrlab import optimizers, schedules

  common.check_optimizer(args.optimizer)
  optimizer = getattr(optimizers, args.optimizer)
  factory_name, defaults = SCHEDULES[args.schedule]
  factory = getattr(schedules, factory_name)
  optimizer_params = dict(inspect.signature(optimizer).parameters)
  schedule_params = dict(list(inspect.signature(factory).parameters.items())[1:])
  optimizer_args = set(optimizer_params) - {"learning_rate"}
  schedule_args = set(schedule_params)
  traceable = {  # a structural option (nesterov, three_phase, ...) is static: --opt/--schedule-arg
    name
    for name, parameter in (optimizer_params | schedule_params).items()
    if name in optimizer_args | schedule_args and parameter.annotation not in STRUCTURAL
  }
  given = common.parse_assignments(args.schedule_arg, "--schedule-arg")
  fixed_optimizer = common.parse_assignments(args.opt, "--opt")
  fixed_schedule = defaults(args.steps) | given
  if "lr" in axes and args.lr is not None:  # the axis would win silently, as below
    raise common.UsageError(
      f"--lr is the rate of a sweep whose --grid has no lr axis (the default --grid has one); "
      f"leave out --lr or the lr axis; got --lr {args.lr:g}."
    )
  for name, allowed, what in (
    (set(fixed_optimizer), optimizer_args, f"--opt (arguments of {args.optimizer})"),
    (set(given), schedule_args, f"--schedule-arg (arguments of {factory_name})"),
    (set(axes) - {"lr"}, optimizer_args | schedule_args, "a --grid axis"),
  ):
    unknown = name - allowed
    allowed = allowed | ({"lr"} if "grid" in what else set())
    if unknown and not allowed:  # --schedule constant takes no argument
      raise common.UsageError(f"{what} takes none; got {', '.join(sorted(unknown))}.")
    if unknown:
      raise common.UsageError(
        f"{what} must be among {', '.join(sorted(allowed))}; got {', '.join(sorted(unknown))}."
      )
  static = sorted(set(axes) - traceable - {"lr"})
  if static:  # traced inside the sweep, an `if` on it fails after the folder is claimed
    raise common.UsageError(
      f"--grid axes must be numeric arguments, among {', '.join(sorted(traceable | {'lr'}))}; "
      f"got {', '.join(static)}, a structural option fixed for the whole sweep: give it with "
      "--opt or --schedule-arg."
    )
  for flag, fixed in (("--opt", fixed_optimizer), ("--schedule-arg", given)):
    both = sorted(set(fixed) & set(axes))
    if both:  # the axis would win silently, and the config would record the unused value
      raise common.UsageError(
        f"{flag} fixes an argument that a --grid axis varies; give it once; got {', '.join(both)}."
      )
  warmup = warmup_length(args.steps) if args.schedule == "warmup-cosine" else 0

  def make_tx(hp):
    lr = hp.get("lr", LR if args.lr is None else args.lr)
    traced = lambda allowed: {k: v for k, v in hp.items() if k in allowed}
    if args.schedule == "constant":
      rate = lr
    else:
      rate = factory(lr, **(fixed_schedule | traced(schedule_args)))
      rate = schedules.warmup(rate, warmup) if warmup else rate
    return optimizer(rate, **(fixed_optimizer | traced(optimizer_args)))

  schedule = {"name": args.schedule}
  if args.schedule != "constant":
    schedule |= fixed_schedule | ({"warmup_steps": warmup} if warmup else {})
  tx_config = {"optimizer": args.optimizer, **fixed_optimizer, "schedule": schedule}
  if "lr" not in axes:
    tx_config["lr"] = LR if args.lr is None else args.lr
  return make_tx, tx_config


__all__ = ["LR", "SCHEDULES", "build_make_tx", "warmup_length"]
