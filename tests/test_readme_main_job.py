"""The README's main-job output is the committed output of ``python scripts/vmap_sweep.py``."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_readme_block_is_the_committed_output_line_for_line():
  readme = (ROOT / "README.md").read_text(encoding="utf-8")
  section = readme.split("`python scripts/vmap_sweep.py` (the same as")[1]
  block = re.search(r"```\n(.*?)```", section, flags=re.DOTALL).group(1).splitlines()
  output = (ROOT / "benchmarks" / "cpu-2core" / "main_job.txt").read_text(encoding="utf-8")
  lines = output.splitlines()
  assert block and block == lines[: len(block)]  # the README leaves out only the Results line
  assert all(line.startswith("Results:") for line in lines[len(block) :])
