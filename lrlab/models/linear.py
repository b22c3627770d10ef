"""A single affine layer: logistic regression (with softmax cross-entropy) or linear regression."""

from flax import nnx

from lrlab import _checks


class Linear(nnx.Linear):
  """``y = x W + b``: the model of logistic and linear regression.

  A thin :class:`flax.nnx.Linear` with Flax's initialisation (LeCun-normal
  kernel, zero bias; PyTorch's ``nn.Linear`` draws both uniformly instead). With
  softmax cross-entropy it is multinomial logistic regression, a convex
  problem; with squared error, least squares. Parameters: ``kernel``
  ``(in_features, out_features)`` and, with ``use_bias``, ``bias``
  ``(out_features,)``.

  Args:
    in_features: input width, >= 1.
    out_features: output width (number of classes, or 1), >= 1.
    use_bias: add the bias ``b``.
    rngs: Flax random streams for the initialisation.

  Example:
    >>> model = lrlab.models.Linear(64, 10, rngs=nnx.Rngs(0))
    >>> model(jnp.ones((5, 64))).shape
    (5, 10)
  """

  def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True, rngs: nnx.Rngs):
    in_features = _checks.count("in_features", in_features)
    out_features = _checks.count("out_features", out_features)
    super().__init__(in_features, out_features, use_bias=use_bias, rngs=rngs)
