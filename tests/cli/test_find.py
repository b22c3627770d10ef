"""``lrlab find`` stopped by Ctrl-C: one line and exit code 130, never a traceback."""

import os
import signal
import subprocess
import sys

from tests.workers import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _as_from_a_terminal() -> None:
  """SIGINT at its default in the child, as a shell gives it to a foreground command.

  A process started with SIGINT ignored keeps it ignored (Python then installs no
  KeyboardInterrupt handler), and a test worker can have it ignored by then: the run
  finished with exit 0 in two suite runs.
  """
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_with_130_and_one_line(tmp_path):
  script = os.path.join(ROOT, "scripts", "lr_find.py")  # the wrapper: the same code path
  env = subprocess_env()
  args = [sys.executable, script, "--task", "digits-mlp", "--steps", "3000",
          "--parallel-steps", "3000", "--devices", "1", "--out", str(tmp_path / "f")]  # fmt: skip
  with subprocess.Popen(
    args,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
    env=env,
    cwd=tmp_path,
    preexec_fn=_as_from_a_terminal,
  ) as process:
    assert process.stdout.readline().startswith("digits-mlp | adam")  # about to train
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
  # Together, so that a failure shows what the process printed (a crash in JAX's teardown
  # after an interrupted compile once turned the exit code into -11 or 1).
  message = [
    "Interrupted: files and checkpoints saved before this point are kept; run the same "
    "command again to continue from them."
  ]
  assert (process.returncode, stderr.strip().splitlines()) == (130, message)
  assert not (tmp_path / "f").exists()


def _program(text: str, how: str, preexec_fn=None) -> subprocess.CompletedProcess:
  """``python -c text how``, its output captured."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-c", text, how], capture_output=True, text=True,
                        env=env, timeout=60, preexec_fn=preexec_fn)  # fmt: skip


def test_interrupted_programs_skip_the_teardown_that_could_crash():
  """:func:`lrlab.cli.common.run_program` ends a Ctrl-C'd program at once: exit code 130, the
  one line, and no interpreter teardown (an atexit handler stands for JAX's, which crashed
  after an interrupt cut an XLA compile short); a program that returns exits with its code
  after the teardown, as usual."""
  program = (
    "import atexit, sys\n"
    "from lrlab.cli import common\n"
    "atexit.register(lambda: print('teardown', flush=True))\n"
    "def main():\n"
    "  if sys.argv[1] == 'interrupt':\n"
    "    raise KeyboardInterrupt\n"
    "  return 3\n"
    "common.run_program(main)\n"
  )
  interrupted, returned = _program(program, "interrupt"), _program(program, "return")
  message = (
    "Interrupted: files and checkpoints saved before this point are kept; run the same "
    "command again to continue from them.\n"
  )
  assert (interrupted.returncode, interrupted.stdout, interrupted.stderr) == (130, "", message)
  assert (returned.returncode, returned.stdout, returned.stderr) == (3, "teardown\n", "")


def test_a_stopped_sweep_and_a_ctrl_c_in_the_teardown_end_at_once_with_130():
  """A second Ctrl-C of a stopped sweep often landed after ``main()`` returned 130, in the
  interpreter's teardown: a ``KeyboardInterrupt`` traceback from JAX's atexit handler, or,
  after Python's signal handling was torn down, death by SIGINT (exit -2). A program that
  returns 130 now skips the teardown (an atexit handler stands for JAX's); after another
  return, a SIGINT sent from the teardown ends the program at once with 130, silently."""
  program = (
    "import atexit, os, signal, sys, time\n"
    "from lrlab.cli import common\n"
    "def teardown():\n"
    "  print('teardown', flush=True)\n"
    "  if sys.argv[1] == 'finished':\n"
    "    os.kill(os.getpid(), signal.SIGINT)\n"
    "    time.sleep(2)\n"
    "    print('teardown went on', flush=True)\n"
    "atexit.register(teardown)\n"
    "common.run_program(lambda: 0 if sys.argv[1] == 'finished' else common.EXIT_INTERRUPTED)\n"
  )
  stopped, finished = (
    _program(program, how, _as_from_a_terminal) for how in ("stopped", "finished")
  )
  assert (stopped.returncode, stopped.stdout, stopped.stderr) == (130, "", "")
  assert (finished.returncode, finished.stdout, finished.stderr) == (130, "teardown\n", "")
