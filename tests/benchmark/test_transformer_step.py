"""``scripts/transformer_step_speed.py`` (issue 17): its attention rewrites are the model's
mathematics, and the committed ``benchmarks/cpu-2core/transformer_step.json`` recomputes."""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lrlab.models.transformer import CausalSelfAttention

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORT = ROOT / "benchmarks" / "cpu-2core" / "transformer_step.json"


def _script():
  path = ROOT / "scripts" / "transformer_step_speed.py"
  spec = importlib.util.spec_from_file_location("transformer_step_speed", path)
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
