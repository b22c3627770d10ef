"""Every number the READMEs quote for an experiment is backed by its committed summary.json.

The passages are each row of the results table in ``experiments/README.md``, its two
sections on the learning-rate-free methods and the finder, and the paragraphs of ``README.md``
that show an experiment's figure or name its script. Every number in them must be:

- a number of the experiment's ``summary.json`` (its measurements, settings or run time) as
  the README rounds it: to the decimals shown, or to the significant digits of ``1e-4``
  notation; a fraction may be quoted in percent or points (x100) and a difference by its size;
- or a number derived from the summary by a rule written below (a ratio, a count), checked
  the same way;
- or a setting or constant that the summary does not record (the momentum 0.9, the grid's
  first rate, the year of a paper), listed below with the reason.

A number in none of these fails the test: change the README, or record the number.

A measurement quoted with its error, ``X ± Y``, must be one pair of the summary: two numbers
whose key paths differ in one key only (``{"gap": X, "se": Y}``, ``slope`` and ``slope_se``,
``mean[i][j]`` and ``se[i][j]``), where ``X``'s key is a measurement (one of :data:`EFFECTS`,
not a p-value, a z or a setting) and ``Y``'s key an error of it: a plain ``se`` (``se_seeds``,
...) or one naming the measurement (``slope_se`` for ``slope_decades_per_doubling``,
``drift_se_decades`` for ``drift_decades``), so neither can be backed by an unrelated number.
"""

import json
import math
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MINUS = "\N{MINUS SIGN}"  # the READMEs write negative numbers with it
NUMBER = re.compile(rf"(?<![\w.])[{MINUS}-]?\d[\d,]*(?:\.\d+)?(?:e[{MINUS}-]?\d+)?(?!\w)")

# Quoted, but settings or constants that summary.json does not record.
CONSTANTS: dict[str, dict[str, str]] = {
  "u_curve": {
    "0.9": "SGD momentum",
    "1e-4": "the grid's first rate",
    "10": "the grid's last rate",
    "100": "batch size",
  },
  "lower_lr_accuracy": {"1e-4": "the grid's first rate", "100": "batch", "95": "95% target"},
  "best_lr_depends": {"0.9": "SGD momentum"},
  "normalization": {"1e-6": "the grid's first rate"},
  "plateau_feedback": {"1e-3": "the grid's first rate"},
  "lr_free_vs_tuned": {"95": "95% of tuned: the target", "6,000": "the --full size's steps"},
  "finder_validation": {
    "1e-7": "fastai's start_lr",
    "21055": "a Lightning pull request",
    "0.98": "fastai's smoothing beta",
  },
  "edge_of_stability": {"2021": "the year of Cohen et al."},
  "task_lm_transformer": {
    "4,096,000": "the training split: 2,000 steps x 32 sequences x 64",
    "64": "the model's default width and the default context",
  },
  "task_teacher_student": {"16,384": "the task's default num_train"},
  "task_resnets": {"0.03": "RESOLUTION in task_resnets.py: the margin of a resolved tie"},
  "batch_size": {
    "0.9": "SGD momentum",
    "1,441": "the first two tasks' default run time (their summary before the transformer joined)",
  },
}


def _summary(name: str) -> dict[str, Any]:
  return json.loads((ROOT / "experiments" / "results" / name / "summary.json").read_text())


def _edge_of_stability_sharpness(summary: dict, ratio: str = "initial_ratio") -> list[float]:
  """Sharpness at the start of each run (or its early low): its ratio to 2/lr, times 2/lr."""
  runs = summary["numbers"]["mse"]
  out = []
  for name, run in runs.items():
    two_over_lr = float(re.search(r"2/lr=([\d.]+)", name).group(1))
    out += [seed[ratio] * two_over_lr for seed in run["seeds"]]
  return out


def _best_peak_ratios(summary: dict) -> list[float]:
  """Each decaying schedule's best peak over the fixed rate's."""
  schedules = summary["numbers"]["sgd"]["schedules"]
  fixed = schedules["fixed"]["best_peak"]
  return [s["best_peak"] / fixed for name, s in schedules.items() if name != "fixed"]


