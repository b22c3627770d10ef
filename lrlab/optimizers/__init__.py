"""Named optimizers: short chains of :mod:`lrlab.transforms` with PyTorch's defaults.

Each optimizer takes ``learning_rate`` as a number, an array or a schedule
(``step -> rate``) and follows the arithmetic of its ``torch.optim``
namesake, so a recipe ported from PyTorch gives the same trajectory to float32
precision. Every numeric argument may be a traced array, so a sweep can
``jax.vmap`` over learning rates, momenta, decays and weight decays; the
structural options (``nesterov``, ``amsgrad``, ``centered``,
``decoupled_weight_decay``) are static, ``True`` or ``False`` (anything else,
``"False"`` or a traced array included, is refused with a ``ValueError``).

Every optimizer also takes ``l1`` (default 0), a coupled L1 penalty added to
the gradient beside PyTorch's ``weight_decay``; PyTorch has no such option.

A penalty or momentum given as the Python number 0 leaves its link out of the
chain (no state, no need for ``params``); given as an array, even a concrete
zero, the link stays, so all configurations of a sweep share one state
structure and an array 0 computes exactly what the missing link would.

The modules, one family each: :mod:`~lrlab.optimizers.gradient_descent` (SGD),
:mod:`~lrlab.optimizers.adaptive` (Adagrad, RMSprop, Adadelta),
:mod:`~lrlab.optimizers.adam_family` (Adam, AdamW, Adamax, NAdam, RAdam),
:mod:`~lrlab.optimizers.lr_free` (DoG, Prodigy, D-Adaptation, SPS) and
:mod:`~lrlab.optimizers.schedule_free`. In ``lr_free``, ``learning_rate`` is a
multiplier of the step size the method chooses (default 1, as in the papers); in
``schedule_free`` it is a real learning rate, to be tuned, with the authors' defaults
(``schedule_free_sgd``: 1, ``schedule_free_adamw``: 0.0025).

Look optimizers up by name with :func:`get` and list them with :func:`names`.
"""

from lrlab.optimizers.adam_family import adam as adam
from lrlab.optimizers.adam_family import adamax as adamax
from lrlab.optimizers.adam_family import adamw as adamw
from lrlab.optimizers.adam_family import nadam as nadam
from lrlab.optimizers.adam_family import radam as radam
from lrlab.optimizers.adaptive import adadelta as adadelta
from lrlab.optimizers.adaptive import adagrad as adagrad
from lrlab.optimizers.adaptive import rmsprop as rmsprop
from lrlab.optimizers.gradient_descent import sgd as sgd
from lrlab.optimizers.lr_free import dadapt_adamw as dadapt_adamw
from lrlab.optimizers.lr_free import dadapt_sgd as dadapt_sgd
from lrlab.optimizers.lr_free import dog as dog
from lrlab.optimizers.lr_free import prodigy as prodigy
from lrlab.optimizers.lr_free import sps as sps
from lrlab.optimizers.registry import get as get
from lrlab.optimizers.registry import names as names
from lrlab.optimizers.schedule_free import schedule_free_adamw as schedule_free_adamw
from lrlab.optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd

__all__ = [
  "adadelta",
  "adagrad",
  "adam",
  "adamax",
  "adamw",
  "dadapt_adamw",
  "dadapt_sgd",
  "dog",
  "get",
  "nadam",
  "names",
  "prodigy",
  "radam",
  "rmsprop",
  "schedule_free_adamw",
  "schedule_free_sgd",
  "sgd",
  "sps",
]
