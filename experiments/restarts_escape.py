"""Claim 5: raising the learning rate again helps escape poor local minima.

The essay: "an increased learning rate can help escape local minima and find a
better solution".

The problem is built so that the minima are known. The loss is Rastrigin's
function in skewed coordinates, ``y = M x``:

    f(x) = sum_i [ y_i^2 + A (1 - cos(2 pi y_i)) ],

with ``M = Q1 diag(s) Q2``, two random rotations and singular values ``s``
log-spaced with condition number ``kappa``. The only global minimum is
``x = 0`` with ``f = 0``. For ``A > 1/(2 pi^2)``, each integer vector ``k`` with
``|k_i| < pi A`` has a local minimum near ``y = k`` with ``f ~ |k|^2 >= 0.99``:
these are the poor minima, one cell of side 1 around every lattice point.
With ``kappa = 1`` the matrix is a rotation, and gradient descent, being
rotation-equivariant, splits into ``d`` independent copies of the 1-D problem
(separable). With ``kappa > 1`` the coordinates are coupled and the wells are
anisotropic. The loss ignores the data, so training is plain full-batch
gradient descent on ``x``, plus a gradient noise of standard deviation ``NOISE``
(1e-6, float32 rounding). Without it, float32 lands on the global minimum ``x = 0``
exactly (an anneal passes ``lr ~ 1/L``, where one step lands on the minimum), a
fixed point no raised rate can leave, while a poor minimum, reached only to
rounding, is left at once: every restart cycle would be a new draw that keeps its
wins (a first run without the noise showed it).

Each init starts in a poor basin: ``y`` is drawn uniformly from the cube
``[-4.5, 4.5]^d`` with ``|y_1| >= 0.5``, so the initial point is outside the
global cell and never in the global basin. A run *escapes* when its final loss
is below 0.5, since every other minimum has a loss of at least 0.99.

The design matches the final annealing. A cosine over the whole budget ``T``
anneals for ``T`` steps, warm restarts with cycles of ``T/4`` only for the last
``T/4``: comparing the two confounds raising the rate with the length of the
last anneal. So each raising schedule is paired with a monotone one whose final
anneal is the same curve over the same steps, and which holds the peak before
it instead of raising the rate again:

- warm restarts with cycles of ``L`` (``T/L`` cycles, the rate raised ``T/L - 1``
  times) against a constant peak and then a cosine over the last ``L``, for
  ``L = T/8, T/4, T/2``;
- the triangular cyclical rate (4 cycles between peak/10 and the peak; its last
  anneal a linear fall over ``T/8``) against a constant peak and then the same
  linear fall over the last ``T/8``.

A fixed rate, step decay and a cosine over ``T`` are run beside them for context,
and warm restarts over ``T/4`` against the cosine over ``T`` (the old,
unmatched comparison) is reported. Every schedule is swept over its peak rate,
and all runs of a landscape share the same inits (paired). The peak is
cross-fitted: the inits are split into ``FOLDS`` sets; for each set, every
schedule's peak is chosen on the other sets (most escapes, then the lowest
median final loss) and the escapes are counted on this set. Every init is so
scored once, at a peak chosen without it, and the sets are ``FOLDS`` replicates.

The effect of a pair is the paired difference of the escape indicators
(raising minus matched monotone) averaged over inits. Its standard error is the
larger of the paired binomial one over inits, ``std(d, ddof=1) / sqrt(n)``,
and the one over the init sets (``ddof=1``), which also holds the variation of
the chosen peak. ``z = effect / SE`` gives a two-sided normal p-value; the
``4 pairs x landscapes`` p-values are Holm-adjusted and a difference counts at
``ALPHA``, the level of 2 SE. The claim is supported if raising wins some
matched comparison beyond that level and loses none; refuted if the reverse.
"""

import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import _restarts_figures as figures
from experiments import common
from lrlab import analysis, data, optimizers, schedules, sweep, tasks
from lrlab.analysis import ALPHA

