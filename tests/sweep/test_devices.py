"""Chunk sizes and the cache budget they come from, on stand-in devices."""

import dataclasses

import pytest

from lrlab.sweep import devices


@dataclasses.dataclass
class _Device:
  platform: str
  stats: dict | None = None

  def memory_stats(self):
    return self.stats


@pytest.fixture
def cpu_budget(monkeypatch):
  def set_budget(nbytes):
    monkeypatch.setattr(devices, "_cpu_cache_bytes_per_core", lambda: nbytes)

  return set_budget


def test_cpu_chunks_fill_the_cache_then_balance(cpu_budget):
  cpu_budget(4 * 100 * 46)  # room for 46 members of 100 bytes (4x working set) per device
  one = [_Device("cpu")]
  # The docstring's case: 64 members with room for 46 run as two chunks of 32.
  assert devices.auto_chunk_size(100, 64, one) == 32
  assert devices.auto_chunk_size(100, 46, one) == 46  # all fit: one chunk
  assert devices.auto_chunk_size(100, 3, one) == 3
  two = [_Device("cpu"), _Device("cpu")]
  assert devices.auto_chunk_size(100, 92, two) == 92  # 46 per device
  assert devices.auto_chunk_size(100, 93, two) == 48  # two chunks of 46.5, rounded up to even


def test_a_member_larger_than_the_budget_still_runs(cpu_budget):
  cpu_budget(10)
  assert devices.auto_chunk_size(10**6, 5, [_Device("cpu")] * 4) == 4  # one per device


def test_accelerators_budget_half_their_free_memory():
  gpu = _Device("gpu", {"bytes_limit": 10_000, "bytes_in_use": 2_000})
  # (10000 - 2000) / 2 = 4000 bytes, 4 x 100 bytes per member: 10 members per chunk.
  assert devices.auto_chunk_size(100, 10, [gpu]) == 10
  assert devices.auto_chunk_size(100, 20, [gpu]) == 10
  assert devices.auto_chunk_size(100, 11, [gpu]) == 6  # two balanced chunks, not 10 + 1


@pytest.mark.parametrize("num_devices", [1, 2, 3, 8])
@pytest.mark.parametrize("num_members", [1, 7, 64, 513])
def test_chunks_cover_the_members_with_little_padding(cpu_budget, num_devices, num_members):
  cpu_budget(4 * 100 * 10)
  chunk = devices.auto_chunk_size(100, num_members, [_Device("cpu")] * num_devices)
  largest = 10 * num_devices
  assert chunk % num_devices == 0 and num_devices <= chunk <= max(largest, num_devices)
  num_chunks = -(-num_members // chunk)
  fewest = -(-num_members // largest)  # as few chunks as the budget allows
  assert fewest <= num_chunks <= 2 * fewest
  assert num_chunks * chunk - num_members < num_chunks * num_devices  # padding per chunk < devices
  # No even chunking within twice the fewest chunks runs fewer (padded) members.
  ceil = lambda a, b: -(-a // b)
  even = lambda n: ceil(ceil(num_members, n), num_devices) * num_devices
  assert num_chunks * chunk == min(n * even(n) for n in range(fewest, 2 * fewest + 1))


def test_chunks_trade_one_more_chunk_for_less_padding(cpu_budget):
  cpu_budget(4 * 100 * 18)  # room for 18 members per device, as the MNIST-1D MLP on 2 cores
  two = [_Device("cpu"), _Device("cpu")]
  assert devices.auto_chunk_size(100, 512, two) == 32  # 16 x 32, not 15 x 36 (28 padding)
  # Activations count twice: 100 + 2 x 50 bytes per member halves the chunk's members.
  assert devices.auto_chunk_size(50, 64, two, activation_bytes=50) == 32
  assert devices.auto_chunk_size(50, 64, two, activation_bytes=0) == 64


def test_the_cpu_budget_is_l2_plus_a_share_of_l3(tmp_path):
  caches = [  # (level, type, size, shared_cpu_list) as Linux sysfs writes them
    (1, "Data", "48K", "0"),
    (1, "Instruction", "32K", "0"),
    (2, "Unified", "1024K", "0"),
    (3, "Unified", "32M", "0-7,16-23"),  # 16 cores share it
  ]
  for i, (level, kind, size, shared) in enumerate(caches):
    index = tmp_path / f"index{i}"
    index.mkdir()
    for name, value in dict(level=level, type=kind, size=size, shared_cpu_list=shared).items():
      (index / name).write_text(f"{value}\n")
  assert devices._cpu_cache_bytes_per_core(str(tmp_path)) == 2**20 + 32 * 2**20 // 16
  assert devices._cpu_cache_bytes_per_core(str(tmp_path / "missing")) == 8 * 2**20
