"""Claim 10: deep networks suffer vanishing or exploding gradients; Adam and clipping prevent them.

The essay: adaptive algorithms "such as AdaGrad, RMSProp, or Adam ... help
prevent issues such as vanishing or exploding gradients"; and "deep neural
networks with many layers may require a lower learning rate". For MLPs of
growing depth (``hidden=(width,) * depth``, ReLU, Flax's LeCun-normal
initialization), the experiment measures

- the gradient norm of every layer's weight, on the whole training set, at
  initialization (several seeds) and after a short training run;
- the gradient norms along that run at a high learning rate (the lowest rate
  that diverged without clipping) and at the best one, with and without
  clipping the global gradient norm to 1 (:func:`lrlab.transforms.clip_by_global_norm`
  before the optimizer);
- the usable range of learning rates (final validation accuracy within 5 points
  of the best) and the divergence threshold, from one sweep per depth and
  optimizer over ``lr x {clip at 1, no clip}``.

Five parts of the claim are judged:

- *gradients shrink with depth*: the global gradient norm at initialization is
  smaller in the deepest network than in the shallowest (beyond twice the seed
  spread of its log);
- *layer spread grows with depth*: the per-layer norms at initialization spread
  over more decades in the deepest network (the textbook picture of gradients
  vanishing or exploding on their way back to the input);
- *Adam keeps the range*: from the shallowest to the deepest network, Adam's
  usable range (in decades) shrinks less than SGD's;
- *clipping widens the range*: clipping widens the usable range, judged per
  optimizer on the mean gain over depths;
- *clipping delays divergence*: clipping raises the divergence threshold, judged
  the same way (a threshold beyond the grid counts as one step above its top).

A range or threshold is resolved to one grid step, so a difference counts when
it exceeds two grid steps (a mean over ``n`` depths: two grid steps / sqrt(n)).
The verdict is the parts' common verdict, or "depends on the part" with each
part's verdict.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib import ticker
from matplotlib.figure import Figure

from experiments import common
from lrlab import analysis, optimizers, sweep, tasks, train, transforms

CLAIM = (
  "Deep networks suffer from vanishing or exploding gradients; adaptive learning rates "
  "(Adam) and gradient clipping prevent them."
)
SIZES = {
  "tiny": dict(
    task="digits-mlp",
    depths=(1,),
    width=8,
    optimizer_names=("sgd",),
    per_decade=1,
    steps=20,
    seeds=1,
    probe_steps=10,
  ),
  "default": dict(
    task="digits-mlp",
    depths=(2, 4, 8),
    width=32,
    optimizer_names=("sgd", "adam"),
    per_decade=4,
    steps=1000,
    seeds=2,
    probe_steps=300,
  ),
  "full": dict(
    task="mnist1d-mlp",
    depths=(2, 4, 8, 16, 32),
    width=128,
    optimizer_names=("sgd", "adam"),
    per_decade=8,
    steps=6000,
    seeds=5,
    probe_steps=2000,
  ),
}
LR_RANGES = {"sgd": (1e-4, 10.0), "adam": (1e-5, 1.0)}
CLIPS = {"clip": 1.0, "none": 1e30}  # a max norm of 1e30 never binds: no clipping
BATCH = 100
TOLERANCE = 0.05
KEY = jax.random.key(0)


def make_tx(name: str):
  """``hp -> clip_by_global_norm(hp['max_norm'])``, then SGD (momentum 0.9) or Adam."""
  rule = {
    "sgd": lambda lr: optimizers.sgd(lr, momentum=0.9),
    "adam": lambda lr: optimizers.adam(lr),
  }[name]
  return lambda hp: optax.chain(transforms.clip_by_global_norm(hp["max_norm"]), rule(hp["lr"]))


def layer_names(params: dict) -> list[str]:
  """The MLP's layers from input to output: ``dense_0 ... dense_{d-1}, head``."""
  hidden = sorted((k for k in params if k.startswith("dense_")), key=lambda k: int(k[6:]))
  return [*hidden, "head"]


