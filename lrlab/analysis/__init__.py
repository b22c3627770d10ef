"""Analysis of trained models and sweeps: sharpness, and the statistics experiments share."""

from lrlab.analysis.sharpness import hessian_vector_product as hessian_vector_product
from lrlab.analysis.sharpness import sharpness as sharpness
from lrlab.analysis.stats import VERDICTS as VERDICTS
from lrlab.analysis.stats import decades as decades
from lrlab.analysis.stats import holm as holm
from lrlab.analysis.stats import seed_band as seed_band
from lrlab.analysis.stats import spearman as spearman
from lrlab.analysis.stats import verdict as verdict

__all__ = [
  "VERDICTS",
  "decades",
  "hessian_vector_product",
  "holm",
  "seed_band",
  "sharpness",
  "spearman",
  "verdict",
]
