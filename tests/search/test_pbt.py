"""Population-based training: the exploit rule, exact copies of state, no recompilation."""

import dataclasses
import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lrlab import data, optimizers, search, sweep, tasks
from lrlab.search import members as members_lib
from lrlab.sweep import devices as devices_lib
from lrlab.train import Trainer

EIGENVALUES = np.array([0.05, 0.2, 1.0])
LRS = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8])
SETTINGS = dict(steps=40, interval=8, key=jax.random.key(0), chunk_size=4, eval_every=4, seeds=2)
CALLS = [0]
pbt_lib = importlib.import_module("lrlab.search.pbt")  # the module; search.pbt is the function


def _sgd(hp):
  CALLS[0] += 1
  return optimizers.sgd(hp["lr"])


@pytest.fixture(scope="module")
def problem():
  return data.quadratic(3, eigenvalues=EIGENVALUES, seed=0)


@pytest.fixture(scope="module")
def task(problem):
  return tasks.quadratic_task(problem)


@pytest.fixture(scope="module")
def population(task):
  sweep.clear_cache()
  CALLS[0] = 0
  result = search.pbt(task, _sgd, {"lr": LRS}, **SETTINGS)
  return result, CALLS[0], sweep.cache_info().programs


def test_exploit_follows_truncation_selection_and_perturbs_as_specified(population):
  result, _, _ = population
  n = 2  # floor(0.25 * 8)
  assert result.lineage.shape == (2, 8, 4)
  np.testing.assert_array_equal(result.exploit_steps, [8, 16, 24, 32])
  replaced = 0
  for s in range(2):
    for i, t in enumerate(result.exploit_steps):
      values = result.sweep.history.val_loss[s, :, t // 4]
      order = np.argsort(values, kind="stable")
      top, bottom = order[:n], order[-n:]
      sources = result.lineage[s, :, i]
      keep = np.setdiff1d(np.arange(8), bottom)
      np.testing.assert_array_equal(sources[keep], keep)
      assert set(sources[bottom]) <= set(top)
      before, after = result.schedule["lr"][s, :, i], result.schedule["lr"][s, :, i + 1]
      np.testing.assert_array_equal(after[keep], before[keep])
      ratio = after[bottom] / before[sources[bottom]]
      assert all(np.isclose(r, 0.8) or np.isclose(r, 1.25) for r in ratio)
      replaced += len(bottom)
  assert replaced == 2 * 4 * n


def _replay(problem, task, result):
  """NumPy gradient descent (float64) fed the recorded lineage and schedule: every member's
  curve, seeds 0 and 1, must match (after an exploit, x is the parent's, the rate the new one)."""
  h = np.asarray(problem.hessian, np.float64)
  x_star = np.asarray(problem.x_star, np.float64)
  for s in range(2):
    init_key, _ = jax.random.split(jax.random.fold_in(jax.random.key(0), s))
    x = np.tile(np.asarray(task.init(init_key)[0], np.float64), (8, 1))
    losses = [0.5 * np.einsum("ki,ij,kj->k", x - x_star, h, x - x_star)]
    for t in range(40):
      i = t // 8
      if t and t % 8 == 0:
        x = x[result.lineage[s, :, i - 1]]
      lr = result.schedule["lr"][s, :, i][:, None]
      x = x - lr * (x - x_star) @ h
      losses.append(0.5 * np.einsum("ki,ij,kj->k", x - x_star, h, x - x_star))
    expected = np.stack(losses, axis=1)[:, ::4]
    np.testing.assert_allclose(result.sweep.history.val_loss[s], expected, rtol=2e-4, atol=1e-9)
    # the learning rate each step applied follows the schedule
    applied = result.sweep.history.learning_rate[s]
    np.testing.assert_allclose(applied, np.repeat(result.schedule["lr"][s], 8, axis=1), rtol=1e-6)


def test_members_continue_from_their_parents_state_with_the_new_rates(problem, task, population):
  _replay(problem, task, population[0])


POOL = np.geomspace(0.005, 1.0, 16)
RESAMPLE = dict(perturb=(0.5, 1.1), resample_probability=0.5, resample={"lr": POOL})


@pytest.fixture(scope="module")
def resampled(task):
  sweep.clear_cache()
  CALLS[0] = 0
  result = search.pbt(task, _sgd, {"lr": LRS}, **SETTINGS, **RESAMPLE)
  return result, CALLS[0]


def test_resample_explore_step_matches_a_numpy_replay(problem, task, resampled):
  """Each replaced member's rate is its parent's times the drawn factor or, where the coin
  (probability 0.5) says so, the pool's value the uniform draw picks: replayed in NumPy."""
  result, _ = resampled
  kinds = {"resampled": 0, "perturbed": 0}
  for s in range(2):
    for i, t in enumerate(result.exploit_steps):
      order = np.argsort(result.sweep.history.val_loss[s, :, t // 4], kind="stable")
      top, bottom = order[:2], order[-2:]
      parents, factors = pbt_lib.exploit_draws(jax.random.key(0), s, i, 2, 2, 1, (0.5, 1.1))
      coins, uniforms = pbt_lib.explore_draws(jax.random.key(0), s, i, 2, 1, 0.5)
      sources = np.arange(8)
      sources[bottom] = top[parents]
      np.testing.assert_array_equal(result.lineage[s, :, i], sources)
      before = result.schedule["lr"][s, :, i]
      expected = before[sources].copy()
      for j, b in enumerate(bottom):
        if coins[j, 0]:
          expected[b] = POOL[int(uniforms[j, 0] * 16)]
        else:
          expected[b] = before[sources[b]] * factors[j, 0]
        kinds["resampled" if coins[j, 0] else "perturbed"] += 1
      np.testing.assert_array_equal(result.schedule["lr"][s, :, i + 1], expected)
  assert min(kinds.values()) >= 3  # both explore steps were exercised
  _replay(problem, task, result)  # and the members trained with those rates from those states
  assert result.config["resample"] == {"lr": POOL.tolist()}


@pytest.fixture(scope="module")
def tournament(task):
  sweep.clear_cache()
  return search.pbt(task, _sgd, {"lr": LRS}, exploit="tournament", **SETTINGS)


def test_tournament_replaces_each_member_whose_opponent_ranks_above(problem, task, tournament):
  """Binary tournament, replayed in NumPy from the draws: member i is replaced by a copy of
  its opponent j (uniform over the others) exactly where j ranks above i, with j's rate times
  the drawn factor; copies are of the states before the exploit, even where j is replaced too."""
  result, chains = tournament, 0
  for s in range(2):
    for i, t in enumerate(result.exploit_steps):
      values = result.sweep.history.val_loss[s, :, t // 4]
      opponents, factors = pbt_lib.tournament_draws(jax.random.key(0), s, i, 8, 1, (0.8, 1.25))
      assert np.all(opponents != np.arange(8)) and np.all((opponents >= 0) & (opponents < 8))
      sources, before = np.arange(8), result.schedule["lr"][s, :, i]
      expected = before.copy()
      for member, opponent in enumerate(opponents):
        if values[opponent] < values[member]:  # "if the other member's score is better"
          sources[member] = opponent
          expected[member] = before[opponent] * factors[member, 0]
      np.testing.assert_array_equal(result.lineage[s, :, i], sources)
      np.testing.assert_array_equal(result.schedule["lr"][s, :, i + 1], expected)
      replaced = sources != np.arange(8)
      assert 0 < replaced.sum() < 8
      chains += int(np.sum(replaced & np.isin(np.arange(8), sources[replaced])))
  assert chains > 0  # some member was copied and replaced in the same exploit
  _replay(problem, task, result)  # each member trained on from its parent's state before it
  assert result.config["exploit"] == "tournament"


def test_tournament_copies_nothing_at_a_tie(task):
  """Jaderberg et al.'s tournament copies the opponent only if its score is better: identical
  members score alike at every exploit, so none is replaced and none perturbed."""
  result = search.pbt(
    task, _sgd, {"lr": np.full(4, 0.1)}, steps=24, interval=8, key=jax.random.key(0),
    exploit="tournament", eval_every=8, seeds=2,
  )  # fmt: skip
  assert (result.sweep.history.val_loss[:, :, 1:] == result.sweep.history.val_loss[:, :1, 1:]).all()
  np.testing.assert_array_equal(result.lineage, np.broadcast_to(np.arange(4)[:, None], (2, 4, 2)))
  np.testing.assert_array_equal(result.schedule["lr"], np.full((2, 4, 3), 0.1))


def test_replaced_count_is_floor_of_the_ratio_meant():
  """floor(fraction * K) for the ratio the float stands for: 1/3 of 3, 6, 9 is 1, 2, 3."""
  cases = [(1 / 3, 3, 1), (1 / 3, 6, 2), (1 / 3, 9, 3), (1 / 6, 12, 2), (2 / 7, 7, 2)]
  cases += [(0.29, 100, 29), (np.float32(0.3), 10, 3), (0.25, 7, 1), (0.5, 5, 2)]
  for fraction, size, expected in cases:
    assert pbt_lib.replaced_count(fraction, size) == expected, (fraction, size)


def test_tournament_needs_no_fraction_of_a_small_population(task):
  """A tournament replaces no fixed share, so K = 2 with the default fraction runs."""
  result = search.pbt(
    task, _sgd, {"lr": LRS[:2]}, steps=16, interval=8, key=jax.random.key(0),
    exploit="tournament", eval_every=4,
  )  # fmt: skip
  assert result.lineage.shape == (1, 2, 1)
  with pytest.raises(ValueError, match=r"^fraction \* K must be >= 1"):
    search.pbt(task, _sgd, {"lr": LRS[:2]}, steps=16, interval=8, key=jax.random.key(0))


def test_resampling_never_recompiles(resampled, population):
  # From a cold cache, make_tx is traced as often as by the search that only perturbs.
  assert resampled[1] == population[1]


def test_new_hyperparameters_never_recompile(task, population):
  _, calls, programs = population
  assert programs == 1  # one chunk program for the whole population, across 4 exploits
  sweep.clear_cache()
  CALLS[0] = 0
  search.pbt(task, _sgd, {"lr": LRS}, **{**SETTINGS, "interval": 20})  # one exploit
  assert CALLS[0] == calls  # make_tx traced as often with 4 exploits as with one


def test_same_key_same_result_another_key_other_draws(task, population):
  result, _, _ = population
  again = search.pbt(task, _sgd, {"lr": LRS}, **SETTINGS)
  np.testing.assert_array_equal(again.lineage, result.lineage)
  np.testing.assert_array_equal(again.schedule["lr"], result.schedule["lr"])
  for a, b in zip(again.sweep.history, result.sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)
  other = search.pbt(task, _sgd, {"lr": LRS}, **{**SETTINGS, "key": jax.random.key(1)})
  assert not np.array_equal(other.schedule["lr"], result.schedule["lr"])


def test_stop_between_exploits_resumes_to_the_same_result(task, population, tmp_path):
  result, _, _ = population
  kwargs = dict(checkpoint_dir=str(tmp_path), checkpoint_interval=1e9, **SETTINGS)
  calls = [0]

  def stop_at_seventh():  # seed 1, after its second segment (one exploit done)
    calls[0] += 1
    return calls[0] == 7

  with pytest.raises(sweep.Stopped) as stopped:
    search.pbt(task, _sgd, {"lr": LRS}, should_stop=stop_at_seventh, **kwargs)
  assert stopped.value.position == {"seed": 1, "segment": 2}
  resumed = search.pbt(task, _sgd, {"lr": LRS}, **kwargs)
  assert resumed.metadata["resumed_from"] == {"seed": 1, "segment": 2}
  np.testing.assert_array_equal(resumed.lineage, result.lineage)
  np.testing.assert_array_equal(resumed.schedule["lr"], result.schedule["lr"])
  for a, b in zip(resumed.sweep.history, result.sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)


class _Bfloat16(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(5, 10, param_dtype=jnp.bfloat16, dtype=jnp.bfloat16, rngs=rngs)

  def __call__(self, x):
    return self.linear(x)


def test_a_search_over_bfloat16_parameters_resumes_to_the_same_result(tmp_path):
  # A checkpoint saves bfloat16 leaves as raw bytes: the search must read them back as
  # bfloat16, as lrlab.sweep.run's resume does.
  rng = np.random.default_rng(0)
  dataset = data.from_arrays(rng.normal(size=(120, 5)), rng.integers(0, 10, 120), num_classes=10)
  task = tasks.from_nnx(_Bfloat16, dataset, loss="cross_entropy", name="bfloat16")
  kwargs = dict(steps=4, interval=2, key=jax.random.key(0), batch_size=16, chunk_size=2)
  grid, make_tx = {"lr": np.array([1e-3, 1e-2])}, lambda hp: optax.adam(hp["lr"])
  straight = search.pbt(task, make_tx, grid, fraction=0.5, **kwargs)
  kwargs["checkpoint_dir"] = str(tmp_path)
  with pytest.raises(sweep.Stopped):
    search.pbt(task, make_tx, grid, fraction=0.5, should_stop=lambda: True, **kwargs)
  resumed = search.pbt(task, make_tx, grid, fraction=0.5, **kwargs)
  assert resumed.metadata["resumed_from"] is not None
  for a, b in zip(resumed.sweep.history, straight.sweep.history, strict=True):
    np.testing.assert_array_equal(a, b)


def _with_model_state(task):
  """The quadratic with a model state (a step count and a running mean of x), so that a copy
  must carry parameters, optimizer state and model state alike."""
  base_init, base_loss = task.init, task.loss

  def init(key):
    params, _ = base_init(key)
    return params, {"count": jnp.float32(0), "mean": jnp.zeros_like(params)}

  def loss(params, model_state, batch, key):
    value, _ = base_loss(params, {}, batch, key)
    count = model_state["count"] + 1
    mean = model_state["mean"] + (jax.lax.stop_gradient(params) - model_state["mean"]) / count
    return value, ({"count": count, "mean": mean}, {})

  return dataclasses.replace(task, init=init, loss=loss, name="quadratic-with-state")


def test_select_copies_parameters_optimizer_and_model_state_bit_for_bit(task):
  stateful = _with_model_state(task)
  trainer = Trainer(stateful, steps=12, batch_size=None, eval_every=4)
  adam = lambda hp: optimizers.adam(hp["lr"], b1=hp["b1"])
  mesh = devices_lib.member_mesh()
  pop = members_lib.Population(trainer, adam, mesh, 1, 4, {"lr": np.float64, "b1": np.float64},
                               jax.random.key(0))  # fmt: skip
  hp = {"lr": np.geomspace(0.01, 0.5, 6), "b1": np.linspace(0.5, 0.95, 6)}
  ledger = members_lib.Ledger.empty(6, 12, 4)
  pop.start(np.arange(6), hp, jax.random.key(0), ledger)
  pop.advance(0, ledger)
  before = pop.states()
  sources = np.array([3, 1, 3, 0, 4, 5])
  new_hp = {k: v[sources] * 1.25 for k, v in hp.items()}
  pop.select(sources, np.arange(6), new_hp)
  after = pop.states()
  assert pop.widths == [4, 4]  # same width: the same compiled program
  for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
    np.testing.assert_array_equal(a, np.asarray(b)[sources])
  assert float(after.model_state["count"][0]) == 4.0  # the model state is there, and moved
  assert jax.tree.leaves(before.opt_state)  # and so is Adam's state
  np.testing.assert_array_equal(pop.hp["lr"], new_hp["lr"])
  # The accelerator's path (one jitted gather, cut into chunks) copies the same bits.
  take = np.array([5, 0, 2, 2, 7, 1], np.int32)
  chunks = members_lib._gather(pop.chunks, take, 3)
  host = jax.tree.map(lambda *a: np.concatenate(a), *jax.device_get(pop.chunks))
  assert len(chunks) == 2
  for c, chunk in enumerate(chunks):
    for got, all_rows in zip(jax.tree.leaves(chunk), jax.tree.leaves(host), strict=True):
      np.testing.assert_array_equal(got, all_rows[take[3 * c : 3 * c + 3]])


def _never(hp):
  raise AssertionError("make_tx was called: pbt computed before checking its input")


@pytest.mark.parametrize(
  ("change", "message"),
  [
    (dict(fraction=0.0), r"^fraction must be a number in \(0, 0\.5\]; got 0\.0\.$"),
    (dict(fraction=0.6), r"^fraction must be a number in \(0, 0\.5\]; got 0\.6\.$"),
    (dict(fraction=0.1), r"^fraction \* K must be >= 1 .* K=8 members\.$"),
    (dict(perturb=()), r"^perturb must be a non-empty sequence of positive factors"),
    (dict(perturb=(0.8, -1.0)), r"^perturb must be a non-empty sequence of positive factors"),
    (dict(perturb_axes=["momentum"]), r"^perturb_axes must be one of"),
    (dict(perturb=("a", "b")), r"^perturb must be a non-empty sequence of positive factors"),
    (dict(perturb_axes="lr"), r"^perturb_axes must be a sequence of distinct float axis names"),
    (dict(perturb_axes=["lr", "lr"]), r"^perturb_axes must be a sequence of distinct float"),
    (
      dict(init_grid={"lr": LRS[:1]}, exploit="tournament"),
      r"^init_grid must have K >= 2 members \(a population\); got K=1\.$",
    ),
    (dict(exploit="binary"), r"^exploit must be one of"),
    (dict(interval=7), r"^interval must divide steps; got interval=7, steps=40\.$"),
    # One segment, no exploit: a grid under PBT's name (it ran, lineage of shape (S, K, 0)).
    (dict(interval=40), r"^interval must be less than steps .* got interval=40, steps=40\.$"),
    (dict(metric="accuracy"), r"^metric must be one of"),
    (dict(init_grid={}), r"^init_grid must be a non-empty dict"),
    (dict(resample_probability=1.5), r"^resample_probability must be a number in \[0, 1\]"),
    (dict(resample_probability=0.3), r"^resample must give the values .* resample=None"),
    (dict(resample={"lr": [0.1]}, resample_probability="x"), r"^resample_probability must"),
    (dict(resample={"b1": [0.9]}), r"^resample axis must be one of 'lr'; got 'b1'\.$"),
    (dict(resample={"lr": []}), r"^resample\['lr'\] must be a non-empty 1-D sequence"),
    (dict(resample={"lr": [0.1, np.nan]}), r"^resample\['lr'\] must be a non-empty 1-D"),
    (dict(resample=[0.1]), r"^resample must be a dict"),
    # It was accepted, and its values never drawn.
    (dict(resample={"lr": [0.1]}), r"^resample is used only with resample_probability > 0 "),
    (dict(should_stop=True), r"^should_stop must be None or a function \(\) -> bool; got True\.$"),
    (dict(checkpoint_interval=None), r"^checkpoint_interval must be a number; got None\.$"),
    (dict(checkpoint_interval="30"), r"^checkpoint_interval must be a number; got '30'\.$"),
    (dict(divergence_factor=None), r"^divergence_factor must be a number; got None\.$"),
  ],
)
def test_bad_input_is_one_line_before_any_compute(task, change, message):
  kwargs = dict(init_grid={"lr": LRS}, steps=40, interval=8, key=jax.random.key(0))
  kwargs.update(change)
  grid = kwargs.pop("init_grid")
  with pytest.raises(ValueError, match=message) as error:
    search.pbt(task, _never, grid, **kwargs)
  assert "\n" not in str(error.value)


def test_plot_draws_schedules_and_lineage(population, tmp_path):
  result, _, _ = population
  figure = search.plot_pbt(result, tmp_path / "pbt.png")
  assert (tmp_path / "pbt.png").stat().st_size > 0
  top, bottom = figure.axes
  assert len(bottom.get_lines()) >= 8  # one curve per member
  # one dotted copy line per replaced member and exploit (seed 0), beside the 8 schedules
  copies = sum((result.lineage[0, :, i] != np.arange(8)).sum() for i in range(4))
  assert sum(line.get_linestyle() == ":" for line in top.get_lines()) == copies
  with pytest.raises(ValueError, match=r"^axis must be one of"):
    search.plot_pbt(result, tmp_path / "x.png", axis="momentum")


def test_save_and_load_give_the_same_population(population, tmp_path):
  result, _, _ = population
  again = search.SearchResult.load(result.save(tmp_path / "pbt"))
  assert again == result and again.best(seed=1) == result.best(seed=1)
  answers = json.loads((tmp_path / "pbt" / "search.json").read_text())["best"]
  assert [a["index"] for a in answers] == [result.best(seed=s)["index"] for s in range(2)]
  assert again.schedule["lr"].dtype == result.schedule["lr"].dtype
  changed = dataclasses.replace(again, lineage=again.lineage[..., ::-1])
  assert changed != result


def test_best_of_one_seed_is_that_seeds_own_answer(population):
  result, _, _ = population
  final = result.final()  # (2 seeds, 8 members), val_loss at the budget
  for s in range(2):
    best = result.best(seed=s)
    index = int(np.nanargmin(final[s]))
    assert best["index"] == index and best["value"] == final[s, index]
    assert best["finished_seeds"] == 1
    assert best["schedule"]["lr"] == result.schedule["lr"][s, index].tolist()
  # Member k of seed 0 and of seed 1 share nothing: no pooled answer. (The mean over seeds,
  # which best() gave and search.json kept, picked another member than seed 0 alone.)
  with pytest.raises(ValueError, match=r"^seed must be given for PBT over 2 seeds"):
    result.best()
  for seed in (2, -1, 0.5, True):
    with pytest.raises(ValueError, match=r"^seed must be an integer in \[0, 2\); got "):
      result.best(seed=seed)


def test_docstring_cites_the_paper_it_implements():
  references = search.pbt.__doc__.split("References:")[-1]
  assert "Population Based Training of Neural Networks" in references
  assert "https://arxiv.org/abs/1711.09846" in references


def test_truncation_replaces_floor_of_fraction_times_k_exactly(task):
  """n = floor(fraction * K) as written: floor(0.29 * 100) = 29 (the float product,
  28.999999999999996, floored to 28); a NumPy float32 fraction is a number like any other."""
  grid = {"lr": np.geomspace(0.01, 0.5, 100)}
  kwargs = dict(steps=16, interval=8, key=jax.random.key(0), eval_every=8, chunk_size=100)
  for fraction, size, expected in ((0.29, 100, 29), (np.float32(0.25), 8, 2)):
    result = search.pbt(task, _sgd, {"lr": grid["lr"][:size]}, fraction=fraction, **kwargs)
    assert (result.lineage[0, :, 0] != np.arange(size)).sum() == expected
