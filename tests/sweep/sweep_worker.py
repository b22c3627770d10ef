"""A sweep run in a subprocess, for the device and crash tests.

  python -m tests.sweep.sweep_worker OUT.npz [--devices N] [--checkpoint DIR] [--one-device]

Set XLA_FLAGS before JAX starts, so ``--devices`` exposes N host devices.
"""

import argparse
import os
import sys


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("out")
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--one-device", action="store_true")
  parser.add_argument("--checkpoint", default=None)
  parser.add_argument("--steps", type=int, default=40)
  args = parser.parse_args()
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

  import jax
  import numpy as np

  from lrlab import optimizers, sweep

  assert len(jax.devices()) == args.devices, jax.devices()
  result = sweep.run(
    "digits-logreg",
    lambda hp: optimizers.sgd(hp["lr"], momentum=hp["momentum"]),
    sweep.product(lr=np.geomspace(0.01, 3.0, 6), momentum=np.array([0.0, 0.9])),
    steps=args.steps,
    batch_size=32,
    key=jax.random.key(0),
    eval_every=2,
    seeds=2,
    chunk_size=4,
    devices=jax.devices()[:1] if args.one_device else None,
    checkpoint_dir=args.checkpoint,
    checkpoint_interval=0.0,
    progress=False,
  )
  np.savez(args.out, **{f: np.asarray(getattr(result.history, f)) for f in result.history._fields})


if __name__ == "__main__":
  sys.exit(main())
