"""A/B of the divergence guard's formulations on the benchmark MLP (issue 16), interleaved in
one process: a chunk of members per device trained ``--steps`` steps of SGD momentum, vmapped
and sharded as the sweep runs it, with the step written several ways:

- ``none``: no guard at all (the floor);
- ``params``: the guard as it was: the step's loss against the threshold and the finiteness of
  the new parameters, then the old state kept where the run is bad (the select needs the
  reduction over the new parameters first, so the update cannot fuse with it);
- ``grads``: the loss and the finiteness of the gradient, known before the update, so the
  update and the select can be one pass (a non-finite gradient makes SGD's new parameters
  non-finite; an update that overflows from a finite gradient is not caught at its step);
- ``params_outputs``: ``params`` and the trainer's per-step records (the applied rate, the
  first bad step);
- ``trainer_given_batches``: the trainer's segment with the minibatches handed in (as for a
  streamed task): no index drawing, no gather, no evaluation;
- ``trainer``: :class:`lrlab.train.Trainer`'s own step, whatever it is now (the segment with
  no evaluation window in the timing: one window of ``--steps`` steps, evaluation included).

Medians over ``--rounds`` rounds, variants in turn each round; the load average is recorded.

  PYTHONPATH=. python scripts/guard_ab.py --out results/guard_ab.json
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from lrlab.benchmark.workload import host_cores, set_host_devices, write_json
from lrlab.cli.common import Parser, positive_int


def main(argv=None) -> int:
  parser = Parser(description=__doc__.splitlines()[0])
  parser.add_argument("--per-device", type=positive_int, default=16)
  parser.add_argument("--steps", type=positive_int, default=200)
  parser.add_argument("--rounds", type=positive_int, default=7)
  parser.add_argument("--out", default=None)
  args = parser.parse_args(argv)
  set_host_devices(host_cores())

  import jax
  import jax.numpy as jnp
  import optax

  import lrlab
  from lrlab.benchmark.workload import learning_rates, make_tx, member_sharding
  from lrlab.train.history import all_finite, applied_learning_rate

  task = lrlab.tasks.get("mnist1d-mlp")
  members = args.per_device * len(jax.devices())
  steps, batch = args.steps, 100
  x, y = task.split("train")
  key = jax.random.key(0)
  order = lrlab.train.batch_indices(key, 0, steps, len(x), batch)
  sharding = member_sharding(members)
  rates = jax.device_put(jnp.asarray(learning_rates(members)), sharding)
  trainer = lrlab.train.Trainer(task, steps=steps, batch_size=batch, eval_every=steps)
  states = jax.jit(jax.vmap(lambda lr: trainer.init(make_tx({"lr": lr}), key)[0]))(rates)

  def scan(lr, state, guard):
    tx = make_tx({"lr": lr})

    def step(carry, rows):
      params, opt_state, model_state, diverged = carry
      loss_fn = lambda p: task.loss(p, model_state, (x[rows], y[rows]), None)
      (loss, (new_ms, _)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      updates, new_opt = tx.update(grads, opt_state, params)
      new_params = optax.apply_updates(params, updates)
      if guard == "none":
        return (new_params, new_opt, new_ms, diverged), (loss, loss)
      # the gradient is known before the update, so the update and the select may fuse
      checked = (grads, new_ms) if guard == "grads" else (new_params, new_ms)
      bad = ~jnp.isfinite(loss) | (loss > state.threshold) | ~all_finite(checked)
      frozen = diverged | bad
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(frozen, o, n), new, old)
      carry = (keep(new_params, params), keep(new_opt, opt_state), keep(new_ms, model_state))
      if guard == "params_outputs":  # + the trainer's records: the step's rate, the first bad step
        first = jnp.where(bad & ~diverged, rows[0], -1)
        return (*carry, frozen), (loss.astype(jnp.float32) + first, applied_learning_rate(new_opt))
      return (*carry, frozen), (loss, loss)

    carry = (state.params, state.opt_state, state.model_state, state.diverged)
    return jax.lax.scan(step, carry, order)[0]

  variants = ("none", "params", "grads", "params_outputs")
  programs = {g: jax.jit(jax.vmap(lambda lr, s, g=g: scan(lr, s, g))) for g in variants}
  segment = lambda lr, s: trainer.segment(make_tx({"lr": lr}), key, s, 0, 1)
  programs["trainer"] = jax.jit(jax.vmap(segment))
  data = (x[order], y[order])  # the minibatches handed in, as for a streamed task: no evaluation
  given = lambda lr, s: trainer.segment(make_tx({"lr": lr}), key, s, 0, 1, data=data)
  programs["trainer_given_batches"] = jax.jit(jax.vmap(given))
  for run in programs.values():
    jax.block_until_ready(run(rates, states))
  times = {g: [] for g in programs}
  loads = []
  for _ in range(args.rounds):
    loads.append(os.getloadavg()[0])
    for g, run in programs.items():
      tic = time.perf_counter()
      jax.block_until_ready(run(rates, states))
      times[g].append(time.perf_counter() - tic)
  med = {g: statistics.median(t) for g, t in times.items()}
  report = {
    "members": members,
    "steps": steps,
    "median_s": med,
    "model_steps_per_s": {g: members * steps / s for g, s in med.items()},
    "over_none": {g: s / med["none"] for g, s in med.items()},
    "times_s": times,
    "load_1min": loads,
  }
  print(json.dumps({k: v for k, v in report.items() if k != "times_s"}, indent=1))
  if args.out:  # its folder made if missing (results/ is not in a fresh checkout)
    write_json(report, args.out, indent=1)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
