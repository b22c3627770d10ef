"""An output folder holds one run's files: a command claims it before any compute.

The claim is ``settings.json``: the subcommand and the settings that determine
its numbers (not how they are shown: ``--tolerance`` and ``--metric`` may
change on a re-run), with a short hash of them. A default folder carries the
hash in its name, so different settings never share one. Into a folder that
another run has claimed, a command stops with a one-line error unless told
``--overwrite``. Replacing a run (``--overwrite``, or ``--fresh`` and ``lrlab find``'s re-run of
the same one) deletes nothing before the new run has its results: the earlier run's files move
into ``.replaced/``, removed once a command into the folder succeeds (:func:`finish`), so a
folder never mixes two runs' files and a new run that fails, is stopped or is killed loses no old
one; the command that put them there resumes, and the replaced run's own command puts them back.
A command killed at any point leaves a folder the next claim makes whole (:func:`_recover`), and
a claim removes what a killed command left half-written (``.tmp-*`` temporaries of lrlab's files).
A command holds the folder it claims (:func:`hold`) until it ends, so two commands never write
into one folder at once.
"""

import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lrlab import _checks
from lrlab.cli.common import UsageError
from lrlab.sweep import storage

SETTINGS = "settings.json"
# The folders this process holds (:func:`hold`), by real path: open descriptors of the folders.
_HELD: dict[str, int] = {}
#: Where a claim with ``--overwrite`` keeps the run it replaces until the new one finishes.
REPLACED = ".replaced"
# Files on their way between a folder and its REPLACED (set aside, or put back), and a REPLACED
# on its way out: a claim that finds the one (left by a killed command) moves its files into the
# folder, the other it removes. Hidden names, which no pattern of OWNED matches.
_MOVING, _REMOVING = f"{REPLACED}-moving", f"{REPLACED}-removing"
# The folders this process's command claimed: a run replaced there waits in REPLACED until it
# finishes (:func:`finish`).
_CLAIMED: list[str] = []
HASH_LENGTH = 8
# The files and folders each command writes in its folder (glob patterns). A command that
# takes over a folder claimed by another command finds, refuses and removes *that* command's
# files too, so a folder never mixes two runs' files. Narrow patterns: a user's own files
# (holiday.png) in an --out folder are never lrlab's.
OWNED = {
  "sweep": (
    "sweep.json", "results.csv", "curves.npz", "sensitivity.png", "curves_*.png",
    "heatmap_*.png", "pbt.png", "checkpoint", "search.json",
  ),
  "find": ("range_test.json", "parallel.json", "lr_find.png"),
  "schedules": ("decays.png", "cosine.png", "cyclical.png", "warmup.png"),
}  # fmt: skip


