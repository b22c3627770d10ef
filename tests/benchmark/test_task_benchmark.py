"""``scripts/benchmark.py --tasks``: FLOPs counted from shapes against closed forms, the report's
arithmetic, the flag's errors, and a toy end-to-end run; never a timing."""

import json
import math
import os

import jax
import jax.numpy as jnp
import pytest

import lrlab
from lrlab import benchmark
from lrlab.benchmark import tasks, tasks_report
from lrlab.benchmark.flops import matmul_flops


def _grad_flops(task, batch_size: int) -> float:
  params, model_state = task.init(jax.random.key(0))
  batch = task.batch(jnp.arange(batch_size))
  loss = lambda p: task.loss(p, model_state, batch, jax.random.key(1))[0]
  return matmul_flops(jax.grad(loss), params)


def test_a_transformer_step_counts_the_closed_form():
  # Per sequence of T tokens, forward, matmuls only: per block the qkv (3 d^2), output (d^2)
  # and MLP (8 d^2) projections, 2 T d^2 FLOPs each unit, plus q k^T and the weights times v
  # (T^2 d each); then the tied head (T d V). Training: forward and both operand gradients of
  # every product (the embeddings are parameters, so every input needs its gradient): 3x.
  vocab, context, width, depth, heads, batch = 8, 6, 12, 2, 3, 5
  task = tasks.build_task(
    tasks.TaskSpec("lm-transformer", 1, batch, "adam", (1e-3, 1.0),
                   options=(("vocab", vocab), ("context", context), ("width", width),
                            ("depth", depth), ("heads", heads), ("num_tokens", 10 * context),
                            ("num_eval", 2))),
  )  # fmt: skip
  t, d = context, width
  forward = depth * (2 * t * 12 * d * d + 4 * t * t * d) + 2 * t * d * vocab
  assert _grad_flops(task, batch) == 3 * batch * forward
  params, model_state = task.init(jax.random.key(0))
  one = task.batch(jnp.arange(1))
  assert matmul_flops(lambda p: task.eval_loss(p, model_state, one), params) == forward


def test_a_resnet_step_counts_the_closed_form():
  # MNIST-1D's 40 samples, channels (c1, c2), kernel k, one block per stage, SAME padding: the
  # stem (1 -> c1), two c1 convolutions at length 40, a stride-2 c1 -> c2 convolution, a c2
  # one and a 1x1 c1 -> c2 shortcut at length 20, the head. Training: 3x the forward, less the
  # stem's input gradient (the data need none).
  c1, c2, k, batch = 3, 5, 3, 4
  task = lrlab.tasks.get("mnist1d-resnet", channels=(c1, c2), kernel=k, num_samples=200)
  conv = lambda length, cin, cout, taps: 2 * length * taps * cin * cout
  stem = conv(40, 1, c1, k)
  forward = (
    stem + 2 * conv(40, c1, c1, k) + conv(20, c1, c2, k) + conv(20, c2, c2, k)
    + conv(20, c1, c2, 1) + 2 * c2 * 10
  )  # fmt: skip
  assert _grad_flops(task, batch) == batch * (3 * forward - stem)


def test_the_mlp_count_from_shapes_is_the_hand_count():
  task = lrlab.tasks.get("mnist1d-mlp")
  sizes = {"train": 0, "val": 0, "test": 0}
  assert _grad_flops(task, 100) == benchmark.analytic_flops(100, 1, sizes)["train_step"]


def test_a_while_loop_cannot_be_counted():
  fn = lambda x: jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] @ c[1]), (0, x))
  with pytest.raises(ValueError, match="while loop"):
    matmul_flops(fn, jnp.ones((2, 2)))


def _row(task, leg, rate, gflops, losses):
  return {"task": task, "leg": leg, "k": 4, "model_steps_per_s": rate, "gflops_per_s": gflops,
          "final_val_loss": losses}  # fmt: skip


def test_the_summary_divides_the_reported_rates():
  rows = [
    _row("lm-transformer", "sweep", 300.0, 60.0, [1.0, 2.0, None, 4.0]),
    _row("lm-transformer", "sequential", 100.0, 20.0, [1.0, 2.5, 3.0, 4.0]),
    _row("mnist1d-mlp", "sweep", 50.0, 10.0, None),
  ]
  rows[0]["k"] = rows[1]["k"] = 64
  summary, goals = tasks.summarize(rows, ceiling=120.0)
  lm, mlp = summary
  assert (lm["task"], lm["k"], mlp["task"]) == ("lm-transformer", 64, "mnist1d-mlp")
  assert lm["sweep_over_sequential"] == 3.0 and lm["fraction_of_ceiling"] == 0.5
  assert lm["val_loss_diff"] == 0.5  # the member with no finite loss in one leg is left out
  assert "sweep_over_sequential" not in mlp and mlp["fraction_of_ceiling"] == 10.0 / 120.0
  assert goals["sweep_over_sequential"] == {"target": 2.0, "measured": 3.0, "met": True}
  assert goals["fraction_of_ceiling"] == {"target": 0.4, "measured": 0.5, "met": True}
  assert tasks.summarize(rows[2:], 120.0)[1]["fraction_of_ceiling"]["met"] is None


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--tasks", "nope"], "argument --tasks: must be comma-separated task names"),
    (["--tasks", "digits-cnn"], "--tasks must be taken from ('mnist1d-mlp', 'lm-transformer'"),
    (["--tasks", ","], "argument --tasks: must be comma-separated task names"),
  ],
)
def test_bad_task_flags_are_one_line(capsys, args, message):
  with pytest.raises(SystemExit) as exit_:
    benchmark.parse_args(args)
  assert exit_.value.code == 2
  assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_chunk_benchmark_still_takes_any_task():
  assert benchmark.parse_args(["--chunks", "--tasks", "digits-cnn"]).tasks == ("digits-cnn",)
  assert benchmark.parse_args([]).tasks is None


