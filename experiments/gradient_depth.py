"""Claim 10: deep networks suffer vanishing or exploding gradients; Adam and clipping prevent them.

The essay: adaptive algorithms "such as AdaGrad, RMSProp, or Adam ... help
prevent issues such as vanishing or exploding gradients"; and "deep neural
networks with many layers may require a lower learning rate". For ReLU MLPs of
growing depth (``hidden=(width,) * depth``, depths 2 to 16), each under two
initializations of the hidden layers, Flax's LeCun-normal (variance
``1/fan_in``, the tasks' default) and He-normal (``2/fan_in``, He et al. 2015,
the ReLU-preserving control: the same draws times sqrt(2); the head keeps
LeCun's), the experiment measures

- the gradient norm of every layer's weight on the whole training set at
  initialization (``seeds`` initializations);
- the gradient norms along a short run at the best and at a high rate (the
  lowest that failed without clipping), with and without clipping the global
  gradient norm to 1 (:func:`lrlab.transforms.clip_by_global_norm`);
- the usable range (final validation accuracy within 5 points of the best) and
  the divergence threshold, per seed, from one sweep per depth, initialization
  and optimizer over ``lr x {clip at 1, no clip}``. The dead-network guard
  (:func:`lrlab.analysis.fail_at_chance`: final train loss within 5% of the
  chance loss, above the best rate) counts a dead run as failed.

*Shrinks* and *vanishes* are told apart at initialization. Within a network,
``layer_decay`` is ``log10(|g_last| / |g_first|)``, the decades by which the
last (output) layer's weight gradient exceeds the first (input) layer's, and
``slope`` the least-squares slope of ``log10 |g_l|`` against the layer index
``l`` (decades per layer; positive: falling toward the input). Across networks,
``depth_drop`` is ``log10`` of the global gradient norm of the shallowest over
the deepest network. Each is a mean over seeds with its standard error (ddof=1);
a fall is *flat* within 2 SE, *shrinks* beyond 2 SE but by at most
``VANISH`` = 2 decades (100x), and *vanishes* beyond 2 decades (*grows* and
*explodes* are the same for a rise).

The parts, each an effect with a standard error, ``z = effect / SE`` and a
two-sided normal p-value, Holm-adjusted together (:func:`lrlab.analysis.holm`)
at ``ALPHA``, the level of 2 SE:

- *gradients vanish across layers* (LeCun, the deepest net): ``|layer_decay| - VANISH``;
- *gradients shrink with depth* (LeCun): ``depth_drop``;
- *Adam keeps the range* (per init): from the shallowest to the deepest net,
  the usable width's change under Adam minus under SGD, paired over seeds;
- *clipping widens the range* and *clipping delays divergence* (per init and
  optimizer): the gain in usable width, and in log10 divergence threshold (a
  threshold beyond the grid counts as one step above it), averaged over depths,
  paired over seeds.

A width or threshold is read on a grid, so its SE adds to the seeds' the
rounding error of its ends (uniform over one grid step, SD ``step / sqrt(12)``
each, over the depths averaged). The He numbers are the control (reported, not
judged). The verdict is the parts' common verdict, or "depends on the part".
"""

import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import _gradient_depth_figures as figures
from experiments import _gradient_depth_stats as stats
from experiments import common
from lrlab import analysis, optimizers, sweep, tasks, train, transforms
from lrlab.analysis import ALPHA

