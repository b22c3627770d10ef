"""The command line's compile cache: compiled programs kept on disk between commands.

:func:`use` must run before the command compiles its first program; ``lrlab sweep`` and
``lrlab find`` call it after :func:`lrlab.cli.common.expose_host_devices`. The library itself
never turns the cache on (a process's JAX settings are its owner's), and neither does the
benchmark, which times compiling.
"""

import hashlib
import os
import platform
import tempfile

#: ``LRLAB_COMPILE_CACHE=off`` keeps :func:`use` from turning the cache on.
VARIABLE = "LRLAB_COMPILE_CACHE"


def use() -> str | None:
  """Keep the programs a command compiles on disk, for the next command that needs them.

  A re-run, a resume after a crash or the same search again then reads its programs
  instead of compiling them. This is JAX's persistent compilation cache: keyed by
  the program itself, the compile options, the JAX version and the backend, and a program
  read from it is the one a fresh compile gives, so no result changes. It lives in
  ``<lrlab cache>/jax/<machine>`` (``$LRLAB_CACHE_DIR``, default ``~/.cache/lrlab``): one
  folder per CPU model and instruction set, so a home folder that several machines share
  never offers a program to a CPU that cannot run it. Every program is kept, however fast
  it compiled; nothing is evicted (delete the folder to reclaim the space, a few MB per
  sweep shape).

  Left alone where the user chose: ``JAX_COMPILATION_CACHE_DIR`` set, or a cache folder
  already configured in this process, is used as it is; ``LRLAB_COMPILE_CACHE=off``
  (:data:`VARIABLE`) turns this off. A folder this process cannot create or write (a
  read-only home, an unwritable ``$LRLAB_CACHE_DIR``) leaves it off too: the command compiles
  as without a cache, instead of JAX warning about the folder on every command.

  Returns:
    The cache folder in use, or ``None`` where there is none.
  """
  import jax

  if jax.config.jax_compilation_cache_dir:
    return jax.config.jax_compilation_cache_dir
  if os.environ.get(VARIABLE, "").lower() == "off":
    return None
  from lrlab.data.benchmarks import default_cache_dir

  folder = default_cache_dir() / "jax" / machine_folder()
  try:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError:  # JAX would warn of it and compile anyway
    return None
  jax.config.update("jax_compilation_cache_dir", str(folder))
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # most take under 1 s
  return str(folder)


def machine_folder(cpuinfo: str | None = None) -> str:
  """A folder name for what compiled programs run on: the architecture, CPU model and
  instruction-set flags of ``cpuinfo`` (default: ``/proc/cpuinfo``'s text), hashed;
  ``<arch>-<12 hex digits>``."""
  if cpuinfo is None:
    try:
      with open("/proc/cpuinfo") as f:
        cpuinfo = f.read()
    except OSError:
      cpuinfo = ""
  found: dict[str, str] = {}
  for line in cpuinfo.splitlines():
    name, _, value = line.partition(":")
    if name.strip() in ("model name", "flags", "Features"):
      found.setdefault(name.strip(), value.strip())
  model = found.get("model name", platform.processor())
  flags = " ".join(sorted(found.get("flags", found.get("Features", "")).split()))
  digest = hashlib.sha256(f"{platform.machine()}|{model}|{flags}".encode()).hexdigest()
  return f"{platform.machine() or 'unknown'}-{digest[:12]}"
