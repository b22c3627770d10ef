"""What the suite's subprocess workers share: starting JAX with their own host devices, and
joining the other processes of a ``jax.distributed`` run."""

import os


def start_jax(devices: int, processes: int = 1, process_id: int = 0, coordinator=None):
  """Imports JAX with ``devices`` host CPU devices in this process (XLA_FLAGS is read when JAX
  starts, so call this before anything imports it), joined over Gloo to ``processes - 1``
  others at ``coordinator`` when ``processes > 1``; returns the ``jax`` module.

  The caller's other XLA flags (the suite's optimization level) stay.
  """
  kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
  os.environ["XLA_FLAGS"] = " ".join([*kept, f"--xla_force_host_platform_device_count={devices}"])

  import jax

  if processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, processes, process_id)
  assert len(jax.devices()) == devices * processes, jax.devices()
  return jax
