"""``--task MODULE:FACTORY`` in ``lrlab sweep`` and ``lrlab find``, via their ``scripts/`` wrappers.

A researcher's own package, written into a temporary project folder and
imported from the current directory: a small BatchNorm + Dropout MLP built with
:func:`lrlab.tasks.from_nnx` on a generated :func:`lrlab.data.from_arrays`
dataset. Each bad factory must stop the script before any training, with exit
code 2 and one line naming ``--task``.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.workers import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "scripts", "vmap_sweep.py")
LR_FIND = os.path.join(ROOT, "scripts", "lr_find.py")
NAME = "toy-bn-mlp"

TASKS_MODULE = f'''
import numpy as np
from flax import nnx

import lrlab

NOT_CALLABLE = 3


class Net(nnx.Module):
  def __init__(self, rngs):
    self.hidden = nnx.Linear(6, 16, rngs=rngs)
    self.norm = nnx.BatchNorm(16, rngs=rngs)
    self.drop = nnx.Dropout(0.1, rngs=rngs)
    self.out = nnx.Linear(16, 3, rngs=rngs)

  def __call__(self, x):
    return self.out(self.drop(nnx.relu(self.norm(self.hidden(x)))))


def make_task():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 6)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
  dataset = lrlab.data.from_arrays(x, y, num_classes=3)
  return lrlab.tasks.from_nnx(Net, dataset, loss="cross_entropy", name="{NAME}")


def raises():
  raise RuntimeError("no data here\\nsecond line")


def needs_argument(size):
  return make_task()


def not_a_task():
  return {{"name": "{NAME}"}}
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
  """A project folder holding the package ``mylab`` (and a module that fails to import)."""
  folder = tmp_path_factory.mktemp("project")
  package = folder / "mylab"
  package.mkdir()
  (package / "__init__.py").write_text("")
  (package / "tasks.py").write_text(textwrap.dedent(TASKS_MODULE))
  (package / "broken.py").write_text('raise ImportError("missing dependency\\nmore")\n')
  return folder


def _run(script, cwd, *args):
  env = subprocess_env(PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  return subprocess.run(
    [sys.executable, script, *args],
    capture_output=True,
    text=True,
    cwd=cwd,
    env=env,
    timeout=300,
  )


def test_sweep_trains_a_factory_task_from_the_current_directory(project):
  done = _run(
    SWEEP, project, "--task", "mylab.tasks:make_task", "--no-progress",
    "--grid", "lr=1e-3:1e-1:2:log", "--steps", "10", "--eval-every", "5", "--batch-size", "16",
    "--seeds", "1", "--devices", "1",
  )  # fmt: skip
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(f"{NAME} | adam")
  (out,) = (project / "results").glob(f"sweep-{NAME}-adam-*")  # named after the task's .name
  assert json.loads((out / "sweep.json").read_text())["config"]["task"] == NAME
  assert (out / "results.csv").exists() and not (out / "checkpoint").exists()


def test_lr_find_trains_a_factory_task_from_the_current_directory(project):
  done = _run(
    LR_FIND, project, "--task", "mylab.tasks:make_task", "--steps", "30", "--batch-size", "16",
    "--parallel-lrs", "1e-3:1e-1:2", "--parallel-steps", "10", "--devices", "1",
  )  # fmt: skip
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(f"{NAME} | adam")
  (out,) = (project / "results").glob(f"find-{NAME}-adam-*")
  assert json.loads((out / "range_test.json").read_text())["config"]["task"] == NAME
  assert (out / "parallel.json").exists() and (out / "lr_find.png").exists()


BAD_TASKS = [
  ("no_such_module_1234:make_task", "ModuleNotFoundError: No module named"),
  ("mylab.broken:make_task", "ImportError: missing dependency"),
  ("mylab.tasks:missing", "has no attribute 'missing'"),
  ("mylab.tasks:NOT_CALLABLE", "NOT_CALLABLE is not callable (type int)"),
  ("mylab.tasks:raises", "raised RuntimeError: no data here"),
  ("mylab.tasks:needs_argument", "raised TypeError"),
  ("mylab.tasks:not_a_task", "returned type dict, not an lrlab.tasks.Task"),
  ("mylab.tasks:", "not of that form"),
  ("cifar", "name must be one of"),
]


def _check_one_line(code, stdout, stderr, command, spec, reason):
  assert code == 2, stderr
  lines = stderr.strip().splitlines()
  assert len(lines) == 1, stderr
  assert lines[0].startswith(f"lrlab {command}: error: --task must be") and repr(spec) in lines[0]
  assert "MODULE:FACTORY" in lines[0] and reason in lines[0]
  assert stdout == ""  # nothing announced, nothing trained


@pytest.fixture
def in_project(project, monkeypatch):
  """Run a command's ``main`` here from ``project``, undoing what it leaves in this process."""
  monkeypatch.chdir(project)
  monkeypatch.setattr(sys, "path", list(sys.path))
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # restored afterwards
  loaded = set(sys.modules)
  yield project
  for name in set(sys.modules) - loaded:
    if name.partition(".")[0] == "mylab":
      del sys.modules[name]


@pytest.mark.parametrize("command", ["sweep", "find"])
@pytest.mark.parametrize(("spec", "reason"), BAD_TASKS)
def test_a_bad_task_is_one_line_naming_the_flag(command, spec, reason, in_project, capsys):
  main = importlib.import_module(f"lrlab.cli.{command}").main
  code = main(["--task", spec, "--out", str(in_project / "never")])
  _check_one_line(code, *capsys.readouterr(), command, spec, reason)
  assert not (in_project / "never").exists()


@pytest.mark.parametrize(
  ("script", "command"), [(SWEEP, "sweep"), (LR_FIND, "find")], ids=["vmap_sweep", "lr_find"]
)
def test_a_bad_task_exits_with_2_and_no_traceback(script, command, project):
  spec, reason = BAD_TASKS[1]  # the module raises on import
  done = _run(script, project, "--task", spec, "--out", str(project / "never"))
  _check_one_line(done.returncode, done.stdout, done.stderr, command, spec, reason)
