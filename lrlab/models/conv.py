"""A convolution written as shifted slices and one matrix product, for sweeps over members.

``jax.vmap`` over members whose convolution kernels differ turns
``lax.conv_general_dilated`` into a grouped convolution (``feature_group_count
= K``, and ``batch_group_count = K`` for the kernels' gradient), which XLA:CPU
runs many times slower than K separate convolutions. Written as patches times
a matrix, the same convolution vmaps into a batched matrix product instead.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def _channels_last(dimension_numbers, ndim: int) -> bool:
  """Whether ``dimension_numbers`` is Flax's: ``(N, *spatial, C)``, kernel ``(*taps, I, O)``."""
  if dimension_numbers is None:
    return False
  dn = lax.conv_dimension_numbers((1,) * ndim, (1,) * ndim, dimension_numbers)
  lhs = (0, ndim - 1, *range(1, ndim - 1))
  rhs = (ndim - 1, ndim - 2, *range(ndim - 2))
  return tuple(dn.lhs_spec) == lhs and tuple(dn.rhs_spec) == rhs and tuple(dn.out_spec) == lhs


def patch_conv(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding: str | Sequence[tuple[int, int]],
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers=None,
  feature_group_count: int = 1,
  batch_group_count: int = 1,
  precision=None,
  preferred_element_type=None,
  **kwargs,
) -> jax.Array:
  r"""``lax.conv_general_dilated`` in Flax's channels-last layout, as slices and one matmul.

  With the input padded as ``padding`` says (``"SAME"``, ``"VALID"`` or
  explicit pairs), stride :math:`s` and kernel dilation :math:`d`, each tap
  :math:`t` of the kernel (:math:`T` taps in all, over every spatial axis)
  reads the strided slice :math:`x_t[n, i] = x[n, s i + d t]`; the slices are
  stacked on the channel axis (tap-major) and the output is one product

  .. math:: y[n, i, o] = \sum_{t, c} x_t[n, i, c]\, W[t, c, o],

  the cross-correlation ``lax.conv_general_dilated`` computes, equal to it up
  to float rounding (the order of the sum differs). Under ``jax.vmap`` over
  the kernel, this is a batched matrix product (``dot_general`` with a batch
  axis) rather than a grouped convolution. The signature is
  ``lax.conv_general_dilated``'s, so it can be passed as ``nnx.Conv``'s
  ``conv_general_dilated``; any other layout, input dilation, or grouped
  convolution falls back to ``lax.conv_general_dilated`` itself.

  Args:
    lhs: input ``(N, *spatial, C)``.
    rhs: kernel ``(*taps, C, O)``.
    window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
      feature_group_count, batch_group_count, precision, preferred_element_type:
      as ``lax.conv_general_dilated``.

  Returns:
    ``(N, *out_spatial, O)``.
  """
  ndim = lhs.ndim
  spatial = ndim - 2
  lhs_dilation = tuple(lhs_dilation or (1,) * spatial)
  rhs_dilation = tuple(rhs_dilation or (1,) * spatial)
  if (
    not _channels_last(dimension_numbers, ndim)
    or any(d != 1 for d in lhs_dilation)
    or feature_group_count != 1
    or batch_group_count != 1
  ):
    return lax.conv_general_dilated(
      lhs,
      rhs,
      window_strides,
      padding,
      lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation,
      dimension_numbers=dimension_numbers,
      feature_group_count=feature_group_count,
      batch_group_count=batch_group_count,
      precision=precision,
      preferred_element_type=preferred_element_type,
      **kwargs,
    )
  taps = rhs.shape[:spatial]
  strides = tuple(window_strides)
  in_shape = lhs.shape[1:-1]
  dilated = tuple((k - 1) * d + 1 for k, d in zip(taps, rhs_dilation, strict=True))
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(in_shape, dilated, strides, padding)
  else:
    pads = tuple(tuple(p) for p in padding)
  x = lax.pad(
    lhs, jnp.zeros((), lhs.dtype), ((0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0))
  )
  padded = x.shape[1:-1]
  # An input shorter than the dilated kernel gives no output positions, as in lax (not fewer).
  out = tuple(max((p - w) // s + 1, 0) for p, w, s in zip(padded, dilated, strides, strict=True))
  if 0 in out:  # nothing to slice: an empty output, as lax.conv_general_dilated gives
    dtype = preferred_element_type or jnp.result_type(lhs, rhs)
    return jnp.zeros((x.shape[0], *out, rhs.shape[-1]), dtype)
  slices = []
  for t in np.ndindex(*taps):
    start = (0, *(i * d for i, d in zip(t, rhs_dilation, strict=True)), 0)
    limit = (
      x.shape[0],
      *(b + (o - 1) * s + 1 for b, o, s in zip(start[1:-1], out, strides, strict=True)),
      x.shape[-1],
    )
    slices.append(lax.slice(x, start, limit, (1, *strides, 1)))
  patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
  kernel = rhs.reshape(-1, rhs.shape[-1])  # (taps..., C, O) -> (T * C, O), tap-major
  return jnp.einsum(
    "...k,ko->...o",
    patches,
    kernel,
    precision=precision,
    preferred_element_type=preferred_element_type,
  )
