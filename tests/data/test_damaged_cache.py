"""A damaged MNIST-1D cache file is rebuilt, not a crash."""

import numpy as np
import pytest

from lrlab import data
from lrlab.data import benchmarks


@pytest.mark.parametrize("damage", ["truncate", "flip_a_byte"])
def test_mnist1d_damaged_zip_cache_is_regenerated(tmp_path, damage):
  data.mnist1d(100, seed=8, cache_dir=tmp_path)
  (path,) = tmp_path.iterdir()
  raw = path.read_bytes()
  if damage == "truncate":
    bad = raw[: len(raw) // 2]  # "File is not a zip file"
  else:
    bad = raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:]  # "Bad CRC-32 for file 'x.npy'"
  path.write_bytes(bad)
  benchmarks._generate.cache_clear()
  ds = data.mnist1d(100, seed=8, cache_dir=tmp_path)
  assert ds.sizes == {"train": 72, "val": 8, "test": 20}
  with np.load(path) as stored:  # the cache was rewritten
    assert stored["x"].shape == (80, 40)
