"""A sweep run in a subprocess, for the device and crash tests.

  python -m tests.sweep.sweep_worker OUT.npz [--devices N] [--one-device]
      [--checkpoint DIR [--checkpoint-interval S]] [--kill-at SEED,CHUNK,SEGMENT]
      [--processes P --process-id I --coordinator HOST:PORT]
      [--chunk-size C] [--task TASK [TASK ...]]

Set XLA_FLAGS' device count before JAX starts, so ``--devices`` exposes N host devices. The
sweep is :func:`sweep` (a test calls it in its own process too, where nothing about processes is
tested: the same function, so the same ``make_tx`` name in the checkpoint's fingerprint). The
history goes to OUT.npz, and ``num_devices`` (of the sweep's mesh) and
``resumed_from`` (where a resumed sweep picked up) to OUT.json.
``--kill-at`` sends SIGKILL to the worker right after it saves the checkpoint
of that position, so a test can crash a sweep at an exact point. ``--task
bn-streamed`` sweeps a BatchNorm + Dropout CNN (``tests.zoo``) on digits
streamed from the host instead of logistic regression on resident digits
(``bn-resident``: the same CNN on resident digits). With several tasks, one process sweeps
each in turn, to OUT-TASK.npz and OUT-TASK.json. With
``--processes``, the worker is process ``I`` of ``P`` joined by
``jax.distributed.initialize`` (CPU collectives over Gloo), each with
``--devices`` devices of its own.
"""

import argparse
import json
import os
import signal
import sys

from tests import workers


def sweep(task="digits-logreg", steps=20, chunk_size=4, devices=None, **kwargs):
  """The worker's sweep: SGD over 6 rates x 2 momenta (12 members, in chunks of ``chunk_size``),
  2 seeds, ``steps`` steps in segments of 2; ``kwargs`` go to :func:`lrlab.sweep.run`."""
  import jax
  import numpy as np

  from lrlab import optimizers
  from lrlab import sweep as sweep_lib

  if task.startswith("bn-"):
    from tests import zoo

    task = zoo.cnn_task(dropout=0.2, stream=task == "bn-streamed", num_train=256)
  return sweep_lib.run(
    task,
    lambda hp: optimizers.sgd(hp["lr"], momentum=hp["momentum"]),
    sweep_lib.product(lr=np.geomspace(0.01, 3.0, 6), momentum=np.array([0.0, 0.9])),
    steps=steps,
    batch_size=32,
    key=jax.random.key(0),
    eval_every=2,
    seeds=2,
    chunk_size=chunk_size,
    devices=devices,
    progress=False,
    **kwargs,
  )


def history(result) -> dict:
  """A sweep result's history as a dict of NumPy arrays, as OUT.npz holds it."""
  import numpy as np

  return {f: np.asarray(getattr(result.history, f)) for f in result.history._fields}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("out")
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--one-device", action="store_true")
  parser.add_argument("--checkpoint", default=None)
  parser.add_argument("--checkpoint-interval", type=float, default=0.0)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--kill-at", default=None)
  parser.add_argument("--processes", type=int, default=1)
  parser.add_argument("--process-id", type=int, default=0)
  parser.add_argument("--coordinator", default=None)
  parser.add_argument("--chunk-size", type=int, default=4)
  parser.add_argument(
    "--task",
    nargs="+",
    default=["digits-logreg"],
    choices=("digits-logreg", "bn-streamed", "bn-resident"),
  )
  args = parser.parse_args()
  jax = workers.start_jax(args.devices, args.processes, args.process_id, args.coordinator)
  import numpy as np

  from lrlab.sweep import checkpoint
  from tests.sweep import sweep_worker  # not __main__: make_tx's name is in the fingerprint

  if args.kill_at is not None:
    seed, chunk, segment = map(int, args.kill_at.split(","))
    save = checkpoint.save

    def save_then_die(directory, fingerprint, position, trees, **kwargs):
      save(directory, fingerprint, position, trees, **kwargs)
      if position == {"seed": seed, "chunk": chunk, "segment": segment}:
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.save = save_then_die
  for task in args.task:
    out = args.out if len(args.task) == 1 else f"{os.path.splitext(args.out)[0]}-{task}.npz"
    result = sweep_worker.sweep(
      task,
      args.steps,
      args.chunk_size,
      jax.devices()[:1] if args.one_device else None,
      checkpoint_dir=args.checkpoint,
      checkpoint_interval=args.checkpoint_interval,
    )
    np.savez(out, **sweep_worker.history(result))
    facts = {
      "num_devices": result.config["num_devices"],
      "resumed_from": result.metadata["resumed_from"],
    }
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
      json.dump(facts, f)


if __name__ == "__main__":
  sys.exit(main())
