"""Successive halving and Hyperband against closed-form curves and the plain sweep."""

import dataclasses
import fractions
import json
import math
import os
import signal
import warnings

import jax
import numpy as np
import pytest

from lrlab import data, optimizers, search, sweep, tasks
from lrlab.search import halving

# Gradient descent on 1/2 (x - x*)^T H (x - x*): the loss after t steps at rate lr is known in
# closed form, so the ranking at every rung is known. L = 1: lr > 2 diverges.
EIGENVALUES = np.array([0.05, 0.2, 1.0])
LRS = np.array([0.02, 0.1, 0.3, 0.6, 1.0, 1.4, 1.8, 1.97, 2.5])
STEPS, MIN_STEPS, ETA = 36, 4, 3  # rungs at 4, 12, 36


def _sgd(hp):
  return optimizers.sgd(hp["lr"])


@pytest.fixture(scope="module")
def problem():
  return data.quadratic(3, eigenvalues=EIGENVALUES, seed=0)


@pytest.fixture(scope="module")
def task(problem):
  return tasks.quadratic_task(problem)


def _closed_form_losses(problem, task, key, seed, lrs, steps):
  """NumPy, float64: ``(len(lrs), steps + 1)`` losses of gradient descent from the seed's x0."""
  init_key, _ = jax.random.split(jax.random.fold_in(key, seed))
  x0 = np.asarray(task.init(init_key)[0], np.float64)
  h = np.asarray(problem.hessian, np.float64)
  x_star = np.asarray(problem.x_star, np.float64)
  out = np.empty((len(lrs), steps + 1))
  for k, lr in enumerate(lrs):
    d = x0 - x_star
    for t in range(steps + 1):
      out[k, t] = 0.5 * d @ h @ d
      d = d - lr * h @ d
  return out


