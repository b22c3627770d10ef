"""What the suite's subprocess workers share: starting JAX with their own host devices, and
joining the other processes of a ``jax.distributed`` run."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(*drop: str, **values: str) -> dict[str, str]:
  """This process's environment for a command the test starts, without a host device count.

  ``XLA_FLAGS`` keeps the suite's other flags (its optimization level: a command compiled at
  XLA's default takes a third longer, measured) but loses any device count, so the command
  exposes the devices it asks for. ``drop`` names variables to leave out, ``values`` sets others.
  """
  env = {k: v for k, v in os.environ.items() if k not in drop}
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
  env["XLA_FLAGS"] = " ".join(flags)
  env.update(values)
  return env


def start_jax(devices: int, processes: int = 1, process_id: int = 0, coordinator=None):
  """Imports JAX with ``devices`` host CPU devices in this process (XLA_FLAGS is read when JAX
  starts, so call this before anything imports it), joined over Gloo to ``processes - 1``
  others at ``coordinator`` when ``processes > 1``; returns the ``jax`` module.

  The caller's other XLA flags (the suite's optimization level) stay.
  """
  kept = subprocess_env()["XLA_FLAGS"]
  os.environ["XLA_FLAGS"] = f"{kept} --xla_force_host_platform_device_count={devices}".strip()

  import jax

  if processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, processes, process_id)
  assert len(jax.devices()) == devices * processes, jax.devices()
  return jax
