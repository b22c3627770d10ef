"""``lm-transformer``: a decoder-only transformer on a synthetic language with a known optimal loss.

The data are :class:`lrlab.data.language.Language`: a hidden Markov model over
``vocab`` tokens with in-context recall of trigger tokens, streamed from the
host by index (:class:`lrlab.data.language.LanguageSource`), so the training
split can be as long as wanted and is never stored. The model is
:class:`lrlab.models.transformer.Transformer` trained with per-token
cross-entropy (averaged over a sequence's positions, then over the batch).
``task.optimal_loss`` is the Bayes-optimal cross-entropy of the val split,
computed exactly by the generator's forward algorithm: no model can do better
on average, and the gap to it is how much a learning rate left on the table.
"""

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from lrlab.data.language import Language, LanguageSource
from lrlab.data.source import from_source
from lrlab.models.functional import functional
from lrlab.models.transformer import Transformer, transformer_lr_multipliers
from lrlab.tasks.build import from_model
from lrlab.tasks.task import Task

#: The default budget the task is sized for (AdamW, warmup-cosine; see
#: ``experiments/task_lm_transformer.py``): steps, batch size, peak rate, warmup steps.
DEFAULT_BUDGET = {"steps": 2000, "batch_size": 32, "lr": 6e-3, "warmup_steps": 100}
#: The default model width, also the default base width of muP.
DEFAULT_WIDTH = 64


def _count(name: str, value: object, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
    raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
  return int(value)


def lm_transformer(
  *,
  width: int = DEFAULT_WIDTH,
  depth: int = 2,
  heads: int = 4,
  context: int = 64,
  vocab: int = 32,
  num_tokens: int = 4_096_000,
  num_eval: int = 512,
  hidden: int = 8,
  triggers: int = 4,
  recall: float = 0.1,
  dropout: float = 0.0,
  parametrization: str = "sp",
  base_width: int | None = None,
  seed: int = 0,
) -> Task:
  """The ``lm-transformer`` task: next-token prediction on a :class:`Language`, streamed.

  Sequences hold ``context + 1`` tokens; ``x`` is the first ``context`` and
  ``y`` the last ``context`` (the next token at every position). The training
  split holds ``num_tokens // context`` sequences, the val and test splits
  ``num_eval`` each, all generated on demand from ``seed``. The loss is the
  mean per-token cross-entropy; ``accuracy`` is per token.

  Args:
    width, depth, heads, dropout: the :class:`Transformer`.
    parametrization: ``"sp"`` (GPT-2's, the default) or ``"mup"``
      (:class:`Transformer` says how); ``task.lr_multipliers("adam")`` or
      ``("sgd")`` gives the per-tensor rates (:func:`transformer_lr_multipliers`).
    base_width: under muP, the width at which muP equals SP; ``None``: 64, the default width.
    context: tokens a model reads, >= 2.
    vocab: tokens of the language, >= ``triggers + 2``.
    num_tokens: training tokens, >= ``context``.
    num_eval: sequences in the val split and in the test split, >= 1.
    hidden: hidden states of the language's Markov chain.
    triggers: trigger tokens recalled in context (0: no recall).
    recall: probability that an emission is a trigger, in ``[0, 1)``.
    seed: seed of the language, its sequences and nothing else (the run's key
      draws the model's initialisation and the minibatch order).

  Returns:
    A streamed :class:`Task` with ``optimal_loss`` the exact Bayes loss of the val split.

  Example:
    >>> task = lrlab.tasks.get("lm-transformer", num_tokens=64 * 256, num_eval=64)
    >>> round(task.optimal_loss, 3) < 3.0
    True
  """
  context = _count("context", context, 2)
  num_tokens = _count("num_tokens", num_tokens, context)
  num_eval = _count("num_eval", num_eval, 1)
  if base_width is None and parametrization == "mup":
    if isinstance(heads, int) and heads > 0 and DEFAULT_WIDTH % heads:
      raise ValueError(
        f"base_width must be given with parametrization='mup' and heads={heads}: its default, "
        f"the default width {DEFAULT_WIDTH}, is not a multiple of heads."
      )
    base_width = DEFAULT_WIDTH
  shape = dict(width=width, depth=depth, heads=heads)
  make = lambda rngs: Transformer(
    vocab,
    context,
    **shape,
    dropout=dropout,
    parametrization=parametrization,
    base_width=base_width,
    rngs=rngs,
  )
  model = functional(make)  # checks the model's options before the language is made
  language = Language(
    vocab=vocab, context=context, hidden=hidden, triggers=triggers, recall=recall, seed=seed
  )
  rates = functools.partial(
    transformer_lr_multipliers,
    vocab,
    context,
    **shape,
    parametrization=parametrization,
    base_width=base_width,
  )
  sizes = {"train": num_tokens // context, "val": num_eval, "test": num_eval}
  sources = [LanguageSource(language, split, n) for split, n in sizes.items()]
  dataset = from_source(*sources, num_classes=vocab, name="hmm-recall")
  val = language.tokens("val", np.arange(num_eval))
  optimal = float(-language.log_probs(val).mean())
  task = from_model(
    model, dataset, loss="cross_entropy", name="lm-transformer", lr_multipliers_fn=rates
  )
  return dataclasses.replace(task, optimal_loss=optimal)


BUILDERS: dict[str, Callable[..., Task]] = {"lm-transformer": lm_transformer}
