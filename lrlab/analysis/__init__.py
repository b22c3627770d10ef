"""Analysis of trained models and sweeps: sharpness (Hessian top eigenvalue)."""

from lrlab.analysis.sharpness import hessian_vector_product as hessian_vector_product
from lrlab.analysis.sharpness import sharpness as sharpness

__all__ = ["hessian_vector_product", "sharpness"]
