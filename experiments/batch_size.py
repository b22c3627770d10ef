"""Batch size and the learning rate: does the best rate follow the linear (SGD) and square-root
(Adam) rules, and where do extra examples per step stop saving steps?

Goyal et al. (2017) scale SGD's rate linearly with the batch; for Adam the square-root rule
(Malladi et al. 2022) is the analogue. McCandlish et al. (2018) model the steps to a target as
``S = S_min (1 + B_noise / B)``: below the critical batch ``B_noise`` doubling the batch halves
the steps, above it the steps stop falling (Shallue et al. 2019 measure the same curve), and
the best rate then stops growing with the batch, so the rules can only hold below it. They
predict ``B_noise`` from the gradient noise scale ``B_simple = tr(Sigma) / |G|^2``
(:func:`lrlab.analysis.gradient_noise_scale`).

The design: the noisy quadratic (``quadratic`` with ``noise``), the MNIST-1D MLP and a small
``lm-transformer`` (width 16, one layer, two heads, context 16, its splits gathered into arrays;
its target is a fixed fraction of the way from the val tokens' unigram entropy, the loss of a
model that has learnt only the token frequencies, to the exact Bayes loss ``optimal_loss``);
SGD with momentum 0.9 and Adam at a constant rate. Each batch
size is one sweep (its shapes are its own program) over the task's shared log-spaced rate grid
and 5 seeds. The metric is the one the claims are about: the steps until the validation loss
first reaches a fixed target (linearly interpolated between evaluations; evaluations after a
run diverged do not count). The best rate of a batch size minimises the seed-mean log steps
(refined by a parabola through the grid's best and its neighbours); the best rate by final
validation loss at each batch's own budget is reported beside it. The scaling exponent is the
least-squares slope of log(best rate) against log(batch) over all batch sizes; its standard
error adds in quadrature a bootstrap over seeds (the same seed draws for every batch size) and
the grid's resolution (each best rate uncertain by a uniform half grid step, which the
bootstrap misses when every draw picks the same grid point); each pair's slope is
compared with both rules, 1 (linear) and 0.5 (square root), by a normal test, Holm-corrected
over the pairs and the two rules. A pair's rule (SGD linear, Adam square root) is refuted when
rejected at the 2-SE level (alpha 0.0455, Holm); supported when not rejected while the other
rule is, and the slope is positive beyond 2 SE; inconclusive otherwise, as when the slope is
within reach of both rules (:func:`judge_rules`). The verdict is on the rules only. The
slope between the two smallest batch sizes (the regime furthest below the critical batch,
where McCandlish et al.'s ``lr_opt = lr_max / (1 + B_noise / B)`` is linear) is reported beside
it. The critical batch ``B_crit`` is the least-squares fit, in log steps, of
``S_min (1 + B_crit / B)`` to the steps at each batch's best rate. ``B_simple`` is measured
(examples drawn with replacement, the two batch sizes of ``noise``) on each seed at
initialisation and at the parameters that SGD at the smallest batch and its best rate has
when it meets the target; its distance from ``B_crit`` is quoted in decades, with the SEs of
the two added in quadrature.
"""

import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `experiments` importable
  sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import numpy as np

from experiments import _batch_size_figures, common
from experiments import _batch_size_fits as fits
from experiments._batch_size_noise import measure_noise
from experiments._warmup_length_runs import resident
from lrlab import analysis, optimizers, sweep
from lrlab import tasks as registry
from lrlab.analysis import ALPHA
from lrlab.data.language import ngram_loss

