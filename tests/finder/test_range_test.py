"""The range test: its rates and smoothing against NumPy, theory on the quadratic, edge cases."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lrlab import data, finder, optimizers, tasks
from tests import figures

KEY = jax.random.key(0)


def _single_curvature(L=3.0, dim=5):
  """A quadratic whose Hessian is L * I: gradient descent diverges exactly above 2 / L."""
  problem = data.quadratic(dim, eigenvalues=np.full(dim, L))
  return problem, tasks.quadratic_task(problem)


@pytest.fixture(scope="module")
def quadratic():
  return _single_curvature()


# --- the learning-rate sequence and the smoothing, against independent NumPy ----------------------


@pytest.mark.parametrize("spacing", finder.SPACINGS)
def test_lr_sequence_is_fastais_position_i_over_n(spacing):
  spaced = np.geomspace if spacing == "exponential" else np.linspace
  expected = spaced(1e-7, 10.0, 101)[:-1]  # n + 1 points from start to end, the last dropped
  rates = finder.lr_sequence(1e-7, 10.0, 100, spacing=spacing)
  np.testing.assert_allclose(rates, expected, rtol=1e-12)


def _numpy_gradient_descent(problem, x0, lrs):
  """Losses ``1/2 e^T H e`` before each step of ``x <- x - lr_i H (x - x*)``, in float64."""
  hessian, x = problem.hessian.astype(np.float64), np.asarray(x0, np.float64)
  losses = []
  for lr in lrs:
    e = x - problem.x_star
    losses.append(0.5 * e @ hessian @ e)
    x = x - lr * hessian @ e
  return np.array(losses)


def _numpy_smoothing(losses, beta):
  average, out = 0.0, []
  for i, loss in enumerate(losses):
    average = beta * average + (1 - beta) * loss
    out.append(average / (1 - beta ** (i + 1)))
  return np.array(out)


@pytest.mark.parametrize("spacing", finder.SPACINGS)
def test_rates_losses_and_smoothing_match_numpy_gradient_descent(quadratic, spacing):
  problem, task = quadratic
  result = finder.find_lr(
    task, "sgd", start_lr=1e-3, end_lr=1.0, steps=40, spacing=spacing, batch_size=None, key=KEY
  )
  assert result.stop_reason == "completed" and result.num_recorded == 40  # 1.0 < 2/L
  spaced = np.geomspace if spacing == "exponential" else np.linspace
  np.testing.assert_allclose(result.lrs, spaced(1e-3, 1.0, 41)[:-1], rtol=1e-12)
  x0, _ = task.init(jax.random.split(KEY)[0])  # find_lr splits the key as lrlab.train does
  expected = _numpy_gradient_descent(problem, x0, result.lrs)
  np.testing.assert_allclose(result.losses, expected, rtol=2e-4, atol=1e-9)
  np.testing.assert_allclose(result.smoothed, _numpy_smoothing(result.losses, 0.98), rtol=1e-5)


def test_smoothing_zero_is_the_raw_loss_and_a_stopped_test_records_the_stopping_step(quadratic):
  _, task = quadratic
  result = finder.find_lr(task, "sgd", start_lr=1e-3, steps=50, smoothing=0.0,
                          batch_size=None, key=KEY)  # fmt: skip
  n = result.num_recorded
  assert result.stopped and result.stop_step == n - 1
  np.testing.assert_allclose(result.smoothed[:n], result.losses[:n], rtol=1e-6)
  assert np.all(np.isnan(result.losses[n:])) and np.all(np.isnan(result.smoothed[n:]))
  smooth = result.smoothed[:n]
  best = np.minimum.accumulate(smooth)
  assert smooth[-1] > 4 * best[-1] and np.all(smooth[:-1] <= 4 * best[:-1])


# --- theory on the quadratic --------------------------------------------------------------------


def test_the_stop_point_brackets_two_over_L_within_one_grid_step(quadratic):
  # Without smoothing and with a threshold just above 1, the test stops at the first loss that
  # grew; that loss was measured after the update at lrs[stop - 1], the first rate above 2 / L.
  problem, task = quadratic
  result = finder.find_lr(task, "sgd", start_lr=1e-4, steps=60, smoothing=0.0,
                          divergence_factor=1.0001, batch_size=None, key=KEY)  # fmt: skip
  s = result.stop_step
  assert result.lrs[s - 2] <= 2 / problem.L < result.lrs[s - 1]
  ratio = result.lrs[1] / result.lrs[0]
  assert result.lrs[s - 1] / (2 / problem.L) <= ratio


def test_with_fastais_defaults_the_test_stops_above_two_over_L(quadratic):
  problem, task = quadratic
  result = finder.find_lr(task, "sgd", batch_size=None, key=KEY)
  assert result.stopped and result.stop_lr > 2 / problem.L
  assert result.suggestions["minimum"] < 2 / problem.L


# --- the caller's parameters, minibatches, determinism ------------------------------------------


def test_the_callers_parameters_are_unchanged():
  task = tasks.get("digits-logreg")
  params, _ = task.init(jax.random.key(3))
  before = jax.tree.map(np.array, params)
  finder.find_lr(task, "adam", steps=30, batch_size=32, key=KEY, params=params)
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, params), before)


def test_given_parameters_are_the_start_and_a_key_gives_one_answer(quadratic):
  problem, task = quadratic
  params, _ = task.init(jax.random.key(3))
  result = finder.find_lr(task, "sgd", steps=30, batch_size=None, key=KEY, params=params)
  e = np.asarray(params, np.float64) - problem.x_star
  assert result.losses[0] == pytest.approx(0.5 * e @ problem.hessian @ e, rel=1e-5)
  again = finder.find_lr(task, "sgd", steps=30, batch_size=None, key=KEY, params=params)
  np.testing.assert_array_equal(result.losses, again.losses)


def test_a_make_tx_factory_gets_a_schedule_and_optax_optimizers_work_too(quadratic):
  _, task = quadratic
  ours = finder.find_lr(task, lambda hp: optimizers.sgd(hp["lr"], momentum=0.9), steps=30,
                        batch_size=None, key=KEY)  # fmt: skip
  theirs = finder.find_lr(task, lambda hp: optax.sgd(hp["lr"], momentum=0.9), steps=30,
                          batch_size=None, key=KEY)  # fmt: skip
  np.testing.assert_allclose(ours.losses, theirs.losses, rtol=1e-5)


# --- edge cases ---------------------------------------------------------------------------------


def test_a_test_that_diverges_at_the_first_step_says_which_rules_cannot_be_computed(quadratic):
  _, task = quadratic
  result = finder.find_lr(task, "sgd", start_lr=50.0, end_lr=100.0, steps=30,
                          batch_size=None, key=KEY)  # fmt: skip
  assert result.stopped and result.num_recorded == 2 and result.stop_step == 1
  assert all(lr is None for lr in result.suggestions.values())
  assert set(result.reasons) == set(finder.RULES)
  assert "slide" in result.summary() and "None" in result.summary()


def test_a_test_that_never_diverges_still_suggests(quadratic):
  _, task = quadratic
  result = finder.find_lr(task, "sgd", start_lr=1e-4, end_lr=0.1, steps=30,
                          batch_size=None, key=KEY)  # fmt: skip
  assert result.stop_reason == "completed" and result.stop_lr is None and result.stop_step is None
  assert all(result.suggestions[r] is not None for r in ("steep", "valley", "minimum", "slide"))


def test_a_loss_that_overflows_stops_as_non_finite(quadratic):
  _, task = quadratic
  result = finder.find_lr(task, "sgd", start_lr=1e3, end_lr=1e9, steps=30,
                          divergence_factor=1e30, batch_size=None, key=KEY)  # fmt: skip
  assert result.stop_reason == "non-finite"
  assert not np.isfinite(result.losses[result.stop_step])


def test_after_a_nan_stop_fastais_tail_is_cut_from_the_planned_end():
  # fastai never stops on NaN (NaN > 4 x best is false): it trains on to num_it, cuts
  # losses[num_it // 10 : -5] from the planned end, then drops the NaNs. A curve still falling
  # when it turns NaN at step 60 of 100 has its minimum at step 59, not 55.
  n, k = 100, 60
  lrs = finder.lr_sequence(1e-7, 10.0, n)
  smoothed = 3.0 - 0.02 * np.arange(n)
  smoothed[k:] = np.nan
  result = finder.FinderResult(
    lrs=lrs, losses=smoothed, smoothed=smoothed, num_recorded=k + 1,
    stop_reason="non-finite", config={"steps": n},
  )  # fmt: skip
  assert result.points["minimum"].index == k - 1
  assert result.suggestions["minimum"] == pytest.approx(lrs[k - 1] / 10)


def test_save_load_and_plot(quadratic, tmp_path):
  _, task = quadratic
  result = finder.find_lr(task, "sgd", steps=40, batch_size=None, key=KEY)
  loaded = finder.FinderResult.load(result.save(tmp_path / "test.json"))
  np.testing.assert_array_equal(loaded.smoothed, result.smoothed)
  assert loaded.suggestions == result.suggestions and loaded.stop_lr == result.stop_lr
  figure = result.plot(tmp_path / "test.png")
  assert (tmp_path / "test.png").stat().st_size > 0
  assert figure.axes[0].get_xscale() == "log"


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("kwargs", "message"),
  [
    ({"start_lr": 1.0, "end_lr": 1.0}, "start_lr must be < end_lr"),
    ({"start_lr": 10.0, "end_lr": 1.0}, "start_lr must be < end_lr"),
    ({"start_lr": 0.0}, "start_lr must be a finite number > 0"),
    ({"end_lr": -1.0}, "end_lr must be a finite number > 0"),
    ({"steps": 22}, "steps must be an integer >= 23"),
    ({"steps": 50.0}, "steps must be an integer"),
    ({"spacing": "cosine"}, "spacing must be one of 'exponential', 'linear'"),
    ({"smoothing": 1.0}, "smoothing must be in"),
    ({"divergence_factor": 1.0}, "divergence_factor must be > 1"),
    ({"batch_size": 0}, "batch_size must be None"),
  ],
)
def test_bad_arguments_raise_clear_errors(quadratic, kwargs, message):
  _, task = quadratic
  arguments = {"batch_size": None, "key": KEY} | kwargs
  with pytest.raises(ValueError, match=message):
    finder.find_lr(task, "sgd", **arguments)


def test_a_make_tx_that_does_not_apply_the_schedule_is_refused(quadratic):
  _, task = quadratic
  with pytest.raises(ValueError, match="schedule"):
    finder.find_lr(task, lambda hp: optimizers.sgd(2 * hp["lr"]), batch_size=None, key=KEY)
  with pytest.raises(ValueError, match="unchanged"):
    finder.find_lr(task, lambda hp: optimizers.sgd(0.1), steps=30, batch_size=None, key=KEY)
  with pytest.raises(ValueError, match="make_tx must be a callable or one of"):
    finder.find_lr(task, "sgdd", batch_size=None, key=KEY)
  with pytest.raises(ValueError, match="task must be"):
    finder.find_lr(42, "sgd", batch_size=None, key=KEY)


def test_the_figure_module_does_not_import_the_result_back():
  """result.py draws itself with plots.py, so plots.py imports result.py for its type only."""
  import ast
  import inspect

  from lrlab.finder import plots

  tree = ast.parse(inspect.getsource(plots))
  runtime = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
  assert all("result" not in (getattr(node, "module", "") or "") for node in runtime)
  with pytest.raises(ValueError, match=r"must be an lrlab\.finder\.FinderResult"):
    plots.plot_range_test(object())


def test_the_figure_is_written_atomically(tmp_path, monkeypatch):
  # The figure was written in place: a failed write left half a PNG where the last one was.
  result = finder.result._example()
  draw = lambda path: finder.plot_range_test(result, path)
  figures.assert_written_atomically(draw, tmp_path / "range.png", monkeypatch)


@pytest.mark.parametrize(
  ("kwargs", "message"),
  [
    ({"key": 0}, r"key must be one jax.random key"),
    ({"key": None}, r"key must be one jax.random key"),
    ({"smoothing": None}, r"smoothing must be a number in \[0.0, 1.0\); got None"),
    ({"divergence_factor": None}, r"divergence_factor must be a number > 1; got None"),
  ],
)
def test_none_and_a_seed_for_the_key_are_one_line_errors(quadratic, kwargs, message):
  # They failed with JAX's or float()'s TypeError, naming no argument.
  _, task = quadratic
  with pytest.raises(ValueError, match=message):
    finder.find_lr(task, "sgd", **({"batch_size": None, "key": KEY} | kwargs))


def test_params_of_another_shape_or_with_the_model_state_are_refused():
  # A weight of the wrong width ran and reported "non-finite" with NaN losses; the tuple
  # task.init returns failed inside the model with an AssertionError.
  task = tasks.get("digits-logreg")
  params, model_state = task.init(jax.random.key(3))
  narrow = jax.tree.map(lambda a: a[..., :3], params)
  for wrong in (narrow, (params, model_state)):
    with pytest.raises(ValueError, match="params must have the tree structure and shapes"):
      finder.find_lr(task, "sgd", steps=30, batch_size=32, key=KEY, params=wrong)


def test_a_numpy_batch_size_is_an_integer_as_lrlab_train_takes_it(tmp_path):
  # np.int64(32) was refused as "not an integer in [1, 1294]"; the result must still save.
  task = tasks.get("digits-logreg")
  ours = finder.find_lr(task, "sgd", steps=30, batch_size=np.int64(32), key=KEY)
  plain = finder.find_lr(task, "sgd", steps=30, batch_size=32, key=KEY)
  np.testing.assert_array_equal(ours.losses, plain.losses)
  assert finder.FinderResult.load(ours.save(tmp_path / "r.json")).config["batch_size"] == 32


@pytest.mark.parametrize("name", ["prodigy", "dog", "dadapt_sgd", "sps"])
def test_a_learning_rate_free_optimizer_is_refused_before_the_test(quadratic, name, monkeypatch):
  # Its state reports the step it chose (d times the multiplier): the test trained, then blamed
  # a make_tx the user never wrote ("make_tx must pass hp['lr'] on, unchanged").
  _, task = quadratic
  monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("the range test was compiled"))
  with pytest.raises(ValueError, match=f"{name!r} is learning-rate-free"):
    finder.find_lr(task, name, steps=30, batch_size=None, key=KEY)


def test_an_infinite_stopping_loss_survives_save_and_load(tmp_path):
  # fastai stops on inf (inf > 4 x best) and cuts its tail from the stop; only a NaN makes it
  # train on to the planned end. Saved as None, the inf came back as NaN, and the suggestions
  # of the loaded result were read from another window (minimum: step 59, not 55).
  n, k = 100, 60
  lrs = finder.lr_sequence(1e-7, 10.0, n)
  smoothed = 3.0 - 0.02 * np.arange(n)
  smoothed[k] = np.inf
  smoothed[k + 1 :] = np.nan
  result = finder.FinderResult(
    lrs=lrs, losses=smoothed, smoothed=smoothed, num_recorded=k + 1,
    stop_reason="non-finite", config={"steps": n},
  )  # fmt: skip
  assert result.points["minimum"].index == k - 5  # fastai's [n // 10 : -5] of the recorded
  path = result.save(tmp_path / "r.json")
  loaded = finder.FinderResult.load(path)
  assert loaded.smoothed[k] == np.inf and np.isnan(loaded.smoothed[k + 1])
  assert loaded.points == result.points
  document = json.loads(path.read_text(), parse_constant=_refuse)  # strict JSON
  assert document["smoothed"][k : k + 2] == ["inf", "nan"]
  document["smoothed"][k + 1] = None  # as files saved NaN before: read as NaN too
  assert np.isnan(finder.FinderResult.from_dict(document).smoothed[k + 1])


def _refuse(constant):
  raise AssertionError(f"non-standard JSON constant {constant}")


def _nan_updates_from(step):
  """An Optax stage whose updates turn NaN at ``step`` (a NaN gradient under a finite loss)."""

  def update(updates, count, params=None):
    poison = jnp.where(count >= step, jnp.nan, 1.0)
    return jax.tree.map(lambda u: u * poison, updates), count + 1

  return optax.GradientTransformation(lambda params: jnp.zeros([], jnp.int32), update)


def test_parameters_that_turn_nan_under_a_finite_loss_record_the_next_loss_as_fastai_does(
  quadratic,
):
  # fastai checks only the smoothed loss: the step after the parameters turn NaN records a NaN
  # loss, which never stops it, so its window is cut from the planned end and then at that NaN
  # (minimum on a still-falling curve: the last finite step, 40). lrlab stopped one step early,
  # with a finite last loss, and cut fastai's five tail points from there (minimum: 35).
  _, task = quadratic
  k, n = 40, 60
  make_tx = lambda hp: optax.chain(optimizers.sgd(hp["lr"]), _nan_updates_from(k))
  result = finder.find_lr(task, make_tx, start_lr=1e-4, end_lr=1e-2, steps=n,
                          batch_size=None, key=KEY)  # fmt: skip
  assert result.stop_reason == "non-finite" and result.num_recorded == k + 2
  assert np.all(np.isfinite(result.smoothed[: k + 1])) and np.isnan(result.smoothed[k + 1])
  fastai = np.r_[result.smoothed[: k + 1], np.full(n - k - 1, np.nan)]  # trains on with NaN
  window = fastai[n // 10 : n - 5]
  window = window[: np.argmax(np.isnan(window))]  # fastai drops everything from the first NaN
  assert result.points["minimum"].index == n // 10 + int(np.argmin(window)) == k


def test_save_is_atomic(tmp_path, monkeypatch):
  # save wrote in place: a crash mid-write left truncated JSON where the last result was. The
  # crash is injected in both ways a save can write: into the file itself, or at the rename.
  import pathlib

  path, result = tmp_path / "r.json", finder.result._example()
  result.save(path)
  before = path.read_bytes()

  def half_then_crash(self, text, *args, **kwargs):
    with open(self, "w") as file:
      file.write(text[: len(text) // 2])
    raise OSError("disk full")

  def crash(*args, **kwargs):
    raise OSError("disk full")

  monkeypatch.setattr(pathlib.Path, "write_text", half_then_crash)
  monkeypatch.setattr(os, "replace", crash)
  with pytest.raises(OSError, match="disk full"):
    result.save(path)
  monkeypatch.undo()
  assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.json"]
