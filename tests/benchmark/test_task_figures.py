"""BENCHMARKS.md's figures of the per-task benchmark quote the committed ``tasks.json``, number for
number: every row of its table, the ceiling and the machine beside them."""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMES = "\N{MULTIPLICATION SIGN}"  # BENCHMARKS.md writes ratios with it
REPORT = ROOT / "benchmarks" / "cpu-2core" / "tasks.json"
SECTION = "## The sweep on a transformer and ResNets (issue 17)"
ROW = re.compile(
  r"^\| (?P<task>[\w-]+) \| (?P<optimizer>[\w-]+) \| (?P<k>\d+) \| (?P<mflop>[\d,.]+) "
  r"\| (?P<sweep>[\d,]+) \| (?P<loop>[\d,]+) \| (?P<ratio>[\d.]+)"
  + TIMES
  + r" \| (?P<gflops>[\d.]+) \| (?P<fraction>\d+)% \| (?P<loop_fraction>\d+)% \|$"
)
MACHINE = re.compile(
  r"measured on (?P<cpu>.+?) \(caches (?P<caches>.+?)\); "
  r"matmul ceiling (?P<ceiling>[\d.]+) GFLOP/s "
  r"\(the better of (?P<start>[\d.]+) at the start and (?P<end>[\d.]+) at the end\)"
)


def _section() -> str:
  text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
  assert SECTION in text, "BENCHMARKS.md no longer has the per-task section this test reads"
  return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def _report() -> dict:
  return json.loads(REPORT.read_text(encoding="utf-8"))


def test_every_row_of_the_table_is_the_committed_reports():
  report, section = _report(), _section()
  rows = [m.groupdict() for m in map(ROW.match, section.splitlines()) if m]
  measured = [e for e in report["summary"] if "sweep_over_sequential" in e]
  assert len(rows) == len(measured) >= 2
  for quoted in rows:
    sweep = _assert_quotes(quoted, report)
    assert quoted["gflops"] == f"{sweep['gflops_per_s']:.1f}"
  assert {r["task"] for r in rows} >= {"lm-transformer"}


def _assert_quotes(quoted: dict, report: dict) -> dict:
  """Assert the columns both tables share are ``report``'s for the row's task and K; returns
  the sweep's row."""
  k, task = int(quoted["k"]), quoted["task"]
  mine = {r["leg"]: r for r in report["rows"] if r["task"] == task and r["k"] == k}
  sweep, loop = mine["sweep"], mine["sequential"]
  (entry,) = [e for e in report["summary"] if e["task"] == task and e["k"] == k]
  assert quoted["optimizer"] == report["settings"]["tasks"][task]["optimizer"]
  assert quoted["mflop"] == f"{sweep['flops']['per_model_step'] / 1e6:,.1f}"
  assert quoted["sweep"] == f"{sweep['model_steps_per_s']:,.0f}"
  assert quoted["loop"] == f"{loop['model_steps_per_s']:,.0f}"
  assert quoted["ratio"] == f"{entry['sweep_over_sequential']:.2f}"
  assert quoted["fraction"] == f"{100 * sweep['fraction_of_ceiling']:.0f}"
  assert quoted["loop_fraction"] == f"{100 * loop['fraction_of_ceiling']:.0f}"
  return sweep


def test_the_machine_and_ceiling_beside_the_table_are_the_reports():
  report, section = _report(), _section()
  match = MACHINE.search(" ".join(section.split()))
  assert match, "the section no longer names the machine and ceiling as this test reads them"
  env, ceiling = report["environment"], report["ceiling"]
  assert match["cpu"] == f"a {env['cores']}-core {env['cpu']}"
  assert match["caches"] == env["caches"]
  assert match["ceiling"] == f"{ceiling['ceiling']:.0f}"
  assert match["start"] == f"{ceiling['at_start']['ceiling']:.0f}"
  assert match["end"] == f"{ceiling['at_end']['ceiling']:.0f}"


