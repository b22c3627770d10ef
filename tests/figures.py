"""What the suite's figure tests share: a figure's file survives a failed write."""

import os

import pytest
from matplotlib.figure import Figure


def assert_written_atomically(draw, path, monkeypatch) -> None:
  """``draw(path)`` writes a figure to ``path``; drawn again with a write that dies halfway
  (half a PNG, then "disk full", into a path or an open file alike), the earlier figure is left
  whole and nothing else is left in its folder."""
  draw(path)
  before = path.read_bytes()

  def crash(self, file, **kwargs):
    if isinstance(file, str | os.PathLike):
      with open(file, "wb") as opened:
        opened.write(b"half a png")
    else:
      file.write(b"half a png")
    raise OSError("disk full")

  with monkeypatch.context() as patch:
    patch.setattr(Figure, "savefig", crash)
    with pytest.raises(OSError, match="disk full"):
      draw(path)
  assert path.read_bytes() == before and os.listdir(path.parent) == [path.name]
