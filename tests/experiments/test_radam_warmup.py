"""``radam_warmup``: the authors' RAdam as a held rate, the rectification step, the verdict rule."""

import math

import numpy as np
import pytest

from experiments import radam_warmup
from lrlab import schedules
from tests.transforms import reference
from tests.transforms.runners import assert_close, run_optax

PROBLEM = reference.make_problem(seed=3, steps=60)


def _authors_radam(problem, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
  """The authors' package (``radam.RAdam``, ``degenerated_to_sgd=False``), step by step: no
  update and no decay while ``rho_t < 5``; then the rectified step and decoupled decay."""
  rho_inf = 2 / (1 - b2) - 1

  def step(p, g, state, t):
    m, v = state
    n = t + 1
    v = b2 * v + (1 - b2) * g * g
    m = b1 * m + (1 - b1) * g
    rho = rho_inf - 2 * n * b2**n / (1 - b2**n)
    if rho >= 5:
      size = math.sqrt(
        (1 - b2**n) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf / (rho_inf - 2)
      ) / (1 - b1**n)
      p = p - weight_decay * lr(t) * p - size * lr(t) * m / (np.sqrt(v) + eps)
    return p, (m, v)

  return reference._run(problem, step, lambda p: (np.zeros_like(p), np.zeros_like(p)), None)


def test_a_held_rate_is_the_authors_radam():
  total, hold = PROBLEM.steps, radam_warmup.first_rectified() - 1
  tx = radam_warmup.radam({"lr": 0.05, "total": total, "hold": hold})
  cosine = schedules.cosine_annealing(0.05, total)
  expected = _authors_radam(
    PROBLEM, lambda t: float(cosine(t)), weight_decay=radam_warmup.WEIGHT_DECAY
  )
  assert_close(run_optax(tx, PROBLEM), expected)
  # The first updates make no move at all, the next one does.
  moved = run_optax(tx, PROBLEM)["w"]
  assert np.array_equal(moved[hold - 1], PROBLEM.params["w"]) and not np.array_equal(
    moved[hold], PROBLEM.params["w"]
  )


@pytest.mark.parametrize(("b2", "first"), [(0.999, 6), (0.99, 6), (0.9, 6), (0.8, 7)])
def test_the_first_rectified_update(b2, first):
  rho = lambda t: 2 / (1 - b2) - 1 - 2 * t * b2**t / (1 - b2**t)
  assert radam_warmup.first_rectified(b2) == first
  assert rho(first) >= 5 > rho(first - 1)


def test_a_b2_that_never_rectifies_is_refused():
  with pytest.raises(ValueError, match="b2 must be above 2/3"):
    radam_warmup.first_rectified(0.6)


def _test(effect, p_holm, se=0.1):
  return {"effect": effect, "p_holm": p_holm, "se": se}


@pytest.mark.parametrize(
  ("widening", "gap", "verdict"),
  [
    (_test(0.7, 0.001), _test(-0.1, 0.9), "supported"),  # wider than AdamW, a resolved tie
    (_test(0.7, 0.001), _test(-0.7, 0.01), "refuted"),  # narrower than warmed-up AdamW
    (_test(-0.7, 0.01), _test(0.0, 1.0), "refuted"),  # narrower than AdamW
    (_test(0.3, 0.2), _test(-0.3, 0.3), "inconclusive"),
    # Not narrower beyond 2 SE is no tie: 0 +- 0.21 could hide a gap of 0.42 decades.
    (_test(0.7, 0.001), _test(0.0, 1.0, se=0.21), "depends on the part"),
  ],
)
def test_the_verdict_rule(widening, gap, verdict):
  assert radam_warmup.judge(widening, gap, resolution=0.36).startswith(verdict)
