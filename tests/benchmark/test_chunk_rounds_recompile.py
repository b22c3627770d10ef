"""Fix 4: the chunk benchmark's rounds must time compiled programs, not compilations, however
many chunk sizes it compares (lrlab.sweep keeps the programs of CACHE_SIZE calls only)."""

import pytest


@pytest.mark.slow  # compiles a sweep per chunk size
def test_rounds_over_more_sizes_than_the_program_cache_do_not_recompile(tmp_path, monkeypatch):
  from lrlab.benchmark import chunks
  from lrlab.sweep import programs

  monkeypatch.setenv("LRLAB_CACHE_DIR", str(tmp_path / "elsewhere"))
  monkeypatch.setattr(programs, "CACHE_SIZE", 2)  # fewer than auto + the three fixed sizes
  report = chunks.run_chunks(
    str(tmp_path), tasks=("digits-logreg",), ks=(4,), chunk_sizes=(1, 2, 4), steps=2,
    batch_size=16, repeats=2, log=lambda line: None,
  )  # fmt: skip
  assert [r["recompiles"] for r in report["rows"]] == [0, 0, 0, 0]
  assert programs.CACHE_SIZE == 2  # restored
