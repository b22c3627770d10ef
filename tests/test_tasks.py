"""Tasks: the registry, the Task contract (pure, jit/vmap-able) and known answers."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab import data, models, tasks

REQUIRED = {
  "quadratic",
  "linreg",
  "digits-logreg",
  "digits-mlp",
  "digits-cnn",
  "mnist1d-logreg",
  "mnist1d-mlp",
  "mnist1d-cnn",
}
CLASSIFICATION = sorted(n for n in REQUIRED if n.startswith(("digits", "mnist1d")))


@pytest.fixture(autouse=True, scope="module")
def _private_cache_dir(tmp_path_factory):
  """Keep the MNIST-1D disk cache of these tests out of the user's home."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("LRLAB_CACHE_DIR", str(tmp_path_factory.mktemp("lrlab-cache")))
    yield


def test_registry_names():
  assert set(tasks.names()) >= REQUIRED
  assert list(tasks.names()) == sorted(tasks.names())


def test_unknown_name_lists_known_names():
  with pytest.raises(ValueError, match=r"name must be one of .*'digits-mlp'.*got 'cifar'"):
    tasks.get("cifar")


@pytest.mark.parametrize(
  ("name", "options", "match"),
  [
    ("quadratic", {"depth": 3}, r"unknown option\(s\) \['depth'\] for task 'quadratic'"),
    ("digits-logreg", {"hidden": (8,)}, r"unknown option\(s\) \['hidden'\] for a 'logreg'"),
    ("digits-mlp", {"channels": 3}, r"unknown option\(s\) \['channels'\]"),
  ],
)
def test_unknown_option_is_an_error(name, options, match):
  with pytest.raises(ValueError, match=match):
    tasks.get(name, **options)


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_loss_at_init_is_near_log_num_classes(name):
  task = tasks.get(name)
  params, model_state = task.init(jax.random.key(0))
  assert model_state == {}
  loss, (new_state, aux) = jax.jit(task.loss)(params, model_state, task.split("train"), None)
  assert new_state == {}
  assert np.isfinite(loss)
  assert abs(float(loss) - math.log(10)) < 0.75
  assert 0.0 <= float(aux["accuracy"]) <= 1.0
  assert task.num_classes == 10 and task.L is None and task.optimum is None


@pytest.mark.parametrize("name", ["quadratic", "linreg"])
def test_regression_tasks_loss_at_init_is_finite(name):
  task = tasks.get(name)
  params, model_state = task.init(jax.random.key(0))
  loss, (new_state, aux) = task.loss(params, model_state, task.split("train"), None)
  assert np.isfinite(loss) and loss > 0 and aux == {} and new_state == model_state == {}


def test_evaluate_under_jit_and_vmap_equals_loop():
  task = tasks.get("digits-mlp", hidden=(16,))
  keys = jax.random.split(jax.random.key(0), 3)
  stacked, states = jax.vmap(task.init)(keys)
  evaluate = jax.jit(jax.vmap(lambda p, s: task.evaluate(p, s, "test")))
  vmapped = evaluate(stacked, states)
  assert set(vmapped) == {"loss", "accuracy"} and vmapped["loss"].shape == (3,)
  single_fn = jax.jit(lambda key: task.evaluate(*task.init(key), "test"))
  for i, key in enumerate(keys):
    single = single_fn(key)
    chex.assert_trees_all_close({k: v[i] for k, v in vmapped.items()}, single, rtol=1e-5)


def test_evaluate_in_chunks_is_exact():
  task = tasks.get("digits-logreg")
  params, model_state = task.init(jax.random.key(0))
  whole = task.evaluate(params, model_state, "val")
  for batch_size in (7, 48, 144, 1000):
    chunked = jax.jit(task.evaluate, static_argnames=("split", "batch_size"))(
      params, model_state, "val", batch_size=batch_size
    )
    chex.assert_trees_all_close(chunked, whole, rtol=1e-5)
  with pytest.raises(ValueError, match="split must be one of"):
    task.evaluate(params, model_state, "validation")
  with pytest.raises(ValueError, match=r"^batch_size must be None or an integer >= 1; got 2\.5\.$"):
    task.evaluate(params, model_state, "val", batch_size=2.5)  # it used to evaluate in 2s


def test_minibatch_by_index_on_device_in_a_scan():
  task = tasks.get("digits-logreg")
  assert task.num_train == 1294 == task.x_train.shape[0] == task.y_train.shape[0]
  assert isinstance(task.x_train, jax.Array)

  params, model_state = task.init(jax.random.key(0))

  def step(params, key):
    idx = jax.random.randint(key, (64,), 0, task.num_train)
    grads, (_, aux) = jax.grad(task.loss, has_aux=True)(params, model_state, task.batch(idx), None)
    return jax.tree.map(lambda p, g: p - 0.5 * g, params, grads), aux["accuracy"]

  before = task.evaluate(params, model_state, "val")["accuracy"]
  params, _ = jax.jit(lambda p: jax.lax.scan(step, p, jax.random.split(jax.random.key(1), 100)))(
    params
  )
  assert task.evaluate(params, model_state, "val")["accuracy"] > max(0.85, before)


