"""Command-line pieces the scripts share. Import-free of JAX: the device flag must come first."""

import os


def expose_host_devices(count: int | None) -> None:
  """Expose ``count`` host CPU devices (default: one per core) to JAX, which must not be loaded.

  One CPU device runs on one core, so a sweep sharded over devices uses the
  whole machine only when each core is a device. A count already set in
  ``XLA_FLAGS`` wins.
  """
  count = count or os.cpu_count() or 1
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def parse_value(text: str) -> bool | int | float:
  """A command-line value: ``true``/``false``, an integer or a float."""
  if text.lower() in ("true", "false"):
    return text.lower() == "true"
  try:
    return int(text)
  except ValueError:
    return float(text)


def parse_assignments(items: list[str], flag: str) -> dict:
  """``["momentum=0.9", ...]`` given with ``flag`` as a dict, or a ValueError showing the form."""
  pairs = {}
  for item in items:
    name, sep, value = item.partition("=")
    if not sep or not name.isidentifier():
      raise ValueError(f"{flag} takes NAME=VALUE, e.g. {flag} momentum=0.9; got {item!r}.")
    try:
      pairs[name] = parse_value(value)
    except ValueError:
      raise ValueError(f"{flag} {name}= needs a number or true/false; got {value!r}.") from None
  return pairs
