"""``scripts/transformer_step_speed.py`` (issue 17): its attention rewrites are the model's
mathematics, and the committed ``benchmarks/cpu-2core/transformer_step.json`` recomputes."""

import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrlab.models.transformer import CausalSelfAttention

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORT = ROOT / "benchmarks" / "cpu-2core" / "transformer_step.json"


def _script(name="transformer_step_speed"):
  path = ROOT / "scripts" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)  # sets no XLA_FLAGS: only run as a script does it
  return module


def test_attention_rewrites_equal_the_model_in_value_and_gradient():
  # muP's temperature 8 / sqrt(4) (not a power of two: the scaling's rounding shows);
  # tests/models/test_transformer_attention.py checks SP's against the split formula.
  script = _script()
  layer = CausalSelfAttention(16, 2, base_width=8, rngs=nnx.Rngs(0))
  h = 3 * jax.random.normal(jax.random.key(1), (2, 3, 6, 16))  # two leading batch axes
  graph, params, rest = nnx.split(layer, nnx.Param, ...)

  def run(call, params, h):
    return call(nnx.merge(graph, params, rest), h)

  def outputs_and_grads(call):  # one compiled program per rewrite (eager ops compile one by one)
    value = lambda p, h: (run(call, p, h), jnp.sum(jnp.sin(run(call, p, h))))
    both = lambda p, h: (value(p, h)[0], jax.grad(lambda p, h: value(p, h)[1], (0, 1))(p, h))
    return jax.jit(both)(params, h)

  expected, grads = outputs_and_grads(CausalSelfAttention.__call__)
  for name, call in script.VARIANTS.items():
    got, got_grads = outputs_and_grads(call)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(grads), strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


def test_committed_report_recomputes_from_its_times():
  legs = json.loads(REPORT.read_text(encoding="utf-8"))["legs"]
  groups = {leg["group"] for leg in legs}
  assert groups == {"attention", "members", "devices", "gemm"}
  for leg in legs:
    per = leg["members"] * leg["steps"]
    for kind in ("wall", "cpu"):
      median = float(np.median(leg[f"{kind}_s"]))
      assert leg[f"{kind}_ms_per_member_step"] == pytest.approx(1e3 * median / per, rel=1e-9)
    if leg["flops"]:
      assert leg["gflops_per_s"] == pytest.approx(leg["flops"] / np.median(leg["wall_s"]) / 1e9)
    if leg["group"] == "attention":
      assert leg["max_param_diff"] < 1e-5  # every rewrite trained the same parameters


class _Parsed(Exception):
  """Raised in place of parsing: the script's parser is all these tests need."""


@pytest.mark.parametrize(
  "name",
  [
    "breakdown_by_width", "conv_sweep_speed", "device_scaling", "search_halving_budget",
    "search_pbt_selection", "search_pbt_settings", "search_pbt_warmup", "search_study_speed",
    "shared_rows_ab", "transformer_step_speed",
  ],
)  # fmt: skip
def test_a_study_scripts_default_out_is_no_committed_report(monkeypatch, name):
  """``transformer_step_speed.py --tiny`` (and every study script run without ``--out``)
  replaced the committed report under benchmarks/cpu-2core/ with whatever it measured."""
  module = _script(name)
  parsers = []

  def parse_args(parser, args=None, namespace=None):
    parsers.append(parser)
    raise _Parsed

  monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
  monkeypatch.setattr(sys, "argv", [name])
  with pytest.raises(_Parsed):
    module.main()
  (parser,) = parsers
  out = parser.get_default("out")
  assert not (ROOT / out).exists() or not _tracked(out), out
  assert pathlib.PurePath(out).parts[0] == "results"  # .gitignore's /results/
  assert "/results/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def _tracked(path: str) -> bool:
  """Whether git tracks ``path`` in this checkout (True where git cannot tell)."""
  try:
    done = subprocess.run(
      ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, timeout=30
    )
  except (OSError, subprocess.TimeoutExpired):
    return True
  return done.returncode == 0


def _computed(*args, **kwargs):
  raise AssertionError("computed before refusing the flag")


