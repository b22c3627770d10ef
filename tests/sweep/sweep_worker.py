"""A sweep run in a subprocess, for the device and crash tests.

  python -m tests.sweep.sweep_worker OUT.npz [--devices N] [--one-device]
      [--checkpoint DIR [--checkpoint-interval S]] [--kill-at SEED,CHUNK,SEGMENT]
      [--processes P --process-id I --coordinator HOST:PORT]
      [--chunk-size C] [--task bn-streamed|bn-resident]

Set XLA_FLAGS' device count before JAX starts, so ``--devices`` exposes N host devices. The
history goes to OUT.npz, and ``num_devices`` (of the sweep's mesh) and
``resumed_from`` (where a resumed sweep picked up) to OUT.json.
``--kill-at`` sends SIGKILL to the worker right after it saves the checkpoint
of that position, so a test can crash a sweep at an exact point. ``--task
bn-streamed`` sweeps a BatchNorm + Dropout CNN (``tests.zoo``) on digits
streamed from the host instead of logistic regression on resident digits
(``bn-resident``: the same CNN on resident digits). With
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


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("out")
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--one-device", action="store_true")
  parser.add_argument("--checkpoint", default=None)
  parser.add_argument("--checkpoint-interval", type=float, default=0.0)
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--kill-at", default=None)
  parser.add_argument("--processes", type=int, default=1)
  parser.add_argument("--process-id", type=int, default=0)
  parser.add_argument("--coordinator", default=None)
  parser.add_argument("--chunk-size", type=int, default=4)
  parser.add_argument(
    "--task", default="digits-logreg", choices=("digits-logreg", "bn-streamed", "bn-resident")
  )
  args = parser.parse_args()
  jax = workers.start_jax(args.devices, args.processes, args.process_id, args.coordinator)
  import numpy as np

  from lrlab import optimizers, sweep
  from lrlab.sweep import checkpoint

  if args.kill_at is not None:
    seed, chunk, segment = map(int, args.kill_at.split(","))
    save = checkpoint.save

    def save_then_die(directory, fingerprint, position, trees, **kwargs):
      save(directory, fingerprint, position, trees, **kwargs)
      if position == {"seed": seed, "chunk": chunk, "segment": segment}:
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.save = save_then_die
  if args.task.startswith("bn-"):
    from tests import zoo

    task = zoo.cnn_task(dropout=0.2, stream=args.task == "bn-streamed", num_train=256)
  else:
    task = args.task
  result = sweep.run(
    task,
    lambda hp: optimizers.sgd(hp["lr"], momentum=hp["momentum"]),
    sweep.product(lr=np.geomspace(0.01, 3.0, 6), momentum=np.array([0.0, 0.9])),
    steps=args.steps,
    batch_size=32,
    key=jax.random.key(0),
    eval_every=2,
    seeds=2,
    chunk_size=args.chunk_size,
    devices=jax.devices()[:1] if args.one_device else None,
    checkpoint_dir=args.checkpoint,
    checkpoint_interval=args.checkpoint_interval,
    progress=False,
  )
  np.savez(args.out, **{f: np.asarray(getattr(result.history, f)) for f in result.history._fields})
  facts = {
    "num_devices": result.config["num_devices"],
    "resumed_from": result.metadata["resumed_from"],
  }
  with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
    json.dump(facts, f)


if __name__ == "__main__":
  sys.exit(main())
