"""``lrlab sweep --search``: a re-run over a damaged search.json is one line, never a traceback."""

import pytest

from lrlab.cli import sweep as command

TINY = ["--task", "quadratic", "--optimizer", "sgd", "--steps", "36", "--eval-every", "4",
        "--batch-size", "50", "--seeds", "1", "--no-progress", "--chunk-size", "2"]  # fmt: skip


@pytest.fixture
def run(cli):
  """``lrlab sweep ARGS`` in this process, from ``tmp_path``: ``(code, stdout, stderr)``."""
  return cli(command.main, *TINY)


@pytest.mark.parametrize("damage", ["truncated", "no answer"])
def test_a_damaged_search_json_is_one_line_naming_fresh(run, tmp_path, damage):
  args = ("--grid", "lr=0.01:3:9:log", "--search", "halving", "--min-steps", "4", "--out", "h")
  assert run(*args)[0] == 0
  path = tmp_path / "h" / "search.json"
  text = path.read_text()
  path.write_text(text[:30] if damage == "truncated" else '{"method": "halving"}')
  code, out, err = run(*args)  # used to raise JSONDecodeError / KeyError: a traceback, exit 1
  assert (code, out) == (2, "") and err.count("\n") == 1
  assert err.startswith("lrlab sweep: error: 'h/search.json' is not a search.json that lrlab wrote")
  assert "--fresh" in err
  code, out, _ = run(*args, "--fresh")  # what the message says works
  assert code == 0 and "Model-steps" in out
