"""lrlab: learning rates for JAX and Optax.

Schedules and adaptive rules as composable Optax parts (`lrlab.schedules`,
`lrlab.transforms`, `lrlab.optimizers`), benchmark tasks (`lrlab.data`,
`lrlab.models`, `lrlab.tasks`), and a training core built to be vmapped over
hyperparameters (`lrlab.train`), the vmapped sweep (`lrlab.sweep`), search
that stops wasting compute (`lrlab.search`: successive halving, Hyperband, PBT,
Optuna batches) and the LR finder (`lrlab.finder`). Every numeric hyperparameter may be a traced
array, so whole sweeps compile once.
"""

from lrlab import analysis as analysis
from lrlab import data as data
from lrlab import finder as finder
from lrlab import models as models
from lrlab import optimizers as optimizers
from lrlab import schedules as schedules
from lrlab import search as search
from lrlab import sweep as sweep
from lrlab import tasks as tasks
from lrlab import train as train
from lrlab import transforms as transforms

__version__ = "0.1.0"

__all__ = [
  "__version__",
  "analysis",
  "data",
  "finder",
  "models",
  "optimizers",
  "schedules",
  "search",
  "sweep",
  "tasks",
  "train",
  "transforms",
]