CLAIM = (
  "Raising the learning rate again (warm restarts, cyclical rates) helps escape poor local "
  "minima: 'an increased learning rate can help escape local minima and find a better solution'."
)
SIZES = {
  "tiny": dict(
    landscapes=(dict(dim=2, amplitude=10.0, condition=1.0),),
    num_peaks=2,
    peak_range=(0.01, 0.05),
    steps=40,
    seeds=10,
  ),
  "default": dict(
    landscapes=(
      dict(dim=2, amplitude=10.0, condition=1.0),
      dict(dim=2, amplitude=10.0, condition=2.0),
      dict(dim=5, amplitude=3.0, condition=1.0),
      dict(dim=5, amplitude=3.0, condition=2.0),
    ),
    num_peaks=14,
    peak_range=(1e-3, 0.3),
    steps=2000,
    seeds=640,
  ),
  "full": dict(
    landscapes=tuple(
      dict(dim=d, amplitude=a, condition=k)
      for d in (2, 5, 10)
      for a in (3.0, 10.0)
      for k in (1.0, 2.0, 4.0)
    ),
    num_peaks=24,
    peak_range=(1e-3, 0.3),
    steps=5000,
    seeds=2560,
  ),
}
CYCLES = (8, 4, 2)  # warm restarts with cycles of T/n, against a cosine over the last T/n
SCHEDULES = (
  "fixed",
  "step",
  "cosine T",
  *(f"{kind} T/{n}" for n in CYCLES for kind in ("warm restarts", "constant + cosine")),
  "cyclical T/8",
  "constant + linear T/8",
)
PAIRS = (  # (raising, monotone with the same final anneal)
  *((f"warm restarts T/{n}", f"constant + cosine T/{n}") for n in CYCLES),
  ("cyclical T/8", "constant + linear T/8"),
)
UNMATCHED = ("warm restarts T/4", "cosine T")  # the old comparison: last anneal T/4 against T
ESCAPED = 0.5  # final loss below this: at the global minimum (every other minimum has f >= 0.99)
RADIUS = 4.5  # initial y uniform in [-RADIUS, RADIUS]^d, outside the global cell
NOISE = 1e-6  # standard deviation of the gradient noise: no minimum is an exact fixed point
FOLDS = 5  # init sets: the peak of each is chosen on the others


def landscape_matrix(dim: int, condition: float, seed: int = 0) -> np.ndarray:
  """``M = Q1 diag(s) Q2``: random rotations, singular values log-spaced over ``condition``."""
  rng = np.random.default_rng(seed)
  q1, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  q2, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  s = np.geomspace(condition**-0.5, condition**0.5, dim)
  return q1 @ np.diag(s) @ q2


def rastrigin(y, amplitude):
  """Rastrigin's function of ``y`` (last axis summed)."""
  return jnp.sum(y**2 + amplitude * (1 - jnp.cos(2 * jnp.pi * y)), axis=-1)


def rastrigin_task(dim: int, amplitude: float, condition: float) -> tasks.Task:
  """The skewed Rastrigin problem as a :class:`lrlab.tasks.Task`; ``params`` is ``x``, ``(dim,)``.

  The data are a placeholder (one example per split): the loss ignores them.
  """
  matrix = landscape_matrix(dim, condition)
  m = jnp.asarray(matrix, jnp.float32)
  m_inverse = jnp.asarray(np.linalg.inv(matrix), jnp.float32)
  placeholder = np.zeros((1, 1), np.float32)
  dataset = data.Dataset(*[placeholder] * 6, name="rastrigin")

  def init(key: jax.Array) -> tuple[jax.Array, dict]:
    cube, magnitude, sign = jax.random.split(key, 3)
    y = jax.random.uniform(cube, (dim,), jnp.float32, -RADIUS, RADIUS)
    first = 0.5 + jax.random.uniform(magnitude, (), jnp.float32) * (RADIUS - 0.5)
    y = y.at[0].set(jnp.where(jax.random.bernoulli(sign), first, -first))
    return m_inverse @ y, {}

  def loss(params: jax.Array, model_state: dict, batch, key) -> tuple[jax.Array, tuple]:
    del batch, key
    return rastrigin(m @ params, amplitude), (model_state, {})

  name = f"rastrigin-d{dim}-A{amplitude:g}-kappa{condition:g}"
  return tasks.Task(name=name, dataset=dataset, init=init, loss=loss, optimum=jnp.zeros(dim))


