"""A bad seed of a task that generates its data is a one-line ValueError naming it."""

import pytest

from lrlab import tasks

CASES = {
  "modular-addition": {"p": 7},
  "teacher-student": {"num_train": 8, "num_val": 4},
  "quadratic": {"dim": 3},
  "linreg": {"n": 20, "d": 3},
  "mnist1d-logreg": {"num_samples": 20},
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [-1, 2.5, None, "0"])
def test_bad_seed_is_named(name, seed):
  with pytest.raises(ValueError, match=rf"^seed must be an integer >= 0; got {seed!r}\.$"):
    tasks.get(name, seed=seed, **CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_integral_seed_still_accepted(name):
  a = tasks.get(name, seed=3, **CASES[name]).dataset.split("val")[1]
  b = tasks.get(name, seed=3.0, **CASES[name]).dataset.split("val")[1]
  assert (a == b).all()


def test_quadratic_and_linreg_seed_none_is_refused_not_a_new_draw():
  # seed=None reached np.random.default_rng(None): another problem on every call.
  for name, options in (("quadratic", {"dim": 3}), ("linreg", {"n": 20, "d": 3})):
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0; got None\.$"):
      tasks.get(name, seed=None, **options)