@pytest.mark.parametrize(
  ("name", "argv", "message"),
  [
    ("search_halving_budget", ["--optimizers", "adam,adma"], "--optimizers must name adam, "),
    ("search_halving_budget", ["--steps", "1620,4k"], "--steps must be comma-separated integers"),
    ("search_pbt_selection", ["--runs", "adam:1620,adma:4860"], "--runs takes OPTIMIZER:STEPS"),
    ("search_pbt_selection", ["--runs", "adam:20"], "STEPS an integer >= 27; got 'adam:20'"),
    ("conv_sweep_speed", ["--models", "digits-cnn,digit-cnn"], "got 'digit-cnn'"),
    ("conv_sweep_speed", ["--ks", "8,6 4"], "--ks must be comma-separated integers"),
    ("device_scaling", ["--tasks", "mnist1d-mlp,lm-transformr"], "got 'lm-transformr'"),
    # these were tracebacks (ValueError: invalid literal for int()) or, for a count of 0 or a
    # negative warmup, ran every leg and wrote a report of nothing
    ("breakdown_by_width", ["--per-device", "4,x"], "--per-device: must be comma-separated "),
    ("breakdown_by_width", ["--per-device", "0"], "positive integers; got '0'"),
    ("first_eval_ab", ["--chunks", "16,x"], "--chunks: must be comma-separated positive"),
    ("shared_rows_ab", ["--chunk-sizes", "8,0"], "--chunk-sizes: must be comma-separated"),
    ("profile_sweep", ["--settings", "64"], "--settings takes K:CHUNK,... of positive integers"),
    ("profile_sweep", ["--settings", "64:16,a:b"], "got '64:16,a:b'"),
    ("search_pbt_warmup", ["--warmups", "0,x"], "--warmups must be comma-separated integers >= 0"),
    ("search_pbt_warmup", ["--warmups", "-5"], "got '-5'"),
    ("search_halving_budget", ["--steps", "50"], "--steps must be positive multiples of 27"),
    ("search_study_speed", ["--steps", "54"], "--steps must be a multiple of 60, the evaluation"),
    ("search_halving_budget", ["--task", "mnist1d-mpl"], "--task must be one of digits-cnn, "),
    ("search_pbt_settings", ["--benchmark", "no/such.json"], "got 'no/such.json'"),
  ],
)
def test_a_study_scripts_bad_list_is_one_line_before_any_compute(
  monkeypatch, capsys, tmp_path, name, argv, message
):
  """A typo in a list flag's second entry used to end in a KeyError traceback after the first
  entries' legs had run (minutes), with nothing written."""
  import lrlab

  module = _script(name)
  for target, attr in ((lrlab.sweep, "run"), (lrlab.search, "successive_halving")):
    monkeypatch.setattr(target, attr, _computed)
  monkeypatch.setattr(lrlab.search, "pbt", _computed)
  from lrlab.benchmark import machine

  for attr in ("breakdown", "ceiling_next_to_leg"):
    monkeypatch.setattr(machine, attr, _computed)
  for attr in ("measure", "set_host_devices"):
    if hasattr(module, attr):
      monkeypatch.setattr(module, attr, _computed if attr == "measure" else lambda n: None)
  monkeypatch.setattr(sys, "argv", [name, *argv, "--out", str(tmp_path / "out.json")])
  with pytest.raises(SystemExit) as exit_:
    module.main()
  assert exit_.value.code == 2
  (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
  assert message in line and not (tmp_path / "out.json").exists()


def test_guard_ab_makes_the_folder_of_its_out(monkeypatch, tmp_path):
  """Its docstring's own command (``--out results/guard_ab.json``) ended, in a checkout with
  no results/ yet, in a FileNotFoundError after every round had run."""
  module = _script("guard_ab")
  monkeypatch.setattr(module, "set_host_devices", lambda count: None)
  out = tmp_path / "results" / "guard_ab.json"  # a folder that does not exist yet
  assert module.main(["--per-device", "1", "--steps", "2", "--rounds", "1", "--out", str(out)]) == 0
  report = json.loads(out.read_text(encoding="utf-8"))
  assert report["members"] == jax.device_count() and report["steps"] == 2
  assert all(len(times) == 1 for times in report["times_s"].values())


def test_first_eval_ab_runs_against_the_chunk_programs_of_today(monkeypatch, tmp_path):
  """Its documented command ended in 'TypeError: cannot unpack non-iterable _Compiled object'
  before any round: it unpacked ``programs._compiled_for``'s old ``(programs, new)`` pair and
  read the step-0 programs from a closure that ``_Compiled.init`` no longer has."""
  module = _script("first_eval_ab")
  monkeypatch.setattr(module, "set_host_devices", lambda count: None)
  chunk, out = 2 * jax.device_count(), tmp_path / "results" / "first_eval_ab.json"
  argv = ["--chunks", str(chunk), "--steps", "2", "--rounds", "1", "--out", str(out)]
  assert module.main(argv) == 0
  report = json.loads(out.read_text(encoding="utf-8"))
  (entry,) = report["chunks"]
  assert entry["chunk_size"] == chunk and report["steps"] == 2
  assert all(len(times) == 1 for times in entry["times_s"].values())
  assert isinstance(entry["bit_identical"], bool)


def test_profile_sweep_runs_against_the_chunk_programs_of_today(monkeypatch, tmp_path):
  """Likewise ``profile_sweep.py``: the same TypeError after its first sweep had run."""
  module = _script("profile_sweep")
  monkeypatch.setattr(module, "set_host_devices", lambda count: None)
  chunk, out = jax.device_count(), tmp_path / "profile_sweep.json"
  argv = ["--settings", f"{2 * chunk}:{chunk}", "--steps", "2", "--rounds", "1", "--out", str(out)]
  assert module.main(argv) == 0
  report = json.loads(out.read_text(encoding="utf-8"))
  (entry,) = report["settings"]
  assert (entry["k"], entry["chunk_size"], entry["chunks"]) == (2 * chunk, chunk, 2)
  assert len(entry["samples"]) == 1 and report["steps"] == 2