CLAIM = (
  "Deep networks suffer from vanishing or exploding gradients; adaptive learning rates "
  "(Adam) and gradient clipping prevent them."
)
SIZES = {
  "tiny": dict(
    task="digits-mlp", depths=(1, 2), inits=("he",), width=8, optimizer_names=("sgd",),
    per_decade=1, steps=20, seeds=2, probe_steps=0,
  ),
  "default": dict(
    task="digits-mlp", depths=(2, 4, 8, 16), inits=("lecun", "he"), width=32,
    optimizer_names=("sgd", "adam"), per_decade=2, steps=300, seeds=5, probe_steps=200,
  ),
  "full": dict(
    task="mnist1d-mlp", depths=(2, 4, 8, 16, 32), inits=("lecun", "he"), width=128,
    optimizer_names=("sgd", "adam"), per_decade=4, steps=6000, seeds=8, probe_steps=2000,
  ),
}  # fmt: skip
LR_RANGES = {"sgd": (1e-4, 10.0), "adam": (1e-5, 1.0)}
CLIPS = {"clip": 1.0, "none": 1e30}  # a max norm of 1e30 never binds: no clipping
BATCH = 100
TOLERANCE = 0.05
CHANCE_RTOL = 0.05
VANISH = stats.VANISH  # decades: a fall beyond 100x "vanishes", a smaller significant one "shrinks"
KEY = jax.random.key(0)


