"""Tests for lrlab.transforms.clip_by_global_norm and clip_by_value."""

import chex
import hypothesis
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import strategies as st

from lrlab.transforms import clip_by_global_norm, clip_by_value

GRADS = {"w": jnp.array([[3.0, -1.0], [0.5, 2.0]]), "b": jnp.array([-4.0, 1.5])}
NORM = float(np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(GRADS))))


def _apply(tx, grads=GRADS):
  return tx.update(grads, tx.init(grads))[0]


@pytest.mark.parametrize("max_norm", [0.0, 1.0, NORM, 100.0])
def test_global_norm_matches_torch(max_norm):
  torch = pytest.importorskip("torch")
  tensors = [torch.tensor(np.asarray(GRADS[k])) for k in ("b", "w")]
  params = [torch.zeros_like(t, requires_grad=True) for t in tensors]
  for p, t in zip(params, tensors, strict=True):
    p.grad = t.clone()
  torch.nn.utils.clip_grad_norm_(params, max_norm)
  out = _apply(clip_by_global_norm(max_norm))
  chex.assert_trees_all_close(
    out, {"b": params[0].grad.numpy(), "w": params[1].grad.numpy()}, rtol=1e-6, atol=1e-7
  )


@pytest.mark.parametrize("max_norm", [0.5, 2.0, 100.0])
def test_global_norm_matches_optax_without_eps(max_norm):
  chex.assert_trees_all_close(
    _apply(clip_by_global_norm(max_norm, eps=0.0)),
    _apply(optax.clip_by_global_norm(max_norm)),
    rtol=1e-6,
  )


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_norm_matches_torch(bad):
  # A NaN in one leaf must not let the other leaves through unclipped.
  torch = pytest.importorskip("torch")
  grads = {"w": GRADS["w"].at[0, 0].set(bad), "b": 1e6 * GRADS["b"]}
  params = [torch.zeros(g.shape, requires_grad=True) for g in (grads["b"], grads["w"])]
  for p, key in zip(params, ("b", "w"), strict=True):
    p.grad = torch.tensor(np.asarray(grads[key]))
  torch.nn.utils.clip_grad_norm_(params, 1.0)
  expected = {"b": params[0].grad.numpy(), "w": params[1].grad.numpy()}
  chex.assert_trees_all_equal(_apply(clip_by_global_norm(1.0), grads), expected)
  chex.assert_trees_all_equal(_apply(clip_by_global_norm(1.0, eps=0.0), grads), expected)


def test_zero_updates_stay_zero():
  zeros = jax.tree.map(jnp.zeros_like, GRADS)
  for tx in (clip_by_global_norm(0.0, eps=0.0), clip_by_global_norm(1.0, eps=0.0)):
    chex.assert_trees_all_equal(_apply(tx, zeros), zeros)


@hypothesis.settings(max_examples=30, deadline=None, derandomize=True)
@hypothesis.given(
  grads=hnp.arrays(np.float32, (5,), elements=st.floats(-1e3, 1e3, width=32)),
  max_norm=st.floats(0.0, 100.0),
)
def test_global_norm_bound_and_direction(grads, max_norm):
  out = np.asarray(_apply(clip_by_global_norm(max_norm), {"g": jnp.asarray(grads)})["g"])
  assert np.linalg.norm(out) <= max_norm * (1 + 1e-5) or np.allclose(out, grads)
  scale = np.linalg.norm(out) / max(np.linalg.norm(grads), 1e-30)
  np.testing.assert_allclose(out, scale * grads, rtol=1e-5, atol=1e-6)


def test_traced_max_norm_under_vmap():
  def clip(max_norm):
    return _apply(clip_by_global_norm(max_norm))

  max_norms = jnp.array([0.1, 1.0, 100.0])
  vmapped = jax.vmap(clip)(max_norms)
  for i, max_norm in enumerate(max_norms):
    chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], vmapped), clip(max_norm))


@pytest.mark.parametrize("clip_value", [0.0, 1.0, 10.0])
def test_value_matches_torch_and_optax(clip_value):
  torch = pytest.importorskip("torch")
  p = torch.zeros(4, requires_grad=True)
  p.grad = torch.tensor(np.asarray(GRADS["w"]).ravel())
  torch.nn.utils.clip_grad_value_([p], clip_value)
  out = _apply(clip_by_value(clip_value))
  np.testing.assert_array_equal(np.asarray(out["w"]).ravel(), p.grad.numpy())
  chex.assert_trees_all_equal(out, _apply(optax.clip(clip_value)))


@pytest.mark.parametrize(
  ("factory", "kwargs", "match"),
  [
    (clip_by_global_norm, {"max_norm": -1.0}, "max_norm must be a finite number >= 0; got -1.0"),
    (clip_by_global_norm, {"max_norm": 1.0, "eps": -1.0}, "eps must be a finite number >= 0"),
    (clip_by_value, {"clip_value": -0.5}, "clip_value must be a finite number >= 0; got -0.5"),
    (clip_by_value, {"clip_value": float("inf")}, "clip_value must be a finite number >= 0"),
    (clip_by_global_norm, {"max_norm": None}, "max_norm must be a number or an array; got None"),
    (clip_by_value, {"clip_value": None}, "clip_value must be a number or an array; got None"),
  ],
)
def test_bad_input(factory, kwargs, match):
  with pytest.raises(ValueError, match=match):
    factory(**kwargs)
