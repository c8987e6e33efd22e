"""Dense (fully connected), Flatten and elementwise activation layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from .._src import _args
from . import initializers as _inits
from .base import Layer, Params, WeightBias, check_params


def _floating(fn: str, x: ArrayLike) -> jax.Array:
    x = _args.as_array(fn, "x", x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"jaxconv.{fn}: x must be floating point; got x.dtype={x.dtype}")
    return x


@dataclasses.dataclass(frozen=True)
class Dense(WeightBias):
    """Fully connected layer ``y = x @ w.T + b`` (PyTorch's ``nn.Linear``).

    Parameters: ``{"w": (out_features, in_features), "b": (out_features,)}``
    (PyTorch's layout; no ``"b"`` when ``bias=False``).

    Args:
      in_features: size of ``x``'s last axis.
      out_features: size of ``y``'s last axis.
      bias: whether to add a learned bias.
      w_init: initialiser for ``w`` (default :func:`~jaxconv.nn.glorot_uniform`).
      b_init: initialiser for ``b`` (default :func:`~jaxconv.nn.zeros`).
      dtype: parameter dtype.

    ``apply(params, x)``: ``x`` ``(..., in_features)`` -> ``(..., out_features)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> fc = Dense(400, 10)
      >>> fc.apply(fc.init(jax.random.key(0)), jnp.ones((2, 400))).shape
      (2, 10)
    """

    in_features: int
    out_features: int
    _: dataclasses.KW_ONLY
    bias: bool = True
    w_init: Callable[..., jax.Array] = _inits.glorot_uniform
    b_init: Callable[..., jax.Array] = _inits.zeros
    dtype: DTypeLike = "float32"

    def __post_init__(self) -> None:
        fn = "nn.Dense"
        _args.positive_int(fn, "in_features", self.in_features)
        _args.positive_int(fn, "out_features", self.out_features)
        self._check_common(fn)

    @property
    def w_shape(self) -> tuple[int, ...]:
        """``(out_features, in_features)``."""
        return (self.out_features, self.in_features)

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """``x @ w.T + b``: ``(..., in_features)`` -> ``(..., out_features)``.

        Args:
          params: ``{"w", "b"}`` as returned by :meth:`init`.
          x: ``(..., in_features)``, floating point.
        """
        params = check_params("Dense.apply", params, self.param_shapes)
        x = _args.as_array("nn.Dense.apply", "x", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            hint = " (flatten conv features first with Flatten())" if x.ndim > 2 else ""
            raise ValueError(
                f"jaxconv.nn.Dense.apply: x must be (..., in_features) with in_features="
                f"{self.in_features}; got x.shape={tuple(x.shape)}{hint}"
            )
        x = _floating("nn.Dense.apply", x)
        y = jnp.matmul(x, params["w"].T.astype(x.dtype), precision=jax.lax.Precision.HIGHEST)
        if self.bias:
            y = y + params["b"].astype(x.dtype)
        return y


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Flattens every axis but the first: ``(N, *rest)`` -> ``(N, prod(rest))`` (no parameters).

    Example:
      >>> import jax.numpy as jnp
      >>> Flatten().apply({}, jnp.ones((2, 16, 5, 5))).shape
      (2, 400)
    """

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """``x.reshape(N, -1)``.

        Args:
          params: ``{}`` (or None).
          x: ``(N, *rest)`` with at least one axis.
        """
        check_params("Flatten.apply", params, {})
        x = _args.as_array("nn.Flatten.apply", "x", x)
        if x.ndim < 1:
            raise ValueError("jaxconv.nn.Flatten.apply: x must have a batch axis; got a scalar "
                             "(x.shape=())")
        return x.reshape(x.shape[0], -1)


@dataclasses.dataclass(frozen=True)
class _Elementwise(Layer):
    _fn: ClassVar[Callable[[jax.Array], jax.Array]]

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """Applies the activation elementwise (any shape; ``params`` is ``{}``)."""
        name = type(self).__name__
        check_params(f"{name}.apply", params, {})
        return type(self)._fn(_floating(f"nn.{name}.apply", x))


@dataclasses.dataclass(frozen=True)
class Tanh(_Elementwise):
    """Hyperbolic tangent activation layer (no parameters; any shape).

    Example:
      >>> import jax.numpy as jnp
      >>> Tanh().apply({}, jnp.zeros(2))
      Array([0., 0.], dtype=float32)
    """

    _fn: ClassVar[Callable[[jax.Array], jax.Array]] = staticmethod(jnp.tanh)


@dataclasses.dataclass(frozen=True)
class Sigmoid(_Elementwise):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` activation layer (no parameters; any shape).

    Example:
      Any real input lands in (0, 1), with 0.5 at zero:

      >>> import jax.numpy as jnp
      >>> Sigmoid().apply({}, jnp.array([-30.0, 0.0, 30.0])).round(3).tolist()
      [0.0, 0.5, 1.0]
    """

    _fn: ClassVar[Callable[[jax.Array], jax.Array]] = staticmethod(jax.nn.sigmoid)


@dataclasses.dataclass(frozen=True)
class ReLU(_Elementwise):
    """Rectified linear ``max(x, 0)`` activation layer (no parameters; any shape).

    Example:
      >>> import jax.numpy as jnp
      >>> ReLU().apply({}, jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """

    _fn: ClassVar[Callable[[jax.Array], jax.Array]] = staticmethod(jax.nn.relu)
