"""The shape of the code: no module of the package over 400 lines."""

import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "lrlab"
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_module_over_400_lines(path):
  lines = len(path.read_text(encoding="utf-8").splitlines())
  assert lines <= 400, f"{path.relative_to(PACKAGE.parent)} has {lines} lines; split it by concept"