def _tie_low_end(entry: dict) -> float:
  """The low end of a tie's 2-SE interval, ResNet - CNN gap less 2 SE."""
  return entry["resnet_minus_cnn"] - 2 * entry["resnet_minus_cnn_se"]


# Numbers derived from a summary: {experiment: {quoted: summary -> candidates}}.
DERIVED: dict[str, dict[str, Callable[[dict], list[float]]]] = {
  "u_curve": {"3.8": lambda s: [2 * (1 + 0.9) / 1.0]},  # heavy ball's limit 2(1+β)/L, L = 1
  "schedules": {
    "8": lambda s: [len(s["numbers"]["sgd"]["schedules"])],
    "4": _best_peak_ratios,
    "1.6": _best_peak_ratios,
  },
  "normalization": {"41": lambda s: [s["settings"]["per_decade"] * 10 + 1]},  # 1e-6 to 1e4
  "kfold_cv": {"13": lambda s: [s["settings"]["per_decade"] * 3 + 1]},  # 1e-4 to 1e-1
  "edge_of_stability": {
    "13": _edge_of_stability_sharpness,
    "18": _edge_of_stability_sharpness,
    "7": lambda s: _edge_of_stability_sharpness(s, "lowest_early_ratio"),
    "14": lambda s: _edge_of_stability_sharpness(s, "lowest_early_ratio"),
    "720": lambda s: [0.72 * s["settings"]["num_samples"]],  # the training split
  },
  "plateau_feedback": {"31.6": lambda s: [10**1.5]},  # the start, half a decade per 2 steps
  "task_resnets": {f"{MINUS}0.017": lambda s: [_tie_low_end(s["numbers"]["digits"])]},
}


def _leaves(value: Any) -> Iterator[float]:
  if isinstance(value, dict):
    for v in value.values():
      yield from _leaves(v)
  elif isinstance(value, list):
    for v in value:
      yield from _leaves(v)
  elif isinstance(value, int | float) and not isinstance(value, bool):
    yield float(value)


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, float]]:
  """``(key path, number)`` for every number of a summary, as :func:`_leaves` yields them."""
  if isinstance(value, dict | list):
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, v in items:
      yield from _paths(v, (*path, key))
  elif isinstance(value, int | float) and not isinstance(value, bool):
    yield path, float(value)


def _shows(token: str, value: float) -> bool:
  """Whether ``value`` (or its size, or x100 for percent and points) reads as ``token``."""
  text = token.replace(MINUS, "-").replace(",", "")
  quoted = float(text)
  for candidate in (value, -value, 100 * value, -100 * value):
    if not math.isfinite(candidate):
      continue
    if "e" in text:
      digits = len(text.split("e")[0].lstrip("-").replace(".", "").lstrip("0")) or 1
      if candidate != 0 and float(f"{candidate:.{digits - 1}e}") == quoted:
        return True
    else:
      decimals = len(text.split(".")[1]) if "." in text else 0
      if abs(candidate - quoted) <= 0.5 * 10**-decimals * (1 + 1e-9):
        return True
  return False


def _passages() -> Iterator[tuple[str, str, str]]:
  """``(experiment, where, text)`` for every README passage that quotes an experiment."""
  experiments = (ROOT / "experiments" / "README.md").read_text()
  for row in re.findall(r"^\| \d+ \|.*$", experiments, flags=re.MULTILINE):
    cells = [c.strip() for c in row.strip("|").split("|")]
    name = re.search(r"experiments/(\w+)\.py", cells[2]).group(1)
    yield name, f"experiments/README.md row {cells[0]}", cells[3]
  sections = {
    "### Learning-rate-free methods vs a tuned sweep": "lr_free_vs_tuned",
    "### The LR finder against a full sweep": "finder_validation",
  }
  for title, name in sections.items():
    yield name, f"experiments/README.md {title}", experiments.split(title)[1].split("\n#")[0]
  readme = (ROOT / "README.md").read_text()
  for line in readme.splitlines():
    named = re.fullmatch(r"\|(.*)\| `experiments/(\w+)\.py` \|", line)
    if named:  # a row of the task table: its own cells, less the code spans
      yield named.group(2), f"README.md task table: {named.group(2)}", named.group(1)
  section = readme.split("## LR finder")[1].split("\n## Schedules")[0]
  name = None
  for block in section.split("\n\n"):
    named = re.search(r"experiments/(?:results/)?(\w+)(?:/|\.py)", block)
    if named and named.group(1) != "README":
      name = named.group(1)
    elif not block.startswith("- "):  # a list continues the paragraph before it
      name = None
    if name is not None and (ROOT / "experiments" / "results" / name).is_dir():
      yield name, f"README.md: {block[:50]!r}", block


