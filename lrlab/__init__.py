"""lrlab: learning rates for JAX and Optax.

Schedules and adaptive rules as composable Optax parts (`lrlab.schedules`,
`lrlab.transforms`, `lrlab.optimizers`). Every numeric hyperparameter may be a
traced array, so whole sweeps vmap over them.
"""

from lrlab import schedules as schedules

__version__ = "0.1.0"

__all__ = ["__version__", "schedules"]
