"""Issue 17's tasks on lrlab's own-model path: modular-addition, the ResNets, teacher-student.

Each builds at a tiny size and sweeps 16 learning rates, bit-identically for the same key,
the one nearest 1e-2 lowering the training loss; the data are checked against independent
NumPy constructions, the ResNets' BatchNorm state against a NumPy convolution.
"""

import itertools

import jax
import numpy as np
import optax
import pytest

import lrlab
from tests.zoo import tree_equal

TINY = {
  "modular-addition": dict(p=11, width=8, hidden=(16,)),
  "digits-resnet": dict(channels=(4, 8)),
  "mnist1d-resnet": dict(channels=(4, 8), num_samples=400),
  "teacher-student": dict(
    input_dim=4, teacher_width=4, student_width=8, num_train=64, num_val=32, num_test=32
  ),
}


# The ResNets' convolutions take most of the compile time: their end-to-end runs are slow tests.
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if "resnet" in n else n for n in sorted(TINY)]


@pytest.fixture(scope="module", params=PARAMS)
def task(request):
  return lrlab.tasks.get(request.param, **TINY[request.param])


def test_registered():
  assert set(TINY) <= set(lrlab.tasks.names())


def test_sweep_trains_and_is_bit_identical_for_the_same_key(task):
  grid = {"lr": lrlab.sweep.log_grid(1e-4, 1.0, 16)}
  make_tx = lambda hp: optax.adam(hp["lr"])  # one function: the second run reuses the programs
  run = lambda: lrlab.sweep.run(
    task,
    make_tx,
    grid,
    steps=40,
    batch_size=16,
    key=jax.random.key(3),
    eval_every=20,
    seeds=1,
    progress=False,
  )
  first, second = run(), run()
  history = first.history
  assert history.val_loss.shape == (1, 16, 3)
  assert tree_equal(tuple(history), tuple(second.history))
  # 40 Adam steps at the rate nearest 1e-2 lower the training loss of every tiny task (step 0:
  # the whole training set), without diverging.
  member = int(np.argmin(np.abs(np.log(grid["lr"] / 1e-2))))
  assert not history.diverged[0, member] and np.all(np.isfinite(history.val_loss[0, member]))
  assert history.train_loss[0, member, -1] < history.train_loss[0, member, 0]


# --- modular addition ---------------------------------------------------------------------------


@pytest.mark.parametrize("p, fraction", [(11, 0.5), (7, 0.3)])
def test_modular_addition_splits_cover_every_pair_once(p, fraction):
  dataset = lrlab.tasks.get("modular-addition", p=p, train_fraction=fraction, width=4).dataset
  pairs = np.concatenate([dataset.split(s)[0] for s in ("train", "val", "test")])
  labels = np.concatenate([dataset.split(s)[1] for s in ("train", "val", "test")])
  assert pairs.shape == (p * p, 2) and dataset.num_classes == p
  codes = pairs[:, 0].astype(int) * p + pairs[:, 1].astype(int)
  np.testing.assert_array_equal(np.sort(codes), np.arange(p * p))  # disjoint and complete
  np.testing.assert_array_equal(labels, (pairs[:, 0] + pairs[:, 1]).astype(int) % p)
  assert dataset.num_train == round(fraction * p * p)
  assert abs(dataset.sizes["val"] - dataset.sizes["test"]) <= 1


# --- ResNets: BatchNorm statistics are model state ----------------------------------------------


