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
gradient descent on ``x``.

Each seed starts in a poor basin: ``y`` is drawn uniformly from the cube
``[-4.5, 4.5]^d`` with ``|y_1| >= 0.5``, so the initial point is outside the
global cell and never in the global basin. A run *escapes* when its final loss
is below 0.5, since every other minimum has a loss of at least 0.99.

The schedules get the same budget and are each swept over their peak rate. They
are: a fixed rate, step decay, cosine, constant then a cosine tail over the
last quarter, cosine warm restarts (4 cycles) and a triangular cyclical rate
(4 cycles between peak/10 and the peak). The last two raise the rate again;
the others never do. The peak is chosen on half of the seeds and the escape
fraction is measured on the other half. The claim holds on a landscape when
the better of the two raising schedules escapes more often than the best
monotone one, by more than twice the standard error of the paired difference.
"""

import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, data, optimizers, schedules, sweep, tasks

CLAIM = (
  "Raising the learning rate again (warm restarts, cyclical rates) helps escape poor local "
  "minima: 'an increased learning rate can help escape local minima and find a better solution'."
)
SIZES = {
  "tiny": dict(
    landscapes=(dict(dim=2, amplitude=10.0, condition=1.0),),
    num_peaks=3,
    peak_range=(0.01, 0.05),
    steps=40,
    seeds=16,
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
    seeds=256,
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
    seeds=1024,
  ),
}
SCHEDULES = ("fixed", "step", "cosine", "constant + cosine tail", "warm restarts", "cyclical")
RAISING = ("warm restarts", "cyclical")
MONOTONE = ("step", "cosine", "constant + cosine tail")
ESCAPED = 0.5  # final loss below this: at the global minimum (every other minimum has f >= 0.99)
RADIUS = 4.5  # initial y uniform in [-RADIUS, RADIUS]^d, outside the global cell


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
  candidates = (
    schedules.constant(peak),
    schedules.step_decay(peak, step_size=-(-T // 3), gamma=0.1),
    schedules.cosine_annealing(peak, T),
    schedules.warmup_stable_decay(
      peak, T, warmup_steps=0, decay_steps=T / 4, anneal_strategy="cos"
    ),
    schedules.warm_restarts(peak, T / 4),
    schedules.cyclical(peak / 10, peak, T / 8),
  )
  return lambda t: jnp.stack([s(t) for s in candidates])[index]


def _folder(landscape: dict) -> str:
  return f"d{landscape['dim']}_A{landscape['amplitude']:g}_kappa{landscape['condition']:g}"


def run(out: Path, *, landscapes, num_peaks, peak_range, steps, seeds):
  grid = sweep.product(
    schedule=np.arange(len(SCHEDULES)), lr=sweep.log_grid(*peak_range, num_peaks)
  )
  make_tx = lambda hp: optimizers.sgd(make_schedule(hp["schedule"], hp["lr"], steps))
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
    )
    folder = out / _folder(landscape)
    folder.mkdir(parents=True, exist_ok=True)
    # A compact record: the per-step rates of every seed would take S x K x steps floats.
    np.savez_compressed(
      folder / "runs.npz",
      schedule=result.grid["schedule"],
      lr=result.grid["lr"],
      seeds=result.seeds,
      step=result.history.step[0, 0],
      loss=result.history.val_loss.astype(np.float32),  # (S, K, E), the loss at x
      diverged=result.history.diverged,
      learning_rate=result.history.learning_rate[0],  # (K, steps); the same for every seed
    )
    config = dict(
      landscape,
      task=task.name,
      steps=steps,
      matrix=landscape_matrix(landscape["dim"], landscape["condition"]).tolist(),
      escaped_below=ESCAPED,
      radius=RADIUS,
      wall_seconds=result.metadata["wall_seconds"],
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _load(folder: Path) -> tuple[dict, dict]:
  with np.load(folder / "runs.npz") as runs:
    arrays = dict(runs)
  return arrays, json.loads((folder / "config.json").read_text())


def _judge(runs: dict) -> dict:
  """Best peak per schedule on the selection seeds; escape fraction on the held-out seeds."""
  final = np.where(runs["diverged"], np.inf, runs["loss"][..., -1])  # (S, K)
  escaped = final < ESCAPED
  half = len(final) // 2
  select, held = slice(0, half), slice(half, None)
  chosen, numbers = {}, {}
  for i, name in enumerate(SCHEDULES):
    members = np.flatnonzero(runs["schedule"] == i)
    fraction = escaped[select][:, members].mean(0)
    median = np.median(final[select][:, members], axis=0)
    k = members[np.lexsort((median, -fraction))[0]]  # most escapes, then lowest median loss
    chosen[name] = k
    success = escaped[held, k]
    numbers[name] = {
      "best_peak": float(runs["lr"][k]),
      "escaped": float(success.mean()),
      "escaped_standard_error": float(success.std(ddof=1) / np.sqrt(success.size)),
      "median_final_loss": float(np.median(final[held, k])),
      "escaped_all_seeds_best_over_peaks": float(escaped[:, members].mean(0).max()),
    }

  def compare(a: str, b: str) -> dict:
    difference = escaped[held, chosen[a]].astype(float) - escaped[held, chosen[b]]
    noise = float(difference.std(ddof=1) / np.sqrt(difference.size))
    effect = float(difference.mean())
    return {"effect": effect, "standard_error": noise, "verdict": analysis.verdict(effect, noise)}

  best_raising = max(RAISING, key=lambda n: numbers[n]["escaped"])
  best_monotone = max(MONOTONE, key=lambda n: numbers[n]["escaped"])
  return {
    "schedules": numbers,
    "members": {n: int(k) for n, k in chosen.items()},
    "best_raising": best_raising,
    "best_monotone": best_monotone,
    "raising_vs_monotone": compare(best_raising, best_monotone),
    "warm_restarts_vs_cosine": compare("warm restarts", "cosine"),
    "held_out_seeds": int(len(final) - half),
  }


def stability_limit(config: dict) -> float:
  """``2 / L`` with ``L ~ (2 + 4 pi^2 A) kappa`` the top curvature at the minima: below this
  peak rate gradient descent is stable in whichever well it starts and cannot leave it."""
  return 2.0 / ((2 + 4 * np.pi**2 * config["amplitude"]) * config["condition"])


def _color(name: str) -> str:
  return "0.4" if name == "fixed" else f"C{SCHEDULES.index(name) - 1}"


def _label(config: dict) -> str:
  return f"d={config['dim']}, A={config['amplitude']:g}, kappa={config['condition']:g}"


def _escape_vs_peak(loaded, path):
  figure = Figure(figsize=(4.2 * len(loaded), 4), layout="constrained")
  panels = np.atleast_1d(figure.subplots(1, len(loaded)))
  for axes, (runs, config, _) in zip(panels, loaded, strict=True):
    final = np.where(runs["diverged"], np.inf, runs["loss"][..., -1])
    for i, name in enumerate(SCHEDULES):
      members = np.flatnonzero(runs["schedule"] == i)
      axes.plot(
        runs["lr"][members],
        (final[:, members] < ESCAPED).mean(0),
        "o-",
        markersize=3,
        color=_color(name),
        label=name,
      )
    axes.axvline(
      stability_limit(config), color="black", linestyle=":", linewidth=1, label="2/L of the wells"
    )
    axes.set(xscale="log", xlabel="peak learning rate", ylim=(-0.03, 1.03), title=_label(config))
    axes.grid(alpha=0.3)
  figure.axes[0].set_ylabel(f"fraction of all {len(final)} seeds escaping")
  figure.axes[0].legend(fontsize="small")
  figure.suptitle("Gradient descent on skewed Rastrigin: escapes to the global minimum vs peak")
  figure.savefig(path, dpi=120)


def _bars(loaded, path):
  figure = Figure(figsize=(max(7, 2.6 * len(loaded)), 4.5), layout="constrained")
  axes = figure.add_subplot()
  width = 0.8 / len(SCHEDULES)
  for c, (_, _, judged) in enumerate(loaded):
    for i, name in enumerate(SCHEDULES):
      s = judged["schedules"][name]
      axes.bar(
        c + (i - len(SCHEDULES) / 2 + 0.5) * width,
        s["escaped"],
        width,
        yerr=2 * s["escaped_standard_error"],
        capsize=2,
        color=_color(name),
        label=name if c == 0 else None,
      )
  axes.set_xticks(np.arange(len(loaded)), [_label(config) for _, config, _ in loaded])
  seeds = loaded[0][2]["held_out_seeds"]
  axes.set_ylabel(f"fraction escaping ({seeds} held-out seeds, ±2 SE)")
  axes.set_ylim(0, 1.05)
  axes.set_title("Each schedule at its best peak (chosen on the other seeds)")
  axes.legend(fontsize="small", ncols=3, loc="upper right")
  figure.savefig(path, dpi=120)


def _curves(loaded, path):
  figure = Figure(figsize=(4.2 * len(loaded), 7), layout="constrained")
  grid = np.asarray(figure.subplots(2, len(loaded), squeeze=False))
  for c, (runs, config, judged) in enumerate(loaded):
    for name in SCHEDULES:
      k = judged["members"][name]
      loss = np.median(runs["loss"][:, k], axis=0)
      grid[0, c].plot(runs["step"], np.maximum(loss, 1e-3), color=_color(name), label=name)
      grid[1, c].plot(runs["learning_rate"][k], color=_color(name))
    grid[0, c].set(yscale="log", title=_label(config), xlabel="step")
    grid[1, c].set(yscale="log", xlabel="step")
  grid[0, 0].set_ylabel("median loss over seeds (floored at 1e-3)")
  grid[1, 0].set_ylabel("learning rate at the best peak")
  grid[0, 0].legend(fontsize="small")
  figure.savefig(path, dpi=120)


def _landscapes(loaded, path):
  flat = [(runs, config) for runs, config, _ in loaded if config["dim"] == 2]
  if not flat:
    return False
  figure = Figure(figsize=(4.5 * len(flat), 4.2), layout="constrained")
  for axes, (_, config) in zip(np.atleast_1d(figure.subplots(1, len(flat))), flat, strict=True):
    matrix = np.asarray(config["matrix"])
    extent = RADIUS * np.abs(np.linalg.inv(matrix)).sum(1).max()
    u = np.linspace(-extent, extent, 400)
    x = np.stack(np.meshgrid(u, u), axis=-1)
    f = np.asarray(rastrigin(jnp.asarray(x @ matrix.T), config["amplitude"]))
    image = axes.contourf(u, u, np.log10(1 + f), levels=30, cmap="viridis")
    axes.plot([0], [0], "*", color="red", markersize=12, label="global minimum")
    axes.set(title=_label(config), xlabel="x1", ylabel="x2", aspect="equal")
    figure.colorbar(image, ax=axes, label="log10(1 + loss)")
    axes.legend(fontsize="small", loc="upper right")
  figure.suptitle("The constructed landscapes (2-D cases)")
  figure.savefig(path, dpi=110)
  return True


def _below_limit(runs: dict, config: dict) -> float:
  """The largest escape fraction (all seeds) of any schedule whose peak is below ``2 / L``."""
  below = runs["lr"] < stability_limit(config)
  if not np.any(below):
    return float("nan")
  final = np.where(runs["diverged"], np.inf, runs["loss"][..., -1])
  return float((final[:, below] < ESCAPED).mean(0).max())


def report(out: Path):
  folders = sorted(p for p in out.iterdir() if (p / "runs.npz").exists())
  loaded = []
  for folder in folders:
    runs, config = _load(folder)
    loaded.append((runs, config, _judge(runs)))
  numbers = {
    folder.name: {
      **{k: v for k, v in judged.items() if k != "members"},
      "sweep_seconds": round(config["wall_seconds"], 1),
      "stability_limit_2_over_L": stability_limit(config),
      "most_escapes_with_peak_below_2_over_L": _below_limit(runs, config),
    }
    for folder, (_, config, judged) in zip(folders, loaded, strict=True)
  }
  figures = [out / "escape_vs_peak.png", out / "escape_bars.png", out / "curves.png"]
  _escape_vs_peak(loaded, figures[0])
  _bars(loaded, figures[1])
  _curves(loaded, figures[2])
  if _landscapes(loaded, out / "landscapes.png"):
    figures.append(out / "landscapes.png")
  # Supported (refuted) if raising wins (loses) on some landscape and loses (wins) on none.
  outcomes = {n: j["raising_vs_monotone"]["verdict"] for n, j in numbers.items()}
  found = set(outcomes.values())
  if {"supported", "refuted"} <= found:
    verdict = "depends on the landscape: " + ", ".join(f"{n} {v}" for n, v in outcomes.items())
  else:
    verdict = next((v for v in ("supported", "refuted") if v in found), "inconclusive")
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
