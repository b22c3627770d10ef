"""Models a researcher would bring, defined here and not in lrlab: the "your own model" test bank.

- :class:`BatchNormCNN`: a small 2-D CNN on the 8x8 digits with BatchNorm after each
  convolution and Dropout before the head.
- :class:`TinyTransformer`: a pre-LayerNorm transformer block (causal self-attention,
  GELU MLP, residuals) reading each digit image as a sequence of 8 rows of 8 pixels.

Both are plain ``flax.nnx`` modules; the tasks are built with ``lrlab.tasks.from_nnx``.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import lrlab
from lrlab.data.dataset import SPLITS


class BatchNormCNN(nnx.Module):
  """conv 3x3, BatchNorm, relu; conv 3x3 stride 2, BatchNorm, relu; Dropout; a linear head."""

  def __init__(self, *, channels: int = 8, dropout: float = 0.2, momentum: float = 0.9, rngs):
    self.conv_0 = nnx.Conv(1, channels, (3, 3), rngs=rngs)
    self.norm_0 = nnx.BatchNorm(channels, momentum=momentum, rngs=rngs)
    self.conv_1 = nnx.Conv(channels, channels, (3, 3), strides=2, rngs=rngs)
    self.norm_1 = nnx.BatchNorm(channels, momentum=momentum, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)
    self.head = nnx.Linear(4 * 4 * channels, 10, rngs=rngs)

  def __call__(self, x):
    h = x.reshape(*x.shape[:-1], 8, 8, 1)
    h = nnx.relu(self.norm_0(self.conv_0(h)))
    h = nnx.relu(self.norm_1(self.conv_1(h)))
    return self.head(self.drop(h.reshape(*h.shape[:-3], -1)))


class TinyTransformer(nnx.Module):
  """One pre-LayerNorm block: x + attn(LN(x)), then x + MLP(LN(x)); mean-pooled to logits."""

  def __init__(self, *, width: int = 16, heads: int = 2, dropout: float = 0.1, rngs):
    self.embed = nnx.Linear(8, width, rngs=rngs)
    self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (8, width)))
    self.norm_attention = nnx.LayerNorm(width, rngs=rngs)
    self.attention = nnx.MultiHeadAttention(
      num_heads=heads, in_features=width, decode=False, dropout_rate=dropout, rngs=rngs
    )
    self.norm_mlp = nnx.LayerNorm(width, rngs=rngs)
    self.up = nnx.Linear(width, 4 * width, rngs=rngs)
    self.down = nnx.Linear(4 * width, width, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)
    self.head = nnx.Linear(width, 10, rngs=rngs)

  def __call__(self, x):
    h = self.embed(x.reshape(*x.shape[:-1], 8, 8)) + self.position[...]
    mask = nnx.make_causal_mask(jnp.ones(h.shape[:-1]))
    h = h + self.attention(self.norm_attention(h), mask=mask)
    h = h + self.drop(self.down(nnx.gelu(self.up(self.norm_mlp(h)))))
    return self.head(h.mean(axis=-2))


def digits(num_train: int | None = None):
  """The digits dataset (optionally its first ``num_train`` training examples)."""
  dataset = lrlab.data.digits()
  if num_train is not None:
    x, y = dataset.split("train")
    dataset = lrlab.data.Dataset(
      x[:num_train],
      y[:num_train],
      *dataset.split("val"),
      *dataset.split("test"),
      num_classes=10,
      name="digits",
    )
  return dataset


def streamed(dataset):
  """The same data as a :class:`lrlab.data.StreamedDataset` of array sources."""
  sources = [lrlab.data.ArraySource(*dataset.split(s)) for s in SPLITS]
  return lrlab.data.from_source(*sources, num_classes=dataset.num_classes, name=dataset.name)


def cnn_task(*, dropout: float = 0.2, stream: bool = False, num_train: int | None = None):
  """``BatchNormCNN`` on digits, resident or streamed."""
  dataset = digits(num_train)
  dataset = streamed(dataset) if stream else dataset
  make = lambda rngs: BatchNormCNN(dropout=dropout, rngs=rngs)
  return lrlab.tasks.from_nnx(make, dataset, loss="cross_entropy", name="digits-bn-cnn")


def transformer_task(*, dropout: float = 0.1):
  """``TinyTransformer`` on digits."""
  make = lambda rngs: TinyTransformer(dropout=dropout, rngs=rngs)
  return lrlab.tasks.from_nnx(make, digits(), loss="cross_entropy", name="digits-transformer")


def tree_equal(a, b) -> bool:
  """Bit-for-bit equality of two pytrees of arrays (NaN equal to NaN)."""
  leaves = jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(x, y, equal_nan=True), a, b))
  return jax.tree.structure(a) == jax.tree.structure(b) and all(leaves)
