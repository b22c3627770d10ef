"""Flax NNX models and the bridge to pure ``init`` / ``apply`` functions.

Build a module with ``make(rngs)`` and pass it to :func:`functional` to get the pure
contract of :class:`Functional`: ``init(key) -> (params, model_state)`` and
``apply(params, model_state, x, *, train, key) -> (outputs, model_state)``, on plain dicts
of arrays, ready for ``jax.vmap`` over keys and ``lax.scan`` over steps. The models take
features flat, ``(..., features)``, but the :class:`Transformer`, which takes token ids
``(..., T)``.

Example:
  >>> model = lrlab.models.functional(lambda rngs: lrlab.models.MLP(4, (8,), 3, rngs=rngs))
  >>> params, model_state = model.init(jax.random.key(0))
  >>> x = jnp.ones((2, 4))
  >>> outputs, model_state = model.apply(params, model_state, x, train=False, key=None)
  >>> outputs.shape
  (2, 3)
"""

from lrlab.models import activations as activations
from lrlab.models import mup as mup
from lrlab.models.cnn import CNN1D as CNN1D
from lrlab.models.cnn import CNN2D as CNN2D
from lrlab.models.embedding_mlp import EmbeddingMLP as EmbeddingMLP
from lrlab.models.functional import Functional as Functional
from lrlab.models.functional import functional as functional
from lrlab.models.linear import Linear as Linear
from lrlab.models.mlp import MLP as MLP
from lrlab.models.mlp import Dense as Dense
from lrlab.models.mlp import mlp_lr_multipliers as mlp_lr_multipliers
from lrlab.models.resnet import ResNet as ResNet
from lrlab.models.transformer import Transformer as Transformer

__all__ = [
  "CNN1D",
  "CNN2D",
  "MLP",
  "Dense",
  "EmbeddingMLP",
  "Functional",
  "Linear",
  "ResNet",
  "Transformer",
  "activations",
  "functional",
  "mlp_lr_multipliers",
  "mup",
]