def _numbers(text: str) -> list[str]:
  text = re.sub(r"!?\[[^\]]*\]\([^)]*\)|`[^`]*`", "", text)  # links, figures and code
  return [token.rstrip(",") if token.endswith(",") else token for token in NUMBER.findall(text)]


PASSAGES = list(_passages())
SIGNED = rf"[{MINUS}+-]?\d[\d,]*(?:\.\d+)?(?:e[{MINUS}-]?\d+)?"
PLUS_MINUS = re.compile(rf"(?<![\w.])({SIGNED})\s*±\s*({SIGNED})(?!\w)")


def _pairs(text: str) -> list[tuple[str, str]]:
  """Every ``X ± Y`` of a passage (links, figures and code left out), signs of ``+`` dropped."""
  text = re.sub(r"!?\[[^\]]*\]\([^)]*\)|`[^`]*`", "", text)
  return [(x.lstrip("+"), y.lstrip("+")) for x, y in PLUS_MINUS.findall(text)]


# The keys of the summaries' measurements that the READMEs quote with an error.
EFFECTS = frozenset(
  {
    *("gap", "difference", "effect", "resnet_minus_cnn", "extra_decades", "usable_decades"),
    *("widening_decades", "drift_decades", "drift_gap_decades", "mean_abs_decades"),
    *("layer_decay_decades", "depth_drop_decades", "b_simple_over_critical_decades"),
    *("slope", "slope_decades_per_doubling", "lr_slope", "lr_slope_smallest"),
    *("decades_per_doubling", "by_loss_decades_per_doubling", "threshold_decades_per_doubling"),
    *("mean", "gap_mean", "crossing_step_mean", "reached_at_step_mean", "mean_median_ratio_after"),
    *("final_test_accuracy_mean", "final_train_ratio_mean", "final_val_ratio_mean"),
    *("accuracy", "test_accuracy", "best_test_accuracy", "best_fixed_test_accuracy"),
    "mean_test_accuracy_lost",
  }
)
# An error's key: ``se`` or ``standard_error``, after the measurement it names and before a
# qualifier (``se_seeds``, ``slope_se``, ``drift_se_decades``, ``gap_standard_error``).
ERROR = re.compile(r"(?:(\w+?)_)?(?:se|standard_error)(?:_\w+)?")


def _key(path: tuple) -> str:
  """A path's last named key (``mean`` for ``mean[i][j]``)."""
  return next((k for k in reversed(path) if isinstance(k, str)), "")


def _one_pair(a: tuple, b: tuple) -> bool:
  """Whether two key paths name one measurement and its error: the same but for one key, ``a``'s
  a measurement of :data:`EFFECTS`, ``b``'s an error that is plain or names ``a``'s."""
  if len(a) != len(b) or sum(i != j for i, j in zip(a, b, strict=True)) > 1:
    return False
  error = ERROR.fullmatch(_key(b))
  return _key(a) in EFFECTS and error is not None and (error[1] or "") in _key(a)


def test_every_experiment_is_quoted_and_has_a_summary():
  quoted = {name for name, _, _ in PASSAGES}
  results = {p.name for p in (ROOT / "experiments" / "results").iterdir() if p.is_dir()}
  assert quoted == results
  for name in results:
    assert _summary(name)["numbers"]


