"""Analysis of trained models and sweeps: sharpness, the gradient noise scale, the dead-network
guard, and the statistics experiments share."""

from lrlab.analysis.guard import at_chance as at_chance
from lrlab.analysis.guard import chance_loss as chance_loss
from lrlab.analysis.guard import fail_at_chance as fail_at_chance
from lrlab.analysis.noise_scale import NoiseScale as NoiseScale
from lrlab.analysis.noise_scale import gradient_noise_scale as gradient_noise_scale
from lrlab.analysis.noise_scale import noise_scale as noise_scale
from lrlab.analysis.sharpness import hessian_vector_product as hessian_vector_product
from lrlab.analysis.sharpness import sharpness as sharpness
from lrlab.analysis.stats import ALPHA as ALPHA
from lrlab.analysis.stats import VERDICTS as VERDICTS
from lrlab.analysis.stats import decades as decades
from lrlab.analysis.stats import holm as holm
from lrlab.analysis.stats import paired_difference as paired_difference
from lrlab.analysis.stats import refine_best as refine_best
from lrlab.analysis.stats import seed_band as seed_band
from lrlab.analysis.stats import spearman as spearman
from lrlab.analysis.stats import verdict as verdict

__all__ = [
  "ALPHA",
  "VERDICTS",
  "NoiseScale",
  "at_chance",
  "chance_loss",
  "decades",
  "fail_at_chance",
  "gradient_noise_scale",
  "hessian_vector_product",
  "holm",
  "noise_scale",
  "paired_difference",
  "refine_best",
  "seed_band",
  "sharpness",
  "spearman",
  "verdict",
]
