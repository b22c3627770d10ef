"""The command line keeps its compiled programs on disk (lrlab.cli.compile_cache)."""

import json
import subprocess
import sys

from lrlab.cli import compile_cache
from tests.workers import subprocess_env

# The suite's own cache settings (conftest.py) would win over the command line's; drop them.
SUITE = (
  "JAX_COMPILATION_CACHE_DIR",
  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
  "LRLAB_COMPILE_CACHE",
)
USE = "import jax; from lrlab.cli import compile_cache; print(compile_cache.use()); " \
      "print(jax.config.jax_persistent_cache_min_compile_time_secs)"  # fmt: skip


def _use(tmp_path, **values):
  env = subprocess_env(*SUITE, LRLAB_CACHE_DIR=str(tmp_path), **values)
  done = subprocess.run([sys.executable, "-c", USE], capture_output=True, text=True, env=env,
                        timeout=120)  # fmt: skip
  assert done.returncode == 0, done.stderr
  return done.stdout.split()


def test_the_cache_is_on_in_the_lrlab_folder_by_machine(tmp_path):
  folder, min_seconds = _use(tmp_path)
  assert folder == str(tmp_path / "jax" / compile_cache.machine_folder())
  assert float(min_seconds) == 0  # JAX's default, 1 s, would keep almost none of a sweep's


def test_a_cache_the_user_chose_is_left_as_it_is(tmp_path):
  mine = str(tmp_path / "mine")
  folder, min_seconds = _use(tmp_path, JAX_COMPILATION_CACHE_DIR=mine)
  assert (folder, float(min_seconds)) == (mine, 1.0)
  folder, min_seconds = _use(tmp_path, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="3")
  assert (folder, float(min_seconds)) == (str(tmp_path / "jax" / compile_cache.machine_folder()), 3)


def test_it_can_be_turned_off(tmp_path):
  assert _use(tmp_path, LRLAB_COMPILE_CACHE="off") == ["None", "1.0"]


def test_a_cache_folder_that_cannot_be_written_is_left_off_without_a_warning(tmp_path):
  # With HOME read-only (or $LRLAB_CACHE_DIR unwritable) every command printed JAX's
  # "UserWarning: Error reading persistent compilation cache entry ... PermissionError".
  (tmp_path / "file").write_text("")  # a folder under a file: unwritable, even for root
  unwritable = tmp_path / "file" / "cache"
  assert _use(unwritable) == ["None", "1.0"]
  env = subprocess_env(*SUITE, LRLAB_CACHE_DIR=str(unwritable))
  done = subprocess.run(
    [sys.executable, "-m", "lrlab", "sweep", "--task", "quadratic", "--optimizer", "sgd",
     "--grid", "lr=0.1,0.5", "--steps", "10", "--eval-every", "5", "--batch-size", "50",
     "--seeds", "1", "--devices", "1", "--no-progress", "--out", str(tmp_path / "out")],
    capture_output=True, text=True, env=env, timeout=300,
  )  # fmt: skip
  assert (done.returncode, done.stderr) == (0, "")
  saved = json.loads((tmp_path / "out" / "sweep.json").read_text())
  assert saved["metadata"]["compile_cache"] is None


def test_machines_with_other_instruction_sets_get_other_folders():
  xeon = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx2 avx512f\n"
  assert compile_cache.machine_folder(xeon) == compile_cache.machine_folder(xeon * 2)
  assert compile_cache.machine_folder(xeon) == compile_cache.machine_folder(
    xeon.replace("sse2 avx2", "avx2 sse2")  # the flags' order does not matter
  )
  assert compile_cache.machine_folder(xeon) != compile_cache.machine_folder(
    xeon.replace(" avx512f", "")
  )
  assert compile_cache.machine_folder(xeon) != compile_cache.machine_folder(
    xeon.replace("Intel(R) Xeon(R)", "AMD EPYC")
  )


def test_a_second_run_reads_every_program_and_gives_the_same_results(tmp_path):
  args = ["--task", "digits-logreg", "--grid", "lr=1e-3:1:4:log", "--steps", "20",
          "--eval-every", "10", "--batch-size", "32", "--seeds", "1", "--devices", "1",
          "--no-progress"]  # fmt: skip
  env = subprocess_env(*SUITE, LRLAB_CACHE_DIR=str(tmp_path / "cache"))
  folder = tmp_path / "cache" / "jax" / compile_cache.machine_folder()
  programs = []
  for out in ("first", "second"):
    done = subprocess.run(
      [sys.executable, "-m", "lrlab", "sweep", *args, "--out", str(tmp_path / out)],
      capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    programs.append(sorted(p.name for p in folder.iterdir()))
    saved = json.loads((tmp_path / out / "sweep.json").read_text())
    assert saved["metadata"]["compile_cache"] == str(folder)
  assert len(programs[0]) >= 3  # initialization, segment, step-0 evaluation at least
  assert programs[1] == programs[0]  # nothing compiled the second time
  first, second = ((tmp_path / out / "results.csv").read_text() for out in ("first", "second"))
  assert first == second
