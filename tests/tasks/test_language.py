"""lm-transformer: the language's exact conditional probabilities, random access, and the task."""

import itertools

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import lrlab
from lrlab.data.language import Language, LanguageSource, ngram_loss
from lrlab.models.transformer import Transformer

TINY = dict(vocab=4, context=3, hidden=2, branching=2, emission_support=2, triggers=1, recall=0.3)
SMALL_TASK = dict(
  width=16, depth=2, heads=2, context=16, vocab=8, hidden=4, triggers=1, recall=0.2, num_eval=64
)


def joint_probability(language: Language, tokens: tuple[int, ...]) -> float:
  """``p(x_0 .. x_n)`` by summing the process over every hidden path: no forward algorithm."""
  total = 0.0
  for path in itertools.product(range(language.hidden), repeat=len(tokens)):
    p = language.initial[path[0]]
    for a, b in itertools.pairwise(path):
      p *= language.transition[a, b]
    first_after: dict[int, int] = {}
    for t, (z, x) in enumerate(zip(path, tokens, strict=True)):
      previous = tokens[t - 1] if t else None
      if previous is not None and previous < language.triggers and previous in first_after:
        p *= float(x == first_after[previous])  # a recall step: deterministic
      else:
        p *= language.emission[z, x]
      if previous is not None and previous < language.triggers:
        first_after.setdefault(previous, x)
    total += p
  return total


def forward_log_probs(language: Language, sequence: np.ndarray) -> np.ndarray:
  """A per-sequence forward algorithm in plain Python loops, from the module's definition."""
  belief = language.initial.copy()
  seen: dict[int, int] = {}
  out = []
  for t, x in enumerate(sequence.tolist()):
    previous = sequence[t - 1] if t else None
    recall = previous is not None and previous < language.triggers and int(previous) in seen
    if recall:
      p = 1.0 if x == seen[int(previous)] else 0.0
      evidence = np.ones(language.hidden)
    else:
      evidence = language.emission[:, x]
      p = float(belief @ evidence)
    if previous is not None and previous < language.triggers:
      seen.setdefault(int(previous), x)
    if t:
      out.append(np.log(p))
    posterior = belief * evidence
    belief = (posterior / posterior.sum()) @ language.transition
  return np.array(out)


def test_log_probs_match_exact_enumeration():
  language = Language(**TINY, seed=3)
  length = TINY["context"] + 1
  sequences = [s for s in itertools.product(range(4), repeat=length)]
  joint = np.array([joint_probability(language, s) for s in sequences])
  assert joint.sum() == pytest.approx(1.0, abs=1e-12)
  possible = joint > 0
  tokens = np.array(sequences)[possible]
  expected = np.zeros((len(tokens), length - 1))
  for i, s in enumerate(map(tuple, tokens)):
    for t in range(1, length):
      expected[i, t - 1] = np.log(joint_probability(language, s[: t + 1]))
      expected[i, t - 1] -= np.log(joint_probability(language, s[:t]))
  np.testing.assert_allclose(language.log_probs(tokens), expected, rtol=1e-10, atol=1e-12)
  # Some targets are recalled (probability exactly 1), so recall is exercised.
  assert np.any(language.log_probs(tokens) == 0.0)


def test_sampler_draws_from_the_enumerated_law():
  language = Language(**TINY, seed=3)
  n = 40_000
  tokens = language.tokens("train", np.arange(n))
  codes = tokens @ (4 ** np.arange(TINY["context"], -1, -1))
  frequency = np.bincount(codes, minlength=4**4) / n
  sequences = list(itertools.product(range(4), repeat=TINY["context"] + 1))
  joint = np.array([joint_probability(language, s) for s in sequences])
  np.testing.assert_array_equal(frequency[joint == 0], 0.0)
  sigma = np.sqrt(joint * (1 - joint) / n)
  assert np.all(np.abs(frequency - joint) <= 5 * sigma + 1e-12)


