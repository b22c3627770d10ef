"""Before/after of the vmapped convolution (issue 17): ``lax.conv_general_dilated`` against
:func:`lrlab.models.conv.patch_conv`, in one process, interleaved.

For each convolutional model (the ResNets and CNNs of the registered tasks, at their default
sizes) and K, one SGD training step (cross-entropy, batch 100, BatchNorm in training mode) of
K members is timed two ways: vmapped over the members' parameters (the sweep's program) and as
K calls of the jitted single-member step (the loop). Each is built with the convolution as it
was (``lax``) and as it is (``patches``). Rounds are interleaved (one call of each of the four
per round), and the best and median of the rounds are kept, with the compile time and XLA's
temporary buffer size of each program and the 1-minute load average before and after.

  PYTHONPATH=. python scripts/conv_sweep_speed.py --out benchmarks/cpu-2core/conv_sweep.json
"""

import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from lrlab import models
from lrlab.cli.common import Parser, positive_int

MODELS = {
  "mnist1d-resnet": (lambda r: models.ResNet((40,), 10, channels=(16, 32), rngs=r), 40),
  "digits-resnet": (lambda r: models.ResNet((8, 8), 10, channels=(8, 16), rngs=r), 64),
  "mnist1d-cnn": (lambda r: models.CNN1D(40, 10, rngs=r), 40),
  "digits-cnn": (lambda r: models.CNN2D((8, 8), 10, rngs=r), 64),
}


def _build(make, conv: str):
  """``make`` with every ``nnx.Conv``'s convolution set to ``lax``'s or left as patches."""

  def build(rngs):
    model = make(rngs)
    if conv == "lax":
      for _, module in nnx.iter_graph(model):
        if isinstance(module, nnx.Conv):
          module.conv_general_dilated = lax.conv_general_dilated
    return model

  return models.functional(build)


def _steps(model, features: int, batch: int, k: int):
  """The vmapped K-member step and the single-member step, with their inputs."""
  x = jax.random.normal(jax.random.key(1), (batch, features))
  y = jax.random.randint(jax.random.key(2), (batch,), 0, 10)

  def loss(params, state):
    out, state = model.apply(params, state, x, train=True, key=None)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], 1)), state

  def step(params, state, lr):
    (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params, state)
    return jax.tree.map(lambda p, g: p - lr * g, params, grads), state, value

  params, state = jax.vmap(model.init)(jax.random.split(jax.random.key(0), k))
  lrs = jnp.logspace(-3, 0, k)
  return step, params, state, lrs


def _compile(fn, *args):
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  seconds = time.perf_counter() - start
  memory = compiled.memory_analysis()
  temp = None if memory is None else int(memory.temp_size_in_bytes)
  return compiled, seconds, temp


def measure(name: str, k: int, rounds: int, batch: int = 100) -> dict:
  """One model at one K: the four programs' compile time, temp bytes and round times."""
  make, features = MODELS[name]
  legs, finals = {}, {}
  for conv in ("lax", "patches"):
    step, params, state, lrs = _steps(_build(make, conv), features, batch, k)
    sweep, c_sweep, t_sweep = _compile(jax.vmap(step), params, state, lrs)
    one = lambda t, i: jax.tree.map(lambda a: a[i], t)
    single, c_single, t_single = _compile(step, one(params, 0), one(state, 0), lrs[0])
    members = [(one(params, i), one(state, i), lrs[i]) for i in range(k)]
    legs[f"sweep-{conv}"] = dict(
      call=lambda f=sweep, a=(params, state, lrs): jax.block_until_ready(f(*a)),
      compile_s=c_sweep,
      temp_bytes=t_sweep,
    )
    legs[f"loop-{conv}"] = dict(
      call=lambda f=single, m=members: jax.block_until_ready([f(*a) for a in m]),
      compile_s=c_single,
      temp_bytes=t_single,
    )
    finals[conv] = np.asarray(sweep(params, state, lrs)[2])
  for leg in legs.values():
    leg["call"]()  # warm
  times = {leg: [] for leg in legs}
  for _ in range(rounds):
    for leg, spec in legs.items():
      start = time.perf_counter()
      spec["call"]()
      times[leg].append(time.perf_counter() - start)
  out = {}
  for leg, spec in legs.items():
    out[leg] = dict(
      compile_s=round(spec["compile_s"], 3),
      temp_bytes=spec["temp_bytes"],
      seconds=[round(t, 5) for t in times[leg]],
      best_s=round(min(times[leg]), 5),
      median_s=round(float(np.median(times[leg])), 5),
    )
  out["loss_max_abs_difference"] = float(np.max(np.abs(finals["lax"] - finals["patches"])))
  return out


def main():
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default=",".join(MODELS))
  parser.add_argument("--ks", default="8,64")
  parser.add_argument("--rounds", type=positive_int, default=5)
  parser.add_argument(
    "--out",
    default="results/conv_sweep.json",
    help="the report; benchmarks/cpu-2core/conv_sweep.json is the committed one",
  )
  args = parser.parse_args()
  names = args.models.split(",")
  unknown = [name for name in names if name not in MODELS]
  if unknown:  # else a typo stops it after the models before it
    parser.error(f"--models must name {', '.join(MODELS)}; got {unknown[0]!r}")
  try:
    ks = [int(v) for v in args.ks.split(",")]
  except ValueError:
    parser.error(f"--ks must be comma-separated integers; got {args.ks!r}")
  results = dict(
    machine=dict(processor=platform.processor(), cpus=os.cpu_count(), jax=jax.__version__),
    rounds=args.rounds,
    runs=[],
  )
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  for name in names:
    for k in ks:
      load = os.getloadavg()[0]
      row = dict(model=name, k=k, load_before=round(load, 2), **measure(name, k, args.rounds))
      row["load_after"] = round(os.getloadavg()[0], 2)
      for kind in ("sweep", "loop"):
        row[f"{kind}_speedup"] = round(
          row[f"{kind}-lax"]["best_s"] / row[f"{kind}-patches"]["best_s"], 3
        )
      row["sweep_over_loop_patches"] = round(
        row["loop-patches"]["best_s"] / row["sweep-patches"]["best_s"], 3
      )
      row["sweep_over_loop_lax"] = round(row["loop-lax"]["best_s"] / row["sweep-lax"]["best_s"], 3)
      results["runs"].append(row)
      print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
      with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