CLAIM = (
  "The best learning rate grows with the batch size, linearly for SGD (Goyal et al. 2017) and "
  "as its square root for Adam; steps to a target stop falling beyond a critical batch near "
  "the gradient noise scale B_simple (McCandlish et al. 2018; Shallue et al. 2019)."
)
OPTIMIZERS = ("sgd", "adam")
RULE = {"sgd": 1.0, "adam": 0.5}  # linear (Goyal et al. 2017), square root (Malladi et al. 2022)
OTHER_RULE = {"sgd": 0.5, "adam": 1.0}  # the rule each optimizer's verdict must tell apart
LR_RANGES = {  # log10 of each grid's ends, shared by every batch size of a task
  "quadratic": {"sgd": (-2.5, 0.5), "adam": (-3.0, 0.0)},
  "mnist1d-mlp": {"sgd": (-2.5, 0.5), "adam": (-3.5, -0.5)},
  "lm-transformer": {"sgd": (-2.0, 0.5), "adam": (-3.5, -1.0)},  # SGD's best at batch 4: 0.1
}
# The default's transformer: each sweep took 1-2 minutes on the loaded 2-core machine.
SMALL_LM = dict(width=16, depth=1, heads=2, context=16, num_eval=128)
SIZES = {
  "tiny": dict(
    tasks={
      "quadratic": dict(
        options=dict(dim=20, noise=1.0, num_train=512),
        batch_sizes=[4, 32],
        steps=[40, 20],
        target=["fraction", 0.3],
        noise=[4, 32, 8, 4],
      ),
    },
    seeds=2,
    per_decade=1,
    evals=10,
  ),
  "default": dict(
    tasks={
      "quadratic": dict(
        options=dict(noise=1.0, num_train=4096),
        batch_sizes=[1, 4, 16, 64, 256, 1024],
        steps=[2000, 1000, 400, 200, 200, 200],
        target=["fraction", 0.05],
        noise=[16, 1024, 256, 32],
      ),
      "mnist1d-mlp": dict(
        options={},
        batch_sizes=[4, 16, 64, 256],
        steps=[2400, 1000, 500, 300],
        target=["value", 1.5],
        noise=[16, 512, 256, 32],
      ),
      "lm-transformer": dict(
        options=SMALL_LM,
        batch_sizes=[4, 16, 64, 256],
        steps=[300, 160, 60, 40],
        target=["chance_fraction", 0.3],
        noise=[16, 256, 64, 16],
        evals=20,
        lr_ranges={"sgd": [-2.0, 0.5], "adam": [-3.0, -1.0]},
      ),
    },
    seeds=5,
    per_decade=2,
    evals=50,
  ),
  "full": dict(
    tasks={
      "quadratic": dict(
        options=dict(noise=1.0, num_train=16384),
        batch_sizes=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
        steps=[4000, 2000, 2000, 1000, 1000, 500, 500, 300, 300, 300, 300, 300],
        target=["fraction", 0.02],
        noise=[16, 4096, 1024, 64],
      ),
      "mnist1d-mlp": dict(
        options=dict(num_samples=20000),
        batch_sizes=[2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
        steps=[8000, 4000, 3000, 2000, 1500, 1000, 800, 600, 500, 500, 500],
        target=["value", 1.2],
        noise=[16, 2048, 1024, 64],
      ),
      "lm-transformer": dict(
        options={},
        batch_sizes=[4, 8, 16, 32, 64, 128, 256, 512],
        steps=[8000, 4000, 3000, 2000, 1500, 1000, 800, 600],
        target=["value", 2.5],
        noise=[16, 512, 256, 32],
      ),
    },
    seeds=8,
    per_decade=4,
    evals=100,
  ),
}
BOOTSTRAP = 1000


def _make_tx(optimizer: str):
  if optimizer == "sgd":
    return lambda hp: optimizers.sgd(hp["lr"], momentum=0.9)
  return lambda hp: optimizers.adam(hp["lr"])


def _grid(name: str, optimizer: str, per_decade: int, spec: dict) -> np.ndarray:
  lo, hi = spec.get("lr_ranges", LR_RANGES[name])[optimizer]
  return sweep.log_grid(10**lo, 10**hi, round((hi - lo) * per_decade) + 1)


def _task(name: str, spec: dict, out: Path):
  """The task of ``spec``; ``lm-transformer`` gathered into arrays (one epoch: every batch
  size sees fresh sequences), its val split's unigram entropy and Bayes loss written to
  ``out / name / "baselines.json"``."""
  if name != "lm-transformer":
    return registry.get(name, **spec["options"])
  sequences = max(b * s for b, s in zip(spec["batch_sizes"], spec["steps"], strict=True))
  context = spec["options"].get("context", 64)
  lm = registry.get(name, num_tokens=sequences * context, **spec["options"])
  val = lm.dataset.val.language.tokens("val", np.arange(lm.dataset.sizes["val"]))
  baselines = {"unigram_loss": ngram_loss(val, 0), "optimal_loss": lm.optimal_loss}
  (out / name).mkdir(parents=True, exist_ok=True)
  (out / name / "baselines.json").write_text(json.dumps(baselines) + "\n")
  return resident(lm)


def _target(task, spec, key, baselines: dict | None = None) -> float:
  """The val-loss target: a value; ``"fraction"``: that fraction of the way from init's loss
  down to the optimum's; ``"chance_fraction"``: that fraction of the way from the unigram
  entropy down to ``optimal_loss`` (``baselines``)."""
  kind, value = spec
  if kind == "value":
    return float(value)
  if kind == "chance_fraction":
    unigram, optimal = baselines["unigram_loss"], baselines["optimal_loss"]
    return unigram - value * (unigram - optimal)
  params, state = task.init(key)
  start = float(task.evaluate(params, state, "val")["loss"])
  floor = float(task.evaluate(task.optimum, state, "val")["loss"])
  return floor + value * (start - floor)


def _saved(where: Path, grid: dict, seeds: int, settings: dict) -> bool:
  """Whether ``where`` holds this sweep already (same grid, seeds, steps, batch, evaluations)."""
  if not (where / "sweep.json").exists():
    return False
  config = sweep.SweepResult.load(where)
  same = {k: config.config[k] == v for k, v in settings.items()}
  return (
    all(same.values())
    and config.num_seeds == seeds
    and np.allclose(config.grid["lr"], grid["lr"], rtol=1e-6)
  )


def run(out: Path, *, tasks: dict, seeds: int, per_decade: int, evals: int) -> None:
  targets = {}
  for name, spec in tasks.items():
    task = _task(name, spec, out)
    baselines = out / name / "baselines.json"
    baselines = json.loads(baselines.read_text()) if baselines.exists() else None
    targets[name] = _target(task, spec["target"], jax.random.key(0), baselines)
    fresh = False
    for optimizer in OPTIMIZERS:
      for batch, steps in zip(spec["batch_sizes"], spec["steps"], strict=True):
        where = out / name / f"{optimizer}-{batch}"
        grid = {"lr": _grid(name, optimizer, per_decade, spec)}
        every = max(1, steps // spec.get("evals", evals))
        settings = dict(steps=steps, batch_size=batch, eval_every=every)
        if _saved(where, grid, seeds, settings):
          continue  # an interrupted run resumes here, sweep by sweep
        result = sweep.run(
          task,
          _make_tx(optimizer),
          grid,
          **settings,
          key=jax.random.key(0),
          seeds=seeds,
          progress=False,
          tx_config={"optimizer": optimizer, "momentum": 0.9 if optimizer == "sgd" else None},
        )
        result.save(where)
        fresh = True
    if fresh or not (out / name / "noise_scale.json").exists():
      measure_noise(out, name, task, spec, targets[name], _make_tx("sgd"))
  (out / "targets.json").write_text(json.dumps(targets) + "\n")
  settings = {"tasks": tasks, "seeds": seeds, "per_decade": per_decade, "evals": evals}
  (out / "settings.json").write_text(json.dumps(settings) + "\n")


def _load(out: Path, name: str, optimizer: str, batch_sizes: list[int]):
  return [sweep.SweepResult.load(out / name / f"{optimizer}-{b}") for b in batch_sizes]


def _best_by_final_loss(log_lrs: np.ndarray, result: sweep.SweepResult) -> float:
  """The best rate by seed-mean final val loss at the batch's own budget (diverged: worst)."""
  mean = result.metric("final_val_loss").mean(axis=0)
  return float(10 ** analysis.refine_best(log_lrs, mean, larger_is_better=False))


def _noise_numbers(out: Path, name: str) -> dict:
  """B_simple at init and at the target: geometric mean over seeds, SE of log10 (ddof=1)."""
  record = json.loads((out / name / "noise_scale.json").read_text())
  numbers = {"lr": record["lr"], "batch_size": record["batch_size"]}
  numbers["steps"] = [s["step"] for s in record["seeds"]]
  for point in ("init", "target"):
    values = np.array([s[point]["b_simple"] for s in record["seeds"]])
    logs = np.log10(np.where(values > 0, values, np.nan))
    numbers[f"b_simple_{point}"] = float(10 ** np.nanmean(logs))
    numbers[f"b_simple_{point}_se_decades"] = float(
      np.nanstd(logs, ddof=1) / np.sqrt(np.sum(np.isfinite(logs)))
    )
    numbers[f"b_simple_{point}_seeds"] = values.tolist()
  if "exact" in record["seeds"][0]:
    for key in ("b_simple", "b_noise"):
      exact = [s["exact"][key] for s in record["seeds"]]
      numbers[f"exact_{key}_target"] = float(10 ** np.mean(np.log10(exact)))
  return numbers


def _normal_p(slope: float, se: float, rule: float) -> float:
  """The two-sided normal p-value of ``slope`` (standard error ``se``) against ``rule``."""
  z = (slope - rule) / se
  return float(math.erfc(abs(z) / math.sqrt(2))) if np.isfinite(z) else math.nan


def judge_rules(fitted: dict[tuple[str, str], dict]) -> dict[tuple[str, str], str]:
  """Each (task, optimizer) pair's verdict on its rule, from its fitted slope's tests.

  ``fitted[pair]`` holds ``lr_slope``, ``lr_slope_se`` and the two-sided p-values against the
  pair's rule (``rule_p``) and the other rule (``other_rule_p``). The ``2 * len(fitted)``
  p-values are Holm-adjusted together (written back as ``rule_p_holm``,
  ``other_rule_p_holm`` and ``rule_verdict``). A rule is ``"refuted"`` when rejected (adjusted
  p below :data:`lrlab.analysis.ALPHA`, the 2-SE level); ``"supported"`` when not rejected
  while the other rule is and the slope is positive beyond 2 SE, so that the data tell the two
  rules apart; ``"inconclusive"`` otherwise (a slope within reach of both rules, or of none).
  """
  pairs = list(fitted)
  tested = [fitted[pair][which] for pair in pairs for which in ("rule_p", "other_rule_p")]
  adjusted = analysis.holm(tested).reshape(len(pairs), 2)
  judged = {}
  for pair, (rule, other) in zip(pairs, adjusted, strict=True):
    f = fitted[pair]
    f["rule_p_holm"], f["other_rule_p_holm"] = float(rule), float(other)
    grows = f["lr_slope"] > 2 * f["lr_slope_se"]
    if np.isfinite(rule) and rule < ALPHA:
      judged[pair] = "refuted"
    elif grows and np.isfinite(rule) and np.isfinite(other) and other < ALPHA:
      judged[pair] = "supported"
    else:
      judged[pair] = "inconclusive"
    f["rule_verdict"] = judged[pair]
  return judged


def report(out: Path):
  targets = json.loads((out / "targets.json").read_text())
  settings = json.loads((out / "settings.json").read_text())
  draws = None
  numbers = {"metric": "steps to the val-loss target", "bootstrap": BOOTSTRAP, "tasks": {}}
  comparisons = []
  curves = {}
  for name, target in targets.items():
    spec = settings["tasks"][name]
    batch_sizes = np.asarray(spec["batch_sizes"], float)
    task_numbers = {"target_val_loss": target, "batch_sizes": spec["batch_sizes"]}
    task_numbers["steps_budget"] = spec["steps"]
    for optimizer in OPTIMIZERS:
      results = _load(out, name, optimizer, spec["batch_sizes"])
      lrs = np.asarray(results[0].grid["lr"], float)
      log_lrs, seeds = np.log10(lrs), results[0].num_seeds
      if draws is None:
        draws = np.random.default_rng(0).integers(0, seeds, size=(BOOTSTRAP, seeds))
        numbers["seeds"], numbers["num_lrs"] = seeds, len(lrs)
        numbers["grid_step_decades"] = float(log_lrs[1] - log_lrs[0])
      steps = []
      for result in results:
        h = result.history
        steps.append(
          fits.steps_to_target(np.asarray(h.step[0, 0]), h.val_loss, h.diverged_step, target)
        )
      fitted = fits.analyse(batch_sizes, log_lrs, steps, draws)
      fitted["rule"] = RULE[optimizer]
      fitted["lr_range"] = [float(lrs[0]), float(lrs[-1])]
      fitted["best_lr_by_final_val_loss"] = [_best_by_final_loss(log_lrs, r) for r in results]
      fitted["rule_p"] = _normal_p(fitted["lr_slope"], fitted["lr_slope_se"], RULE[optimizer])
      fitted["other_rule"] = OTHER_RULE[optimizer]
      fitted["other_rule_p"] = _normal_p(
        fitted["lr_slope"], fitted["lr_slope_se"], OTHER_RULE[optimizer]
      )
      comparisons.append((name, optimizer))
      task_numbers[optimizer] = fitted
      curves[name, optimizer] = (lrs, steps)
    task_numbers["noise_scale"] = _noise_numbers(out, name)
    if (out / name / "baselines.json").exists():
      task_numbers.update(json.loads((out / name / "baselines.json").read_text()))
    numbers["tasks"][name] = task_numbers
  judged = judge_rules({(n, o): numbers["tasks"][n][o] for n, o in comparisons})
  numbers["comparisons"] = 2 * len(comparisons)  # each pair against both rules
  for task_numbers in numbers["tasks"].values():
    b_simple = task_numbers["noise_scale"]
    for optimizer in OPTIMIZERS:
      fitted = task_numbers[optimizer]
      gap = math.log10(b_simple["b_simple_target"] / fitted["critical_batch"])
      se = math.hypot(b_simple["b_simple_target_se_decades"], fitted["critical_batch_se_decades"])
      fitted["b_simple_over_critical_decades"] = gap
      fitted["b_simple_over_critical_se_decades"] = se
  kinds = set(judged.values())
  if len(kinds) == 1:
    verdict = kinds.pop()
  else:
    label = lambda n, o: f"{n} {'SGD' if o == 'sgd' else 'Adam'}"
    parts = [
      f"{v} for {', '.join(label(n, o) for (n, o), w in judged.items() if w == v)}"
      for v in ("supported", "refuted", "inconclusive")
      if v in judged.values()
    ]
    verdict = "depends on the task and optimizer: " + "; ".join(parts)
  figures = _batch_size_figures.draw(numbers, curves, out)
  return numbers, verdict, figures


if __name__ == "__main__":
  sys.exit(common.main(sys.modules[__name__]))
