"""The built wheel, installed non-editable in a fresh venv, is the whole ``lrlab`` command.

The wheel is built offline from a copy of the sources (so the checkout gains no
``build/``), installed with ``--no-deps --no-index`` into a venv that sees this
environment's JAX and friends, and run from a folder outside the repository,
where only the installed package can be imported.
"""

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from tests.workers import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "lrlab")
# Run in the venv: where lrlab is imported from, and what ``lrlab sweep --help`` and ``lrlab bench
# --help`` print (the installed command's main, exit code 0), as one JSON object.
HELPS = """
import contextlib, io, json
import lrlab
from lrlab.cli import main

def help_of(command):
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    try:
      main([command, "--help"])
    except SystemExit as exited:
      assert exited.code in (0, None), exited.code
    else:
      raise AssertionError(command + " --help did not exit")
  return printed.getvalue()

print(json.dumps({"file": lrlab.__file__, "sweep": help_of("sweep"), "bench": help_of("bench")}))
"""


def _run(command, cwd, timeout=60):
  env = subprocess_env("PYTHONPATH")
  done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
  assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
  return done


def test_wheel_installs_the_lrlab_command(tmp_path):
  source = tmp_path / "source"
  source.mkdir()
  for name in SOURCES:
    copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
    kwargs = {"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}
    copy(ROOT / name, source / name, **kwargs)
  wheels = tmp_path / "wheels"
  pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
  _run([*pip_wheel, "--no-index", "-q", "-w", str(wheels), str(source)], tmp_path, timeout=120)
  (wheel,) = wheels.glob("lrlab-*.whl")

  env_dir = tmp_path / "venv"
  venv.create(env_dir, system_site_packages=True, with_pip=False)
  python = env_dir / "bin" / "python"
  _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
        "--no-index", "-q", str(wheel)], tmp_path, timeout=120)  # fmt: skip
  outside = tmp_path / "elsewhere"
  outside.mkdir()

  # One process for the import and the subcommands' help (each start imports lrlab: ~2.3 s of
  # CPU); the executable itself is run once, for the top-level help.
  installed = json.loads(_run([str(python), "-c", HELPS], outside).stdout)
  assert Path(installed["file"]).is_relative_to(env_dir)  # the wheel's copy, not the checkout
  top = _run([str(env_dir / "bin" / "lrlab"), "--help"], outside).stdout
  for word in ("sweep", "find", "bench", "schedules", "mnist1d-mlp", "adamw", "one-cycle"):
    assert word in top
  sweep_help = installed["sweep"]
  assert "--tolerance" in sweep_help and "(default: 0.05)" in sweep_help
  bench_help = installed["bench"]
  assert bench_help.startswith("usage: lrlab bench") and "--ks" in bench_help

  done = _run(
    [str(python), "-m", "lrlab", "sweep", "--task", "quadratic", "--optimizer", "sgd",
     "--grid", "lr=0.1,0.5", "--steps", "10", "--eval-every", "5", "--batch-size", "50",
     "--seeds", "1", "--devices", "1", "--no-progress"],
    outside,
  )  # fmt: skip
  assert "Best lr =" in done.stdout
  (out,) = (outside / "results").glob("sweep-quadratic-sgd-*")
  assert json.loads((out / "sweep.json").read_text())["config"]["task"] == "quadratic"
