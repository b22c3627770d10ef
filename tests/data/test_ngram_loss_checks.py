"""ngram_loss refuses tokens with no target, of a float dtype or of the wrong rank, on one line."""

import warnings

import numpy as np
import pytest

from lrlab.data.language import Language, ngram_loss


@pytest.mark.parametrize(
  "tokens",
  [
    np.zeros((3, 1), np.int32),  # length 1: no target (was NaN and a RuntimeWarning)
    np.zeros((0, 5), np.int32),  # no sequence (was NaN)
    np.zeros(5, np.int32),  # 1-D (was numpy's concatenate error)
    np.zeros((3, 5)) + 0.7,
  ],  # floats (were truncated to 0 silently)
)
def test_ngram_loss_refuses_what_has_no_targets_in_one_line(tokens):
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    with pytest.raises(ValueError, match=r"^tokens must be an int array \(n, length\)"):
      ngram_loss(tokens, 1)


def test_ngram_loss_of_good_tokens_is_unchanged():
  tokens = Language(vocab=8, context=6, hidden=3, triggers=2, seed=0).tokens("train", np.arange(50))
  assert ngram_loss(tokens, 0) == pytest.approx(1.8494933683216517, rel=1e-12)