def layer_norms(grads: dict, names: list[str]) -> jax.Array:
  """Frobenius norm of each layer's weight gradient, in ``names`` order."""
  return jnp.stack([jnp.linalg.norm(grads[name]["weight"]) for name in names])


def probe(task, name: str, members: dict, *, steps: int, seeds: int) -> dict:
  """Per-layer gradient norms at init (``seeds`` inits) and along a run for each member.

  Seed ``s`` initializes as the sweep's seed ``s`` does; the runs start from seed
  0's parameters and draw minibatches with replacement. Each member ``m`` trains
  with ``make_tx(name)(members[.][m])`` for ``steps`` steps (no divergence guard:
  an exploding run shows as non-finite norms).
  """
  init_keys = [jax.random.split(jax.random.fold_in(KEY, s))[0] for s in range(seeds)]
  params0, _ = task.init(init_keys[0])
  names = layer_names(params0)
  whole = task.split("train")
  loss = lambda params, batch: task.loss(params, {}, batch, None)[0]  # MLPs: no model state
  full_norms = lambda p: layer_norms(jax.grad(loss)(p, whole), names)
  step_keys = jax.random.split(jax.random.split(jax.random.fold_in(KEY, 0))[1], steps)

  def run_one(hp):
    tx = optax.with_extra_args_support(make_tx(name)(hp))

    def step(carry, key):
      params, state = carry
      batch = task.batch(jax.random.randint(key, (BATCH,), 0, task.num_train))
      value, grads = jax.value_and_grad(loss)(params, batch)
      updates, state = tx.update(grads, state, params, value=value)
      return (optax.apply_updates(params, updates), state), (value, layer_norms(grads, names))

    (params, _), (losses, norms) = jax.lax.scan(step, (params0, tx.init(params0)), step_keys)
    return losses, norms, full_norms(params)

  def measure(hp, keys):
    return jax.vmap(lambda k: full_norms(task.init(k)[0]))(keys), jax.vmap(run_one)(hp)

  hp = {k: jnp.asarray(v, jnp.float32) for k, v in members.items()}
  init, (losses, norms, final) = jax.jit(measure)(hp, jnp.stack(init_keys))
  return {
    "layers": np.array(names),
    "init_norms": np.asarray(init),
    "run_loss": np.asarray(losses),
    "run_norms": np.asarray(norms),
    "final_norms": np.asarray(final),
    **{f"member_{k}": np.asarray(v) for k, v in members.items()},
  }


def split_by_clip(result: sweep.SweepResult, max_norm: float) -> sweep.SweepResult:
  """The members of ``result`` with ``max_norm``, as a sweep over ``lr`` alone."""
  keep = np.flatnonzero(np.isclose(result.grid["max_norm"], max_norm))
  keep = keep[np.argsort(result.grid["lr"][keep])]
  history = train.History(**{k: v[:, keep] for k, v in result.history._asdict().items()})
  config = {**result.config, "max_norm": max_norm}
  return sweep.SweepResult(
    {"lr": result.grid["lr"][keep]}, result.seeds, history, config, result.metadata
  )


def run(out: Path, *, task, depths, width, optimizer_names, per_decade, steps, seeds, probe_steps):
  for depth in depths:
    problem = tasks.get(task, hidden=(width,) * depth)
    for name in optimizer_names:
      lo, hi = LR_RANGES[name]
      lrs = sweep.log_grid(lo, hi, round(np.log10(hi / lo)) * per_decade + 1)
      result = sweep.run(
        problem,
        make_tx(name),
        sweep.product(lr=lrs, max_norm=list(CLIPS.values())),
        steps=steps,
        batch_size=BATCH,
        key=KEY,
        eval_every=steps // 10,
        seeds=seeds,
      )
      parts = {clip: split_by_clip(result, value) for clip, value in CLIPS.items()}
      for clip, part in parts.items():
        part.save(out / f"depth{depth}" / f"{name}-{clip}")
      high = parts["none"].divergence_threshold(metric="final_val_accuracy") or lrs[-1]
      chosen = {"lr": [], "max_norm": []}
      for clip, part in parts.items():
        best = part.best("final_val_accuracy", warn=False)["hyperparameters"]["lr"]
        chosen["lr"] += [best, high]
        chosen["max_norm"] += [CLIPS[clip]] * 2
      found = probe(problem, name, chosen, steps=probe_steps, seeds=seeds)
      np.savez(out / f"depth{depth}" / f"{name}-probe.npz", **found)


