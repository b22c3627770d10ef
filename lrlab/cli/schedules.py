"""``lrlab schedules``: print and plot every lrlab schedule over one training budget.

  lrlab schedules [--steps 1000] [--lr 0.1] [--out results/schedules]

Writes one PNG per family of schedules under ``--out`` (replacing what an
earlier run wrote there) and prints the rate of each schedule at a few steps.
"""

import os
import sys

from lrlab.cli import common, output

FAMILIES = ("decays", "cosine", "cyclical", "warmup")
FILES = output.OWNED["schedules"]
MIN_STEPS = 20
MAX_STEPS = 2**31 - 1  # schedules count steps in int32, as the trainer does


def families(steps: int, lr: float) -> dict:
  """Every schedule, grouped by family (:data:`FAMILIES`), with settings that fit ``steps``."""
  from lrlab import schedules as S

  return {
    "decays": {
      "constant": S.constant(lr),
      "step_decay": S.step_decay(lr, steps // 4, 0.5),
      "multistep_decay": S.multistep_decay(lr, [steps // 2, 3 * steps // 4]),
      "exponential_decay": S.exponential_decay(lr, 0.01 ** (1 / steps)),
      "inverse_time_decay": S.inverse_time_decay(lr, 10.0, step_size=steps),
      "polynomial_decay": S.polynomial_decay(lr, steps, power=2.0),
      "linear": S.linear(lr, 0.0, steps),
    },
    "cosine": {
      "cosine_annealing": S.cosine_annealing(lr, steps),
      "warm_restarts": S.warm_restarts(lr, steps // 10, period_mult=2),
    },
    "cyclical": {
      "cyclical triangular": S.cyclical(lr / 10, lr, steps // 10),
      "cyclical triangular2": S.cyclical(lr / 10, lr, steps // 10, policy="triangular2"),
      "cyclical exp_range": S.cyclical(
        lr / 10, lr, steps // 10, policy="exp_range", gamma=0.1 ** (1 / steps)
      ),
      "one_cycle": S.one_cycle(lr, steps),
      "one_cycle three_phase": S.one_cycle(lr, steps, three_phase=True, anneal_strategy="linear"),
    },
    "warmup": {
      "inverse_sqrt": S.inverse_sqrt(lr, steps // 20),
      "warmup + cosine": S.warmup(S.cosine_annealing(lr, steps - steps // 20), steps // 20),
      "warmup_stable_decay": S.warmup_stable_decay(
        lr, steps, warmup_steps=steps // 20, decay_steps=steps // 5, anneal_strategy="sqrt"
      ),
      "sequence (linear, exponential)": S.sequence(
        [S.linear(lr / 10, lr, steps // 10), S.exponential_decay(lr, 0.995)], [steps // 10]
      ),
    },
  }


def add_arguments(parser: common.Parser) -> None:
  """The flags of ``lrlab schedules``."""
  parser.add_argument(
    "--steps", type=common.positive_int, default=1000,
    help=f"the training budget in steps, {MIN_STEPS} to 2**31 - 1",
  )  # fmt: skip
  parser.add_argument(
    "--lr", type=common.positive_float, default=0.1, help="the peak learning rate"
  )
  parser.add_argument("--out", default="results/schedules", help="folder for the figures")


def run(args) -> int:
  """``lrlab schedules`` with parsed ``args``; the exit code."""
  if not MIN_STEPS <= args.steps <= MAX_STEPS:
    return common.fail(f"--steps must be in [{MIN_STEPS}, 2**31 - 1]; got {args.steps}.")
  try:
    settings = {"steps": args.steps, "lr": args.lr}
    owner = output.claimed_by(args.out)
    if owner not in (None, "schedules"):  # never replace another command's run
      raise ValueError(f"--out {args.out!r} holds an lrlab {owner} run; give another --out.")
    output.claim(args.out, "schedules", settings, FILES, overwrite=True, fresh=True)
  except ValueError as error:
    return common.fail(str(error))
  import jax.numpy as jnp

  from lrlab import schedules

  probes = [0, args.steps // 10, args.steps // 4, args.steps // 2, 3 * args.steps // 4]
  probes.append(args.steps - 1)
  print(f"{'schedule':32s}" + "".join(f"{f't={t}':>11s}" for t in probes))
  for family, members in families(args.steps, args.lr).items():
    for name, schedule in members.items():
      values = schedule(jnp.asarray(probes, jnp.int32))
      print(f"{name:32s}" + "".join(f"{float(v):11.3e}" for v in values))
    path = os.path.join(args.out, f"{family}.png")
    schedules.plot(members, args.steps, path, title=f"lrlab.schedules: {family}")
    print(f"  -> {path}")
  return 0


def main(argv: list[str] | None = None) -> int:
  """``lrlab schedules`` as a program: parse ``argv`` (default: ``sys.argv[1:]``) and run."""
  return common.main_of(sys.modules[__name__], "lrlab schedules", argv)
