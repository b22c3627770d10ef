"""``patch_conv``: the convolution as slices and one matmul (issue 17's sweep speed).

Checked against ``lax.conv_general_dilated`` and a NumPy loop (values and gradients), under
``vmap`` over kernels (a batched matmul, no convolution left in the program), and in the
ResNet and CNNs, whose outputs and gradients equal the same networks on ``lax``'s convolution.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from lrlab import models
from lrlab.models.conv import patch_conv

DN = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}
CASES = [  # spatial, taps, strides, padding, kernel dilation
  ((40,), (5,), (2,), [(1, 1)], (1,)),
  ((9, 8), (3, 3), (2, 2), "SAME", (1, 1)),
  ((9, 8), (3, 2), (1, 2), "VALID", (2, 1)),
]


def _numpy_conv(x, w, strides, pads, dilation):
  """Cross-correlation by definition: y[n, i, o] = sum_{t, c} xpad[n, s i + d t, c] w[t, c, o]."""
  nd = w.ndim - 2
  xp = np.pad(x, [(0, 0), *pads, (0, 0)])
  span = [(k - 1) * d + 1 for k, d in zip(w.shape[:nd], dilation, strict=True)]
  out = [(p - sp) // s + 1 for p, sp, s in zip(xp.shape[1:-1], span, strides, strict=True)]
  y = np.zeros((x.shape[0], *out, w.shape[-1]))
  for i in np.ndindex(*out):
    for t in np.ndindex(*w.shape[:nd]):
      at = tuple(s * a + d * b for a, b, s, d in zip(i, t, strides, dilation, strict=True))
      y[(slice(None), *i)] += xp[(slice(None), *at)] @ w[t]
  return y


@pytest.mark.parametrize("spatial, taps, strides, padding, dilation", CASES)
def test_equals_lax_and_numpy_with_gradients(spatial, taps, strides, padding, dilation):
  rng = np.random.default_rng(len(spatial) + sum(taps))
  x = rng.normal(size=(3, *spatial, 4)).astype(np.float32)
  w = rng.normal(size=(*taps, 4, 5)).astype(np.float32)
  dn = DN[len(spatial)]
  ours = lambda x, w: patch_conv(
    x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=dn
  )
  ref = lambda x, w: lax.conv_general_dilated(
    x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=dn
  )
  span = [(k - 1) * d + 1 for k, d in zip(taps, dilation, strict=True)]
  pads = (
    lax.padtype_to_pads(spatial, span, strides, padding) if isinstance(padding, str) else padding
  )
  y = ours(x, w)
  np.testing.assert_allclose(y, _numpy_conv(x, w, strides, pads, dilation), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(y, ref(x, w), rtol=1e-5, atol=1e-5)
  cot = rng.normal(size=y.shape).astype(np.float32)
  grads = jax.vjp(ours, x, w)[1](cot)
  for got, want in zip(grads, jax.vjp(ref, x, w)[1](cot), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
  ("spatial", "taps", "strides", "padding", "dilation"),
  [
    ((2,), (3,), (2,), "VALID", (1,)),  # no window fits, stride 2
    ((3,), (4,), (1,), "VALID", (2,)),  # the dilated kernel (7 taps) is longer than the input
    ((8, 2), (4, 4), (3, 3), "VALID", (1, 2)),  # one spatial axis empty, the other not
    ((2,), (3,), (3,), [(0, -1)], (1,)),  # negative padding crops the input below the kernel
  ],
)
def test_an_input_shorter_than_the_kernel_gives_lax_empty_output(
  spatial, taps, strides, padding, dilation
):
  # lax gives an output with 0 positions on such an axis; the slices had negative limits
  # ("slice limit_indices must have every element be nonnegative").
  x = jnp.ones((2, *spatial, 3), jnp.float32)
  w = jnp.ones((*taps, 3, 4), jnp.float32)
  args = (strides, padding)
  kwargs = dict(rhs_dilation=dilation, dimension_numbers=DN[len(spatial)])
  want = lax.conv_general_dilated(x, w, *args, **kwargs)
  got = patch_conv(x, w, *args, **kwargs)
  assert 0 in want.shape
  assert got.shape == want.shape and got.dtype == want.dtype
  grads = jax.grad(lambda x, w: jnp.sum(patch_conv(x, w, *args, **kwargs)), (0, 1))(x, w)
  for grad, operand in zip(grads, (x, w), strict=True):
    np.testing.assert_array_equal(grad, jnp.zeros_like(operand))


def test_falls_back_to_lax_for_input_dilation_and_groups():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 10, 4)).astype(np.float32)
  for w, kwargs in [
    (rng.normal(size=(3, 4, 6)), dict(lhs_dilation=(2,))),
    (rng.normal(size=(3, 2, 6)), dict(feature_group_count=2)),
  ]:
    w = w.astype(np.float32)
    args = (x, w, (1,), [(1, 1)])
    want = lax.conv_general_dilated(*args, dimension_numbers=DN[1], **kwargs)
    np.testing.assert_array_equal(patch_conv(*args, dimension_numbers=DN[1], **kwargs), want)


def test_vmap_over_kernels_is_a_batched_matmul_not_a_grouped_convolution():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(6, 2, 8, 8, 3)).astype(np.float32)  # a batch per member
  w = rng.normal(size=(6, 3, 3, 3, 5)).astype(np.float32)  # a kernel per member
  conv = lambda x, w: patch_conv(x, w, (2, 2), "SAME", dimension_numbers=DN[2])
  loss = lambda x, w: jnp.sum(conv(x, w) ** 2)
  batched = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=1)))
  hlo = batched.lower(x, w).compile().as_text()
  assert "convolution(" not in hlo and " dot(" in hlo
  values, grads = batched(x, w)
  for k in range(len(w)):
    want_value, want_grad = jax.value_and_grad(loss, argnums=1)(x[k], w[k])
    np.testing.assert_allclose(values[k], want_value, rtol=1e-5)
    np.testing.assert_allclose(grads[k], want_grad, rtol=1e-4, atol=1e-4)


def _with_lax(make):
  def build(rngs):
    model = make(rngs)
    for _, module in nnx.iter_graph(model):
      if isinstance(module, nnx.Conv):
        module.conv_general_dilated = lax.conv_general_dilated
    return model

  return build


NETWORK_TASKS = ("mnist1d-resnet", "digits-resnet", "mnist1d-cnn", "digits-cnn")
NETWORKS = {
  "resnet-1d": (lambda r: models.ResNet((12,), 10, channels=(4, 8), rngs=r), 12),
  "resnet-2d": (lambda r: models.ResNet((6, 6), 10, channels=(4, 8), rngs=r), 36),
  "cnn1d": (lambda r: models.CNN1D(12, 10, channels=4, rngs=r), 12),
  "cnn2d": (lambda r: models.CNN2D((6, 6), 10, channels=(4, 8), rngs=r), 36),
}


# Two networks cover 1-D and 2-D, explicit and SAME padding, strides and BatchNorm; the other two
# are slow tests (each compiles two training-mode gradients).
SLOW = ("resnet-1d", "cnn2d")


@pytest.mark.parametrize(
  "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(NETWORKS)]
)
def test_networks_equal_themselves_on_lax_convolutions(name):
  make, features = NETWORKS[name]
  ours, ref = models.functional(make), models.functional(_with_lax(make))
  params, state = ours.init(jax.random.key(0))
  params_ref, _ = ref.init(jax.random.key(0))
  assert jax.tree.all(jax.tree.map(np.array_equal, params, params_ref))  # same init, same names
  x = jax.random.normal(jax.random.key(1), (5, features))

  def loss(model):
    return lambda p: jnp.sum(model.apply(p, state, x, train=True, key=None)[0] ** 2)

  value, grads = jax.jit(jax.value_and_grad(loss(ours)))(params)
  value_ref, grads_ref = jax.jit(jax.value_and_grad(loss(ref)))(params)
  np.testing.assert_allclose(value, value_ref, rtol=1e-5)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grads, grads_ref
  )


def test_committed_before_after_figures_recompute():
  """benchmarks/cpu-2core/conv_sweep.json (scripts/conv_sweep_speed.py): ratios from the times."""
  path = Path(__file__).parents[2] / "benchmarks" / "cpu-2core" / "conv_sweep.json"
  runs = json.loads(path.read_text())["runs"]
  assert {(r["model"], r["k"]) for r in runs} >= {(m, k) for m in NETWORK_TASKS for k in (8, 64)}
  for run in runs:
    for leg in ("sweep-lax", "loop-lax", "sweep-patches", "loop-patches"):
      assert run[leg]["best_s"] == min(run[leg]["seconds"])
    for kind in ("sweep", "loop"):
      ratio = run[f"{kind}-lax"]["best_s"] / run[f"{kind}-patches"]["best_s"]
      assert run[f"{kind}_speedup"] == pytest.approx(ratio, abs=1e-3)
    assert run["sweep_speedup"] > 1.2  # the vmapped step: faster with patches in every case
    assert run["loss_max_abs_difference"] < 1e-5  # the same losses
