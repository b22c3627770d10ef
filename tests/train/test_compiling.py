"""The one-shot initialization program, compiled at a cheaper level, draws the same parameters.

The reference is XLA's default level, set explicitly: the suite's ``conftest.py`` lowers the
level of every program it compiles. Compiling at the default level is what the cheaper level
saves (seconds per program), so the test draws with every initializer the registered models
use (``lecun_normal``, a truncated normal, for dense and convolutional kernels; ``normal``
for embeddings and the transformer; uniform; zeros) in one small program, and one whole
model's initialization (the MNIST-1D MLP). It was checked once for every registered task.
"""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import lrlab
from lrlab.train.compiling import ONE_SHOT_LEVEL, CompileClock, one_shot_options

XLA_DEFAULT = {"xla_backend_optimization_level": 2}


def assert_same_at_both_levels(fn, *args):
  lowered = jax.jit(fn).lower(*args)
  default = lowered.compile(XLA_DEFAULT)(*args)
  cheap = lowered.compile(one_shot_options("cpu"))(*args)
  for a, b in zip(jax.tree.leaves(default), jax.tree.leaves(cheap), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_every_initializer_draws_bit_identical_values():
  initializers = [
    nnx.initializers.lecun_normal(),
    nnx.initializers.normal(0.02),
    nnx.initializers.uniform(1.0),
    nnx.initializers.zeros_init(),
  ]

  def draw(key):
    keys = jax.random.split(key, len(initializers))
    return [init(k, (3, 3, 8, 16), jnp.float32) for k, init in zip(keys, initializers, strict=True)]

  assert_same_at_both_levels(draw, jax.random.key(3))


def test_a_models_initialization_is_bit_identical():
  trainer = lrlab.train.Trainer(lrlab.tasks.get("mnist1d-mlp"), steps=2, batch_size=4, eval_every=1)
  assert_same_at_both_levels(jax.vmap(trainer.init_weights), jax.random.split(jax.random.key(3), 2))


def test_options_cover_the_cpu_only():
  assert one_shot_options("cpu") == ONE_SHOT_LEVEL
  assert one_shot_options("cpu") is not ONE_SHOT_LEVEL  # a copy the caller may change
  assert one_shot_options("gpu") is None and one_shot_options("tpu") is None


def test_the_compile_clock_counts_this_threads_compiles_only():
  x = jnp.arange(3.0)
  fresh = lambda: jax.jit(lambda a: jnp.sin(a) * 2)  # a new function: never in jit's cache
  with CompileClock() as outer:
    with CompileClock() as inner:
      f = fresh()
      f(x)
    f(x)  # cached: records nothing
    other = threading.Thread(target=lambda: fresh()(x))
    other.start()
    other.join()
  assert inner.compiles == outer.compiles == 1
  assert 0 < inner.seconds == outer.seconds
  # JAX's own record of that compile, read independently of the clock.
  recorded = []
  listen = lambda event, duration, **_: recorded.append((event, duration))
  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    with CompileClock() as clock:
      fresh()(x)
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)
  made = [d for e, d in recorded if e.startswith("/jax/core/compile/")]
  assert clock.seconds == pytest.approx(sum(made)) and clock.compiles == 1