def _loaded(out: Path) -> tuple[dict, dict]:
  """``{depth: {'sgd-clip': SweepResult, ...}}`` and ``{depth: {'sgd': probe arrays}}``."""
  sweeps, probes = {}, {}
  for folder in sorted(out.glob("depth*"), key=lambda p: int(p.name[5:])):
    depth = int(folder.name[5:])
    sweeps[depth] = {
      p.name: sweep.SweepResult.load(p) for p in sorted(folder.iterdir()) if p.is_dir()
    }
    probes[depth] = {}
    for path in sorted(folder.glob("*-probe.npz")):
      with np.load(path) as arrays:
        probes[depth][path.name.removesuffix("-probe.npz")] = dict(arrays)
  return sweeps, probes


def _spread(norms: np.ndarray) -> np.ndarray:
  """Decades between the largest and smallest layer gradient norm, per seed (last axis: layers)."""
  return np.log10(norms.max(-1) / norms.min(-1))


def _per_optimizer(effects: dict, noise: float) -> str:
  """The verdict on each optimizer's effect: one word if they agree, else one per optimizer."""
  verdicts = {name: analysis.verdict(effect, noise) for name, effect in effects.items()}
  if len(set(verdicts.values())) == 1:
    return next(iter(verdicts.values()))
  return ", ".join(f"{v} for {name}" for name, v in verdicts.items())


def _judge(sweeps: dict, probes: dict) -> dict:
  depths = sorted(sweeps)
  shallow, deep = depths[0], depths[-1]
  numbers = {"ranges": {}, "init_gradients": {}, "high_lr_runs": {}}
  for depth in depths:
    ranges = numbers["ranges"][f"depth{depth}"] = {}
    for condition, result in sweeps[depth].items():
      usable = result.usable_range("final_val_accuracy", TOLERANCE)
      best = result.best("final_val_accuracy", warn=False)
      ranges[condition] = {
        "usable_range": list(usable),
        "usable_decades": analysis.decades(usable),
        "divergence_threshold": result.divergence_threshold(metric="final_val_accuracy"),
        "best_lr": best["hyperparameters"]["lr"],
        "best_final_val_accuracy": best["value"],
      }
    init = next(iter(probes[depth].values()))["init_norms"]  # (seeds, layers)
    total = np.log10(np.sqrt((init**2).sum(-1)))
    numbers["init_gradients"][f"depth{depth}"] = {
      "first_layer_norm": float(init[:, 0].mean()),
      "head_norm": float(init[:, -1].mean()),
      "global_norm": float(10 ** total.mean()),
      "log10_global_norm_seed_std": float(total.std()),
      "spread_decades": float(_spread(init).mean()),
      "spread_seed_std": float(_spread(init).std()),
    }
    for name, p in probes[depth].items():  # members: best, high (clipped), best, high (not)
      total = np.sqrt((p["run_norms"] ** 2).sum(-1))  # (members, steps)
      numbers["high_lr_runs"][f"depth{depth}-{name}"] = {
        clip: {
          "lr": float(p["member_lr"][m]),
          "max_gradient_norm": float(np.nanmax(np.where(np.isfinite(total[m]), total[m], np.inf))),
          "final_loss": float(p["run_loss"][m, -1]),
        }
        for clip, m in (("clip", 1), ("none", 3))
      }
  init = numbers["init_gradients"]
  a, b = init[f"depth{shallow}"], init[f"depth{deep}"]
  vanish = float(np.log10(a["global_norm"] / b["global_norm"]))
  vanish_noise = max(a["log10_global_norm_seed_std"], b["log10_global_norm_seed_std"])
  spread = b["spread_decades"] - a["spread_decades"]
  spread_noise = max(a["spread_seed_std"], b["spread_seed_std"])
  numbers["init_norm_drop_decades"] = vanish
  numbers["spread_growth_decades"] = spread
  parts = {
    "gradients_shrink_with_depth": analysis.verdict(vanish, vanish_noise),
    "layer_spread_grows_with_depth": analysis.verdict(spread, spread_noise),
  }
  lr = next(iter(sweeps[deep].values())).grid["lr"]
  step = float(np.log10(lr[1] / lr[0]))
  numbers["grid_step_decades"] = step
  at = lambda d, c, key: numbers["ranges"][f"depth{d}"][c][key]
  names = sorted({c.split("-")[0] for c in sweeps[deep]})
  change = {
    n: at(deep, f"{n}-none", "usable_decades") - at(shallow, f"{n}-none", "usable_decades")
    for n in names
  }
  numbers["width_change_with_depth"] = change
  if {"sgd", "adam"} <= set(names) and deep != shallow:
    numbers["adam_minus_sgd_width_change"] = change["adam"] - change["sgd"]
    parts["adam_keeps_range"] = analysis.verdict(change["adam"] - change["sgd"], step)
  # Clipping, per optimizer: the gain at every depth, judged on its mean over depths,
  # whose resolution is one grid step / sqrt(number of depths).
  beyond = lambda t: t if t is not None else float(lr[-1] * 10**step)  # a lower bound
  gains = {
    n: [at(d, f"{n}-clip", "usable_decades") - at(d, f"{n}-none", "usable_decades") for d in depths]
    for n in names
  }
  raised = {
    n: [
      float(
        np.log10(
          beyond(at(d, f"{n}-clip", "divergence_threshold"))
          / beyond(at(d, f"{n}-none", "divergence_threshold"))
        )
      )
      for d in depths
    ]
    for n in names
  }
  numbers["clipping_width_gain_decades"] = gains
  numbers["clipping_threshold_gain_decades"] = raised
  resolution = step / np.sqrt(len(depths))
  for part, effects in (("clipping_widens_range", gains), ("clipping_delays_divergence", raised)):
    parts[part] = _per_optimizer({n: float(np.mean(e)) for n, e in effects.items()}, resolution)
  numbers["parts"] = parts
  return numbers


