"""Analysis of trained models and sweeps: sharpness, the gradient noise scale, and the statistics
experiments share."""

from lrlab.analysis.noise_scale import NoiseScale as NoiseScale
from lrlab.analysis.noise_scale import gradient_noise_scale as gradient_noise_scale
from lrlab.analysis.noise_scale import noise_scale as noise_scale
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
  "NoiseScale",
  "decades",
  "gradient_noise_scale",
  "hessian_vector_product",
  "holm",
  "noise_scale",
  "seed_band",
  "sharpness",
  "spearman",
  "verdict",
]
