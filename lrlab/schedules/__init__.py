"""Learning-rate schedules: ``step -> learning rate`` functions usable as ``optax.Schedule``.

Step 0 is the first step. Where PyTorch has a scheduler, ``schedule(t)`` equals
the rate PyTorch gives after ``t`` calls of ``scheduler.step()`` with PyTorch's
defaults. Every numeric argument may be a traced array, so sweeps can
``jax.vmap`` over learning rates, decay factors, periods and milestones alike.
A concrete step below 0 (or NaN) is a one-line ``ValueError``; a traced one gets step 0's
rate.
"""

from lrlab.schedules.cosine import cosine_annealing as cosine_annealing
from lrlab.schedules.cosine import warm_restarts as warm_restarts
from lrlab.schedules.cyclic import cyclical as cyclical
from lrlab.schedules.cyclic import one_cycle as one_cycle
from lrlab.schedules.decay import constant as constant
from lrlab.schedules.decay import exponential_decay as exponential_decay
from lrlab.schedules.decay import inverse_time_decay as inverse_time_decay
from lrlab.schedules.decay import linear as linear
from lrlab.schedules.decay import multistep_decay as multistep_decay
from lrlab.schedules.decay import polynomial_decay as polynomial_decay
from lrlab.schedules.decay import step_decay as step_decay
from lrlab.schedules.join import sequence as sequence
from lrlab.schedules.plotting import plot as plot
from lrlab.schedules.warmup import inverse_sqrt as inverse_sqrt
from lrlab.schedules.warmup import warmup as warmup
from lrlab.schedules.warmup import warmup_stable_decay as warmup_stable_decay

__all__ = [
  "constant",
  "cosine_annealing",
  "cyclical",
  "exponential_decay",
  "inverse_sqrt",
  "inverse_time_decay",
  "linear",
  "multistep_decay",
  "one_cycle",
  "plot",
  "polynomial_decay",
  "sequence",
  "step_decay",
  "warm_restarts",
  "warmup",
  "warmup_stable_decay",
]
