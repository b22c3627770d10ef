"""What the benchmark reads off the process and the machine while it times: peak memory and the
load average (JAX's compile time: :class:`lrlab.train.compiling.CompileClock`)."""

import os
import sys


def peak_rss_mib() -> float | None:
  """Peak resident memory of this process (``VmHWM``), MiB; ``ru_maxrss`` off Linux."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  try:
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
  except ImportError:
    return None


def reset_peak_rss() -> bool:
  """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); whether it worked."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    return True
  except OSError:
    return False


def device_peak_mib(devices) -> float | None:
  """Largest ``peak_bytes_in_use`` over ``devices`` (GPU/TPU), MiB; ``None`` on CPU."""
  peaks = [(d.memory_stats() or {}).get("peak_bytes_in_use") for d in devices]
  peaks = [p for p in peaks if p is not None]
  return max(peaks) / 2**20 if peaks else None


def load_average() -> float | None:
  """The 1-minute load average of the host (``os.getloadavg``), ``None`` where it is unknown."""
  return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def busy(loads, cores: int) -> bool:
  """Whether other work competed for the CPU: a 1-minute load average above 1.5x the cores.

  The benchmark itself keeps up to ``cores`` threads busy, so a load above
  that means other processes ran too and every timing of the run is suspect.
  """
  return any(x is not None and x > 1.5 * cores for x in loads)