def test_optimal_loss_matches_an_independent_forward_algorithm():
  task = lrlab.tasks.get("lm-transformer", num_tokens=16 * 64, num_eval=32, context=16)
  language = task.dataset.val.language
  tokens = language.tokens("val", np.arange(32))
  reference = np.stack([forward_log_probs(language, s) for s in tokens])
  np.testing.assert_allclose(language.log_probs(tokens), reference, rtol=1e-10, atol=1e-12)
  assert task.optimal_loss == pytest.approx(-reference.mean(), rel=1e-12)
  x, y = task.dataset.gather("val", np.arange(32), where="test")
  np.testing.assert_array_equal(x, tokens[:, :-1])
  np.testing.assert_array_equal(y, tokens[:, 1:])


def test_sequences_are_random_access():
  language = Language(seed=1)
  together = language.tokens("train", np.array([7, 2, 1000003, 2]))
  alone = np.concatenate([language.tokens("train", np.array([i])) for i in (7, 2, 1000003, 2)])
  np.testing.assert_array_equal(together, alone)
  np.testing.assert_array_equal(together[1], together[3])
  assert not np.array_equal(together[0], together[1])
  assert not np.array_equal(language.tokens("val", [7]), language.tokens("train", [7]))
  assert not np.array_equal(Language(seed=2).tokens("train", [7]), language.tokens("train", [7]))
  source = LanguageSource(language, "train", 10)
  x, y = source[np.array([3, 1])]
  np.testing.assert_array_equal(x[1], source[np.array([1])][0][0])
  np.testing.assert_array_equal(y, language.tokens("train", [3, 1])[:, 1:])
  # -1 wrapped to 2^64 - 1 and gave that sequence silently.
  with pytest.raises(ValueError, match=r"^indices must be integers >= 0; got -1\.$"):
    language.tokens("train", np.array([3, -1]))


def test_ngram_losses_are_exact_and_above_the_optimum():
  language = Language(seed=0)
  tokens = language.tokens("val", np.arange(400))
  targets, previous = tokens[:, 1:].ravel(), tokens[:, :-1].ravel()
  counts = np.bincount(targets, minlength=32)
  p = counts[counts > 0] / targets.size
  assert ngram_loss(tokens, 0) == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)
  pairs = np.zeros((32, 32))
  np.add.at(pairs, (previous, targets), 1)
  conditional = pairs / pairs.sum(axis=1, keepdims=True).clip(1)
  bigram = -(pairs[pairs > 0] * np.log(conditional[pairs > 0])).sum() / targets.size
  assert ngram_loss(tokens, 1) == pytest.approx(bigram, rel=1e-12)
  optimal = -language.log_probs(tokens).mean()
  assert ngram_loss(tokens, 1) > optimal + 0.2
  assert ngram_loss(tokens, 0) > ngram_loss(tokens, 1) + 0.2