def test_run_tasks_rejects_an_unknown_task_before_any_compute(tmp_path):
  with pytest.raises(ValueError, match="tasks must be taken from"):
    tasks.run_tasks(str(tmp_path), tasks=("digits-cnn",), isolate=False)


@pytest.mark.slow  # compiles a toy transformer's sweep and loop
def test_a_toy_run_writes_the_report(tmp_path):
  report = tasks.run_tasks(
    str(tmp_path), tasks=("lm-transformer",), ks=(2,), steps=2, repeats=1, budget_s=0.0,
    chunk_size=None, ceiling_sizes=(32,), tiny=True, isolate=False, log=lambda line: None,
  )  # fmt: skip
  sweep, loop = report["rows"]
  assert (sweep["leg"], loop["leg"]) == ("sweep", "sequential")
  flops = sweep["flops"]
  sizes = flops["split_sizes"]
  examples = sizes["train"] + 2 * (sizes["val"] + sizes["test"])
  assert flops["per_model_step"] == flops["train_step"] + flops["eval_example"] * examples / 2
  for row in (sweep, loop):
    assert math.isclose(row["gflops_per_s"], row["model_steps_per_s"] * row["flops_per_model_step"]
                        / 1e9)  # fmt: skip
    assert row["fraction_of_ceiling"] == row["gflops_per_s"] / report["ceiling"]["ceiling"]
  (entry,) = report["summary"]
  assert entry["sweep_over_sequential"] == sweep["model_steps_per_s"] / loop["model_steps_per_s"]
  assert entry["val_loss_diff"] < 1e-5  # the same two members, trained two ways
  assert json.loads((tmp_path / "tasks.json").read_text())["summary"] == report["summary"]
  assert (tmp_path / "tasks.md").read_text() == tasks_report.markdown(report)


def test_an_automatic_chunk_size_is_probed_apart_from_the_users_remembered_sizes(
  tmp_path, monkeypatch
):
  """The task benchmark's "auto" probes afresh in its own cache folder: the user's remembered
  sizes are neither read nor changed (they would make its first call a recall, not a probe)."""
  user = tmp_path / "user-cache"
  user.mkdir()
  (user / "chunk_sizes.json").write_text("{}")
  monkeypatch.setenv("LRLAB_CACHE_DIR", str(user))
  report = tasks.run_tasks(
    str(tmp_path / "out"), tasks=("mnist1d-mlp",), ks=(2,), legs=("sweep",), steps=4,
    repeats=1, budget_s=0.0, chunk_size="auto", ceiling_sizes=(32,), tiny=True, isolate=False,
    log=lambda line: None,
  )  # fmt: skip
  (row,) = report["rows"]
  assert row["chunk_choice"]["method"] == "measured"
  assert (user / "chunk_sizes.json").read_text() == "{}"
  assert (tmp_path / "out" / "chunk-cache" / "chunk_sizes.json").exists()
  assert os.environ["LRLAB_CACHE_DIR"] == str(user)  # restored


def _report_with_rows(rows):
  """A committed task report with its rows replaced by ``rows``."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  with open(os.path.join(root, "benchmarks", "cpu-2core", "tasks.json")) as f:
    report = json.load(f)
  return {**report, "rows": rows}


def test_the_table_gives_the_flops_each_row_divides_by():
  """A sweep row's MFLOP / model-step is the count its GFLOP/s use (its step-0 evaluation
  runs once per device), so model-steps/s times that cell is its GFLOP/s."""
  counted = {"per_model_step": 200e6, "xla_train_step": None}
  row = {"task": "lm-transformer", "leg": "sweep", "k": 64, "devices_used": 2, "steps": 10,
         "batch_size": 32, "compile_s": 1.0, "steady_s": 1.0, "model_steps_per_s": 640.0,
         "flops": counted, "flops_per_model_step": 150e6, "gflops_per_s": 640 * 0.15,
         "fraction_of_ceiling": 0.3, "load_1min": 0.5}  # fmt: skip
  line = next(s for s in tasks_report.markdown(_report_with_rows([row])).splitlines()
              if s.startswith("| lm-transformer | adam | 64 |"))  # fmt: skip
  cells = [c.strip() for c in line.strip("|").split("|")]
  mflop, rate, gflops = float(cells[7]), float(cells[11].replace(",", "")), float(cells[12])
  assert math.isclose(rate * mflop / 1e3, gflops)


def test_a_failed_row_reads_its_last_line_in_one_cell_of_a_full_row():
  row = {"task": "mnist1d-mlp", "leg": "sweep", "k": 8, "error": "Traceback\nRuntimeError: boom"}
  text = tasks_report.markdown(_report_with_rows([row]))
  line = next(s for s in text.splitlines() if "boom" in s)
  header = next(s for s in text.splitlines() if s.startswith("| task | optimizer"))
  assert "| RuntimeError: boom |" in line and "[" not in line
  assert line.count("|") == header.count("|")
