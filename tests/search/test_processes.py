"""Successive halving, PBT, Hyperband and run_study over two jax.distributed processes equal one
process with two devices."""

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 240  # seconds; a worker that hangs in a collective fails the test, not the suite


def _command(out, *args) -> list[str]:
  return [sys.executable, "-m", "tests.search.processes_worker", str(out), *args]


def _launch(command: list[str]) -> subprocess.Popen:
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.Popen(
    command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )


def _two_processes(tmp_path, *args: str) -> tuple[list[int], list[str]]:
  """The worker as two jax.distributed processes of one CPU device each, both given ``args``;
  their return codes and outputs. If process 0 dies of a signal, process 1 is killed too."""
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    coordinator = f"localhost:{probe.getsockname()[1]}"
  joined = lambda i: ["--processes", "2", "--process-id", str(i), "--coordinator", coordinator]
  processes = [_launch(_command(tmp_path / f"p{i}.npz", *joined(i), *args)) for i in range(2)]
  try:
    first = processes[0].communicate(timeout=TIMEOUT)[0]
    if processes[0].returncode < 0:
      processes[1].kill()
    outputs = [first, processes[1].communicate(timeout=TIMEOUT)[0]]
  finally:
    for p in processes:
      p.kill()
  return [p.returncode for p in processes], outputs


def _load(path) -> tuple[dict[str, np.ndarray], dict]:
  with np.load(path) as saved, open(os.path.splitext(path)[0] + ".json") as f:
    return dict(saved), json.load(f)


@pytest.mark.slow  # subprocesses, as the sweep engine's two-process test
def test_two_processes_stopped_killed_and_resumed_equal_one_process(tmp_path):
  # The reference: one process with two host devices, run beside the first two-process launch.
  reference = _launch(_command(tmp_path / "one.npz", "--devices", "2"))
  # Launch 1: the members' mesh spans two processes. Halving: process 1 alone asks to stop
  # at seed 1's first boundary (after its rung compacted six members into one chunk of
  # two); every process must stop there, process 0 saving. Hyperband: the same, at the same
  # boundary (after bracket 0's cut). PBT: process 0 is SIGKILLed at
  # seed 0's last boundary, before its checkpoint: the one after both exploits is on disk.
  ckpt = tmp_path / "ckpt"
  try:
    codes, outputs = _two_processes(tmp_path, "--checkpoint", str(ckpt), "--stop-at", "4",
                                    "--kill-at", "3")  # fmt: skip
    output = reference.communicate(timeout=TIMEOUT)[0]
  finally:
    reference.kill()
  assert reference.returncode == 0, output
  assert codes[0] == -signal.SIGKILL, outputs
  for output in outputs:  # the stop asked in process 1 stopped process 0 at the same point
    assert 'halving stopped at {"seed": 1, "segment": 1}' in output, output
    assert 'hyperband stopped at {"seed": 1, "segment": 1}' in output, output
  assert (ckpt / "halving" / "sweep_checkpoint.npz").exists()
  assert (ckpt / "hyperband" / "sweep_checkpoint.npz").exists()
  assert (ckpt / "pbt" / "sweep_checkpoint.npz").exists()
  # Launch 2: the same call again; every search resumes and finishes in both processes.
  codes, outputs = _two_processes(tmp_path, "--checkpoint", str(ckpt))
  assert codes == [0, 0], outputs
  one, one_facts = _load(tmp_path / "one.npz")
  assert one_facts["halving"]["num_devices"] == one_facts["pbt"]["num_devices"] == 2
  # The searches did what the test is about: a compaction, and PBT copies at both exploits.
  assert sorted(np.unique(one["halving.stopped_step"]).tolist()) == [2, 6]
  assert (one["halving.stopped_step"] == 6).sum(axis=1).tolist() == [2, 2]
  assert (one["pbt.lineage"] != np.arange(4)[:, None]).sum(axis=1).tolist() == [[1, 1], [1, 1]]
  assert one["hyperband.bracket"].tolist() == [0, 0, 0, 1, 1]  # 3 from step 0, 2 from step 2
  assert (one["hyperband.stopped_step"] == 2).sum(axis=1).tolist() == [2, 2]  # bracket 0's cut
  assert sorted(set(one["study.state"])) == ["COMPLETE", "PRUNED"]
  for i in range(2):
    each, facts = _load(tmp_path / f"p{i}.npz")
    assert facts["halving"] == {"num_devices": 2, "resumed_from": {"seed": 1, "segment": 1}}
    assert facts["pbt"] == {"num_devices": 2, "resumed_from": {"seed": 0, "segment": 2}}
    assert facts["hyperband"] == {"num_devices": 2, "resumed_from": {"seed": 1, "segment": 1}}
    assert (facts["saves"] > 0) == (i == 0)  # process 0 alone writes the checkpoints
    assert sorted(each) == sorted(one)
    for field in one:  # curves, stops, rungs, brackets, lineage, schedule, trials: bit for bit
      np.testing.assert_array_equal(each[field], one[field], err_msg=f"process {i}: {field}")
  for method in ("halving", "pbt", "hyperband"):  # cleared at the end
    assert os.listdir(ckpt / method) == [], method
