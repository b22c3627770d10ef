"""Names available to every docstring example (run as doctests), and the suite's compile settings.

Most of the suite's time is XLA compiling programs that other tests (or the same test in
another worker or subprocess) compiled already: the same task, optimizer and shapes under a
new closure. JAX's persistent compilation cache shares them, keyed by the program itself (its
HLO, the compile options, the jax version and the backend), so a hit gives the executable a
fresh compile would give. It lives in ``results/jax-cache`` (ignored by git; set
``LRLAB_TEST_JAX_CACHE`` to move it, or to ``off`` to compile everything afresh; delete it
to reclaim the disk, a few hundred MB) and is passed to subprocesses through JAX's
environment variables.
"""

import os
import pathlib

_CACHE = os.environ.get("LRLAB_TEST_JAX_CACHE") or str(
  pathlib.Path(__file__).resolve().parent / "results" / "jax-cache"
)
if _CACHE != "off":
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
  # No size limit: with one, every write rescans the whole cache under a lock (quadratic).
else:  # nor the command line's own cache (lrlab.cli.common.use_compile_cache)
  os.environ.setdefault("LRLAB_COMPILE_CACHE", "off")

# Two XLA:CPU settings that compile faster, since most of the suite's time is compiling small
# programs. LLVM at level 1 instead of 2 compiles them ~30% faster (28% of the CPU time of three
# experiments' tiny runs, 20% of the CNN's 3,000-step acceptance run, measured side by side);
# results differ from level 2 in the last bit of a float, never more. Fusions through XLA's
# elemental emitters instead of its MLIR fusion emitters: the whole suite in 671 s (21
# CPU-minutes) instead of 919 s (29), on clean clones on 2 cores. Every bit-for-bit test
# compares two programs compiled alike, and every test passes with XLA's defaults too.
# Subprocesses inherit the flags through XLA_FLAGS; LRLAB_TEST_XLA_OPT and
# LRLAB_TEST_XLA_FUSION_EMITTERS set either to another value, or to ``default`` for XLA's own.
_FLAGS = os.environ.get("XLA_FLAGS", "")
for _flag, _variable, _value in (
  ("--xla_backend_optimization_level", "LRLAB_TEST_XLA_OPT", "1"),
  ("--xla_cpu_use_fusion_emitters", "LRLAB_TEST_XLA_FUSION_EMITTERS", "false"),
):
  _value = os.environ.get(_variable, _value)
  if _value != "default" and _flag not in _FLAGS:
    _FLAGS = f"{_FLAGS} {_flag}={_value}".strip()
os.environ["XLA_FLAGS"] = _FLAGS

import jax  # noqa: E402  (after the cache settings, which jax reads when imported)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402

import lrlab  # noqa: E402

if _CACHE != "off":  # in case jax was imported before this file, by a plugin
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

# JAX starts now, with these flags' devices (one CPU device unless XLA_FLAGS says more). A
# command run in a test's process (lrlab sweep, a script's main) exposes one device per core
# before JAX's first array: in a worker where JAX had not started yet, every later test saw
# two devices, so the tests' outcome depended on their order.
jax.devices()


@pytest.fixture(autouse=True)
def _xla_flags_kept():
  """Fail a test that leaves ``XLA_FLAGS`` changed (restore it with ``monkeypatch``).

  Every command a later test starts inherits the variable: a host device count left there
  by a script's ``main`` gave one worker's subprocesses two devices, so a sweep there was
  sharded otherwise than in the test's own process (and fingerprinted otherwise).
  """
  before = os.environ.get("XLA_FLAGS")
  yield
  after = os.environ.get("XLA_FLAGS")
  assert after == before, f"the test left XLA_FLAGS {after!r}; it was {before!r}"


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
  doctest_namespace.update(jax=jax, jnp=jnp, np=np, optax=optax, lrlab=lrlab)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
  """Keep a module whose tests share a module-scoped fixture on one xdist worker.

  The README runs the suite with ``-n auto --dist loadgroup``: tests are dealt to the
  workers one by one (so a long parametrized test, such as every experiment at its
  tiny size, is spread over all cores), except that the tests of a module with a
  module- or class-scoped fixture (a trained sweep, a benchmark report) form one
  group, so the fixture is computed once.
  """
  for item in items:
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    if any(d[-1].scope in ("module", "class") for d in definitions.values()):
      item.add_marker(pytest.mark.xdist_group(item.module.__name__))