def _expected_halving(losses, rungs, eta, initial):
  """The rule, in NumPy: at each rung keep the best max(1, n // eta); a member that diverged
  (a step's loss, taken before its update, above 10x the initial one) ranks last. Returns each
  member's stopping step."""
  alive = np.arange(len(losses))
  stopped = np.full(len(losses), rungs[-1])
  for r in rungs[:-1]:
    values = losses[alive, r].copy()
    values[~(np.max(losses[alive, :r], axis=1) <= 10 * initial)] = np.inf
    order = np.argsort(values, kind="stable")
    stopped[alive[order[max(1, len(alive) // eta) :]]] = r
    alive = np.sort(alive[order[: max(1, len(alive) // eta)]])
  return stopped


@pytest.fixture(scope="module")
def halved(task):
  return search.successive_halving(
    task, _sgd, {"lr": LRS}, steps=STEPS, min_steps=MIN_STEPS, eta=ETA, key=jax.random.key(0),
    seeds=2, chunk_size=3, eval_every=2,
  )  # fmt: skip


def test_rungs_and_brackets_follow_the_papers():
  assert halving.rung_steps(STEPS, MIN_STEPS, ETA) == [4, 12, 36]
  assert halving.rung_steps(40, 4, 3) == [4, 12, 36, 40]
  # Li et al. 2018, Table 1 (R = 81, eta = 3): n = 81, 34, 15, 8, 5.
  assert [n for n, _ in halving.hyperband_brackets(5, 3)] == [81, 34, 15, 8, 5]


def test_bracket_sizes_are_exact_integer_ceilings():
  # n_s = ceil((s_max + 1) / (s + 1) * eta**s), computed exactly: in floats (11 / 9) * 3**8,
  # exactly 8019, comes out a hair above it and its ceiling one too many (eta = 3, 11 rungs).
  for eta in range(2, 10):
    for rungs in range(1, 13):
      exact = [
        (math.ceil(fractions.Fraction(rungs, s + 1) * eta**s), rungs - 1 - s)
        for s in range(rungs - 1, -1, -1)
      ]
      assert halving.hyperband_brackets(rungs, eta) == exact, (eta, rungs)


def test_keeps_exactly_the_right_members_and_stops_them_at_the_right_rungs(problem, task, halved):
  rungs = [4, 12, 36]
  for s in range(2):
    losses = _closed_form_losses(problem, task, jax.random.key(0), s, LRS, STEPS)
    expected = _expected_halving(losses, rungs, ETA, losses[0, 0])
    np.testing.assert_array_equal(halved.stopped_step[s], expected)
    np.testing.assert_array_equal(halved.rung[s], [rungs.index(t) for t in expected])
    assert sorted(np.bincount(halved.rung[s])) == [1, 2, 6]  # 9 -> 3 -> 1
    curves = halved.sweep.history.val_loss[s]
    for k, stop in enumerate(expected):
      evals = np.arange(0, stop + 1, 2)
      if not halved.sweep.history.diverged[s, k]:
        np.testing.assert_allclose(curves[k, : len(evals)], losses[k, evals], rtol=2e-4, atol=1e-7)
      assert np.isnan(curves[k, len(evals) :]).all()
      diverged = np.max(losses[k, :stop]) > 10 * losses[k, 0]
      assert halved.sweep.history.diverged[s, k] == diverged
  assert halved.sweep.history.diverged[1, LRS > 2].all()  # seed 1's x0 diverges within 4 steps
  assert not halved.sweep.history.diverged[:, LRS < 2].any()
  # 9 members for 4 steps, 3 for 8 more, 1 for 24 more; in each of 2 seeds.
  assert halved.model_steps == 2 * (9 * 4 + 3 * 8 + 1 * 24)
  best = halved.best()
  final = [
    _closed_form_losses(problem, task, jax.random.key(0), s, LRS, STEPS)[:, -1] for s in (0, 1)
  ]
  winners = {int(np.flatnonzero(halved.stopped_step[s] == STEPS)[0]) for s in (0, 1)}
  assert best["index"] in winners
  assert best["hyperparameters"] == {"lr": float(LRS[best["index"]])}
  assert best["value"] == pytest.approx(final[0][best["index"]], rel=1e-3)


@pytest.fixture(scope="module")
def noisy_task():
  return tasks.get("quadratic", dim=8, noise=1.0, num_train=64)


NOISY = dict(
  steps=36, min_steps=4, eta=3, key=jax.random.key(3), seeds=2, batch_size=8, eval_every=2
)


def test_compacted_chunks_match_the_uncompacted_sweep(noisy_task):
  grid = {"lr": np.geomspace(0.05, 2.5, 9)}
  result = search.successive_halving(noisy_task, _sgd, grid, chunk_size=3, **NOISY)
  full = sweep.run(
    noisy_task, _sgd, grid, steps=36, batch_size=8, key=jax.random.key(3), eval_every=2,
    seeds=2, chunk_size=3, progress=False,
  )  # fmt: skip
  for s in range(2):
    for k in range(9):
      stop = result.stopped_step[s, k]
      points = stop // 2 + 1
      # Chunks of width 3 while >= 3 members live; the last survivor runs in a chunk of 1.
      upto = points if stop < 36 else 12 // 2 + 1
      for name in ("train_loss", "val_loss", "test_loss"):
        ours, theirs = getattr(result.sweep.history, name), getattr(full.history, name)
        np.testing.assert_array_equal(ours[s, k, :upto], theirs[s, k, :upto])
        np.testing.assert_allclose(ours[s, k, :points], theirs[s, k, :points], rtol=1e-5)
      np.testing.assert_array_equal(
        result.sweep.history.learning_rate[s, k, : min(stop, 12)],
        full.history.learning_rate[s, k, : min(stop, 12)],
      )
  assert result.sweep.metadata["compile_seconds"] >= 0


def test_same_key_same_result_and_divergence_is_isolated(noisy_task):
  lrs = np.geomspace(0.05, 1.5, 9)
  again = [
    search.successive_halving(noisy_task, _sgd, {"lr": lrs}, chunk_size=3, **NOISY)
    for _ in range(2)
  ]
  np.testing.assert_array_equal(again[0].stopped_step, again[1].stopped_step)
  for a, b in zip(again[0].sweep.history, again[1].sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)
  # The worst member replaced by one that diverges at once: flagged, stopped at the first rung,
  # and every other member's numbers unchanged, bit for bit.
  worst = int(np.argmax(again[0].sweep.history.val_loss[0, :, 2]))
  wild = lrs.copy()
  wild[worst] = 50.0
  diverging = search.successive_halving(noisy_task, _sgd, {"lr": wild}, chunk_size=3, **NOISY)
  assert diverging.sweep.history.diverged[:, worst].all()
  assert (diverging.stopped_step[:, worst] == 4).all()
  others = np.arange(9) != worst
  np.testing.assert_array_equal(diverging.stopped_step[0, others], again[0].stopped_step[0, others])
  np.testing.assert_array_equal(
    diverging.sweep.history.val_loss[0, others], again[0].sweep.history.val_loss[0, others]
  )


def test_stop_mid_rung_resumes_to_the_same_result(noisy_task, tmp_path):
  grid = {"lr": np.geomspace(0.05, 2.5, 9)}
  kwargs = dict(chunk_size=3, checkpoint_dir=str(tmp_path), checkpoint_interval=1e9, **NOISY)
  whole = search.successive_halving(noisy_task, _sgd, grid, **{**kwargs, "checkpoint_dir": None})
  calls = [0]

  def stop_at_fifth():  # segment 5 of 9 ends at step 20: mid-rung (12 -> 36), seed 0
    calls[0] += 1
    return calls[0] == 5

  with pytest.raises(sweep.Stopped) as stopped:
    search.successive_halving(noisy_task, _sgd, grid, should_stop=stop_at_fifth, **kwargs)
  assert stopped.value.position == {"seed": 0, "segment": 5}
  resumed = search.successive_halving(noisy_task, _sgd, grid, **kwargs)
  assert resumed.metadata["resumed_from"] == {"seed": 0, "segment": 5}
  np.testing.assert_array_equal(resumed.stopped_step, whole.stopped_step)
  for a, b in zip(resumed.sweep.history, whole.sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)
  assert resumed.model_steps == whole.model_steps
  assert not list(tmp_path.iterdir())  # the finished search clears its checkpoint


def test_hyperband_runs_each_bracket_as_successive_halving(problem, task):
  result = search.hyperband(
    task, _sgd, {"lr": LRS}, steps=STEPS, min_steps=MIN_STEPS, eta=ETA, key=jax.random.key(0),
    chunk_size=3, eval_every=2,
  )  # fmt: skip
  brackets = halving.hyperband_brackets(3, ETA)  # (9, 0), (5, 1), (3, 2)
  assert np.bincount(result.bracket).tolist() == [9, 5, 3]
  assert result.rungs == [[4, 12, 36], [12, 36], [36]]
  index = np.asarray(result.config["grid_index"])
  np.testing.assert_array_equal(result.sweep.grid["lr"], LRS[index])
  losses = _closed_form_losses(problem, task, jax.random.key(0), 0, LRS, STEPS)
  spent = 0
  for b, (n, _) in enumerate(brackets):
    mine = result.bracket == b
    rungs = result.rungs[b]
    expected = _expected_halving(losses[index[mine]], rungs, ETA, losses[0, 0])
    np.testing.assert_array_equal(result.stopped_step[0, mine], expected)
    spent += expected.sum()
    assert len(set(index[mine])) == n  # drawn without replacement
  assert result.model_steps == spent


def test_hyperband_brackets_are_li_et_als_or_refused(task):
  """Li et al.'s s_max = floor(log_eta(R / r)): R / r = 10, eta = 3 gives s_max = 2 and brackets
  of 9, 5, 3. Rungs 4, 12, 36, 40 would give four brackets (27, 12, 6, 4): refused."""
  s_max = max(s for s in range(10) if 3**s <= 40 // 4)
  assert s_max == 2 and len(halving.rung_steps(40, 4, 3)) - 1 != s_max
  with pytest.raises(
    ValueError, match=r"^hyperband needs steps = min_steps \* eta\*\*k .*= 10\)\.$"
  ):
    search.hyperband(task, _never, {"lr": LRS}, steps=40, min_steps=4, key=jax.random.key(0))


def _never(hp):
  raise AssertionError("make_tx was called: the search computed before checking its input")


@pytest.mark.parametrize(
  ("change", "message"),
  [
    (dict(eta=1), r"^eta must be an integer >= 2 .*got 1\.$"),
    (dict(eta=2.5), r"^eta must be an integer >= 2 .*got 2\.5\.$"),
    (dict(min_steps=5), r"^min_steps must divide steps; got min_steps=5, steps=36\.$"),
    (dict(grid={}), r"^grid must be a non-empty dict"),
    (dict(metric="val_acc"), r"^metric must be one of"),
    (dict(metric="val_accuracy"), r"^metric must be one the task .* has no accuracy"),
    (dict(eval_every=3), r"^eval_every must divide min_steps"),
    (dict(should_stop=True), r"^should_stop must be None or a function \(\) -> bool; got True\.$"),
    (dict(checkpoint_interval=None), r"^checkpoint_interval must be a number; got None\.$"),
    (dict(checkpoint_interval="30"), r"^checkpoint_interval must be a number; got '30'\.$"),
    (dict(divergence_factor=None), r"^divergence_factor must be a number; got None\.$"),
    (dict(checkpoint_dir=__file__), r"^checkpoint_dir must be a folder .* which is a file\.$"),
  ],
)
@pytest.mark.parametrize("method", [search.successive_halving, search.hyperband])
def test_bad_input_is_one_line_before_any_compute(task, method, change, message):
  kwargs = dict(grid={"lr": LRS}, steps=STEPS, min_steps=MIN_STEPS, key=jax.random.key(0))
  kwargs.update(change)
  grid = kwargs.pop("grid")
  with pytest.raises(ValueError, match=message) as error:
    method(task, _never, grid, **kwargs)
  assert "\n" not in str(error.value)


def test_hyperband_refuses_a_single_bracket_of_one_random_member(task):
  """steps = min_steps gives s_max = 0: Li et al.'s one bracket of ceil(1 * 3**0 / 1) = 1
  member, drawn at random and trained for the budget (it ran, answering that member)."""
  with pytest.raises(
    ValueError, match=r"^hyperband needs min_steps < steps .*got min_steps=36, steps=36\.$"
  ) as error:
    search.hyperband(task, _never, {"lr": LRS}, steps=36, min_steps=36, key=jax.random.key(0))
  assert "\n" not in str(error.value)


def test_best_is_a_member_that_finished_when_every_finisher_diverged(problem, task):
  """Rates above 2 on a quadratic with L = 1 all diverge; one of them still survives every rung
  and trains the budget. The answer is that member, valued inf, never one stopped at a rung
  (best() answered member 0, stopped at step 4, value NaN, finished in 0 seeds)."""
  lrs = np.array([5.0, 3.0, 2.5, 4.0, 6.0])
  result = search.successive_halving(
    task, _sgd, {"lr": lrs}, steps=STEPS, min_steps=MIN_STEPS, eta=2, key=jax.random.key(0),
    chunk_size=2,
  )  # fmt: skip
  assert result.sweep.history.diverged.all()
  (finisher,) = np.flatnonzero(result.stopped_step[0] == STEPS)
  assert finisher != 0  # the rate 5.0 diverges within the first rung
  best = result.best()
  assert best["index"] == finisher
  assert best["value"] == np.inf and best["finished_seeds"] == 1
  assert best["hyperparameters"] == {"lr": float(lrs[finisher])}
  assert result.best(seed=0)["index"] == finisher


@pytest.mark.slow  # a subprocess
def test_sigkill_mid_rung_resumes_to_the_same_result(tmp_path):
  import subprocess
  import sys

  from tests.search import search_worker

  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  # Seed 1's 6th segment boundary (9 + 6 calls): steps 24 of 36, mid-rung (12 -> 36).
  done = subprocess.run(
    [sys.executable, "-m", "tests.search.search_worker", str(tmp_path), "15"],
    cwd=root, capture_output=True, text=True, timeout=300,
  )  # fmt: skip
  assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
  task, make_tx, grid, kwargs = search_worker.settings()
  resumed = search.successive_halving(task, make_tx, grid, checkpoint_dir=str(tmp_path), **kwargs)
  assert resumed.metadata["resumed_from"] == {"seed": 1, "segment": 5}
  whole = search.successive_halving(task, make_tx, grid, **kwargs)
  np.testing.assert_array_equal(resumed.stopped_step, whole.stopped_step)
  for a, b in zip(resumed.sweep.history, whole.sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)


def test_an_automatic_chunk_keeps_one_width_one_program(noisy_task):
  sweep.clear_cache()
  grid = {"lr": np.geomspace(0.05, 2.5, 9)}
  result = search.successive_halving(noisy_task, _sgd, grid, **NOISY)
  assert result.config["fixed_width"] is True
  assert sweep.cache_info().programs == 1  # 9 -> 3 -> 1 members, one compiled width
  sweep.clear_cache()
  given = search.successive_halving(noisy_task, _sgd, grid, chunk_size=4, **NOISY)
  assert given.config["fixed_width"] is False
  assert sweep.cache_info().programs > 1  # a given width narrows for the last member
  np.testing.assert_array_equal(result.stopped_step, given.stopped_step)


def test_save_and_load_give_the_same_search(halved, tmp_path):
  folder = halved.save(tmp_path / "halving", answer=["Best lr = ..."])
  again = search.SearchResult.load(folder)
  assert again == halved and again.best() == halved.best()
  # Strict JSON, no NaN or Infinity constants, also where a setting is infinite.
  swept = halved.sweep
  config = {**swept.config, "divergence_factor": np.inf}
  unbounded = sweep.SweepResult(swept.grid, swept.seeds, swept.history, config, swept.metadata)
  folder = dataclasses.replace(halved, sweep=unbounded).save(tmp_path / "unbounded")
  for name in ("search.json", "sweep.json"):
    json.loads((folder / name).read_text(), parse_constant=lambda c: pytest.fail(c))
  assert search.SearchResult.load(folder).sweep.config["divergence_factor"] == np.inf
  assert again.stopped_step.dtype == halved.stopped_step.dtype
  with pytest.raises(ValueError, match=r"holds no search\.json"):
    search.SearchResult.load(tmp_path)
  # A truncated search.json (a copy cut short) raised json's JSONDecodeError, naming no file.
  (folder / "search.json").write_text((folder / "search.json").read_text()[:100])
  with pytest.raises(ValueError, match=r"search\.json' is not valid JSON \(.*save the search"):
    search.SearchResult.load(folder)


def test_a_search_no_member_finished_in_every_seed_saves_loads_and_plots(tmp_path):
  """Each seed keeps its own survivors, so no member may have finished in every seed, and
  then none has a seed-mean final accuracy. Saving raised on the sweep's seed-mean summary,
  as did the command line's curves figure: `lrlab sweep --search halving` at its default 3
  seeds on mnist1d-mlp failed after training."""
  result = search.successive_halving(
    tasks.get("digits-logreg"), _sgd, {"lr": np.geomspace(0.01, 3, 9)}, steps=36, min_steps=4,
    eta=3, key=jax.random.key(0), seeds=2, batch_size=8, eval_every=2, metric="val_accuracy",
  )  # fmt: skip
  finishers = [int(np.flatnonzero(result.stopped_step[s] == 36)[0]) for s in range(2)]
  assert finishers[0] != finishers[1]
  assert np.isnan(result.sweep.seed_mean("final_val_accuracy")).all()
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # nor a NumPy warning about an all-NaN slice
    folder = result.save(tmp_path / "apart")
  assert search.SearchResult.load(folder) == result
  assert json.loads((folder / "sweep.json").read_text())["summary"] is None
  best = result.best()["index"]
  assert best in finishers
  sweep.plot_curves(result.sweep, tmp_path / "curves.png", "val_accuracy", index=best)
  assert (tmp_path / "curves.png").exists()
  with pytest.raises(ValueError, match="give best_by or index, not both"):
    sweep.plot_curves(result.sweep, tmp_path / "x.png", best_by="final_val_loss", index=best)


def test_over_several_seeds_the_answer_is_the_setting_most_seeds_picked():
  """Each seed searches alone. best() averaged each member over the seeds it finished in, so
  Hyperband on the quadratic answered lr = 1, finished in one seed only, where each of the 3
  seeds' own searches picked 0.316 (which beat 1 in that seed)."""
  grid = {"lr": sweep.log_grid(1e-4, 1, 9)}
  result = search.hyperband(
    "quadratic", lambda hp: optimizers.adam(hp["lr"]), grid, steps=90, min_steps=10, eta=3,
    key=jax.random.key(0), seeds=3, batch_size=100, eval_every=10,
  )  # fmt: skip
  picks = {result.best(seed=s)["hyperparameters"]["lr"] for s in range(3)}
  best = result.best()
  assert picks == {best["hyperparameters"]["lr"]} == {grid["lr"][7]}
  assert best["picked_seeds"] == 3 and best["finished_seeds"] == 3
  final = result.final()[:, best["index"]]
  assert best["value"] == pytest.approx(np.mean(final))


def test_rungs_given_as_numpy_integers_load_back_as_integers(task, tmp_path):
  # steps and min_steps as NumPy integers (accepted): the rungs are saved as JSON integers,
  # not through json's default=float as 4.0, 12.0, 36.0.
  result = search.successive_halving(
    task, _sgd, {"lr": LRS[:3]}, steps=np.int64(STEPS), min_steps=np.int64(MIN_STEPS), eta=ETA,
    key=jax.random.key(0), chunk_size=3,
  )  # fmt: skip
  again = search.SearchResult.load(result.save(tmp_path / "halving"))
  assert again.rungs == [[4, 12, 36]]
  assert all(type(t) is int for t in again.rungs[0])


@pytest.mark.parametrize(
  ("method", "paper"),
  [(search.successive_halving, "1502.07943"), (search.hyperband, "1603.06560")],
)
def test_docstring_cites_the_paper_it_implements(method, paper):
  references = method.__doc__.split("References:")[-1]
  assert f"https://arxiv.org/abs/{paper}" in references


def test_a_kept_checkpoint_returns_the_finished_search_without_training(task, tmp_path):
  # keep_checkpoint (as lrlab.sweep.run's): the finished search stays in checkpoint_dir, so a
  # caller that fails before saving the result gets it back without training again.
  kwargs = dict(steps=STEPS, min_steps=MIN_STEPS, eta=ETA, key=jax.random.key(0), seeds=2,
                chunk_size=3, checkpoint_dir=str(tmp_path), keep_checkpoint=True)  # fmt: skip
  first = search.successive_halving(task, _sgd, {"lr": LRS}, **kwargs)
  assert first.metadata["resumed_from"] is None and list(tmp_path.iterdir())
  again = search.successive_halving(task, _sgd, {"lr": LRS}, **kwargs)
  assert again.metadata["resumed_from"] == {"seed": 2, "segment": 0}  # after the last seed
  np.testing.assert_array_equal(again.stopped_step, first.stopped_step)
  for a, b in zip(again.sweep.history, first.sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)
  assert again.model_steps == first.model_steps
