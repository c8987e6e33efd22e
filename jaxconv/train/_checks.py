"""Argument checks shared by the modules of :mod:`jaxconv.train` (private)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._src._args import is_int

MOD = "jaxconv.train"


def check_int(fn: str, name: str, v: Any, minimum: int) -> int:
    """``v`` as an int >= ``minimum``, else TypeError / ValueError naming ``fn`` and ``name``."""
    if not is_int(v):
        raise TypeError(f"{MOD}.{fn}: {name} must be an int >= {minimum}; got {v!r} of type "
                        f"{type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{MOD}.{fn}: {name} must be an int >= {minimum}; got {name}={v}")
    return int(v)


def check_float(fn: str, name: str, v: Any, minimum: float = 0.0, *, strict: bool = False) -> float:
    """``v`` as a finite float >= ``minimum`` (> when ``strict``)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{MOD}.{fn}: {name} must be a real number; got {v!r} of type "
                        f"{type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < minimum or (strict and v == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{MOD}.{fn}: {name} must be a finite number {op} {minimum}; got {name}={v}")
    return v


def check_images_labels(fn: str, images: Any, labels: Any, name: str = "data") -> tuple[Any, Any]:
    """Checks an ``(images (N, ...) float, labels (N,) int)`` pair; returns arrays (not copied)."""
    images = images if isinstance(images, jax.Array) else np.asarray(images)
    labels = labels if isinstance(labels, jax.Array) else np.asarray(labels)
    if images.ndim < 2 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{MOD}.{fn}: {name} must be (images (N, ...), labels (N,)) with the same N; got "
            f"images.shape={tuple(images.shape)}, labels.shape={tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{MOD}.{fn}: {name} is empty (N = 0)")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"{MOD}.{fn}: {name} images must be floating point; got dtype={images.dtype}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{MOD}.{fn}: {name} labels must be integers; got dtype={labels.dtype}")
    return images, labels


def check_pair(fn: str, name: str, data: Any) -> tuple[Any, Any]:
    """Checks that ``data`` is a pair ``(images, labels)`` and checks the pair."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{MOD}.{fn}: {name} must be a pair (images, labels); got "
                        f"{type(data).__name__}")
    return check_images_labels(fn, data[0], data[1], name)
