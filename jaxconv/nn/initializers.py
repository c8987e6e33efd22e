"""Parameter initialisers: ``init(key, shape, dtype=jnp.float32) -> jax.Array``.

Every initialiser takes a PRNG key, a shape and a floating dtype and returns a
fresh array; none holds state. Weight shapes follow the library's PyTorch
layout, output dimension first:

* a convolution kernel is ``(C_out, C_in // groups, *k)``;
* a dense (fully connected) weight is ``(out_features, in_features)``.

So for a shape ``(a, b, *k)`` the fans count the receptive field
``prod(k)``: ``fan_in = b * prod(k)`` and ``fan_out = a * prod(k)`` (the
convention of Glorot & Bengio 2010, Keras and PyTorch). A 1-d shape (a bias)
has ``fan_in = fan_out = shape[0]``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Initializer",
    "compute_fans",
    "glorot_uniform",
    "glorot_uniform_sigmoid",
    "he_normal",
    "zeros",
]

#: The signature every initialiser follows.
Initializer = Callable[..., jax.Array]


def _check_shape(fn: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, (numbers.Integral, np.integer)) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(
            f"jaxconv.nn.{fn}: shape must be a tuple of ints; got {shape!r} of type "
            f"{type(shape).__name__}"
        )
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"jaxconv.nn.{fn}: shape must have non-negative dims; got shape={shape}")
    return shape


def _check_dtype(fn: str, dtype: Any):
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"jaxconv.nn.{fn}: dtype must be a numpy dtype; got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"jaxconv.nn.{fn}: dtype must be floating point; got dtype={dt}")
    return dt


def _check_key(fn: str, key: Any) -> None:
    if not isinstance(key, jax.Array):
        raise TypeError(
            f"jaxconv.nn.{fn}: key must be a jax PRNG key (jax.random.key(0) or "
            f"jax.random.PRNGKey(0)); got {type(key).__name__}"
        )


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Fan-in and fan-out of a weight of the given shape (receptive field counted).

    Args:
      shape: ``(out, in, *k)`` for a conv kernel or dense weight, or ``(n,)``.

    Returns:
      ``(fan_in, fan_out)`` = ``(in * prod(k), out * prod(k))``; ``(n, n)`` for 1-d.

    Raises:
      ValueError: for a 0-d shape.
    """
    shape = _check_shape("compute_fans", shape)
    if len(shape) == 0:
        raise ValueError("jaxconv.nn.compute_fans: shape must have at least 1 dim; got shape=()")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32, *,
                   gain: float = 1.0) -> jax.Array:
    """Glorot / Xavier uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    The initialisation of Glorot & Bengio (2010) for tanh units; ``gain=4``
    gives the variant they recommend for logistic sigmoid units (see
    :func:`glorot_uniform_sigmoid`).

    Args:
      key: a JAX PRNG key.
      shape: ``(out, in, *k)`` (conv kernel), ``(out, in)`` (dense) or ``(n,)``.
      dtype: floating dtype of the result.
      gain: multiplies the bound.

    Returns:
      An array of ``shape`` and ``dtype``.
    """
    fn = "glorot_uniform"
    _check_key(fn, key)
    shape = _check_shape(fn, shape)
    dt = _check_dtype(fn, dtype)
    fan_in, fan_out = compute_fans(shape)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return jax.random.uniform(key, shape, dt, minval=-bound, maxval=bound)


def glorot_uniform_sigmoid(key: jax.Array, shape: Sequence[int],
                           dtype: Any = jnp.float32) -> jax.Array:
    """Glorot uniform with the ×4 bound for sigmoid units: ``a = 4 * sqrt(6 / (fan_in + fan_out))``.

    Args:
      key: a JAX PRNG key.
      shape: ``(out, in, *k)``, ``(out, in)`` or ``(n,)``.
      dtype: floating dtype of the result.

    Returns:
      An array of ``shape`` and ``dtype``.
    """
    return glorot_uniform(key, shape, dtype, gain=4.0)


def he_normal(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """He / Kaiming normal for ReLU units: ``N(0, 2 / fan_in)`` (not truncated).

    Args:
      key: a JAX PRNG key.
      shape: ``(out, in, *k)``, ``(out, in)`` or ``(n,)``.
      dtype: floating dtype of the result.

    Returns:
      An array of ``shape`` and ``dtype``.
    """
    fn = "he_normal"
    _check_key(fn, key)
    shape = _check_shape(fn, shape)
    dt = _check_dtype(fn, dtype)
    fan_in, _ = compute_fans(shape)
    std = math.sqrt(2.0 / max(fan_in, 1))
    return std * jax.random.normal(key, shape, dt)


def zeros(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    """All zeros (the key is accepted for a uniform signature and ignored).

    Args:
      key: a JAX PRNG key (unused).
      shape: any shape.
      dtype: floating dtype of the result.

    Returns:
      ``jnp.zeros(shape, dtype)``.
    """
    shape = _check_shape("zeros", shape)
    dt = _check_dtype("zeros", dtype)
    return jnp.zeros(shape, dt)
