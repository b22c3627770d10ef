"""What the suite's subprocesses share: the environment a test starts a command in, and for the
workers, starting JAX with their own host devices and joining the other processes of a
``jax.distributed`` run."""

import os


def _without_device_count(flags: str) -> str:
  """``XLA_FLAGS`` text without its host device count, if any."""
  return " ".join(f for f in flags.split() if "device_count" not in f)


def subprocess_env(*drop: str, **values: str) -> dict[str, str]:
  """This process's environment for a command the test starts, without a host device count.

  ``XLA_FLAGS`` keeps the suite's other flags (its compile settings in ``conftest.py``: a
  command compiled at XLA's defaults took about a quarter longer, measured) but loses any
  device count, so the command exposes the devices it asks for. ``drop`` names variables to
  leave out, ``values`` sets others.
  """
  env = {k: v for k, v in os.environ.items() if k not in drop}
  env["XLA_FLAGS"] = _without_device_count(env.get("XLA_FLAGS", ""))
  env.update(values)
  return env


def start_jax(devices: int, processes: int = 1, process_id: int = 0, coordinator=None):
  """Imports JAX with ``devices`` host CPU devices in this process (XLA_FLAGS is read when JAX
  starts, so call this before anything imports it), joined over Gloo to ``processes - 1``
  others at ``coordinator`` when ``processes > 1``; returns the ``jax`` module.

  The caller's other XLA flags (the suite's compile settings) stay.
  """
  kept = _without_device_count(os.environ.get("XLA_FLAGS", ""))
  os.environ["XLA_FLAGS"] = f"{kept} --xla_force_host_platform_device_count={devices}".strip()

  import jax

  if processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, processes, process_id)
  assert len(jax.devices()) == devices * processes, jax.devices()
  return jax
