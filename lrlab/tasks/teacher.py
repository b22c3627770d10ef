"""Teacher-student regression: labels from a random teacher MLP, learned by a student MLP.

The optimum is known: the teacher itself is a student of zero loss when the
student has its depth and at least its width (extra units weighted 0), so
without label noise the best loss is 0, and with noise of standard deviation
``sigma`` the best expected loss is the noise floor ``sigma^2 / 2`` (half
squared error). ``task.optimal_loss`` is the realised floor of the validation
split, the teacher's own loss there.
"""

import dataclasses
import itertools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from lrlab import _checks
from lrlab.data.dataset import Dataset
from lrlab.models.functional import functional
from lrlab.models.mlp import MLP
from lrlab.tasks.build import from_model, half_squared_error
from lrlab.tasks.task import Task

_NUMPY_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda h: np.maximum(h, 0.0)}


class TeacherStudentData(NamedTuple):
  """The data of a teacher-student problem and the teacher that labelled them.

  Attributes:
    dataset: a regression :class:`lrlab.data.Dataset`, ``x`` ``(n, input_dim)``,
      ``y`` ``(n,)`` float32.
    weights: the teacher's layers, a tuple of ``(W, b)`` float64 arrays, ``W``
      of shape ``(in, out)``.
    optimal_loss: the realised noise floor of the validation split, ``mean_i
      1/2 (sigma eps_i)^2`` over its examples: the teacher's own half squared
      error there, up to the float32 rounding of the labels (exactly 0 without noise).
  """

  dataset: Dataset
  weights: tuple[tuple[np.ndarray, np.ndarray], ...]
  optimal_loss: float


def teacher_output(
  weights: tuple[tuple[np.ndarray, np.ndarray], ...], x: np.ndarray, activation: str
) -> np.ndarray:
  """The teacher MLP in float64: ``h <- act(h W + b)`` per layer but the last, then ``h W + b``.

  Args:
    weights: ``((W_0, b_0), ..., (W_L, b_L))`` as in :class:`TeacherStudentData`.
    x: inputs ``(n, input_dim)``.
    activation: ``"tanh"`` or ``"relu"``.

  Returns:
    ``(n,)`` float64 outputs.
  """
  h = np.asarray(x, np.float64)
  for i, (w, b) in enumerate(weights):
    h = h @ w + b
    if i < len(weights) - 1:
      h = _NUMPY_ACTIVATIONS[activation](h)
  return h[:, 0]


def teacher_student_data(
  *,
  input_dim: int = 16,
  teacher_width: int = 32,
  teacher_depth: int = 2,
  activation: str = "tanh",
  noise: float = 0.0,
  num_train: int = 16384,
  num_val: int = 1024,
  num_test: int = 1024,
  seed: int = 0,
) -> TeacherStudentData:
  r"""Inputs ``x ~ N(0, I)`` labelled by a random teacher MLP plus Gaussian noise.

  With ``rng = np.random.default_rng(seed)`` and ``n = num_train + num_val +
  num_test``, drawn in this order: ``x = rng.standard_normal((n,
  input_dim))`` (stored as float32); for each of the ``teacher_depth`` hidden
  layers of ``teacher_width`` units and then the one output unit, ``W =
  rng.standard_normal((in, out)) / sqrt(in)`` and ``b =
  rng.standard_normal(out) * 0.1``; finally ``eps = rng.standard_normal(n)``.
  The labels are :math:`y = f(x) + \sigma \epsilon` with ``f`` the teacher
  (:func:`teacher_output`, in float64 on the stored float32 inputs) and
  :math:`\sigma` = ``noise``, stored as float32. The first ``num_train``
  examples are the training split, the next ``num_val`` the validation split,
  the rest the test split.

  Args:
    input_dim: input dimension, >= 1.
    teacher_width, teacher_depth: the teacher's hidden width (>= 1) and number
      of hidden layers (>= 0; 0 is a linear teacher).
    activation: ``"tanh"`` or ``"relu"``.
    noise: label-noise standard deviation, >= 0.
    num_train, num_val, num_test: split sizes, each >= 1.
    seed: seed of everything drawn.

  Returns:
    A :class:`TeacherStudentData`.
  """
  # count refuses None and bools, which check lets through (int(None) failed naming nothing).
  input_dim, teacher_width, num_train, num_val, num_test = (
    _checks.count(name, value, 1)
    for name, value in dict(
      input_dim=input_dim,
      teacher_width=teacher_width,
      num_train=num_train,
      num_val=num_val,
      num_test=num_test,
    ).items()
  )
  teacher_depth = _checks.count("teacher_depth", teacher_depth, 0)
  _checks.check_choice("activation", activation, sorted(_NUMPY_ACTIVATIONS))
  _checks.check_given(noise=noise)
  _checks.check_nonnegative("noise", noise)
  rng = np.random.default_rng(_checks.count("seed", seed, 0))
  sizes = (int(num_train), int(num_val), int(num_test))
  n = sum(sizes)
  x = rng.standard_normal((n, int(input_dim))).astype(np.float32)
  widths = (int(input_dim), *(int(teacher_width),) * int(teacher_depth), 1)
  weights = tuple(
    (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in), rng.standard_normal(fan_out) * 0.1)
    for fan_in, fan_out in itertools.pairwise(widths)
  )
  label_noise = float(noise) * rng.standard_normal(n)
  y = (teacher_output(weights, x, activation) + label_noise).astype(np.float32)
  cuts = (sizes[0], sizes[0] + sizes[1])
  (x_train, x_val, x_test), (y_train, y_val, y_test) = np.split(x, cuts), np.split(y, cuts)
  optimal = float(np.mean(0.5 * label_noise[cuts[0] : cuts[1]] ** 2))
  dataset = Dataset(x_train, y_train, x_val, y_val, x_test, y_test, name="teacher-student")
  return TeacherStudentData(dataset, weights, optimal)


