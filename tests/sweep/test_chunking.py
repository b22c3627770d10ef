"""chunk_size="auto": the probe's choice on fake timings, its memory, and a real tiny sweep."""

import json
import math

import chex
import jax
import numpy as np
import pytest

from lrlab import optimizers, sweep, tasks
from lrlab.sweep import checkpoint, chunking

KEY = jax.random.key(0)


def _sgd(hp):
  return optimizers.sgd(hp["lr"], momentum=0.9)


def _brute_force(sizes, num_members, seconds):
  """The reference: every size timed, the least ceil(K / c) * seconds(c)."""
  return min(sizes, key=lambda c: math.ceil(num_members / c) * seconds(c))


def _bowl(best: int):
  """Fake seconds of one call of c members: per-member cost least at ``best`` (unimodal in
  log c), so the sweep's estimate has one minimum."""
  return lambda c: c * (1.0 + 0.3 * abs(math.log2(c / best)))


def _passes(climbed: list[int]) -> list[int]:
  """The sizes a climb times, in order: its climb, then the second pass, ascending."""
  return [*climbed, *sorted(climbed)]


def test_the_climb_reaches_a_best_size_five_octaves_below_the_heuristics():
  """On the 2-core VM the heuristic starts the MLP's K = 512 at 256 (its sysfs reports a shared
  300 MiB cache) while chunks of 8 run fastest: the climb must get there within its budget."""
  sizes = chunking.ladder(256, 512, 2, limit=10**9)
  timed = []
  seconds = _bowl(8)
  chosen, _ = chunking.climb(sizes, 256, 512, lambda c: timed.append(c) or seconds(c))
  assert chosen == 8 == _brute_force(sizes, 512, seconds)
  # Down only (128 beat 256, so 512 is not timed), then the second pass.
  assert timed == _passes([256, 128, 64, 32, 16, 8, 4, 2])


@pytest.mark.parametrize("best", [8, 32, 128, 512])
@pytest.mark.parametrize("first", [16, 48])
def test_the_climb_finds_the_fastest_size(best, first):
  sizes = chunking.ladder(first, 512, 2, limit=10**9)
  assert first in sizes and all(c % 2 == 0 for c in sizes) and sizes[-1] == 512
  timed = []
  seconds = _bowl(best)
  chosen, estimates = chunking.climb(sizes, first, 512, lambda c: timed.append(c) or seconds(c))
  assert chosen == _brute_force(sizes, 512, seconds)
  climbed = timed[: len(set(timed))]
  assert timed == _passes(climbed) and climbed[0] == first
  assert len(set(climbed)) == len(climbed) <= chunking.MAX_CANDIDATES
  assert estimates == {c: math.ceil(512 / c) * seconds(c) for c in timed}


def test_the_climb_stops_after_its_candidates():
  sizes = chunking.ladder(16, 512, 2, limit=10**9)
  timed = []
  chosen, _ = chunking.climb(sizes, 16, 512, lambda c: timed.append(c) or 1.0, max_candidates=4)
  # Each step up halves the calls: down misses twice (8, 4), then up until the budget is spent.
  assert timed == _passes([16, 8, 4, 32]) and chosen == 32


