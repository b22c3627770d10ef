"""Fix 2: a vmap row that failed (timed out, out of memory) must not hide the agreement check:
the reference falls back to the lrlab loop, as BENCHMARKS.md says."""

from lrlab.benchmark.runner import summarize


def test_a_failed_vmap_leg_falls_back_to_the_loop():
  rows = [
    {"leg": "sweep", "k": 4, "model_steps_per_s": 100.0, "gflops_per_s": 1.0,
     "final_val_loss": [0.5, 0.6, 0.7, 0.8]},
    {"leg": "vmap", "k": 4, "error": "timed out after 3600 s"},
    {"leg": "sequential", "k": 4, "model_steps_per_s": 30.0, "gflops_per_s": 0.3,
     "final_val_loss": [0.5001, 0.6, 0.7, 0.8]},
  ]  # fmt: skip
  summarize(rows, 10.0)
  assert abs(rows[0]["max_abs_diff"] - 1e-4) < 1e-9
  assert rows[2]["max_abs_diff"] == 0.0