def _verdict(parts: dict) -> str:
  verdicts = set(parts.values())
  if len(verdicts) == 1:
    return verdicts.pop()
  return "depends on the part: " + "; ".join(f"{k} {v}" for k, v in parts.items())


def _norms_figure(probes: dict, path: Path) -> Path:
  """Per-layer gradient norms vs layer, one line per depth: at init, and after each run."""
  names = sorted({n for p in probes.values() for n in p})
  figure = Figure(figsize=(4.5 * (1 + len(names)), 4), layout="constrained")
  panels = figure.subplots(1, 1 + len(names), squeeze=False)[0]
  for i, (depth, found) in enumerate(sorted(probes.items())):
    init = next(iter(found.values()))["init_norms"]
    mean, low, high = analysis.seed_band(np.log10(init))
    layers = np.arange(1, init.shape[-1] + 1)
    panels[0].plot(layers, 10**mean, "o-", color=f"C{i}", label=f"depth {depth}")
    panels[0].fill_between(layers, 10**low, 10**high, color=f"C{i}", alpha=0.2)
    for axes, name in zip(panels[1:], names, strict=True):
      if name not in found:
        continue
      p = found[name]
      for m, style in ((0, "o-"), (2, "s--")):  # the best lr, clipped and not
        clip = "clip" if p["member_max_norm"][m] < 1e10 else "no clip"
        axes.plot(
          layers,
          p["final_norms"][m],
          style,
          color=f"C{i}",
          label=f"depth {depth}, lr={p['member_lr'][m]:.2g}, {clip}",
        )
  panels[0].set(title="at initialization (seed band)")
  for axes, name in zip(panels[1:], names, strict=True):
    axes.set(title=f"after the probe run, {name} at its best lr")
  for axes in panels:
    axes.set(
      yscale="log",
      xlabel="layer (1 = input layer, last = head)",
      ylabel="gradient norm of the weight (whole train set)",
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def _ranges_figure(numbers: dict, path: Path) -> Path:
  """Usable ranges per depth and condition (bars), and their widths in decades vs depth."""
  ranges = numbers["ranges"]
  depths = sorted(int(d[5:]) for d in ranges)
  conditions = sorted({c for r in ranges.values() for c in r})
  figure = Figure(figsize=(12, 4.5), layout="constrained")
  bars, widths = figure.subplots(1, 2)
  for j, condition in enumerate(conditions):
    color, rows = f"C{j}", []
    for i, depth in enumerate(depths):
      r = ranges[f"depth{depth}"][condition]
      y = i * (len(conditions) + 1) + j
      rows.append(r["usable_decades"])
      if np.all(np.isfinite(r["usable_range"])):
        bars.plot(
          r["usable_range"],
          [y, y],
          "|-",
          markersize=12,
          color=color,
          linewidth=6,
          solid_capstyle="butt",
          label=condition if i == 0 else None,
        )
      bars.plot([r["best_lr"]], [y], "*", color="gold", markeredgecolor="black")
      if r["divergence_threshold"] is not None:
        bars.plot([r["divergence_threshold"]], [y], "x", color="red")
    widths.plot(depths, rows, "o-", color=color, label=condition)
  ticks = [i * (len(conditions) + 1) + (len(conditions) - 1) / 2 for i in range(len(depths))]
  bars.set_yticks(ticks, [f"depth {d}" for d in depths])
  bars.set(
    xscale="log", xlabel="learning rate", title="usable range (bar), best (star), diverges from (x)"
  )
  bars.grid(alpha=0.3)
  bars.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4)
  widths.set(
    xscale="log",
    xlabel="depth (hidden layers)",
    ylabel="usable range width (decades)",
    title=f"width of the usable range (grid step {numbers['grid_step_decades']:.2f})",
  )
  widths.set_xticks(depths, [str(d) for d in depths])
  widths.xaxis.set_minor_formatter(ticker.NullFormatter())
  widths.grid(alpha=0.3)
  widths.legend(fontsize="small")
  figure.savefig(path, dpi=120)
  return path


