"""The command-line tests' runner: a command's ``main`` in this process, from a fresh folder."""

import functools
import os

import pytest


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
  """``cli(main, *flags)(*args)``: ``main([*flags, *args])`` run from ``tmp_path`` in this
  process, as ``(exit code, stdout, stderr)``; ``XLA_FLAGS`` is restored afterwards."""
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))

  def run(main, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err

  return lambda main, *flags: functools.partial(run, main, *flags)