def settings_hash(settings: Mapping[str, Any]) -> str:
  """The first :data:`HASH_LENGTH` hex digits of the SHA-256 of ``settings`` as sorted JSON."""
  text = json.dumps(settings, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def default_folder(command: str, task_name: str, optimizer: str, digest: str) -> str:
  """``results/COMMAND-TASK-OPTIMIZER-HASH``: named for a person, unique to the settings."""
  return os.path.join("results", f"{command}-{task_name}-{optimizer}-{digest}")


def check_writable(out: str) -> None:
  """Check, creating nothing, that ``out`` is a folder this process can make and write in.

  Raises:
    UsageError: naming ``--out``, its value and the reason, if ``out`` (or a
      folder above it) is a file, or the nearest existing folder is not writable.
  """
  if os.path.exists(out) and not os.path.isdir(out):
    raise UsageError(f"--out must be a folder to create or reuse; got {out!r}, which is a file.")
  existing = os.path.abspath(out)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UsageError(f"--out must be a folder to create or reuse; got {out!r}, inside a file.")
  try:
    with tempfile.TemporaryFile(dir=existing):
      pass
  except OSError as error:
    reason = error.strerror or type(error).__name__
    message = f"--out must be a folder this process can write; got {out!r} ({reason})."
    raise UsageError(message) from None


def _owned(out: str, patterns: Sequence[str]) -> list[str]:
  """The paths in ``out`` that match ``patterns`` (the files a command writes)."""
  found = set()
  for pattern in patterns:
    found.update(glob.glob(os.path.join(glob.escape(out), pattern)))
  return sorted(found)


def _claim_of(out: str) -> dict[str, Any]:
  """What ``out``'s ``settings.json`` says (``{}`` when it is missing or unreadable)."""
  try:
    previous = json.loads((Path(out) / SETTINGS).read_text(encoding="utf-8"))
  except (OSError, UnicodeDecodeError, json.JSONDecodeError):
    return {}
  return previous if isinstance(previous, dict) else {}


def _holds(out: str | Path, command: str, settings: Mapping[str, Any]) -> bool:
  """Whether ``out``'s ``settings.json`` claims it for ``command`` with ``settings``."""
  previous = _claim_of(str(out))
  return previous.get("command") == command and previous.get("hash") == settings_hash(settings)


def claimed_by(out: str) -> str | None:
  """The command that claimed ``out`` (its ``settings.json``), or None."""
  return _claim_of(out).get("command")


def check(
  out: str, command: str, settings: Mapping[str, Any], patterns: Sequence[str], *, overwrite: bool
) -> tuple[bool, list[str]]:
  """Check, changing nothing, that ``command`` may write its run into ``out``.

  Returns:
    ``(same, files)``: whether ``out`` was claimed by this very run (command and
    settings), and the files of ``patterns`` it holds.

  Raises:
    UsageError: ``out`` is not a writable folder (:func:`check_writable`), or it
      holds the files of another run (or of a run that left no ``settings.json``)
      and ``overwrite`` is off. A claim without files holds nothing to lose.
  """
  check_writable(out)
  previous = _claim_of(out)
  same = _holds(out, command, settings)
  theirs = () if same else OWNED.get(previous.get("command"), ())
  files = _owned(out, (*patterns, *theirs))
  if files and not same and not overwrite:
    held = f"{previous['command']} {previous['hash']}" if "hash" in previous else "no settings.json"
    theirs = previous.get("settings")
    if previous.get("command") == command and isinstance(theirs, dict):  # name what changed
      now = json.loads(json.dumps(dict(settings), default=str))
      held = f"{held}: {_checks.differences(theirs, now)}"
    raise UsageError(
      f"--out {out!r} holds another run ({held}; this one is {command} "
      f"{settings_hash(settings)}); pass --overwrite to replace it, or give another --out."
    )
  return same, files


def claim(
  out: str,
  command: str,
  settings: Mapping[str, Any],
  patterns: Sequence[str],
  *,
  overwrite: bool = False,
  fresh: bool = False,
) -> bool:
  """Claim ``out`` for ``command`` with ``settings``; True when it already holds this run's files.

  Args:
    out: the folder (checked as :func:`check` does, then created).
    command: the subcommand, e.g. ``"sweep"``.
    settings: what determines the run's numbers (JSON-able).
    patterns: glob patterns of the files and folders ``command`` writes in ``out``.
    overwrite: replace a run of other settings: its files (and ``settings.json``) move to
      ``out/.replaced`` (:data:`REPLACED`), removed once a command into ``out`` succeeds
      (:func:`finish`), so a run that fails leaves the old one to move back. Where
      ``.replaced`` holds this very run (a replacement of it failed), it moves back instead.
    fresh: start this run over: its own files (checkpoint included) move to ``.replaced`` too.

  A ``.replaced`` already there holds the last run that was not itself replacing one; the files
  in ``out`` beside it are those of a replacement that did not succeed, and are removed when
  ``overwrite`` or ``fresh`` replaces them in turn.

  Raises:
    UsageError: as :func:`check`, or another command holds ``out`` now (:func:`hold`).
  """
  check_writable(out)
  if os.path.isdir(out):  # held before any file changes: another command writing here is refused
    hold(out)
    _recover(out)  # then checked as a killed command's successor finds it
  same, files = check(out, command, settings, patterns, overwrite=overwrite)
  os.makedirs(out, exist_ok=True)  # only now: a refused claim creates nothing
  hold(out)
  _CLAIMED.append(out)
  aside = Path(out) / REPLACED
  if not same and not fresh and _holds(aside, command, settings):  # this very run, replaced
    _remove([*_owned(out, [SETTINGS]), *files])
    _put_back(out)
    same, files = True, _owned(out, patterns)
  if (not same or fresh) and files:
    if aside.exists():  # the run there is the last one not replaced; these are a later try's
      _remove([*_owned(out, [SETTINGS]), *files])
    else:
      _set_aside(out, files)
  every = [SETTINGS, *(pattern for owned in OWNED.values() for pattern in owned)]
  for name in _owned(out, [f".tmp-*{pattern}" for pattern in every]):
    os.unlink(name)  # half-written by a killed command (storage.atomic_write's temporaries)
  document = {"command": command, "hash": settings_hash(settings), "settings": settings}
  text = json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
  storage.atomic_write(Path(out) / SETTINGS, lambda file: file.write(text))
  return same and not fresh and bool(files)


def hold(out: str) -> None:
  """Hold the folder ``out`` for this process until :func:`release` (or its exit).

  An advisory lock (``flock``) on the folder itself: a second lrlab command claiming the same
  folder while this one runs stops with a one-line error, instead of the two interleaving
  their files and ``settings.json`` naming one run while the other's results lie beside it.
  Holding a folder already held by this process does nothing. Where the platform or the file
  system offers no ``flock`` (Windows, some network mounts), nothing is held.

  Raises:
    UsageError: another process holds ``out``.
  """
  key = os.path.realpath(out)
  if key in _HELD:
    return
  try:
    import fcntl
  except ImportError:  # no flock here: nothing to hold
    return
  descriptor = os.open(out, os.O_RDONLY)
  try:
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    os.close(descriptor)
    raise UsageError(
      f"--out {out!r} is being written by another lrlab command running now; wait for it to "
      "finish, or give another --out."
    ) from None
  except OSError:  # a file system without flock
    os.close(descriptor)
    return
  _HELD[key] = descriptor


def _remove(paths: Sequence[str]) -> None:
  """Remove each file or folder of ``paths``, in order."""
  for name in paths:
    shutil.rmtree(name) if os.path.isdir(name) else os.unlink(name)


def _move_all(source: Path, out: str) -> None:
  """Move every entry of ``source`` into ``out`` (replacing one of the same name), then remove
  ``source``: whatever point a kill stops it at, running it again finishes it."""
  for entry in sorted(source.iterdir()):
    target = Path(out) / entry.name
    if target.is_dir() and not target.is_symlink():
      shutil.rmtree(target)
    os.replace(entry, target)
  source.rmdir()


def _set_aside(out: str, files: Sequence[str]) -> None:
  """Move the earlier run's ``files`` and ``settings.json`` into ``out/.replaced``, where they
  stay until a command into ``out`` succeeds (:func:`finish`). They gather in a folder of
  another name, renamed ``.replaced`` once all are there: a ``.replaced`` always holds a whole
  run, and a kill on the way leaves them for :func:`_recover` to move back."""
  moving = Path(out) / _MOVING
  moving.mkdir()
  for name in [*files, *_owned(out, [SETTINGS])]:  # the claim's file last
    os.replace(name, moving / Path(name).name)
  os.replace(moving, Path(out) / REPLACED)


def _put_back(out: str) -> None:
  """Move the run in ``out/.replaced`` back into ``out`` (whose own run is removed first)."""
  moving = Path(out) / _MOVING
  os.replace(Path(out) / REPLACED, moving)
  _move_all(moving, out)


def _recover(out: str) -> None:
  """Make ``out`` whole after a command killed inside :func:`_set_aside`, :func:`_put_back` or
  :func:`finish`: files on their way between ``out`` and ``.replaced`` go back into ``out``
  (a half set aside run returns whole, a half put back one arrives whole), and a ``.replaced``
  that was being removed is removed. Only under :func:`hold`, so never another command's."""
  moving, removing = Path(out) / _MOVING, Path(out) / _REMOVING
  if moving.is_dir():
    _move_all(moving, out)
  if removing.exists():
    shutil.rmtree(removing)


def finish(succeeded: bool) -> list[str]:
  """The end of this process's command: where it succeeded, remove the runs its claims replaced
  (:func:`_set_aside`, or an earlier failed replacement's, in a folder it finished in); else
  keep them. Returns the folders still holding a replaced run, to name to the user.

  A ``.replaced`` is renamed before it is removed, so one that a kill leaves half-removed is
  never taken for a whole run (:func:`_recover` removes it)."""
  claimed, kept = [Path(out) for out in _CLAIMED], []
  _CLAIMED.clear()
  for out in claimed:
    aside = out / REPLACED
    if not aside.exists():
      continue
    if not succeeded:
      kept.append(str(aside))
      continue
    try:
      shutil.rmtree(out / _REMOVING, ignore_errors=True)
      os.replace(aside, out / _REMOVING)
    except OSError:
      continue  # e.g. the folder was moved meanwhile: the next claim there finishes this
    shutil.rmtree(out / _REMOVING, ignore_errors=True)
  return kept


def kept_note(aside: str) -> str:
  """What to do about a run that :func:`finish` kept in ``aside`` (a folder's ``.replaced``)."""
  out = os.path.dirname(aside)
  if _claim_of(aside).get("hash", "") == _claim_of(out).get("hash"):  # --fresh: this run's own
    return f"the results this run replaces are kept in {aside}; run this command again to finish."
  return (
    f"the run this one replaced is kept in {aside}; run this command again to finish it, or the "
    "replaced run's command with --overwrite to put it back."
  )


def release() -> None:
  """Let go of every folder this process holds (:func:`hold`)."""
  while _HELD:
    os.close(_HELD.popitem()[1])
