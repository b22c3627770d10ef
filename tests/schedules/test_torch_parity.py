"""``schedule(t)`` equals PyTorch's rate after ``t`` calls of ``scheduler.step()``."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab import schedules

torch = pytest.importorskip("torch")
lr_scheduler = torch.optim.lr_scheduler


def torch_rates(make_scheduler, steps, lr=1.0):
  """Rates PyTorch applies at steps 0 .. steps - 1."""
  optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
  scheduler = make_scheduler(optimizer)
  rates = []
  for _ in range(steps):
    rates.append(scheduler.get_last_lr()[0])
    optimizer.step()
    scheduler.step()
  return np.array(rates)


PARITY = [
    ("StepLR", lambda o: lr_scheduler.StepLR(o, step_size=7),
     schedules.step_decay(0.5, 7), 0.5, 40),
    ("MultiStepLR", lambda o: lr_scheduler.MultiStepLR(o, [5, 12, 12, 30], gamma=0.5),
     schedules.multistep_decay(1.0, [5, 12, 12, 30], gamma=0.5), 1.0, 40),
    ("ExponentialLR", lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9),
     schedules.exponential_decay(1.0, 0.9), 1.0, 40),
    ("PolynomialLR", lambda o: lr_scheduler.PolynomialLR(o, total_iters=25, power=2.0),
     schedules.polynomial_decay(1.0, 25, power=2.0), 1.0, 40),
    ("LinearLR", lambda o: lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=20),
     schedules.linear(0.1, 1.0, 20), 1.0, 30),
    ("CosineAnnealingLR", lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=25, eta_min=0.1),
     schedules.cosine_annealing(1.0, 25, min_lr=0.1), 1.0, 26),
    ("CosineAnnealingWarmRestarts",
     lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=6, eta_min=0.1),
     schedules.warm_restarts(1.0, 6, min_lr=0.1), 1.0, 40),
    ("CosineAnnealingWarmRestarts_mult",
     lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
     schedules.warm_restarts(1.0, 3, period_mult=2), 1.0, 100),
    ("CyclicLR_triangular",
     lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, step_size_up=4, step_size_down=6,
                                     cycle_momentum=False),
     schedules.cyclical(0.1, 1.0, 4, step_size_down=6), 1.0, 50),
    ("CyclicLR_triangular2",
     lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, step_size_up=5, mode="triangular2",
                                     cycle_momentum=False),
     schedules.cyclical(0.1, 1.0, 5, policy="triangular2"), 1.0, 50),
    ("CyclicLR_exp_range",
     lambda o: lr_scheduler.CyclicLR(o, 0.1, 1.0, step_size_up=5, mode="exp_range", gamma=0.97,
                                     cycle_momentum=False),
     schedules.cyclical(0.1, 1.0, 5, policy="exp_range", gamma=0.97), 1.0, 50),
    ("OneCycleLR", lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=40,
                                                     cycle_momentum=False),
     schedules.one_cycle(1.0, 40), 1.0, 40),
    ("OneCycleLR_linear_three_phase",
     lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=40, pct_start=0.25,
                                       anneal_strategy="linear", three_phase=True,
                                       cycle_momentum=False),
     schedules.one_cycle(1.0, 40, pct_start=0.25, anneal_strategy="linear", three_phase=True),
     1.0, 40),
    ("SequentialLR",
     lambda o: lr_scheduler.SequentialLR(
         o, [lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
             lr_scheduler.ExponentialLR(o, gamma=0.9)], milestones=[5]),
     schedules.sequence([schedules.linear(0.1, 1.0, 5), schedules.exponential_decay(1.0, 0.9)],
                        [5]), 1.0, 30),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
  ("make_scheduler", "schedule", "lr", "steps"),
  [pytest.param(*case[1:], id=case[0]) for case in PARITY],
)
def test_matches_pytorch(make_scheduler, schedule, lr, steps):
  expected = torch_rates(make_scheduler, steps, lr)
  actual = schedule(jnp.arange(steps, dtype=jnp.int32))
  chex.assert_trees_all_close(actual, expected.astype(np.float32), rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cosine_annealing_stays_at_min_where_pytorch_rises_again():
  expected = torch_rates(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10), 21)
  actual = np.asarray(schedules.cosine_annealing(1.0, 10)(jnp.arange(21)))
  assert expected[20] == pytest.approx(1.0)  # PyTorch: back at the top after 2 * T_max.
  np.testing.assert_allclose(actual[10:], 0.0, atol=1e-7)


# Non-default arguments over a few hundred steps, to 1e-6 relative (no absolute slack, so a
# small rate near the end of a decay counts as much as the peak), eagerly and under jit. The
# half cosine lost its small end values to 1 + cos cancelling in float32 (OneCycleLR's last
# steps 1.7e-4 off, relative) and LinearLR's first rate under jit was 1.5e-6 off.
def _one_cycle(total_steps, anneal_strategy, three_phase, pct_start, div_factor, final_div):
  kwargs = dict(
    pct_start=pct_start,
    anneal_strategy=anneal_strategy,
    three_phase=three_phase,
    div_factor=div_factor,
    final_div_factor=final_div,
  )
  return (
    f"OneCycleLR-{total_steps}-{anneal_strategy}-{three_phase}-{pct_start}",
    lambda o: lr_scheduler.OneCycleLR(
      o, max_lr=0.8, total_steps=total_steps, cycle_momentum=False, **kwargs
    ),
    schedules.one_cycle(0.8, total_steps, **kwargs),
    0.8,
    total_steps,
  )


W = 50
LONG = [
    ("StepLR", lambda o: lr_scheduler.StepLR(o, 13, gamma=0.7),
     schedules.step_decay(0.3, 13, 0.7), 0.3, 300),
    ("MultiStepLR", lambda o: lr_scheduler.MultiStepLR(o, [0, 30, 30, 100, 250, 250], gamma=0.6),
     schedules.multistep_decay(1.0, [0, 30, 30, 100, 250, 250], 0.6), 1.0, 300),
    ("ExponentialLR", lambda o: lr_scheduler.ExponentialLR(o, 0.97),
     schedules.exponential_decay(2.0, 0.97), 2.0, 300),
    ("PolynomialLR-0.5", lambda o: lr_scheduler.PolynomialLR(o, total_iters=150, power=0.5),
     schedules.polynomial_decay(1.0, 150, power=0.5), 1.0, 150),
    ("PolynomialLR-3", lambda o: lr_scheduler.PolynomialLR(o, total_iters=150, power=3.0),
     schedules.polynomial_decay(1.0, 150, power=3.0), 1.0, 150),
    ("LinearLR-up", lambda o: lr_scheduler.LinearLR(o, 0.01, 0.8, total_iters=120),
     schedules.linear(0.5 * 0.01, 0.5 * 0.8, 120), 0.5, 300),
    ("LinearLR-down", lambda o: lr_scheduler.LinearLR(o, 1.0, 0.01, total_iters=200),
     schedules.linear(1.0, 0.01, 200), 1.0, 300),
    ("CosineAnnealingLR", lambda o: lr_scheduler.CosineAnnealingLR(o, 100, eta_min=0.05),
     schedules.cosine_annealing(1.0, 100, min_lr=0.05), 1.0, 101),
    ("CosineAnnealingLR-eta0", lambda o: lr_scheduler.CosineAnnealingLR(o, 37),
     schedules.cosine_annealing(0.1, 37), 0.1, 37),
    ("WarmRestarts-3", lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 5, T_mult=3),
     schedules.warm_restarts(1.0, 5, period_mult=3), 1.0, 300),
    ("WarmRestarts-2", lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 7, 2, eta_min=0.01),
     schedules.warm_restarts(1.0, 7, period_mult=2, min_lr=0.01), 1.0, 300),
    ("CyclicLR", lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.3, 17, 29, cycle_momentum=False),
     schedules.cyclical(0.01, 0.3, 17, step_size_down=29), 1.0, 300),
    ("CyclicLR-triangular2",
     lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.3, 10, 25, "triangular2", cycle_momentum=False),
     schedules.cyclical(0.01, 0.3, 10, step_size_down=25, policy="triangular2"), 1.0, 300),
    ("CyclicLR-exp_range",
     lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.3, 13, 7, "exp_range", gamma=0.995,
                                     cycle_momentum=False),
     schedules.cyclical(0.01, 0.3, 13, step_size_down=7, policy="exp_range", gamma=0.995),
     1.0, 300),
    *[_one_cycle(n, a, p, *f) for n in (257, 300) for a in ("cos", "linear") for p in (False, True)
      for f in ((0.3, 25.0, 1e4), (0.17, 7.0, 300.0))],
    ("SequentialLR-warmup",
     lambda o: lr_scheduler.SequentialLR(
         o, [lr_scheduler.LinearLR(o, 0.01, 1.0, total_iters=20),
             lr_scheduler.CosineAnnealingLR(o, 200, eta_min=0.01)], milestones=[20]),
     schedules.warmup(schedules.cosine_annealing(1.0, 200, min_lr=0.01), 20, start_lr=0.01),
     1.0, 220),
    ("LambdaLR-inverse_sqrt",
     lambda o: lr_scheduler.LambdaLR(o, lambda s: s / W if s < W else (W / s) ** 0.5),
     schedules.inverse_sqrt(1.0, W), 1.0, 300),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(
  ("make_scheduler", "schedule", "lr", "steps"),
  [pytest.param(*case[1:], id=case[0]) for case in LONG],
)
def test_matches_pytorch_to_a_millionth_with_other_arguments(make_scheduler, schedule, lr, steps):
  expected = torch_rates(make_scheduler, steps, lr)
  t = jnp.arange(steps, dtype=jnp.int32)
  for got in (schedule(t), jax.jit(schedule)(t)):
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=1e-6, atol=0)
