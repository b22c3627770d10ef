"""What :func:`lrlab.sweep.run` keeps between calls, and how to see and clear it: the compiled
chunk programs and member footprints of :mod:`lrlab.sweep.programs`, and the automatic chunk
sizes recalled by :mod:`lrlab.sweep.chunking`."""

from typing import NamedTuple

from lrlab.sweep import chunking, programs


class CacheInfo(NamedTuple):
  """What :func:`lrlab.sweep.run` keeps between calls (see :func:`cache_info`)."""

  programs: int
  """Calls whose chunk programs are kept (each a distinct signature)."""
  footprints: int
  """Measured member footprints kept (the chunk-size estimate's traces)."""
  maxsize: int
  """At most this many of each: :data:`lrlab.sweep.CACHE_SIZE`."""


def cache_info() -> CacheInfo:
  """How many compiled chunk programs and member footprints :func:`lrlab.sweep.run` keeps.

  Like ``functools.lru_cache``'s ``cache_info``: for tests and for a user who
  wonders why memory holds on after a sweep (see :func:`clear_cache`).

  Example:
    >>> lrlab.sweep.clear_cache()
    >>> lrlab.sweep.cache_info()
    CacheInfo(programs=0, footprints=0, maxsize=8)
  """
  return CacheInfo(
    len(programs._compiled_cache), len(programs._state_bytes_cache), programs.CACHE_SIZE
  )


def clear_cache() -> None:
  """Forget every chunk program :func:`lrlab.sweep.run` compiled (and the task data they hold).

  :func:`lrlab.sweep.run` keeps the programs of its last :data:`lrlab.sweep.CACHE_SIZE`
  distinct calls, so calling it again with the same task object, the same ``make_tx``
  function and the same settings (another grid of the same size, another key) skips
  compilation. As with ``jax.jit``, functions are recognised by identity: if
  ``make_tx`` reads a global that has since changed, clear the cache. The automatic chunk
  sizes recalled in this process (:func:`lrlab.sweep.chunking.automatic`) are forgotten too.
  """
  programs._compiled_cache.clear()
  programs._state_bytes_cache.clear()
  programs._shared.clear()
  chunking.forget()  # its answers hold the task and make_tx too
