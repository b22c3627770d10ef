"""Datasets: synthetic problems with known answers, digits, MNIST-1D and a synthetic language.

Every constructor is deterministic given its seed and never downloads: the
digits ship with scikit-learn and MNIST-1D is generated locally. A
:class:`Dataset` holds train / validation / test arrays; feature scaling is
fitted on the training split only (:func:`standardize`).
"""

from lrlab.data.benchmarks import default_cache_dir as default_cache_dir
from lrlab.data.benchmarks import digits as digits
from lrlab.data.benchmarks import mnist1d as mnist1d
from lrlab.data.dataset import Dataset as Dataset
from lrlab.data.language import Language as Language
from lrlab.data.language import LanguageSource as LanguageSource
from lrlab.data.language import ngram_loss as ngram_loss
from lrlab.data.preprocessing import standardize as standardize
from lrlab.data.source import ArraySource as ArraySource
from lrlab.data.source import Source as Source
from lrlab.data.source import StreamedDataset as StreamedDataset
from lrlab.data.source import from_source as from_source
from lrlab.data.splits import from_arrays as from_arrays
from lrlab.data.synthetic import LinearRegression as LinearRegression
from lrlab.data.synthetic import Quadratic as Quadratic
from lrlab.data.synthetic import linear_regression as linear_regression
from lrlab.data.synthetic import quadratic as quadratic

__all__ = [
  "ArraySource",
  "Dataset",
  "Language",
  "LanguageSource",
  "LinearRegression",
  "Quadratic",
  "Source",
  "StreamedDataset",
  "default_cache_dir",
  "digits",
  "from_arrays",
  "from_source",
  "linear_regression",
  "mnist1d",
  "ngram_loss",
  "quadratic",
  "standardize",
]