def _runs_figure(probes: dict, path: Path) -> Path:
  """Global gradient norm along the probe runs: rows optimizers, columns depths."""
  depths = sorted(probes)
  names = sorted({n for p in probes.values() for n in p})
  figure = Figure(figsize=(4 * len(depths), 3.2 * len(names)), layout="constrained")
  panels = figure.subplots(len(names), len(depths), squeeze=False)
  for r, name in enumerate(names):
    for c, depth in enumerate(depths):
      axes = panels[r, c]
      if name not in probes[depth]:
        continue
      p = probes[depth][name]
      total = np.sqrt((p["run_norms"] ** 2).sum(-1))
      for m in range(len(p["member_lr"])):
        clip = p["member_max_norm"][m] < 1e10
        kind = "best" if m % 2 == 0 else "high"
        axes.plot(
          np.where(np.isfinite(total[m]), np.maximum(total[m], 1e-6), np.nan),
          color="C0" if kind == "best" else "C3",
          linestyle="-" if clip else ":",
          label=f"{kind} lr={p['member_lr'][m]:.2g}, {'clip 1' if clip else 'no clip'}",
        )
      axes.set(
        yscale="log",
        title=f"{name}, depth {depth}",
        xlabel="step",
        ylabel="minibatch gradient norm (floor 1e-6)",
      )
      axes.grid(alpha=0.3)
      axes.legend(fontsize="x-small")
  figure.savefig(path, dpi=120)
  return path


def report(out: Path):
  sweeps, probes = _loaded(out)
  numbers = _judge(sweeps, probes)
  verdict = _verdict(numbers["parts"])
  figures = [
    _norms_figure(probes, out / "gradient_norms.png"),
    _ranges_figure(numbers, out / "usable_ranges.png"),
    _runs_figure(probes, out / "gradient_norms_during_training.png"),
  ]
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
