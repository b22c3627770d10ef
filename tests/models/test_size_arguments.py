"""Model sizes given as a fraction are refused rather than truncated, and a number where a
sequence is wanted (or the reverse) is a one-line ValueError naming the argument."""

import pytest
from flax import nnx

from lrlab import models, tasks


@pytest.mark.parametrize(
  ("make", "match"),
  [
    (
      lambda r: models.MLP(4, 8, 2, rngs=r),
      r"^hidden must be a sequence of integers >= 1; got 8\.$",
    ),
    (lambda r: models.MLP(4, (8.5,), 2, rngs=r), r"^hidden must be .*; got \(8\.5,\)\.$"),
    (
      lambda r: models.MLP(4.5, (8,), 2, rngs=r),
      r"^in_features must be an integer >= 1; got 4\.5\.$",
    ),
    (lambda r: models.Dense(3, 2.5, rngs=r), r"^out_features must be an integer >= 1; got 2\.5\.$"),
    (lambda r: models.Linear(3.5, 2, rngs=r), r"^in_features must be an integer >= 1"),
    (lambda r: models.CNN1D(40, 10, channels=2.5, rngs=r), r"^channels must be an integer >= 1"),
    (lambda r: models.CNN1D(40, 10, channels=(4, 8), rngs=r), r"^channels must be an integer"),
    (lambda r: models.CNN2D((8, 8), 10, channels=16, rngs=r), r"^channels must be a non-empty"),
    (lambda r: models.ResNet((8, 8), 10, channels=8, rngs=r), r"^channels must be a non-empty"),
    (lambda r: models.ResNet((8, 8), 10, kernel=2.5, rngs=r), r"^kernel must be an integer >= 1"),
    (lambda r: models.ResNet((8, 8), 10, blocks=1.5, rngs=r), r"^blocks must be an integer >= 1"),
    (
      lambda r: models.EmbeddingMLP(7, 2, 7, width=2.5, rngs=r),
      r"^width must be an integer >= 1; got 2\.5\.$",
    ),
    (lambda r: models.EmbeddingMLP(7, 2, 7, hidden=16, rngs=r), r"^hidden must be a sequence"),
  ],
)
def test_models_refuse_fractional_or_misshapen_sizes(make, match):
  with pytest.raises(ValueError, match=match):
    make(nnx.Rngs(0))


@pytest.mark.parametrize(
  ("name", "options", "match"),
  [
    ("digits-mlp", {"hidden": 64}, r"^hidden must be a sequence of integers >= 1; got 64\.$"),
    ("mnist1d-mlp", {"hidden": (64.7,)}, r"^hidden must be a sequence"),
    ("digits-cnn", {"channels": 16}, r"^channels must be a non-empty sequence"),
    ("digits-resnet", {"kernel": 2.5}, r"^kernel must be an integer >= 1; got 2\.5\."),
    ("modular-addition", {"p": 7, "hidden": 32}, r"^hidden must be a sequence"),
    ("modular-addition", {"p": 7, "width": 2.5}, r"^width must be an integer >= 1"),
  ],
)
def test_task_size_overrides_are_checked_on_one_line(name, options, match):
  with pytest.raises(ValueError, match=match):
    tasks.get(name, **options)


def test_integral_sizes_are_still_accepted():
  assert models.MLP(4, (8.0, 6), 2, rngs=nnx.Rngs(0)).hidden == (8, 6)
  assert models.CNN1D(40, 10, channels=4, rngs=nnx.Rngs(0)).conv_0.out_features == 4
