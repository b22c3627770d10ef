"""``lrlab.cli.output``: the checks a results folder passes before any compute."""

import os

import pytest

import lrlab
from lrlab.cli import common, output
from lrlab.cli import sweep as sweep_command

SETTINGS = {"steps": 10, "grid": {"lr": [0.1, 0.2]}}


def test_a_folder_that_cannot_be_written_is_refused_creating_nothing(tmp_path):
  if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses even root
    if not os.path.isdir("/sys/kernel"):
      pytest.skip("needs a non-root user or /sys")
    parent = "/sys/kernel"
  else:
    parent = str(tmp_path / "locked")
    os.mkdir(parent, 0o500)
  out = os.path.join(parent, "lrlab-results", "sweep")
  with pytest.raises(common.UsageError, match=r"^--out must be a folder this process can write"):
    output.claim(out, "sweep", SETTINGS, ["*.png"])
  assert not os.path.exists(os.path.dirname(out))


def test_the_hash_names_the_settings_not_their_order():
  shuffled = {"grid": {"lr": [0.1, 0.2]}, "steps": 10}
  assert output.settings_hash(shuffled) == output.settings_hash(SETTINGS)
  assert output.settings_hash(SETTINGS | {"steps": 11}) != output.settings_hash(SETTINGS)
  assert len(output.settings_hash(SETTINGS)) == output.HASH_LENGTH


def test_a_claim_without_files_holds_nothing_to_lose(tmp_path):
  assert not output.claim(str(tmp_path), "sweep", SETTINGS, ["*.png"])  # e.g. a failed start
  other = SETTINGS | {"steps": 20}
  assert not output.claim(str(tmp_path), "sweep", other, ["*.png"])  # no --overwrite needed
  (tmp_path / "sensitivity.png").write_bytes(b"png")
  assert output.claim(str(tmp_path), "sweep", other, ["*.png"])  # this run, with its files
  with pytest.raises(common.UsageError, match=r"holds another run \(sweep \w+: steps 20 there, "
                     r"10 here; this one is sweep \w+\)"):  # fmt: skip
    output.claim(str(tmp_path), "sweep", SETTINGS, ["*.png"])
  assert (tmp_path / "sensitivity.png").exists()  # refused: nothing removed


def test_another_command_cannot_take_a_folder_and_overwrite_leaves_none_of_its_files(tmp_path):
  out = str(tmp_path)
  output.claim(out, "sweep", SETTINGS, output.OWNED["sweep"])
  (tmp_path / "results.csv").write_text("member\n")
  with pytest.raises(common.UsageError, match=r"holds another run \(sweep "):
    output.claim(out, "find", SETTINGS, output.OWNED["find"])  # lrlab find into a sweep's folder
  output.claim(out, "find", SETTINGS, output.OWNED["find"], overwrite=True)
  assert not (tmp_path / "results.csv").exists()
  assert output.finish(succeeded=True) == []
  for name in ("range_test.json", "parallel.json", "lr_find.png"):
    (tmp_path / name).write_text("{}")
  output.claim(out, "sweep", SETTINGS, output.OWNED["sweep"], overwrite=True)
  assert output.finish(succeeded=True) == []
  assert sorted(os.listdir(out)) == ["settings.json"]  # none of find's files stay behind


def test_overwrite_removes_only_what_lrlab_writes(tmp_path):
  (tmp_path / "holiday.png").write_bytes(b"png")
  (tmp_path / "results.csv").write_text("x\n")
  output.claim(str(tmp_path), "sweep", SETTINGS, output.OWNED["sweep"], overwrite=True)
  assert sorted(os.listdir(tmp_path / output.REPLACED)) == ["results.csv"]  # until it finishes
  assert output.finish(succeeded=True) == []
  assert sorted(os.listdir(tmp_path)) == ["holiday.png", "settings.json"]


