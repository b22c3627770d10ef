"""Grokking: ``(a + b) mod p`` learned from a fraction of all pairs, by a model on embeddings.

The task of Power et al.: a network fits its training pairs early and only much
later, if weight decay pulls it towards a simpler solution, generalises to the
held-out pairs (validation accuracy jumps from chance to 1). Whether and when
the jump comes is decided by the weight decay and the learning rate, which is
what makes it a learning-rate benchmark.
"""

from collections.abc import Callable, Sequence

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import Dataset
from lrlab.models.embedding_mlp import EmbeddingMLP
from lrlab.models.functional import functional
from lrlab.tasks.build import from_model
from lrlab.tasks.task import Task


def modular_addition_data(p: int = 97, *, train_fraction: float = 0.5, seed: int = 0) -> Dataset:
  """All ``p^2`` pairs ``(a, b)`` labelled ``(a + b) mod p``, split at random by ``seed``.

  The pairs are shuffled by ``np.random.default_rng(seed).permutation``; the
  first ``round(train_fraction * p^2)`` are the training split and the rest is
  cut in two, the first ``(rest) // 2`` for validation and the others for
  testing. The three splits are disjoint and together hold every pair once.
  ``x`` holds ``(a, b)`` as float32 (exact for these integers), ``y`` the sum
  mod ``p`` as int32; ``num_classes = p``.

  Args:
    p: the modulus, an integer >= 2.
    train_fraction: fraction of all pairs used for training, in (0, 1), leaving
      at least two pairs for validation and testing.
    seed: seed of the split.

  Returns:
    A :class:`lrlab.data.Dataset` named ``"modular-addition"``.

  Example:
    >>> lrlab.tasks.grokking.modular_addition_data(97).sizes
    {'train': 4704, 'val': 2352, 'test': 2353}
  """
  p = _checks.count("p", p, 2)  # refuses None and bools, which check lets through
  _checks.check_given(train_fraction=train_fraction)
  _checks.check_interval(
    "train_fraction", train_fraction, 0, 1, closed_low=False, closed_high=False
  )
  seed = _checks.count("seed", seed, 0)  # None would draw another split on every call
  num_train = round(train_fraction * p * p)
  if num_train < 1 or p * p - num_train < 2:
    raise ValueError(
      f"train_fraction must leave at least one training pair and two held-out pairs of the "
      f"{p * p} pairs; got train_fraction={train_fraction!r} for p={p}."
    )
  a, b = np.divmod(np.arange(p * p), p)
  order = np.random.default_rng(seed).permutation(p * p)
  x = np.stack([a, b], axis=1)[order].astype(np.float32)
  y = ((a + b) % p)[order].astype(np.int32)
  num_val = (p * p - num_train) // 2
  cuts = (num_train, num_train + num_val)
  (x_train, x_val, x_test), (y_train, y_val, y_test) = np.split(x, cuts), np.split(y, cuts)
  return Dataset(
    x_train, y_train, x_val, y_val, x_test, y_test, num_classes=p, name="modular-addition"
  )


def modular_addition(
  *,
  p: int = 97,
  train_fraction: float = 0.5,
  width: int = 128,
  hidden: Sequence[int] = (256,),
  activation: str = "relu",
  seed: int = 0,
) -> Task:
  """``(a + b) mod p`` by an MLP over the concatenated learned embeddings of ``a`` and ``b``.

  The data are :func:`modular_addition_data`; the model is
  :class:`lrlab.models.embedding_mlp.EmbeddingMLP` (one table of ``p``
  embeddings of ``width``, shared by ``a`` and ``b``, an MLP of ``hidden``
  layers, ``p`` logits) with cross-entropy loss. An MLP rather than a
  transformer: it groks in a few thousand full-batch AdamW steps on a CPU.

  Options (defaults in brackets): ``p`` [97], ``train_fraction`` [0.5],
  ``width`` [128], ``hidden`` [(256,)], ``activation`` ['relu'], ``seed`` [0]
  (of the split; the initialisation comes from the run's key).

  Returns:
    A :class:`lrlab.tasks.Task` named ``"modular-addition"``.

  Example:
    >>> task = lrlab.tasks.get("modular-addition", p=11)
    >>> task.dataset.sizes, task.num_classes
    ({'train': 60, 'val': 30, 'test': 31}, 11)

  References:
    Power et al., "Grokking: Generalization Beyond Overfitting on Small Algorithmic
    Datasets", 2022. https://arxiv.org/abs/2201.02177
  """
  p = _checks.count("p", p, 2)
  model = functional(  # checks the model's options before the p^2 pairs are made
    lambda rngs: EmbeddingMLP(p, 2, p, width=width, hidden=hidden, activation=activation, rngs=rngs)
  )
  dataset = modular_addition_data(p, train_fraction=train_fraction, seed=seed)
  return from_model(model, dataset, loss="cross_entropy", name="modular-addition")


BUILDERS: dict[str, Callable[..., Task]] = {"modular-addition": modular_addition}