def test_the_goals_quoted_are_the_reports():
  goals, section = _report()["goals"], " ".join(_section().split())
  ratio, fraction = goals["sweep_over_sequential"], goals["fraction_of_ceiling"]
  met = lambda goal: "met" if goal["met"] else "not met"
  assert (
    f"the transformer's sweep ran at {ratio['measured']:.2f}{TIMES} the loop "
    f"(goal 2{TIMES}: {met(ratio)}) "
    f"and at {100 * fraction['measured']:.0f}% of the ceiling (goal 40%: {met(fraction)})"
  ) in section


RESNETS = ROOT / "benchmarks" / "cpu-2core" / "resnets"
RESNET_ROW = re.compile(
  r"^\| (?P<task>[\w-]+-resnet) \| (?P<optimizer>[\w-]+) \| (?P<k>\d+) \| (?P<mflop>[\d,.]+) "
  r"\| (?P<sweep>[\d,]+) \| (?P<loop>[\d,]+) \| (?P<ratio>[\d.]+)"
  + TIMES
  + r" \| (?P<fraction>\d+)% \| (?P<loop_fraction>\d+)% \| (?P<load>[\d.]+ → [\d.]+) \|$"
)


def test_the_resnet_rows_are_their_committed_reports():
  """The ResNets' table (each task's own run under resnets/) quotes its report: rates, ratio,
  fractions of the ceiling and the load average at the run's start and end."""
  rows = [m.groupdict() for m in map(RESNET_ROW.match, _section().splitlines()) if m]
  assert sorted(r["task"] for r in rows) == ["digits-resnet", "mnist1d-resnet"]
  for quoted in rows:
    report = json.loads((RESNETS / quoted["task"] / "tasks.json").read_text(encoding="utf-8"))
    _assert_quotes(quoted, report)
    load = report["load_average_1min"]
    assert quoted["load"] == f"{load['start']:.1f} → {load['end']:.1f}"


def test_the_device_scaling_cap_is_the_committed_reports():
  """scripts/device_scaling.py's table and the cap quoted beside it: two lone runs at once over
  one after another, best round against best round, and the sweeps' shares of it (the
  transformer's from tasks.json, the ResNets' from their own reports)."""
  import importlib.util

  path = ROOT / "scripts" / "device_scaling.py"
  spec = importlib.util.spec_from_file_location("device_scaling", path)
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  report = json.loads((REPORT.parent / "device_scaling.json").read_text(encoding="utf-8"))
  section = " ".join(_section().split())
  assert " ".join(script.table(report).split()) in section
  caps = {}
  for task in report["tasks"]:
    best = {way: min(w["member_seconds"]) for way, w in task["ways"].items()}
    assert task["two_over_one"] == best["one device"] / best["two devices"]
    assert all(
      len(w["member_seconds"]) == len(w["cpu_over_wall"]) >= 3 for w in task["ways"].values()
    )
    caps[task["task"]] = task["two_over_one"]
  sweep = {r["task"]: r["sweep_over_sequential"] for r in _report()["summary"]}
  for name in ("mnist1d-resnet", "digits-resnet"):
    resnet = json.loads((REPORT.parent / "resnets" / name / "tasks.json").read_text("utf-8"))
    sweep.update({r["task"]: r["sweep_over_sequential"] for r in resnet["summary"]})
  share = {name: sweep[name] / cap for name, cap in caps.items()}
  assert f"two runs at once gain only **{caps['lm-transformer']:.2f}{TIMES}**" in section
  transformer = f"{100 * share['lm-transformer']:.0f}%"
  assert f"The sweep's {sweep['lm-transformer']:.2f}{TIMES} is {transformer} of that cap" in section
  resnets = [f"{100 * share[n]:.0f}%" for n in ("mnist1d-resnet", "digits-resnet")]
  assert resnets == ["98%", "98%"]  # the text says "both 98%"
  gains = f"{caps['mnist1d-resnet']:.2f}{TIMES} and {caps['digits-resnet']:.2f}{TIMES}"
  assert f"two at once gain {gains}, and their sweeps' {sweep['mnist1d-resnet']:.2f}" in section
