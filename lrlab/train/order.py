"""The order in which a run visits its training examples, on device and on the host.

Epoch ``e`` is a permutation drawn from ``fold_in(data_key, e)``; a step's
minibatch depends only on the key and the step. :func:`batch_indices` computes
a segment's indices inside a compiled program (resident data);
:class:`HostOrder` gives the same indices on the host, one cached epoch at a
time, for data streamed from a source. :func:`step_key` is the key a step gives
the model (dropout).
"""

import collections

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from lrlab import _checks

#: Tag folded into a run's key to get its model key (dropout); the step is folded in next.
MODEL_KEY_TAG = 0x6D6F64


def step_key(key: jax.Array, step: ArrayLike) -> jax.Array:
  """The key a run's step ``step`` gives its model (dropout): ``fold_in(fold_in(key, tag), step)``.

  ``key`` is the run's key (in a sweep, the seed's), so every member of a seed
  draws the same masks at the same step (common random numbers). It is
  independent of the two keys ``jax.random.split(key)`` gives the
  initialisation and the data order.
  """
  return jax.random.fold_in(jax.random.fold_in(key, MODEL_KEY_TAG), step)


def batch_indices(
  data_key: jax.Array, first_step: ArrayLike, steps: int, num_train: int, batch_size: int
) -> jax.Array:
  """``(steps, batch_size)`` example indices of steps ``first_step, first_step + 1, ...``.

  Epoch ``e`` visits the training set in the order of a permutation drawn from
  ``fold_in(data_key, e)``, so the minibatch of a step depends only on the key
  and the step, never on how the run is cut into segments (for every key
  implementation: rbg's, whose batched draws differ from its single ones, has
  each epoch drawn alone). The last partial
  batch of an epoch is dropped (PyTorch's ``drop_last=True``). This is the
  order every lrlab run draws from its data key; use it to feed another
  framework the same minibatches.

  Args:
    data_key: the run's data-order key.
    first_step: the first step, an integer >= 0 (may be traced).
    steps: how many steps (static).
    num_train: training examples.
    batch_size: examples per minibatch, at most ``num_train``.

  Returns:
    An int32 array of shape ``(steps, batch_size)``.

  Example:
    >>> order = lrlab.train.batch_indices(jax.random.key(0), 0, 4, 10, 5)
    >>> order.shape, sorted(order[:2].ravel().tolist()) == list(range(10))
    ((4, 5), True)
  """
  for name, value, high in (("steps", steps, None), ("batch_size", batch_size, num_train)):
    if (
      isinstance(value, bool)
      or not isinstance(value, int | np.integer)
      or value < 1
      or (high is not None and value > high)
    ):
      allowed = "an integer >= 1" if high is None else f"an integer in [1, num_train={high}]"
      raise ValueError(f"{name} must be {allowed}; got {value!r}.")
  if isinstance(first_step, int | float | np.integer | np.floating):  # a concrete host number
    first_step = _checks.count("first_step", first_step, 0)
  per_epoch = num_train // batch_size
  first_epoch = first_step // per_epoch
  span = steps // per_epoch + 2  # a static bound on the epochs the steps touch
  epochs = first_epoch + jnp.arange(span)
  permute = lambda e: jax.random.permutation(jax.random.fold_in(data_key, e), num_train)
  # Threefry draws the same bits batched or not; rbg's batched draws differ from its single ones,
  # so for any other generator each epoch is drawn alone, as HostOrder draws it.
  vmap_invariant = str(jax.random.key_impl(data_key)) == "threefry2x32"
  batches = (jax.vmap(permute) if vmap_invariant else lambda e: jax.lax.map(permute, e))(epochs)
  batches = batches[:, : per_epoch * batch_size]
  batches = batches.reshape(span * per_epoch, batch_size)
  return jax.lax.dynamic_slice_in_dim(batches, first_step - first_epoch * per_epoch, steps)


class HostOrder:
  """:func:`batch_indices` on the host: step ``t``'s example indices as a NumPy array.

  Each epoch's permutation is drawn once (as :func:`batch_indices` draws it)
  and the last few are kept, so walking through the steps costs one
  permutation per epoch.

  Args:
    data_key: the run's data-order key.
    num_train: training examples.
    batch_size: examples per minibatch.
  """

  def __init__(self, data_key: jax.Array, num_train: int, batch_size: int, *, keep: int = 2):
    num_train = _checks.count("num_train", num_train)
    batch_size = _checks.count("batch_size", batch_size)
    if batch_size > num_train:
      raise ValueError(f"batch_size must be at most num_train ({num_train}); got {batch_size}.")
    self.data_key, self.num_train, self.batch_size = data_key, num_train, batch_size
    self.per_epoch = num_train // batch_size
    self._epochs: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
    self._keep = keep

  def _epoch(self, epoch: int) -> np.ndarray:
    if epoch not in self._epochs:
      key = jax.random.fold_in(self.data_key, epoch)
      self._epochs[epoch] = np.asarray(jax.random.permutation(key, self.num_train))
      while len(self._epochs) > self._keep:
        self._epochs.popitem(last=False)
    return self._epochs[epoch]

  def steps(self, first_step: int, count: int) -> np.ndarray:
    """``(count, batch_size)`` int32 indices of the ``count`` steps from ``first_step`` on."""
    first_step, count = _checks.count("first_step", first_step, 0), _checks.count("count", count)
    rows = []
    for t in range(first_step, first_step + count):
      epoch, position = divmod(t, self.per_epoch)
      size = self.batch_size
      rows.append(self._epoch(epoch)[position * size : (position + 1) * size])
    return np.stack(rows).astype(np.int32)