@pytest.mark.parametrize(("name", "where", "text"), PASSAGES, ids=[w for _, w, _ in PASSAGES])
def test_every_quoted_number_is_backed_by_the_summary(name, where, text):
  summary = _summary(name)
  values = list(_leaves(summary))
  derived = DERIVED.get(name, {})
  unbacked = []
  for token in _numbers(text):
    if token in CONSTANTS.get(name, {}):
      continue
    if token in derived and any(_shows(token, v) for v in derived[token](summary)):
      continue
    if not any(_shows(token, v) for v in values):
      unbacked.append(token)
  assert not unbacked, f"{where}: no number of {name}/summary.json reads as {unbacked}"


@pytest.mark.parametrize(("name", "where", "text"), PASSAGES, ids=[w for _, w, _ in PASSAGES])
def test_every_value_and_its_error_are_one_pair_of_the_summary(name, where, text):
  paths = list(_paths(_summary(name)))
  unpaired = []
  for x, y in _pairs(text):
    xs = [p for p, v in paths if _shows(x, v)]
    ys = [p for p, v in paths if _shows(y, v)]
    if not any(_one_pair(a, b) for a in xs for b in ys):
      unpaired.append(f"{x} ± {y}")
  assert not unpaired, f"{where}: not a (value, error) pair of {name}/summary.json: {unpaired}"


def test_a_value_and_an_unrelated_error_are_refused():
  """The pairing rule itself: siblings and matching table cells pair, other numbers do not."""
  summary = {"a": {"gap": 0.088, "se": 0.0231}, "b": {"gap": 0.034, "se": 0.0225}, "z": 2.4}
  summary["t"] = {"mean": [[1.0, 2.0]], "se": [[0.1, 0.2]]}
  paths = list(_paths(summary))

  def backed(x: str, y: str) -> bool:
    xs = [p for p, v in paths if _shows(x, v)]
    return any(_one_pair(a, b) for a in xs for b in (p for p, v in paths if _shows(y, v)))

  assert _pairs("gap +8.8 ± 2.3 points, slope \N{MINUS SIGN}0.45 ± 0.17") == [
    ("8.8", "2.3"),
    ("\N{MINUS SIGN}0.45", "0.17"),
  ]
  assert backed("8.8", "2.3") and backed("3.4", "2.2") and backed("2.0", "0.2")
  assert not backed("8.8", "2.4")  # 2.4 is a number of the summary, not this gap's error
  assert not backed("8.8", "2.2")  # another gap's error
  assert not backed("2.0", "0.1")  # another cell's error


def test_a_p_value_or_another_measurements_error_is_refused():
  """Only a measurement pairs, and only with its own error: the Adam range that the README once
  quoted as 1.00 ± 0.26 (its SE 0.2546 reads 0.25), backed then by a sibling p_holm of 1.0 and
  se of 0.258; a slope with the SE of another slope beside it."""
  summary = {
    "optimizers": {"adam": {"usable_decades": 1.0, "usable_decades_se": 0.25459898130700587}},
    "versus_baselines": {"rmsprop": {"sgd": {"gap": 0.0, "se": 0.258, "p_holm": 1.0}}},
    "trend": {"slope": -0.266, "slope_se": 0.051, "threshold_slope_se": 0.012},
    "drift": {"drift_decades": 0.63, "drift_se_decades": 0.19, "spread_decades": 0.65},
  }
  paths = list(_paths(summary))

  def backed(x: str, y: str) -> bool:
    xs = [p for p, v in paths if _shows(x, v)]
    return any(_one_pair(a, b) for a in xs for b in (p for p, v in paths if _shows(y, v)))

  assert backed("1.00", "0.25") and not backed("1.00", "0.26")  # not p_holm ± se
  assert backed("0.0", "0.26")  # the gap beside it does pair with its se
  assert backed(f"{MINUS}0.266", "0.051") and not backed(f"{MINUS}0.266", "0.012")
  assert backed("0.63", "0.19") and not backed("0.65", "0.19")  # the spread is not the drift


def test_the_allowances_are_all_still_quoted():
  """A constant, derived or unbacked entry whose number the README no longer quotes goes."""
  quoted: dict[str, set[str]] = {}
  for name, _, text in PASSAGES:
    quoted.setdefault(name, set()).update(_numbers(text))
  for table in (CONSTANTS, DERIVED):
    for name, entries in table.items():
      assert set(entries) <= quoted.get(name, set()), (name, set(entries) - quoted[name])
