"""The README's snippets run as written."""

import contextlib
import io
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _section_code(title: str) -> str:
  with open(os.path.join(ROOT, "README.md")) as f:
    text = f.read()
  section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
  return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))


def test_your_own_model_section_runs_and_trains():
  code = _section_code("Your own model")
  assert "from_nnx" in code
  namespace: dict = {}
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    exec(compile(code, "README.md", "exec"), namespace)
  result = namespace["result"]
  assert "Best lr" in printed.getvalue()
  # BatchNorm + Dropout on the digits: the best rate of the grid reaches 90% validation accuracy.
  assert float(result.history.val_accuracy[0, :, -1].max()) > 0.9
  assert result.config["task"] == "digits-bn"


def test_your_own_model_section_is_short():
  with open(os.path.join(ROOT, "README.md")) as f:
    section = f.read().split("## Your own model", 1)[1].split("\n## ", 1)[0]
  assert len(section.strip().splitlines()) <= 26  # the heading's line and 25 of content


def _blocks() -> list[str]:
  """Every Python block but "Your own model"'s, which the test above runs and checks."""
  with open(os.path.join(ROOT, "README.md")) as f:
    blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.DOTALL)
  return [block for block in blocks if "from_nnx" not in block]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_blocks())))
def test_every_python_snippet_runs_exactly_as_written(index, tmp_path, monkeypatch):
  """Each block alone, in a fresh namespace and an empty folder (they write results/ there)."""
  monkeypatch.chdir(tmp_path)
  with contextlib.redirect_stdout(io.StringIO()):
    exec(compile(_blocks()[index], f"README.md block {index}", "exec"), {})
