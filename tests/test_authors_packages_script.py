"""``scripts/authors_packages_mnist1d.py``: a run writes where ``--out`` says, and never over the
committed ``experiments/results/lr_free_vs_tuned/authors_packages.json`` unless asked."""

import importlib.util
import json
import pathlib
import subprocess

import pytest

for package in ("torch", "dadaptation", "dog", "prodigyopt", "schedulefree"):
  pytest.importorskip(package)

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "experiments" / "results" / "lr_free_vs_tuned" / "authors_packages.json"


@pytest.fixture
def script():
  """The script as a module; PyTorch's default dtype, which its main sets, restored after."""
  path = ROOT / "scripts" / "authors_packages_mnist1d.py"
  spec = importlib.util.spec_from_file_location("authors_packages_mnist1d", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  dtype = module.torch.get_default_dtype()
  yield module
  module.torch.set_default_dtype(dtype)


def _computed():
  raise AssertionError("compared the methods before reading the command line")


def _committed_bytes() -> bytes | None:
  return COMMITTED.read_bytes() if COMMITTED.exists() else None


def test_help_prints_the_flags_and_compares_nothing(script, monkeypatch, capsys):
  """``--help`` (the script had no command line) ran the whole comparison, a minute, and
  rewrote the committed report that tests/experiments/test_lr_free_vs_tuned.py checks against
  the experiment's summary, so that check failed until the experiment was re-run."""
  monkeypatch.setattr(script, "cases", _computed)
  before = _committed_bytes()
  with pytest.raises(SystemExit) as exit_:
    script.main(["--help"])
  assert exit_.value.code == 0
  text = capsys.readouterr().out
  assert "--out" in text and "experiments/results/lr_free_vs_tuned/authors_packages.json" in text
  assert _committed_bytes() == before


def test_the_default_out_is_no_committed_file(script, monkeypatch):
  """Run without ``--out``, it writes under results/ (gitignored), which git does not track."""
  written = []
  monkeypatch.setattr(script, "cases", dict)  # no method: only the report's frame is written
  monkeypatch.setattr(pathlib.Path, "write_text", lambda path, *a, **k: written.append(path))
  monkeypatch.setattr(pathlib.Path, "mkdir", lambda path, *a, **k: None)
  script.main([])
  (path,) = written
  assert path.parts[0] == "results" and not path.is_absolute()
  assert "/results/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
  tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(path)], cwd=ROOT,
                           capture_output=True, timeout=30)  # fmt: skip
  assert tracked.returncode != 0


def test_a_run_writes_its_out_and_matches_the_package(script, monkeypatch, tmp_path):
  """One method end to end into a folder that does not exist yet: DoG against its authors'
  package over the 100 steps, float64 (the committed report: 7.9e-16)."""
  dog_only = script.cases()["dog"]
  monkeypatch.setattr(script, "cases", lambda: {"dog": dog_only})
  out = tmp_path / "new" / "report.json"
  before = _committed_bytes()
  returned = script.main(["--out", str(out)])
  report = json.loads(out.read_text(encoding="utf-8"))
  assert report == json.loads(json.dumps(returned)) and report["steps"] == 100
  assert report["methods"]["dog"]["params_deviation"] < 1e-12
  assert report["methods"]["dog"]["weights_moved"] > 0.01  # the match is not trivial
  assert _committed_bytes() == before