def make_schedule(index: jax.Array, peak: jax.Array, total_steps: int):
  """Schedule number ``index`` (traced) of :data:`SCHEDULES` with peak rate ``peak``."""
  T = total_steps
  tail = lambda n, **kw: schedules.warmup_stable_decay(
    peak, T, warmup_steps=0, decay_steps=T / n, **kw
  )
  candidates = [
    schedules.constant(peak),
    schedules.step_decay(peak, step_size=-(-T // 3), gamma=0.1),
    schedules.cosine_annealing(peak, T),
  ]
  for n in CYCLES:
    candidates += [schedules.warm_restarts(peak, T / n), tail(n, anneal_strategy="cos")]
  candidates += [schedules.cyclical(peak / 10, peak, T / 8), tail(8, min_lr=peak / 10)]
  return lambda t: jnp.stack([s(t) for s in candidates])[index]


def gradient_noise(std: float) -> optax.GradientTransformation:
  """Add ``std * N(0, I)`` to the gradient, the draw of step ``t`` the same for every run."""

  def update(updates, count, params=None):
    del params
    key = jax.random.fold_in(jax.random.PRNGKey(0), count)
    noise = std * jax.random.normal(key, jnp.shape(updates), jnp.result_type(updates))
    return updates + noise, count + 1

  return optax.GradientTransformation(lambda params: jnp.zeros((), jnp.int32), update)


def _folder(landscape: dict) -> str:
  return f"d{landscape['dim']}_A{landscape['amplitude']:g}_kappa{landscape['condition']:g}"


def run(out: Path, *, landscapes, num_peaks, peak_range, steps, seeds):
  grid = sweep.product(
    schedule=np.arange(len(SCHEDULES)), lr=sweep.log_grid(*peak_range, num_peaks)
  )
  make_tx = lambda hp: optax.chain(
    gradient_noise(NOISE),
    optimizers.sgd(make_schedule(hp["schedule"], hp["lr"], steps)),
  )
  for landscape in landscapes:
    task = rastrigin_task(**landscape)
    result = sweep.run(
      task,
      make_tx,
      grid,
      steps=steps,
      batch_size=None,
      key=jax.random.key(0),
      eval_every=steps // 10,
      seeds=seeds,
      divergence_factor=1e6,  # the loss is bounded for these rates; only NaN counts
      progress=False,
    )
    folder = out / _folder(landscape)
    folder.mkdir(parents=True, exist_ok=True)
    loss = result.history.val_loss  # (S, K, E), the loss at x
    np.savez_compressed(  # compact: final losses, and the median curve of each member
      folder / "runs.npz",
      schedule=result.grid["schedule"],
      lr=result.grid["lr"],
      seeds=result.seeds,
      step=result.history.step[0, 0],
      final_loss=loss[..., -1].astype(np.float32),  # (S, K)
      median_loss=np.median(loss, axis=0).astype(np.float32),  # (K, E)
      diverged=result.history.diverged,
    )
    config = dict(
      landscape,
      task=task.name,
      steps=steps,
      matrix=landscape_matrix(landscape["dim"], landscape["condition"]).tolist(),
      escaped_below=ESCAPED,
      radius=RADIUS,
      gradient_noise=NOISE,
      wall_seconds=result.metadata["wall_seconds"],
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _load(folder: Path) -> tuple[dict, dict]:
  with np.load(folder / "runs.npz") as runs:
    arrays = dict(runs)
  return arrays, json.loads((folder / "config.json").read_text())


def final_losses(runs: dict) -> np.ndarray:
  """``(inits, members)`` final loss; a diverged run's is ``inf`` (it did not escape)."""
  return np.where(runs["diverged"], np.inf, runs["final_loss"])


def cross_fit(runs: dict) -> tuple[dict, dict]:
  """Each schedule's escapes per init at a peak chosen on the other init sets.

  Returns ``({name: (inits,) bool}, {name: [peak per set]})``; init ``i`` is in set
  ``i % FOLDS``.
  """
  final = final_losses(runs)
  escaped = final < ESCAPED
  sets = np.arange(len(final)) % FOLDS
  scored, peaks = {}, {}
  for i, name in enumerate(SCHEDULES):
    members = np.flatnonzero(runs["schedule"] == i)
    scored[name] = np.zeros(len(final), bool)
    peaks[name] = []
    for f in range(FOLDS):
      train, held = sets != f, sets == f
      fraction = escaped[train][:, members].mean(0)
      median = np.median(final[train][:, members], axis=0)
      k = members[np.lexsort((median, -fraction))[0]]  # most escapes, then lowest median loss
      scored[name][held] = escaped[held, k]
      peaks[name].append(float(runs["lr"][k]))
  return scored, peaks


def paired_escapes(a: np.ndarray, b: np.ndarray) -> dict:
  """Escapes of ``a`` minus ``b`` on the same inits: mean, SEs over inits and init sets, p."""
  d = a.astype(np.float64) - b
  sets = np.arange(d.size) % FOLDS
  per_set = np.array([d[sets == f].mean() for f in range(FOLDS)])
  se_inits = float(d.std(ddof=1) / np.sqrt(d.size))
  se_sets = float(per_set.std(ddof=1) / np.sqrt(FOLDS))
  se, gap = max(se_inits, se_sets), float(d.mean())
  p = math.erfc(abs(gap) / se / math.sqrt(2.0)) if se > 0 else float(gap == 0)
  return {
    "gap": gap,
    "se": se,
    "se_inits": se_inits,
    "se_init_sets": se_sets,
    "gap_per_init_set": per_set,
    "both_escape": int(np.sum(a & b)),
    "only_first": int(np.sum(a & ~b)),
    "only_second": int(np.sum(~a & b)),
    "p": p,
  }


def _judge(runs: dict) -> dict:
  scored, peaks = cross_fit(runs)
  final = final_losses(runs)
  n = len(final)
  numbers = {}
  for i, name in enumerate(SCHEDULES):
    members = np.flatnonzero(runs["schedule"] == i)
    fraction = float(scored[name].mean())
    numbers[name] = {
      "escaped": fraction,
      "escaped_se": math.sqrt(fraction * (1 - fraction) / (n - 1)),
      "best_peak_per_init_set": peaks[name],
      "escaped_all_inits_best_over_peaks": float((final[:, members] < ESCAPED).mean(0).max()),
    }
  return {
    "schedules": numbers,
    "matched": {f"{a} vs {b}": paired_escapes(scored[a], scored[b]) for a, b in PAIRS},
    "unmatched": {f"{a} vs {b}": paired_escapes(scored[a], scored[b]) for a, b in [UNMATCHED]},
    "inits": n,
  }


def stability_limit(config: dict) -> float:
  """``2 / L`` with ``L ~ (2 + 4 pi^2 A) kappa`` the top curvature at the minima: below this
  peak rate gradient descent is stable in whichever well it starts and cannot leave it."""
  return 2.0 / ((2 + 4 * np.pi**2 * config["amplitude"]) * config["condition"])


def _below_limit(runs: dict, config: dict) -> float:
  """The largest escape fraction (all inits) of any schedule whose peak is below ``2 / L``."""
  below = runs["lr"] < stability_limit(config)
  if not np.any(below):
    return float("nan")
  return float((final_losses(runs)[:, below] < ESCAPED).mean(0).max())


def report(out: Path):
  folders = sorted(p for p in out.iterdir() if (p / "runs.npz").exists())
  loaded = [(*_load(folder), folder.name) for folder in folders]
  numbers = {}
  for runs, config, name in loaded:
    numbers[name] = {
      **_judge(runs),
      "sweep_seconds": round(config["wall_seconds"], 1),
      "stability_limit_2_over_L": stability_limit(config),
      "most_escapes_with_peak_below_2_over_L": _below_limit(runs, config),
    }
  family = [(name, pair) for name in numbers for pair in numbers[name]["matched"]]
  adjusted = analysis.holm([numbers[name]["matched"][pair]["p"] for name, pair in family])
  outcomes = {}
  for (name, pair), p_holm in zip(family, adjusted, strict=True):
    entry = numbers[name]["matched"][pair]
    entry["p_holm"] = float(p_holm)
    won = "supported" if entry["gap"] > 0 else "refuted"
    entry["verdict"] = won if p_holm <= ALPHA else "inconclusive"
    outcomes[f"{name}: {pair}"] = entry["verdict"]
  numbers = {
    **numbers,
    "comparisons": len(family),
    "alpha": ALPHA,
    "folds": FOLDS,
    "gradient_noise_std": NOISE,
    "wins": sum(v == "supported" for v in outcomes.values()),
    "losses": sum(v == "refuted" for v in outcomes.values()),
    "ties": sum(v == "inconclusive" for v in outcomes.values()),
  }
  drawn = figures.draw(loaded, numbers, out)
  found = set(outcomes.values())
  if {"supported", "refuted"} <= found:
    lost = [k for k, v in outcomes.items() if v == "refuted"]
    verdict = (
      f"depends on the landscape and cycle: at a matched final anneal, raising the rate wins "
      f"{numbers['wins']} of {len(family)} comparisons beyond 2 SE (Holm), loses "
      f"{numbers['losses']} ({'; '.join(lost)}), ties {numbers['ties']}"
    )
  else:
    verdict = next((v for v in ("supported", "refuted") if v in found), "inconclusive")
  return numbers, verdict, drawn


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