def test_a_run_that_fails_after_replacing_another_keeps_it_until_one_succeeds(
  cli, tmp_path, monkeypatch, capsys
):
  # --overwrite removed the old sweep's files before the new one had trained: a new run that
  # then failed (a crash, a full disk, Ctrl-C) left neither.
  run = cli(sweep_command.main, "--task", "quadratic", "--optimizer", "sgd", "--steps", "20",
            "--eval-every", "10", "--seeds", "1", "--no-progress", "--out", "o")  # fmt: skip
  assert run("--grid", "lr=0.1,0.5")[0] == 0
  old = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir() if p.is_file()}
  assert {"sweep.json", "results.csv", "settings.json"} <= set(old)

  def crash(*args, **kwargs):
    raise RuntimeError("the machine went away")

  with monkeypatch.context() as patch:
    patch.setattr(lrlab.sweep, "run", crash)
    with pytest.raises(RuntimeError, match="went away"):
      run("--grid", "lr=0.2,0.3", "--overwrite")
  assert capsys.readouterr().err.splitlines() == [
    "lrlab sweep: the run this one replaced is kept in o/.replaced; run this command again to "
    "finish it, or the replaced run's command with --overwrite to put it back."
  ]
  kept = tmp_path / "o" / output.REPLACED
  assert {p.name: p.read_bytes() for p in kept.iterdir() if p.is_file()} == old
  assert not (tmp_path / "o" / "sweep.json").exists()
  code, _, err = run("--grid", "lr=0.2,0.3")  # the new run's own folder now: no --overwrite
  assert code == 0 and err == "" and not kept.exists()
  assert "0.3" in (tmp_path / "o" / "results.csv").read_text()


def test_a_claim_removes_what_a_killed_command_left_half_written(tmp_path):
  # SIGKILL inside storage.atomic_write leaves its .tmp-<random><name>; the re-run that resumed
  # or reported the sweep left them there for good (50 kB a figure, a curves.npz's size).
  out = str(tmp_path)
  output.claim(out, "sweep", SETTINGS, output.OWNED["sweep"])
  (tmp_path / "results.csv").write_text("member\n")
  litter = [".tmp-k2j4results.csv", ".tmp-a8_zcurves_val_loss.png", ".tmp-settings.json",
            ".tmp-x1y2lr_find.png"]  # fmt: skip
  for name in [*litter, ".tmp-notes.txt", "holiday.png"]:
    (tmp_path / name).write_bytes(b"half")
  assert output.claim(out, "sweep", SETTINGS, output.OWNED["sweep"])  # the same run: kept
  assert sorted(os.listdir(out)) == [".tmp-notes.txt", "holiday.png", "results.csv",
                                     "settings.json"]  # fmt: skip
  output.release()


def test_settings_that_cannot_be_written_leave_no_temporary(tmp_path):
  # A full disk left a half-written .tmp-settings.json behind the claim's OSError; a file-size
  # limit of 16 bytes fails the same write (EFBIG) as ENOSPC does.
  import subprocess
  import sys

  code = (
    "import resource, signal, sys; from lrlab.cli import output; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16)); "
    "output.claim(sys.argv[1], 'sweep', {'steps': 10}, output.OWNED['sweep'])"
  )
  done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                        text=True, timeout=120)  # fmt: skip
  assert "File too large" in done.stderr
  assert os.listdir(tmp_path) == []


def test_a_folder_another_process_is_writing_is_refused_and_free_once_it_ends(tmp_path):
  # Two commands into one --out at once interleaved their files (nothing held the folder).
  import subprocess
  import sys

  holder = subprocess.Popen(
    [sys.executable, "-c", "import fcntl, os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
     "fcntl.flock(d, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()", str(tmp_path)],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
  )  # fmt: skip
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(common.UsageError, match=r"^--out .* is being written by another lrlab"):
      output.claim(str(tmp_path), "sweep", SETTINGS, ["*.png"])
    assert os.listdir(tmp_path) == []  # refused before settings.json
  finally:
    holder.communicate("", timeout=30)
  try:
    assert not output.claim(str(tmp_path), "sweep", SETTINGS, ["*.png"])
    assert not output.claim(str(tmp_path), "sweep", SETTINGS, ["*.png"])  # held already: again
    other = subprocess.run(
      [sys.executable, "-c", "import fcntl, os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
       "fcntl.flock(d, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(tmp_path)],
      capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "BlockingIOError" in other.stderr  # this process holds it now
  finally:
    output.release()
  free = subprocess.run(
    [sys.executable, "-c", "import fcntl, os, sys; d = os.open(sys.argv[1], os.O_RDONLY); "
     "fcntl.flock(d, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(tmp_path)],
    capture_output=True, text=True, timeout=30,
  )  # fmt: skip
  assert free.returncode == 0, free.stderr