def test_resnet_carries_batchnorm_state_and_evaluates_with_running_statistics():
  task = lrlab.tasks.get("mnist1d-resnet", **TINY["mnist1d-resnet"], momentum=0.9)
  # Jitted: run op by op, the init, loss and model made ~150 small XLA compiles (15 s cold).
  loss, apply = jax.jit(task.loss), jax.jit(task.model.apply, static_argnames="train")
  params, state = jax.jit(task.init)(jax.random.key(0))
  x, y = task.batch(np.arange(8))
  _, (new_state, _) = loss(params, state, (x, y), jax.random.key(1))
  # The stem's running mean after one step: 0.9 * 0 + 0.1 * (batch mean of a SAME convolution).
  kernel = np.asarray(params["stem"]["kernel"], np.float64)  # (taps, 1, channels)
  taps = kernel.shape[0]
  padded = np.pad(np.asarray(x, np.float64), ((0, 0), (taps // 2, taps - 1 - taps // 2)))
  windows = np.stack([padded[:, i : i + x.shape[1]] for i in range(taps)], axis=-1)
  conv = windows @ kernel[:, 0, :]  # (batch, length, channels), cross-correlation
  np.testing.assert_allclose(
    new_state["stem_norm"]["mean"], 0.1 * conv.mean(axis=(0, 1)), rtol=1e-4, atol=1e-6
  )
  assert not tree_equal(state, new_state)
  # Evaluation uses the running statistics: an example's output is independent of its batch.
  one = apply(params, new_state, x[:1], train=False)[0]
  many = apply(params, new_state, x, train=False)[0]
  np.testing.assert_allclose(one[0], many[0], rtol=1e-5, atol=1e-6)
  train_one = apply(params, new_state, x[:2], train=True, key=jax.random.key(2))[0]
  assert not np.allclose(train_one[0], many[0], atol=1e-3)  # training mode: the batch's statistics
  # Training changes the statistics again step after step.
  _, (third, _) = loss(params, new_state, task.batch(np.arange(8, 16)), jax.random.key(3))
  assert not tree_equal(new_state, third)


# --- teacher-student ----------------------------------------------------------------------------


def _numpy_teacher_student(input_dim, width, depth, noise, sizes, seed):
  """The documented draw, in NumPy: x, each layer's (W, b), then the noise."""
  rng = np.random.default_rng(seed)
  n = sum(sizes)
  x = rng.standard_normal((n, input_dim)).astype(np.float32)
  h = x.astype(np.float64)
  fans = [input_dim] + [width] * depth + [1]
  layers = [
    (rng.standard_normal((a, b)) / np.sqrt(a), 0.1 * rng.standard_normal(b))
    for a, b in itertools.pairwise(fans)
  ]
  for i, (w, b) in enumerate(layers):
    h = h @ w + b
    h = np.tanh(h) if i < depth else h
  eps = noise * rng.standard_normal(n)
  return x, (h[:, 0] + eps).astype(np.float32), eps


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_teacher_student_labels_are_the_teacher_plus_the_drawn_noise(noise):
  sizes = (50, 20, 30)
  task = lrlab.tasks.get(
    "teacher-student",
    input_dim=5,
    teacher_width=6,
    teacher_depth=2,
    noise=noise,
    num_train=sizes[0],
    num_val=sizes[1],
    num_test=sizes[2],
    seed=7,
  )
  x, y, eps = _numpy_teacher_student(5, 6, 2, noise, sizes, seed=7)
  cuts = np.cumsum(sizes)[:-1]
  splits = zip(("train", "val", "test"), np.split(x, cuts), np.split(y, cuts), strict=True)
  for split, xs, ys in splits:
    np.testing.assert_array_equal(task.dataset.split(split)[0], xs)
    np.testing.assert_allclose(task.dataset.split(split)[1], ys, rtol=1e-6, atol=1e-6)
  floor = 0.5 * np.mean(np.split(eps, cuts)[1] ** 2)
  assert task.optimal_loss == pytest.approx(floor, rel=1e-12, abs=0.0)
  assert (task.optimal_loss == 0.0) == (noise == 0.0)
  if noise:  # the realised floor is near its expectation noise^2 / 2 (20 examples)
    assert 0.2 * noise**2 / 2 < task.optimal_loss < 3 * noise**2 / 2


# --- bad overrides ------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "name, overrides, words",
  [
    ("modular-addition", dict(depth=2), ["depth", "allowed"]),
    ("modular-addition", dict(p=1), ["p", "1"]),
    ("modular-addition", dict(train_fraction=1.5), ["train_fraction", "1.5"]),
    ("digits-resnet", dict(blocks=0), ["blocks", "0"]),
    ("mnist1d-resnet", dict(width=3), ["width", "allowed"]),
    ("mnist1d-resnet", dict(momentum=1.0), ["momentum", "1.0"]),
    ("teacher-student", dict(noise=-0.1), ["noise", "-0.1"]),
    ("teacher-student", dict(student_depth=1.5), ["student_depth", "1.5"]),
    ("teacher-student", dict(activation="gelu"), ["activation", "gelu"]),
    # None passed the checks and failed in int() or float(), naming nothing; True was 1.
    ("modular-addition", dict(p=None), ["p must be an integer >= 2", "None"]),
    ("modular-addition", dict(train_fraction=None), ["train_fraction", "None"]),
    ("teacher-student", dict(num_val=None), ["num_val must be an integer >= 1", "None"]),
    ("teacher-student", dict(teacher_depth=None), ["teacher_depth", "None"]),
    ("teacher-student", dict(student_width=None), ["student_width", "None"]),
    ("teacher-student", dict(student_width=True), ["student_width", "True"]),
    ("teacher-student", dict(noise=None), ["noise", "None"]),
  ],
)
def test_bad_overrides_give_one_line_errors(name, overrides, words):
  with pytest.raises(ValueError) as error:
    lrlab.tasks.get(name, **overrides)
  message = str(error.value)
  assert "\n" not in message and all(w in message for w in words), message


@pytest.mark.parametrize(
  "name, overrides, message",
  [
    ("mnist1d-resnet", dict(channels=(16, 0)), "channels must be a non-empty sequence"),
    ("digits-resnet", dict(kernel=0), "kernel must be an integer >= 1; got 0."),
    ("mnist1d-mlp", dict(hidden=(0,)), "hidden must be a sequence of integers >= 1; got (0,)."),
    ("digits-cnn", dict(channels=(16, 0)), "channels must be a non-empty sequence"),
    ("lm-transformer", dict(width=0), "width must be an integer >= 1; got 0."),
    ("lm-transformer", dict(width=30, heads=4), "width must be a multiple of heads=4; got 30."),
    ("modular-addition", dict(width=0), "width must be an integer >= 1; got 0."),
    ("modular-addition", dict(hidden=(0,)), "hidden must be a sequence of integers >= 1"),
  ],
)
def test_bad_model_sizes_are_refused_before_the_data_are_made(
  monkeypatch, name, overrides, message
):
  # MNIST-1D was generated (and written to the disk cache), and the language's matrices and
  # power iteration computed, before a bad model size was refused.
  def made(*args, **kwargs):
    raise AssertionError("the data were made before the model's options were checked")

  monkeypatch.setattr(lrlab.data, "mnist1d", made)
  monkeypatch.setattr(lrlab.data, "digits", made)
  monkeypatch.setattr(lrlab.tasks.language, "Language", made)
  monkeypatch.setattr(lrlab.tasks.grokking, "modular_addition_data", made)
  with pytest.raises(ValueError) as error:
    lrlab.tasks.get(name, **overrides)
  assert str(error.value).startswith(message) and "\n" not in str(error.value)