def test_data_options_reach_the_dataset():
  raw = tasks.get("digits-logreg", standardize=False, seed=3)
  np.testing.assert_array_equal(raw.dataset.x_train, data.digits(standardize=False, seed=3).x_train)
  small = tasks.get("mnist1d-cnn", num_samples=200, channels=4)
  assert small.num_train == 144
  assert small.init(jax.random.key(0))[0]["conv_0"]["kernel"].shape == (5, 1, 4)


def test_quadratic_full_batch_gradient_step_is_exact():
  task = tasks.get("quadratic", dim=20, max_curvature=10.0)
  problem = data.quadratic(20, max_curvature=10.0)
  assert (task.L, task.mu) == (10.0, 0.01) and task.num_classes is None
  x, model_state = task.init(jax.random.key(0))
  assert model_state == {}
  lr = 2 / (task.L + task.mu)
  grad = jax.grad(lambda p: task.loss(p, {}, task.split("train"), None)[0])(x)
  expected = x - lr * problem.hessian @ (x - problem.x_star)
  np.testing.assert_allclose(x - lr * grad, expected, rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(task.optimum, jnp.asarray(problem.x_star))
  assert float(task.loss(task.optimum, {}, task.split("val"), None)[0]) == 0.0
  assert float(task.eval_loss(task.optimum, {}, task.split("val"))[0]) == 0.0


def test_noisy_quadratic_full_batch_gradient_and_noisy_minibatches():
  task = tasks.get("quadratic", dim=5, noise=1.0, num_train=512)
  problem = data.quadratic(5, noise=1.0, num_train=512)
  x, _ = task.init(jax.random.key(0))
  grad_fn = jax.jit(jax.grad(lambda p, b: task.loss(p, {}, b, None)[0]))
  exact = problem.hessian @ (x - problem.x_star)
  np.testing.assert_allclose(grad_fn(x, task.split("train")), exact, atol=1e-5)
  noisy = grad_fn(x, task.batch(jnp.arange(8)))
  assert not np.allclose(noisy, exact, atol=1e-3)


def test_gradient_descent_on_quadratic_converges_iff_lr_below_two_over_l():
  task = tasks.get("quadratic", dim=10, min_curvature=0.5, max_curvature=2.0)
  batch = task.split("train")

  def run(lr):
    step = lambda x, _: (x - lr * jax.grad(lambda p: task.loss(p, {}, batch, None)[0])(x), None)
    x, _ = jax.lax.scan(step, task.init(jax.random.key(0))[0], None, length=200)
    return task.loss(x, {}, batch, None)[0]

  losses = jax.jit(jax.vmap(run))(jnp.array([0.9, 0.99, 1.01, 1.1]) * 2 / task.L)
  assert losses[0] < 1e-6 and losses[1] < 1e-2
  assert losses[2] > 1.0 and losses[3] > 1e6


def test_linreg_known_optimum_and_curvature():
  task = tasks.get("linreg", n=300, d=8)
  x, y = task.split("train")
  grads = jax.grad(lambda p: task.loss(p, {}, (x, y), None)[0])(task.optimum)
  np.testing.assert_allclose(grads["kernel"], 0.0, atol=1e-5)
  flat_loss = lambda w: task.loss({"kernel": w[:, None]}, {}, (x, y), None)[0]
  eig = np.linalg.eigvalsh(np.asarray(jax.hessian(flat_loss)(jnp.zeros(8)), np.float64))
  np.testing.assert_allclose([eig[0], eig[-1]], [task.mu, task.L], rtol=1e-4)


def test_custom_task_via_register():
  dataset = data.from_arrays(np.eye(10)[np.arange(60) % 10], np.arange(60) % 10, num_classes=10)
  model = models.functional(lambda rngs: models.Linear(10, 10, rngs=rngs))
  toy = lambda: tasks.from_model(model, dataset, loss="cross_entropy", name="toy")
  tasks.register("toy", toy)
  try:
    assert "toy" in tasks.names() and tasks.get("toy").num_train == 43
    with pytest.raises(ValueError, match="already registered"):
      tasks.register("toy", lambda: None)
  finally:
    tasks.registry._REGISTRY.pop("toy")


@pytest.mark.parametrize("name", [3, None, ""])
def test_register_refuses_a_name_that_is_not_a_string(name):
  # 3 was registered, and then names() and every get() of an unknown name raised a TypeError.
  with pytest.raises(ValueError, match=rf"^name must be a non-empty string; got {name!r}\.$"):
    tasks.register(name, lambda: None)
  assert name not in tasks.registry._REGISTRY
  assert tasks.names() == tuple(sorted(tasks.names()))


def test_classification_requires_labels():
  problem = data.linear_regression(20, 2, noise=0.1, condition_number=2.0)
  model = models.functional(lambda rngs: models.Linear(2, 1, rngs=rngs))
  with pytest.raises(ValueError, match="classification dataset"):
    tasks.from_model(model, problem.dataset, loss="cross_entropy", name="bad")