def teacher_student(
  *,
  input_dim: int = 16,
  teacher_width: int = 32,
  teacher_depth: int = 2,
  student_width: int = 128,
  student_depth: int = 2,
  activation: str = "tanh",
  noise: float = 0.0,
  num_train: int = 16384,
  num_val: int = 1024,
  num_test: int = 1024,
  seed: int = 0,
) -> Task:
  """Regression on a random teacher's labels by a student MLP, half squared error.

  Data from :func:`teacher_student_data`; the student is
  :class:`lrlab.models.MLP` with ``student_depth`` hidden layers of
  ``student_width`` units and the teacher's activation; the loss is
  :func:`lrlab.tasks.half_squared_error`, ``1/2 (f(x) - y)^2``. A student of the
  teacher's depth and at least its width can represent it exactly, so the best
  expected loss is the noise floor ``noise^2 / 2``; ``task.optimal_loss`` is
  its realised value on the validation split (the teacher's own validation
  loss, exactly 0 without noise).

  Options (defaults in brackets): ``input_dim`` [16], ``teacher_width`` [32],
  ``teacher_depth`` [2], ``student_width`` [128], ``student_depth`` [2],
  ``activation`` ['tanh'], ``noise`` [0.0], ``num_train`` [16384],
  ``num_val`` [1024], ``num_test`` [1024], ``seed`` [0] (of the data and
  the teacher; the student's initialisation comes from the run's key).

  Returns:
    A :class:`lrlab.tasks.Task` named ``"teacher-student"`` with ``optimal_loss``.

  Example:
    >>> task = lrlab.tasks.get("teacher-student", noise=0.1)
    >>> round(task.optimal_loss, 4)  # about 0.1 ** 2 / 2
    0.0055

  References:
    Gardner and Derrida, "Three unfinished works on the optimal storage capacity of
    networks", 1989; Saad and Solla, "On-line learning in soft committee machines", 1995.
  """
  student_width = _checks.count("student_width", student_width, 1)
  student_depth = _checks.count("student_depth", student_depth, 0)
  problem = teacher_student_data(
    input_dim=input_dim,
    teacher_width=teacher_width,
    teacher_depth=teacher_depth,
    activation=activation,
    noise=noise,
    num_train=num_train,
    num_val=num_val,
    num_test=num_test,
    seed=seed,
  )
  hidden = (int(student_width),) * int(student_depth)
  model = functional(lambda rngs: MLP(int(input_dim), hidden, 1, activation=activation, rngs=rngs))
  task = from_model(model, problem.dataset, loss=half_squared_error, name="teacher-student")
  return dataclasses.replace(task, optimal_loss=problem.optimal_loss)


BUILDERS: dict[str, Callable[..., Task]] = {"teacher-student": teacher_student}
