"""Successive halving, PBT, Hyperband and run_study in a subprocess, for the several-processes
test.

  python -m tests.search.processes_worker OUT.npz [--devices N]
      [--processes P --process-id I --coordinator HOST:PORT]
      [--checkpoint DIR [--stop-at S] [--kill-at K]]

Sets XLA_FLAGS' device count before JAX starts, so the process has ``--devices``
host devices; with ``--processes`` it is process ``I`` of ``P`` joined by
``jax.distributed.initialize`` (CPU collectives over Gloo), and the members'
mesh spans every process's devices. The searches of :func:`searches` run, each
with a checkpoint after every segment under ``DIR/<method>``, then :func:`study`
(an Optuna study in each process's memory, no checkpoint). ``--stop-at S``:
the last process's ``should_stop`` (alone) says stop at halving's ``S``-th
segment boundary, and at Hyperband's; the worker prints where
:class:`lrlab.sweep.Stopped` says it saved and goes on to the next search.
``--kill-at K``: process 0 sends itself SIGKILL at
PBT's ``K``-th segment boundary, before that boundary's checkpoint. PBT and
Hyperband copy their members with the on-device gather (the accelerator's path),
halving on the host (the CPU's). What each search returned goes to OUT.npz
(``<method>.<field>``, ``study.<field>``); ``num_devices``, ``resumed_from`` and the checkpoints
this process wrote (``saves``) to OUT.json.
"""

import argparse
import json
import os
import signal
import sys

from tests import workers


def searches():
  """``{method: (function, task, make_tx, grid, kwargs)}``: the tiniest searches that still
  compact (halving: 6 members in 3 chunks of 2, the best 2 going on in one chunk at the rung
  at step 2 of 6) and exploit twice (PBT: 4 members, one replaced at steps 2 and 4 of 6), over
  2 seeds; Hyperband's two brackets draw 3 and 2 of halving's 6 rates. All train 6 steps in
  segments of 2 in chunks of 2: the same compiled programs."""
  import jax
  import numpy as np

  from lrlab import search, tasks

  task = tasks.get("quadratic", dim=4, noise=1.0, num_train=32)
  common = dict(key=jax.random.key(5), seeds=2, batch_size=8, chunk_size=2,
                checkpoint_interval=0.0)  # fmt: skip
  halving = dict(steps=6, min_steps=2, eta=3, **common)
  pbt = dict(steps=6, interval=2, fraction=0.25, **common)
  return {
    "halving": (search.successive_halving, task, _sgd, {"lr": np.geomspace(0.05, 2.5, 6)},
                halving),
    "hyperband": (search.hyperband, task, _sgd, {"lr": np.geomspace(0.05, 2.5, 6)},
                  halving),
    "pbt": (search.pbt, task, _sgd, {"lr": np.geomspace(0.02, 1.0, 4)}, pbt),
  }  # fmt: skip


def study() -> dict:
  """An Optuna study of 6 trials, 2 batches of 3 (chunks of 2), pruned at steps 2 and 4 of 6
  by a threshold on the loss, run with :func:`lrlab.search.run_study`: its trials' params,
  states and values as arrays. Every process asks its own study (the same seeded sampler)."""
  import jax
  import numpy as np
  import optuna

  from lrlab import search, tasks

  optuna.logging.set_verbosity(optuna.logging.WARNING)
  task = tasks.get("quadratic", dim=4, noise=1.0, num_train=32)
  space = {"lr": optuna.distributions.FloatDistribution(0.02, 2.5, log=True)}
  study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3),
                              pruner=optuna.pruners.ThresholdPruner(upper=2.6))  # fmt: skip
  search.run_study(study, task, _sgd, space, n_trials=6, parallel=3, steps=6, eval_every=2,
                   key=jax.random.key(5), batch_size=8, chunk_size=2)  # fmt: skip
  return {
    "lr": np.asarray([t.params["lr"] for t in study.trials]),
    "state": np.asarray([t.state.name for t in study.trials]),
    "value": np.asarray([np.nan if t.value is None else t.value for t in study.trials]),
    "stopped_step": np.asarray([t.user_attrs["stopped_step"] for t in study.trials]),
  }


def _sgd(hp):
  from lrlab import optimizers

  return optimizers.sgd(hp["lr"])


def arrays(result) -> dict:
  """What a search returned, as flat NumPy arrays: its curves, where each member stopped
  (step and rung) and, for PBT, its lineage and hyperparameter schedule."""
  import numpy as np

  out = {f: np.asarray(getattr(result.sweep.history, f)) for f in result.sweep.history._fields}
  out.update(stopped_step=result.stopped_step, rung=result.rung, bracket=result.bracket)
  if result.lineage is not None:
    out["lineage"] = result.lineage
    out.update({f"schedule.{k}": v for k, v in result.schedule.items()})
  return out


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("out")
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--processes", type=int, default=1)
  parser.add_argument("--process-id", type=int, default=0)
  parser.add_argument("--coordinator", default=None)
  parser.add_argument("--checkpoint", default=None)
  parser.add_argument("--stop-at", type=int, default=None)
  parser.add_argument("--kill-at", type=int, default=None)
  args = parser.parse_args()
  workers.start_jax(args.devices, args.processes, args.process_id, args.coordinator)
  import numpy as np

  from lrlab import sweep
  from lrlab.search import members
  from lrlab.sweep import checkpoint
  from tests.search import processes_worker  # not __main__: make_tx's name is in the fingerprint

  saves, save = [0], checkpoint.save

  def counted_save(*a, **kw):
    saves[0] += 1
    save(*a, **kw)

  checkpoint.save = counted_save
  last = args.process_id == args.processes - 1
  boundaries = {"halving": 0, "pbt": 0, "hyperband": 0}

  def should_stop(method: str) -> bool:
    boundaries[method] += 1
    if method == "pbt" and boundaries[method] == args.kill_at and args.process_id == 0:
      os.kill(os.getpid(), signal.SIGKILL)
    return method != "pbt" and boundaries[method] == args.stop_at and last

  on_host = members._copies_on_host
  saved, facts = {}, {}
  for method, (run, task, make_tx, grid, kwargs) in processes_worker.searches().items():
    where = None if args.checkpoint is None else os.path.join(args.checkpoint, method)
    members._copies_on_host = on_host if method == "halving" else lambda mesh: False
    try:
      result = run(task, make_tx, grid, checkpoint_dir=where,
                   should_stop=lambda m=method: should_stop(m), **kwargs)  # fmt: skip
    except sweep.Stopped as stopped:
      print(f"{method} stopped at {json.dumps(stopped.position)}", flush=True)
      continue
    saved.update({f"{method}.{k}": v for k, v in arrays(result).items()})
    facts[method] = {
      "num_devices": result.config["num_devices"],
      "resumed_from": result.metadata["resumed_from"],
    }
  saved.update({f"study.{k}": v for k, v in processes_worker.study().items()})
  facts["saves"] = saves[0]
  np.savez(args.out, **saved)
  with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
    json.dump(facts, f)


if __name__ == "__main__":
  sys.exit(main())