def test_the_climb_goes_up_from_the_smallest_size():
  # The transformer's shape (chunks_transformer.json): the heuristic's size is one member per
  # device, the floor of the ladder, and the fastest is one step up.
  whole = {2: 6.31, 4: 5.48, 8: 5.94, 16: 6.09, 32: 6.5, 64: 7.0}
  sizes = chunking.ladder(2, 64, 2, limit=64)
  timed = []
  chosen, _ = chunking.climb(sizes, 2, 64, lambda c: timed.append(c) or whole[c] / (64 // c))
  assert timed == _passes([2, 4, 8, 16]) and chosen == 4


def test_the_climb_goes_up_only_where_nothing_below_beat_the_first_size():
  whole = {2: 3.0, 4: 2.0, 8: 1.5, 16: 1.2, 32: 1.0, 64: 0.9, 128: 0.8}
  sizes = chunking.ladder(32, 128, 2, limit=10**9)
  timed = []
  chosen, _ = chunking.climb(sizes, 32, 128, lambda c: timed.append(c) or whole[c] / (128 // c))
  assert timed == _passes([32, 16, 8, 64, 128]) and chosen == 128  # 16 and 8 missed: then up
  whole[16] = 0.95  # now 16 beats 32: the climb stays below
  timed.clear()
  chosen, _ = chunking.climb(sizes, 32, 128, lambda c: timed.append(c) or whole[c] / (128 // c))
  assert timed == _passes([32, 16, 8, 4]) and chosen == 16


def test_one_size_no_faster_does_not_end_the_climb():
  # The shape of the first quiet 2-core run at K = 512 (BENCHMARKS.md, issue 16): 128 sat on a
  # shoulder above the heuristic's 256, while 16 was the fastest. Stopping at the first size no
  # faster (128) would keep 256; and as 64 beat 256, the dear 512 is never timed.
  whole = {2: 2.0, 4: 1.5, 8: 1.06, 16: 0.9, 32: 1.02, 64: 1.04, 128: 1.14, 256: 1.12, 512: 1.0}
  sizes = chunking.ladder(256, 512, 2, limit=10**9)
  timed = []
  per_call = lambda c: timed.append(c) or whole[c] / math.ceil(512 / c)
  chosen, estimates = chunking.climb(sizes, 256, 512, per_call)
  assert timed == _passes([256, 128, 64, 32, 16, 8, 4]) and chosen == 16  # 8, 4: two misses
  assert estimates == pytest.approx({c: whole[c] for c in timed})


def test_the_second_pass_undoes_a_burst_during_the_climb():
  """The AMD CNN probe at K = 512 (BENCHMARKS.md, issue 16): a slowdown while the climb timed
  16, 8 and 4 put them above 32, which the sweep then ran 1.16x slower than 8. Timed again
  after the climb, each size keeps its lesser estimate, and 8 wins."""
  burst = {4: 20.3, 8: 21.2, 16: 15.5, 32: 14.4, 64: 16.0, 128: 16.7}  # the probe's estimates
  steady = {4: 13.0, 8: 12.2, 16: 12.3, 32: 14.1, 64: 14.2, 128: 14.8}  # the sweep's times
  sizes = chunking.ladder(16, 512, 2, limit=128)
  timed = []

  def per_call(c):
    whole = steady if c in timed else burst  # the burst is over by the second pass
    timed.append(c)
    return whole[c] / (512 // c)

  chosen, estimates = chunking.climb(sizes, 16, 512, per_call)
  climbed = [16, 8, 4, 32, 64, 128]  # nothing below beat 16 in the burst: then up
  assert timed == _passes(climbed)
  assert chosen == 8 and estimates == pytest.approx({c: steady[c] for c in climbed})


def test_padding_counts_against_a_size():
  # 48 members: chunks of 32 run twice (16 padding), chunks of 16 three times, no padding.
  seconds = {16: 1.0, 32: 1.8, 64: 3.7}.__getitem__  # 32 is the fastest per member
  chosen, estimates = chunking.climb([16, 32, 64], 32, 48, seconds)
  assert chosen == 16 and estimates[32] == 2 * 1.8 and estimates[16] == 3 * 1.0


def test_the_ladder_respects_the_memory_limit_and_the_member_count():
  assert chunking.ladder(18, 512, 2, limit=100) == [2, 4, 8, 16, 18, 32, 64]
  assert chunking.ladder(256, 512, 2, limit=100) == [2, 4, 8, 16, 32, 64, 100]
  assert chunking.ladder(8, 5, 2, limit=10**9) == [2, 4, 6]  # 5 members: 6 with one padding
  assert chunking.ladder(8, 64, 4, limit=1) == [4]  # never below one member per device


class _Accelerator:
  platform, device_kind = "gpu", "fake"

  def memory_stats(self):
    return {"bytes_limit": 10_000, "bytes_in_use": 2_000}


def test_the_memory_limit_is_half_the_free_memory_per_working_set():
  assert chunking.memory_limit([_Accelerator()] * 4, working_set_bytes=100) == 40 * 4
  assert chunking.memory_limit([jax.devices("cpu")[0]], working_set_bytes=2**60) == 1


def _counting(seconds):
  calls = []
  return calls, lambda c: calls.append(c) or seconds(c)


def test_the_choice_is_remembered_per_machine_and_shape(tmp_path):
  path = tmp_path / "chunk_sizes.json"
  sizes = chunking.ladder(16, 512, 2, limit=10**9)
  choose = lambda machine, shape, seconds: chunking.measured_chunk_size(
    machine, shape, sizes, 16, 512, seconds, path=path
  )
  calls, seconds = _counting(_bowl(64))
  first = choose("cpu A", "mlp", seconds)
  assert first["method"] == "measured" and first["chunk_size"] == 64 and calls
  assert [p["chunk_size"] for p in first["probe"]] == sorted(set(calls))
  saved = json.loads(path.read_text())
  assert saved["cpu A"]["mlp"]["chunk_size"] == 64
  # The same machine and shape: no probe, the same size.
  calls.clear()
  again = choose("cpu A", "mlp", seconds)
  assert again["method"] == "cached" and again["chunk_size"] == 64 and not calls
  # Another machine (or another shape) is measured anew, and the first is kept.
  calls, other = _counting(_bowl(8))
  assert choose("cpu B", "mlp", other)["chunk_size"] == 8 and calls
  calls.clear()
  assert choose("cpu A", "cnn", other)["method"] == "measured" and calls
  saved = json.loads(path.read_text())
  assert saved["cpu A"]["mlp"]["chunk_size"] == 64 and saved["cpu B"]["mlp"]["chunk_size"] == 8


def test_a_remembered_size_off_the_ladder_or_an_unreadable_file_is_measured_again(tmp_path):
  path = tmp_path / "chunk_sizes.json"
  calls, seconds = _counting(_bowl(64))
  chunking.measured_chunk_size("m", "s", [16, 32, 64], 16, 512, seconds, path=path)
  calls.clear()
  # Less memory now: 64 is off the ladder, so the probe runs again within the new limit.
  chosen = chunking.measured_chunk_size("m", "s", [16, 32], 16, 512, seconds, path=path)
  assert chosen["method"] == "measured" and chosen["chunk_size"] == 32 and calls
  path.write_text("{not json")
  calls.clear()
  chosen = chunking.measured_chunk_size("m", "s", [16, 32], 16, 512, seconds, path=path)
  assert chosen["method"] == "measured" and calls


@pytest.mark.parametrize(
  "damaged",
  [{"m": None}, {"m": [16]}, {"m": "x"}, {"m": {"s": "32"}}, {"m": {"s": {"chunk_size": True}}}],
)
def test_a_cache_entry_of_the_wrong_type_is_measured_again(tmp_path, damaged):
  # Valid JSON of the wrong shape (an entry edited by hand, as the file invites) is no size
  # remembered: measured again and written over, never an AttributeError or TypeError.
  path = tmp_path / "chunk_sizes.json"
  path.write_text(json.dumps(damaged))
  calls, seconds = _counting(_bowl(32))
  chosen = chunking.measured_chunk_size("m", "s", [1, 16, 32], 16, 512, seconds, path=path)
  assert chosen["method"] == "measured" and chosen["chunk_size"] == 32 and calls
  assert json.loads(path.read_text())["m"]["s"]["chunk_size"] == 32


def test_the_machine_key_names_the_cpu_and_its_cores():
  key = chunking.machine_key(jax.devices("cpu"))
  assert key.startswith("cpu: ") and "cores" in key and jax.__version__ in key


@pytest.fixture(scope="module")
def task():
  return tasks.get("digits-logreg")


def _run(task, chunk_size, **kwargs):
  grid = {"lr": np.geomspace(0.01, 1.0, 6)}
  settings = dict(steps=20, batch_size=32, key=KEY, eval_every=5, progress=False)
  return sweep.run(task, _sgd, grid, chunk_size=chunk_size, **(settings | kwargs))


def test_an_auto_sweep_equals_the_sweep_at_the_size_it_chose(task, tmp_path, monkeypatch):
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path))
  sweep.clear_cache()
  measured = _run(task, "auto")
  choice = measured.metadata["chunk_choice"]
  assert choice["method"] == "measured" and choice["chunk_size"] == measured.config["chunk_size"]
  assert (tmp_path / chunking.FILENAME).exists()
  assert choice["chunk_size"] in [p["chunk_size"] for p in choice["probe"]]
  best = min(choice["probe"], key=lambda p: p["seconds"])
  assert best["chunk_size"] == choice["chunk_size"]
  # The kept size's programs served the real run: the engine keeps one set per size the probe
  # compiled (those it timed), none more; and a call with the same settings compiles nothing.
  assert {p["chunk_size"] for p in choice["probe"]} == set(choice["compiled"])
  assert choice["reused_programs"] and sweep.cache_info().programs == len(choice["compiled"])
  fixed = _run(task, choice["chunk_size"])
  assert measured.metadata["compile_seconds"] > 0 and fixed.metadata["compile_seconds"] == 0.0
  chex.assert_trees_all_equal(measured.history, fixed.history)
  # Another chunk size rounds the float arithmetic differently, by about 1e-7 at most.
  other = _run(task, 1 if choice["chunk_size"] > 1 else 2)
  chex.assert_trees_all_close(measured.history, other.history, rtol=1e-5, atol=1e-6)
  again = _run(task, "auto")
  assert again.metadata["chunk_choice"]["method"] == "cached"
  chex.assert_trees_all_equal(again.history, measured.history)


def test_a_long_segment_is_probed_by_a_short_program_of_its_own(task, tmp_path, monkeypatch):
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path))
  before = sweep.cache_info().programs
  assert chunking.REUSE_STEPS < 128
  measured = _run(task, "auto", steps=128, eval_every=128)
  choice = measured.metadata["chunk_choice"]
  assert choice["method"] == "measured" and not choice["reused_programs"]
  # The probe's programs were not kept: only the real run's joined the engine's cache.
  assert measured.metadata["compile_seconds"] > 0
  assert sweep.cache_info().programs <= before + 1
  fixed = _run(task, choice["chunk_size"], steps=128, eval_every=128)
  chex.assert_trees_all_equal(measured.history, fixed.history)


def test_an_auto_sweep_resumes_with_the_chunk_size_it_began_with(task, tmp_path, monkeypatch):
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path))
  save, count = checkpoint.save, [0]

  def save_then_crash(*args, **kwargs):
    save(*args, **kwargs)
    count[0] += 1
    if count[0] == 2:
      raise KeyboardInterrupt

  folder = dict(checkpoint_dir=str(tmp_path / "run"), checkpoint_interval=0.0)
  with monkeypatch.context() as patch:
    patch.setattr(checkpoint, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
      _run(task, 3, **folder)
  resumed = _run(task, "auto", **folder)
  assert resumed.config["chunk_size"] == 3 and resumed.metadata["resumed_from"] is not None
  assert resumed.metadata["chunk_choice"] == {"method": "checkpoint"}
  assert not (tmp_path / chunking.FILENAME).exists()  # nothing probed
  chex.assert_trees_all_equal(resumed.history, _run(task, 3).history)


def test_a_later_call_recalls_the_answer_until_the_file_changes(task, tmp_path, monkeypatch):
  from lrlab.sweep import devices
  from lrlab.train import Trainer

  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path))
  probes = []

  def choose(*args):  # a probe that measures 2 and remembers it, as chunking.choose does
    probes.append(args)
    (tmp_path / chunking.FILENAME).write_text(json.dumps({"probes": len(probes)}))
    return {"chunk_size": 2, "method": "measured", "probe_seconds": 1.5, "reused_programs": True}

  monkeypatch.setattr(chunking, "choose", choose)
  trainer = Trainer(task, steps=20, batch_size=32, eval_every=5)
  grid = {"lr": np.geomspace(0.01, 1.0, 6).astype(np.float32)}
  ask = lambda: chunking.automatic(True, trainer, _sgd, devices.member_mesh(), 4, grid, KEY)
  size, first = ask()
  assert size == 2 and first["method"] == "measured" and len(probes) == 1
  size, again = ask()  # the same signature, the file as the first call left it: recalled
  assert size == 2 and len(probes) == 1
  assert again == {"chunk_size": 2, "method": "cached", "probe_seconds": 0.0,
                   "reused_programs": False}  # fmt: skip
  (tmp_path / chunking.FILENAME).unlink()  # deleted: asked again
  assert ask()[1]["method"] == "measured" and len(probes) == 2
  sweep.clear_cache()  # forgets the answers too
  assert ask()[0] == 2 and len(probes) == 3
  other = {"lr": grid["lr"][:4]}  # another member count: its own answer
  chunking.automatic(True, trainer, _sgd, devices.member_mesh(), 4, other, KEY)
  assert len(probes) == 4


def test_bad_chunk_size_is_refused(task):
  with pytest.raises(ValueError, match="chunk_size must be None, 'auto' or"):
    _run(task, "fastest")


def test_a_member_footprint_is_not_reused_across_folds():
  """A full batch under folds is the fold's training rows (625 of linreg's pooled 1250 for 2
  folds, 1125 for 10, more than the 1000 of its train split): the footprint is traced for
  them, not recalled from a sweep without folds."""
  from lrlab import train
  from lrlab.sweep import programs

  task, one = tasks.get("linreg"), {"lr": np.array([0.1], np.float32)}
  sweep.clear_cache()
  footprints = {}
  for folds in (None, 2, 10):
    trainer = train.Trainer(task, steps=1, batch_size=None, eval_every=1, folds=folds)
    footprints[folds] = programs._member_footprint(trainer, _sgd, one, KEY)[1]
  sweep.clear_cache()
  # The linear model's residuals: its inputs and one residual per row, float32, a few bytes more.
  per_row = 4 * (task.split("train")[0].shape[1] + 1)
  for folds, rows in ((None, 1000), (2, 625), (10, 1125)):
    assert rows * per_row <= footprints[folds] < (rows + 1) * per_row, folds
