"""Names available to every docstring example (run as doctests)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lrlab


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
  doctest_namespace.update(jax=jax, jnp=jnp, np=np, optax=optax, lrlab=lrlab)