def test_transformer_is_causal_and_ties_its_embeddings():
  model = Transformer(vocab=8, context=6, width=16, depth=2, heads=4, rngs=nnx.Rngs(0))
  tokens = np.array([[1, 2, 3, 4, 5, 6]])
  changed = tokens.copy()
  changed[0, 4] = 0
  a = np.asarray(nnx.jit(lambda m, x: m(x))(model, np.concatenate([tokens, changed])))
  np.testing.assert_array_equal(a[0, :4], a[1, :4])  # the past never sees the future
  assert not np.allclose(a[0, 4:], a[1, 4:])
  names = {"/".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  assert "embed/embedding" in names and not any("head" in n for n in names)


def test_task_contract():
  task = lrlab.tasks.get("lm-transformer", num_tokens=16 * 100, **SMALL_TASK)
  assert "lm-transformer" in lrlab.tasks.names()
  assert task.streamed and task.num_train == 100 and task.dataset.sizes["val"] == 64
  assert task.num_classes == 8
  params, model_state = task.init(jax.random.key(0))
  x, y = task.dataset.gather("train", np.arange(4), where="test")
  loss, (_, aux) = task.loss(params, model_state, (x, y), jax.random.key(1))
  # At initialisation the logits are small, so the loss is about log(vocab).
  assert float(loss) == pytest.approx(np.log(8), abs=0.1)
  assert set(aux) == {"accuracy"}


@pytest.mark.parametrize(
  "overrides, message",
  [
    (dict(width=0), "width must be an integer >= 1; got 0."),
    (dict(width=30, heads=4), "width must be a multiple of heads=4; got 30."),
    (dict(depth=1.5), "depth must be an integer >= 1; got 1.5."),
    (dict(context=1), "context must be an integer >= 2; got 1."),
    (dict(vocab=5), "vocab must be an integer >= triggers + 2 = 6; got 5."),
    (dict(num_tokens=10, context=16), "num_tokens must be an integer >= 16; got 10."),
    (dict(recall=1.0), "recall must be in [0.0, 1.0); got 1.0."),
    (dict(dropout=-0.1), "dropout must be in [0.0, 1.0); got -0.1."),
    (dict(num_eval=0), "num_eval must be an integer >= 1; got 0."),
    (dict(seed=-1), "seed must be an integer >= 0; got -1."),
    (dict(hidden=0), "hidden must be an integer >= 1; got 0."),
  ],
)
def test_bad_overrides_raise_one_line(overrides, message):
  with pytest.raises(ValueError) as error:
    lrlab.tasks.get("lm-transformer", **overrides)
  assert str(error.value) == message


def test_unknown_override_is_named():
  with pytest.raises(ValueError, match=r"unknown option\(s\) \['layers'\]"):
    lrlab.tasks.get("lm-transformer", layers=2)


def test_trained_model_does_not_beat_the_optimum():
  """A short training on a tiny language learns (well below the unigram loss) and stays at or above
  the Bayes loss on the val split, within sampling error of the paired per-sequence differences."""
  task = lrlab.tasks.get("lm-transformer", num_tokens=16 * 32 * 300, **SMALL_TASK)
  tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 1e-2, 20, 300, 1e-4))
  params, model_state = task.init(jax.random.key(0))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, batch):
    grads = jax.grad(lambda p: task.loss(p, model_state, batch, jax.random.key(0))[0])(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  for t in range(300):
    batch = task.dataset.gather("train", np.arange(32 * t, 32 * (t + 1)), where=f"step {t}")
    params, opt_state = step(params, opt_state, batch)
  language = task.dataset.val.language
  tokens = language.tokens("val", np.arange(64))
  optimal = -language.log_probs(tokens).mean(axis=1)
  assert task.optimal_loss == pytest.approx(optimal.mean(), rel=1e-12)
  logits, _ = task.model.apply(params, model_state, tokens[:, :-1], train=False)
  per_token = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:])
  difference = np.asarray(per_token, np.float64).mean(axis=1) - optimal
  error = difference.std(ddof=1) / np.sqrt(len(difference))
  assert optimal.mean() + difference.mean() < ngram_loss(tokens, 0) - 0.1  # it learned
  assert difference.mean() > -3 * error


def make_adamw(hp):
  """AdamW at the grid's rate, one function object so the sweep's compiled programs are reused."""
  return optax.adamw(hp["lr"])


def test_train_and_sweep_bit_identical_for_one_key():
  task = lrlab.tasks.get("lm-transformer", num_tokens=16 * 256, **SMALL_TASK)
  history = lrlab.train.train(
    task, make_adamw({"lr": 1e-2}), steps=20, batch_size=16, key=jax.random.key(0), eval_every=10
  )
  assert task.optimal_loss < float(history.val_loss[-1]) < float(history.val_loss[0])
  sweep = lambda: lrlab.sweep.run(
    task,
    make_adamw,
    {"lr": lrlab.sweep.log_grid(1e-4, 1e-1, 16)},
    steps=20,
    batch_size=16,
    key=jax.random.key(0),
    eval_every=10,
    progress=False,
  )
  a, b = sweep(), sweep()
  assert a.history.val_loss.shape == (1, 16, 3)
  for field, value in a.history._asdict().items():
    np.testing.assert_array_equal(value, getattr(b.history, field), err_msg=field)
  final = a.history.val_loss[0, :, -1]
  assert np.all(np.isfinite(final)) and np.all(final > task.optimal_loss)
  assert final.min() < final[0] - 0.1  # the better rates learn in 20 steps; the smallest barely
