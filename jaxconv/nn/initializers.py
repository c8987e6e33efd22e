"""Parameter initialisers: ``init(key, shape, dtype=jnp.float32) -> jax.Array``.

Every initialiser is a configuration of :func:`jax.nn.initializers.variance_scaling`
(or :func:`jax.nn.initializers.zeros`) behind one argument check, so a bad
key, shape or dtype gets a ``jaxconv.nn`` error instead of one from inside
``jax.random``. Weight shapes follow the library's PyTorch layout, output
dimension first:

* a convolution kernel is ``(C_out, C_in // groups, *k)``;
* a transposed-convolution kernel is ``(C_in, C_out // groups, *k)`` (fans as
  for a conv kernel of that shape, as in PyTorch);
* a dense (fully connected) weight is ``(out_features, in_features)``.

So ``variance_scaling`` runs with ``in_axis=1, out_axis=0``: for a shape
``(a, b, *k)`` the fans count the receptive field ``prod(k)``:
``fan_in = b * prod(k)`` and ``fan_out = a * prod(k)`` (the convention of
Glorot & Bengio 2010, Keras and PyTorch; :func:`compute_fans`). Weights need
at least 2 dims; ``zeros`` takes any shape.

    >>> import jax, jaxconv.nn as nn
    >>> w = nn.glorot_uniform(jax.random.key(0), (6, 1, 5, 5))
    >>> w.shape, bool(abs(w).max() <= (6 / (25 + 150)) ** 0.5)
    ((6, 1, 5, 5), True)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import initializers as _jinit
from jax.typing import DTypeLike

from .._src import _args

__all__ = [
    "Initializer",
    "compute_fans",
    "glorot_uniform",
    "glorot_uniform_sigmoid",
    "he_normal",
    "zeros",
]

#: The signature every initialiser follows: ``init(key, shape, dtype) -> array``.
Initializer = Callable[..., jax.Array]


def _check_shape(fn: str, shape: Any, min_ndim: int = 0) -> tuple[int, ...]:
    if isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not all(_args.is_int(d) for d in shape):
        raise TypeError(
            f"jaxconv.nn.{fn}: shape must be a tuple of ints; got {shape!r} of type "
            f"{type(shape).__name__}"
        )
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"jaxconv.nn.{fn}: shape must have non-negative dims; got shape={shape}")
    if len(shape) < min_ndim:
        raise ValueError(f"jaxconv.nn.{fn}: shape must have at least {min_ndim} dims "
                         f"(out, in, *k); got shape={shape}")
    return shape


def check_dtype(fn: str, dtype: Any) -> np.dtype:
    """``dtype`` must name a floating-point dtype; returns it as a NumPy dtype."""
    try:
        dt = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"jaxconv.nn.{fn}: dtype must be a numpy dtype; got {dtype!r}") from None
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"jaxconv.nn.{fn}: dtype must be floating point; got dtype={dt}")
    return dt


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Fan-in and fan-out of a weight of the given shape (receptive field counted).

    The fans ``variance_scaling(..., in_axis=1, out_axis=0)`` uses for shapes of
    2 or more dims, as PyTorch's ``nn.init._calculate_fan_in_and_fan_out``.

    Args:
      shape: ``(out, in, *k)`` for a conv kernel or dense weight, or ``(n,)``.

    Returns:
      ``(fan_in, fan_out)`` = ``(in * prod(k), out * prod(k))``; ``(n, n)`` for 1-d.

    Raises:
      ValueError: for a 0-d shape.

    Example:
      >>> compute_fans((20, 1, 5, 5))
      (25, 500)
    """
    shape = _check_shape("compute_fans", shape)
    if len(shape) == 0:
        raise ValueError("jaxconv.nn.compute_fans: shape must have at least 1 dim; got shape=()")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _configured(
    name: str,
    init: Callable[..., jax.Array],
    min_ndim: int,
    doc: str,
) -> Initializer:
    """``init`` (a jax.nn.initializers function) behind jaxconv's argument checks,
    jitted per shape and dtype (eagerly its dozen small ops would each compile)."""
    init = jax.jit(init, static_argnums=(1, 2))

    def initializer(key: jax.Array, shape: Sequence[int],
                    dtype: DTypeLike = jnp.float32) -> jax.Array:
        _args.check_key(f"nn.{name}", key)
        return init(key, _check_shape(name, shape, min_ndim), check_dtype(name, dtype))

    initializer.__name__ = initializer.__qualname__ = name
    initializer.__doc__ = doc
    return initializer


def _variance_scaling(
    scale: float,
    mode: Literal["fan_in", "fan_out", "fan_avg"],
    distribution: Literal["uniform", "normal"],
) -> Callable[..., jax.Array]:
    return _jinit.variance_scaling(scale, mode, distribution, in_axis=1, out_axis=0)


_SHAPE_ARGS = """
    Args:
      key: a JAX PRNG key.
      shape: ``(out, in, *k)`` (conv kernel) or ``(out, in)`` (dense weight).
      dtype: floating dtype of the result.

    Returns:
      An array of ``shape`` and ``dtype``.
"""

glorot_uniform = _configured("glorot_uniform", _variance_scaling(1.0, "fan_avg", "uniform"), 2, (
    """Glorot / Xavier uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``.

    The initialisation of Glorot & Bengio (2010) for tanh units, as PyTorch's
    ``nn.init.xavier_uniform_``: ``variance_scaling(1, "fan_avg", "uniform",
    in_axis=1, out_axis=0)``.
""" + _SHAPE_ARGS + """
    Example:
      >>> import jax
      >>> glorot_uniform(jax.random.key(0), (4, 3, 3, 3)).shape
      (4, 3, 3, 3)
"""))

glorot_uniform_sigmoid = _configured(
    "glorot_uniform_sigmoid", _variance_scaling(16.0, "fan_avg", "uniform"), 2, (
        """Glorot uniform with the x4 bound for logistic sigmoid units: ``a = 4 * sqrt(6 / (fan_in + fan_out))``.

    Glorot & Bengio's (2010) variant for sigmoid units (``gain=4`` in PyTorch's
    ``xavier_uniform_``): ``variance_scaling(16, "fan_avg", "uniform", in_axis=1,
    out_axis=0)``.
""" + _SHAPE_ARGS + """
    Example:
      >>> import jax
      >>> w = glorot_uniform_sigmoid(jax.random.key(0), (10, 84))
      >>> bool(abs(w).max() <= 4 * (6 / 94) ** 0.5)
      True
"""))

he_normal = _configured("he_normal", _variance_scaling(2.0, "fan_in", "normal"), 2, (
    """He / Kaiming normal for ReLU units: ``N(0, 2 / fan_in)`` (not truncated).

    As PyTorch's ``nn.init.kaiming_normal_`` (``mode="fan_in"``, ReLU gain):
    ``variance_scaling(2, "fan_in", "normal", in_axis=1, out_axis=0)``.
""" + _SHAPE_ARGS + """
    Example:
      >>> import jax
      >>> he_normal(jax.random.key(0), (8, 4, 3)).dtype
      dtype('float32')
"""))

zeros = _configured("zeros", _jinit.zeros, 0, (
    """All zeros (the key is accepted for a uniform signature and ignored).

    Args:
      key: a JAX PRNG key (unused).
      shape: any shape.
      dtype: floating dtype of the result.

    Returns:
      ``jnp.zeros(shape, dtype)``.

    Example:
      >>> import jax
      >>> zeros(jax.random.key(0), (2,))
      Array([0., 0.], dtype=float32)
"""))