def with_init(task: tasks.Task, init: str) -> tasks.Task:
  """``task`` with He-normal hidden layers (``init="he"``: LeCun's draws times sqrt(2)) or as is."""
  if init == "lecun":
    return task
  if init != "he":
    raise ValueError(f"init must be 'lecun' or 'he'; got {init!r}.")

  def he_init(key):
    params, state = task.init(key)
    scaled = {
      k: ({**v, "weight": v["weight"] * jnp.sqrt(2.0)} if k.startswith("dense_") else v)
      for k, v in params.items()
    }
    return scaled, state

  return dataclasses.replace(task, init=he_init)


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
  an exploding run shows as non-finite norms). With ``steps=0``, only the norms at init.
  """
  init_keys = [jax.random.split(jax.random.fold_in(KEY, s))[0] for s in range(seeds)]
  names = layer_names(jax.eval_shape(task.init, init_keys[0])[0])  # shapes only: no compile
  whole = task.split("train")
  loss = lambda params, batch: task.loss(params, {}, batch, None)[0]  # MLPs: no model state
  full_norms = lambda p: layer_norms(jax.grad(loss)(p, whole), names)
  at_init = jax.jit(jax.vmap(lambda k: full_norms(task.init(k)[0])))
  members = {f"member_{k}": np.asarray(v) for k, v in members.items()}
  if steps == 0:
    return {"layers": np.array(names), "init_norms": np.asarray(at_init(jnp.stack(init_keys)))}
  params0, _ = task.init(init_keys[0])
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

  hp = {k[7:]: jnp.asarray(v, jnp.float32) for k, v in members.items()}
  losses, norms, final = jax.jit(jax.vmap(run_one))(hp)
  return {
    "layers": np.array(names),
    "init_norms": np.asarray(at_init(jnp.stack(init_keys))),
    "run_loss": np.asarray(losses),
    "run_norms": np.asarray(norms),
    "final_norms": np.asarray(final),
    **members,
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


def guarded(result: sweep.SweepResult) -> sweep.SweepResult:
  """``result`` with dead runs above the best rate counted as diverged (``config['chance']``)."""
  chance = result.config["chance"]
  return analysis.fail_at_chance(result, chance, rtol=CHANCE_RTOL, select="final_val_accuracy")


def run(
  out: Path, *, task, depths, inits, width, optimizer_names, per_decade, steps, seeds, probe_steps
):
  for init in inits:
    for depth in depths:
      problem = with_init(tasks.get(task, hidden=(width,) * depth), init)
      chance = analysis.chance_loss(problem.dataset.y_train, problem.num_classes)
      folder = out / init / f"depth{depth}"
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
          eval_every=steps // 5,
          seeds=seeds,
          progress=False,
        )
        result = dataclasses.replace(result, config={**result.config, "chance": chance})
        parts = {clip: split_by_clip(result, value) for clip, value in CLIPS.items()}
        for clip, part in parts.items():
          part.save(folder / f"{name}-{clip}")
        high = guarded(parts["none"]).divergence_threshold() or lrs[-1]
        chosen = {"lr": [], "max_norm": []}
        for clip, part in parts.items():
          best = part.best("final_val_accuracy", warn=False)["hyperparameters"]["lr"]
          chosen["lr"] += [best, high]
          chosen["max_norm"] += [CLIPS[clip]] * 2
        found = probe(problem, name, chosen, steps=probe_steps, seeds=seeds)
        np.savez(folder / f"{name}-probe.npz", **found)


def _loaded(out: Path) -> tuple[dict, dict]:
  """``{(init, depth): {'sgd-clip': SweepResult, ...}}``, ``{(init, depth): {'sgd': arrays}}``."""
  sweeps, probes = {}, {}
  for init in ("lecun", "he"):
    for folder in sorted((out / init).glob("depth*"), key=lambda p: int(p.name[5:])):
      key = (init, int(folder.name[5:]))
      sweeps[key] = {
        p.name: guarded(sweep.SweepResult.load(p)) for p in sorted(folder.iterdir()) if p.is_dir()
      }
      probes[key] = {}
      for path in sorted(folder.glob("*-probe.npz")):
        with np.load(path) as arrays:
          probes[key][path.name.removesuffix("-probe.npz")] = dict(arrays)
  return sweeps, probes


def _per_seed(result: sweep.SweepResult, beyond: float) -> tuple[np.ndarray, np.ndarray]:
  """Per seed: the usable width (decades) and log10 of the divergence threshold."""
  widths, thresholds = [], []
  for s in range(result.num_seeds):
    h = train.History(**{k: v[s : s + 1] for k, v in result.history._asdict().items()})
    one = dataclasses.replace(result, seeds=result.seeds[s : s + 1], history=h)
    widths.append(analysis.decades(one.usable_range("final_val_accuracy", TOLERANCE)))
    threshold = one.divergence_threshold(metric="final_val_accuracy")
    thresholds.append(math.log10(threshold if threshold is not None else beyond))
  return np.array(widths), np.array(thresholds)


def _judge(sweeps: dict, probes: dict) -> dict:
  inits = [i for i in ("lecun", "he") if any(k[0] == i for k in sweeps)]
  depths = sorted({d for _, d in sweeps})
  shallow, deep = depths[0], depths[-1]
  numbers = {"depths": depths, "inits": inits, "vanish_decades": VANISH, "gradients": {}}
  numbers["ranges"], numbers["high_lr_runs"] = {}, {}
  first = next(iter(sweeps[inits[0], deep].values()))
  lr = first.grid["lr"]
  step = float(np.log10(lr[1] / lr[0]))
  numbers["grid_step_decades"], numbers["seeds"] = step, first.num_seeds
  names = sorted({c.split("-")[0] for c in sweeps[inits[0], deep]})
  widths, thresholds, tests = {}, {}, {}
  for init in inits:
    grads = numbers["gradients"][init] = {}
    for depth in depths:
      found = probes[init, depth]
      grads[f"depth{depth}"] = stats.gradients(next(iter(found.values()))["init_norms"])
      ranges = numbers["ranges"][f"{init}-depth{depth}"] = {}
      for condition, result in sweeps[init, depth].items():
        lrs = result.grid["lr"]
        w, t = _per_seed(result, float(lrs[-1] * 10**step))
        widths[init, depth, condition], thresholds[init, depth, condition] = w, t
        usable = result.usable_range("final_val_accuracy", TOLERANCE)
        ranges[condition] = {
          "usable_range": list(usable),
          "usable_decades": analysis.decades(usable),
          "usable_decades_per_seed": stats.mean_se(w)[0],
          "usable_decades_se": stats.mean_se(w)[1],
          "divergence_threshold": result.divergence_threshold(metric="final_val_accuracy"),
          "dead_runs": result.config["dead_guard"]["runs"],
          "best_lr": result.best("final_val_accuracy", warn=False)["hyperparameters"]["lr"],
          "best_final_val_accuracy": result.best("final_val_accuracy", warn=False)["value"],
        }
      for name, p in found.items():  # members: best, high (clipped), best, high (not)
        if "run_norms" not in p:
          continue
        total = np.sqrt((p["run_norms"] ** 2).sum(-1))  # (members, steps)
        numbers["high_lr_runs"][f"{init}-depth{depth}-{name}"] = {
          clip: {
            "lr": float(p["member_lr"][m]),
            "max_gradient_norm": float(
              np.nanmax(np.where(np.isfinite(total[m]), total[m], np.inf))
            ),
            "final_loss": float(p["run_loss"][m, -1]),
          }
          for clip, m in (("clip", 1), ("none", 3))
        }
    a, b = grads[f"depth{shallow}"], grads[f"depth{deep}"]
    drop = a["log10_global_norm"] - b["log10_global_norm"]
    drop_se = math.hypot(a["log10_global_norm_se"], b["log10_global_norm_se"])
    grads["depth_drop_decades"], grads["depth_drop_se"] = drop, drop_se
    grads["kind_across_depth"] = stats.kind(drop, drop_se)
    grads["kind_across_layers"] = b["kind_across_layers"]
  ref = inits[0]  # LeCun, the tasks' default (He is the control)
  grads = numbers["gradients"][ref]
  deepest = grads[f"depth{deep}"]
  tests["gradients_vanish_across_layers"] = {
    ref: stats.z(abs(deepest["layer_decay_decades"]) - VANISH, deepest["layer_decay_se"])
  }
  tests["gradients_shrink_with_depth"] = {
    ref: stats.z(grads["depth_drop_decades"], grads["depth_drop_se"])
  }
  n = len(depths)
  for init in inits:
    if {"sgd", "adam"} <= set(names) and deep != shallow:
      change = {
        o: widths[init, deep, f"{o}-none"] - widths[init, shallow, f"{o}-none"] for o in names
      }
      tests.setdefault("adam_keeps_range", {})[init] = stats.effect(
        change["adam"] - change["sgd"], step * math.sqrt(8 / 12)
      )
    for o in names:
      gain = np.mean(
        [widths[init, d, f"{o}-clip"] - widths[init, d, f"{o}-none"] for d in depths], 0
      )
      raised = np.mean(
        [thresholds[init, d, f"{o}-clip"] - thresholds[init, d, f"{o}-none"] for d in depths], 0
      )
      tests.setdefault("clipping_widens_range", {})[f"{init}-{o}"] = stats.effect(
        gain, step * math.sqrt(4 / 12 / n)
      )
      tests.setdefault("clipping_delays_divergence", {})[f"{init}-{o}"] = stats.effect(
        raised, step * math.sqrt(2 / 12 / n)
      )
  flat = [t for group in tests.values() for t in group.values()]
  for t, p in zip(flat, analysis.holm([t["p"] for t in flat]), strict=True):
    t["p_holm"] = float(p)
    significant = math.isfinite(p) and p <= ALPHA
    t["verdict"] = (
      ("supported" if t["effect"] > 0 else "refuted") if significant else "inconclusive"
    )
  numbers["tests"], numbers["comparisons"] = tests, len(flat)
  parts = {}
  for part, group in tests.items():
    verdicts = {k: t["verdict"] for k, t in group.items()}
    parts[part] = (
      next(iter(verdicts.values()))
      if len(set(verdicts.values())) == 1
      else ", ".join(f"{v} for {k}" for k, v in verdicts.items())
    )
  numbers["parts"] = parts
  return numbers


def _verdict(parts: dict) -> str:
  verdicts = set(parts.values())
  if len(verdicts) == 1:
    return verdicts.pop()
  return "depends on the part: " + "; ".join(f"{k} {v}" for k, v in parts.items())


def report(out: Path):
  sweeps, probes = _loaded(out)
  numbers = _judge(sweeps, probes)
  verdict = _verdict(numbers["parts"])
  drawn = [
    figures.norms_figure(probes, numbers, out / "gradient_norms.png"),
    figures.ranges_figure(numbers, out / "usable_ranges.png"),
  ]
  if any("run_norms" in p for found in probes.values() for p in found.values()):
    drawn.append(figures.runs_figure(probes, out / "gradient_norms_during_training.png"))
  return numbers, verdict, drawn


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
