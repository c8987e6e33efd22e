"""Pooling and resampling layers (no parameters, except :class:`WeightedPool`'s window).

Each is a frozen dataclass over one op of :mod:`jaxconv` and validates all its
options when constructed. Its number of spatial dims is the length of its
window (or of any other per-dim sequence it is given), else ``ndim=``; with
only int options and no ``ndim`` it takes the input's (an int broadcasts to
every spatial dim of the array it applies to).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from .._src import _args
from .._src import adaptive as _adaptive
from .._src import pool as _ops
from .base import Layer, Params, check_init, check_input_rank, check_params, frozen_tuple
from .initializers import check_dtype

IntOption = int | tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _Pool(Layer):
    """A parameter-free layer over one op; ``_op(x)`` calls it with the options."""

    _: dataclasses.KW_ONLY
    ndim: int | None = None

    def _set(self, **values: Any) -> None:
        for name, v in values.items():
            object.__setattr__(self, name, frozen_tuple(v))

    def _op(self, x: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """Applies the op: ``x`` ``(N, C, *D)`` (``ndim`` spatial dims when fixed).

        Args:
          params: ``{}`` (or None).
          x: ``(N, C, *D)``, floating point.
        """
        name = type(self).__name__
        check_params(f"{name}.apply", params, {})
        x = _args.as_array(f"nn.{name}.apply", "x", x)
        check_input_rank(f"{name}.apply", x, self.ndim)
        return self._op(x)


def _window_pool(layer: Any, fn: str, dilation: Any = 1) -> None:
    nd = _args.spatial_rank(fn, layer.ndim, window=layer.window, stride=layer.stride,
                            padding=layer.padding, dilation=dilation)
    window, stride, padding, dilation, ceil_mode = _args.pool_options(
        fn, layer.window, stride=layer.stride, padding=layer.padding, dilation=dilation,
        ceil_mode=layer.ceil_mode, ndim=nd)
    layer._set(ndim=nd, window=window, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if hasattr(layer, "dilation"):
        layer._set(dilation=dilation)


@dataclasses.dataclass(frozen=True)
class _WindowPool(_Pool):
    """The keyword options every sliding-window pool layer here takes (validated by
    :func:`_window_pool`); a subclass declares ``window`` (and its other arguments)."""

    _: dataclasses.KW_ONLY
    stride: IntOption | None = None
    padding: _args.PaddingOption = 0
    ceil_mode: bool = False


@dataclasses.dataclass(frozen=True)
class MaxPool(_WindowPool):
    """Max pooling layer over :func:`jaxconv.max_pool` (PyTorch's ``nn.MaxPool1d/2d/3d``).

    Args:
      window: an int or one int per spatial dim.
      ndim: number of spatial dims (default: from the per-dim options, else the input's).
      stride: default ``window`` (non-overlapping).
      padding, dilation, ceil_mode: as in :func:`jaxconv.max_pool`.

    ``apply(params, x)``: ``x`` ``(N, C, *D)`` -> ``(N, C, *O)``; ``params`` is ``{}``.

    Example:
      >>> import jax.numpy as jnp
      >>> MaxPool(2).apply({}, jnp.ones((1, 3, 8, 8))).shape
      (1, 3, 4, 4)
    """

    window: IntOption
    _: dataclasses.KW_ONLY
    dilation: IntOption = 1

    def __post_init__(self) -> None:
        _window_pool(self, "nn.MaxPool", self.dilation)

    def _op(self, x: jax.Array) -> jax.Array:
        return _ops.max_pool(x, self.window, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, ceil_mode=self.ceil_mode)


@dataclasses.dataclass(frozen=True)
class AvgPool(_WindowPool):
    """Average pooling layer over :func:`jaxconv.avg_pool` (PyTorch's ``nn.AvgPool1d/2d/3d``).

    Args:
      window, ndim, stride: as for :class:`MaxPool`.
      padding, ceil_mode, count_include_pad, divisor: as in :func:`jaxconv.avg_pool`.

    ``apply(params, x)``: as for :class:`MaxPool`.

    Example:
      >>> import jax.numpy as jnp
      >>> AvgPool((2, 2), stride=1).apply({}, jnp.ones((1, 3, 8, 8))).shape
      (1, 3, 7, 7)
    """

    window: IntOption
    _: dataclasses.KW_ONLY
    count_include_pad: bool = True
    divisor: int | None = None

    def __post_init__(self) -> None:
        fn = "nn.AvgPool"
        _window_pool(self, fn)
        self._set(count_include_pad=_args.check_bool(fn, "count_include_pad",
                                                     self.count_include_pad),
                  divisor=_args.pool_divisor_arg(fn, self.divisor))

    def _op(self, x: jax.Array) -> jax.Array:
        return _ops.avg_pool(x, self.window, stride=self.stride, padding=self.padding,
                             ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                             divisor=self.divisor)


@dataclasses.dataclass(frozen=True)
class LpPool(_WindowPool):
    """Lp pooling layer over :func:`jaxconv.lp_pool` (PyTorch's ``nn.LPPool1d/2d/3d``).

    Args:
      p: the norm, a finite number > 0 (2: L2 pooling).
      window, ndim, stride: as for :class:`MaxPool`.
      padding, ceil_mode: as in :func:`jaxconv.lp_pool`.

    ``apply(params, x)``: as for :class:`MaxPool`.

    Example:
      >>> import jax.numpy as jnp
      >>> LpPool(2, 2).apply({}, jnp.ones((1, 1, 4, 4)))[0, 0, 0, 0]
      Array(2., dtype=float32)
    """

    p: float
    window: IntOption

    def __post_init__(self) -> None:
        fn = "nn.LpPool"
        self._set(p=_args.pool_norm(fn, self.p))
        _window_pool(self, fn)

    def _op(self, x: jax.Array) -> jax.Array:
        return _ops.lp_pool(x, self.p, self.window, stride=self.stride, padding=self.padding,
                            ceil_mode=self.ceil_mode)


def _ones(key: jax.Array, shape: tuple[int, ...], dtype: DTypeLike = jnp.float32) -> jax.Array:
    return jnp.ones(shape, dtype)


@dataclasses.dataclass(frozen=True)
class WeightedPool(Layer):
    """Weighted-average pooling with a learned window, over :func:`jaxconv.weighted_pool`.

    Parameters: ``{"w": window}``, normalised to sum 1 by the op. The default
    ``w_init`` (ones) starts as average pooling; for a Gaussian window use
    ``w_init=lambda key, shape, dtype: jaxconv.gaussian_window(shape, 1.0, dtype=dtype)``.

    Args:
      window: an int or one int per spatial dim.
      ndim: number of spatial dims; default: the length of a per-dim sequence, else 2.
      stride, padding: as in :func:`jaxconv.weighted_pool`.
      w_init: initialiser of the window weights ``init(key, window, dtype)``.
      dtype: parameter dtype.

    ``apply(params, x)``: ``x`` ``(N, C, *D)`` -> ``(N, C, *O)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> pool = WeightedPool(3, stride=1, padding=1)
      >>> pool.apply(pool.init(jax.random.key(0)), jnp.ones((1, 2, 5, 5))).shape
      (1, 2, 5, 5)
    """

    window: IntOption
    _: dataclasses.KW_ONLY
    ndim: int | None = None
    stride: IntOption | None = None
    padding: _args.PaddingOption = 0
    w_init: Callable[..., jax.Array] = _ones
    dtype: DTypeLike = "float32"

    has_params: ClassVar[bool] = True

    def __post_init__(self) -> None:
        fn = "nn.WeightedPool"
        nd = _args.spatial_rank(fn, self.ndim, window=self.window, stride=self.stride,
                                padding=self.padding) or 2
        window, stride, padding, _, _ = _args.pool_options(
            fn, self.window, stride=self.stride, padding=self.padding, ndim=nd)
        check_init(fn, "w_init", self.w_init)
        check_dtype(fn, self.dtype)
        for name, v in (("ndim", nd), ("window", window), ("stride", stride),
                        ("padding", padding)):
            object.__setattr__(self, name, frozen_tuple(v))

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Fresh ``{"w": window}`` from ``w_init``.

        Args:
          key: a JAX PRNG key.
        """
        _args.check_key("nn.WeightedPool.init", key)
        return {"w": self.w_init(key, self.window, self.dtype)}

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """``weighted_pool(x, w, ...)``.

        Args:
          params: ``{"w"}`` as returned by :meth:`init`.
          x: ``(N, C, *D)`` with ``ndim`` spatial dims.
        """
        params = check_params("WeightedPool.apply", params,
                              {"w": self.window})  # type: ignore[dict-item]
        return _ops.weighted_pool(x, params["w"], stride=self.stride, padding=self.padding)


@dataclasses.dataclass(frozen=True)
class _Adaptive(_Pool):
    output_size: int | tuple[int | None, ...]

    def __post_init__(self) -> None:
        fn = f"nn.{type(self).__name__}"
        nd = _args.spatial_rank(fn, self.ndim, output_size=self.output_size)
        self._set(ndim=nd, output_size=_args.output_size_option(fn, self.output_size, nd))


@dataclasses.dataclass(frozen=True)
class AdaptiveAvgPool(_Adaptive):
    """Adaptive average pooling to a fixed output size, over :func:`jaxconv.adaptive_avg_pool`
    (PyTorch's ``nn.AdaptiveAvgPool1d/2d/3d``).

    Args:
      output_size: an int, or one int (or None: keep the input's size) per spatial dim.
      ndim: number of spatial dims (default: from ``output_size``, else the input's).

    ``apply(params, x)``: ``x`` ``(N, C, *D)`` -> ``(N, C, *output_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> AdaptiveAvgPool((2, 3)).apply({}, jnp.ones((1, 4, 7, 9))).shape
      (1, 4, 2, 3)
    """

    def _op(self, x: jax.Array) -> jax.Array:
        return _adaptive.adaptive_avg_pool(x, self.output_size)


@dataclasses.dataclass(frozen=True)
class AdaptiveMaxPool(_Adaptive):
    """Adaptive max pooling to a fixed output size, over :func:`jaxconv.adaptive_max_pool`
    (PyTorch's ``nn.AdaptiveMaxPool1d/2d/3d``). Arguments and shapes as
    :class:`AdaptiveAvgPool`.

    Example:
      >>> import jax.numpy as jnp
      >>> AdaptiveMaxPool(1).apply({}, jnp.ones((1, 4, 7))).shape
      (1, 4, 1)
    """

    def _op(self, x: jax.Array) -> jax.Array:
        return _adaptive.adaptive_max_pool(x, self.output_size)


@dataclasses.dataclass(frozen=True)
class _Global(_Pool):
    ndim: int | None = None

    def __post_init__(self) -> None:
        nd = _args.spatial_rank(f"nn.{type(self).__name__}", self.ndim)
        self._set(ndim=nd)

    def _op(self, x: jax.Array) -> jax.Array:
        return self._pool(x, 1).reshape(x.shape[:2])

    _pool: ClassVar[Callable[..., jax.Array]]


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool(_Global):
    """Mean over all spatial positions: ``(N, C, *D)`` -> ``(N, C)``.

    :func:`jaxconv.adaptive_avg_pool` with ``output_size=1``, spatial dims
    dropped (as Keras' ``GlobalAveragePooling``; PyTorch's
    ``nn.AdaptiveAvgPool2d(1)`` keeps them as size 1).

    Args:
      ndim: number of spatial dims the input must have (default: any).

    Example:
      >>> import jax.numpy as jnp
      >>> GlobalAvgPool().apply({}, jnp.ones((2, 5, 4, 4))).shape
      (2, 5)
    """

    _pool: ClassVar[Callable[..., jax.Array]] = staticmethod(_adaptive.adaptive_avg_pool)


@dataclasses.dataclass(frozen=True)
class GlobalMaxPool(_Global):
    """Max over all spatial positions: ``(N, C, *D)`` -> ``(N, C)``.

    :func:`jaxconv.adaptive_max_pool` with ``output_size=1``, spatial dims dropped.

    Args:
      ndim: number of spatial dims the input must have (default: any).

    Example:
      >>> import jax.numpy as jnp
      >>> GlobalMaxPool().apply({}, jnp.ones((2, 5, 4))).shape
      (2, 5)
    """

    _pool: ClassVar[Callable[..., jax.Array]] = staticmethod(_adaptive.adaptive_max_pool)


@dataclasses.dataclass(frozen=True)
class Upsample(_Pool):
    """Nearest-neighbour upsampling by an integer factor, over :func:`jaxconv.upsample`
    (PyTorch's ``nn.Upsample(scale_factor=factor, mode="nearest")``).

    Args:
      factor: an int >= 1 or one per spatial dim.
      ndim: number of spatial dims (default: from ``factor``, else the input's).

    ``apply(params, x)``: ``x`` ``(N, C, *D)`` -> ``(N, C, *(D * factor))``.

    Example:
      >>> import jax.numpy as jnp
      >>> Upsample(2).apply({}, jnp.ones((1, 3, 4, 5))).shape
      (1, 3, 8, 10)
    """

    factor: IntOption

    def __post_init__(self) -> None:
        fn = "nn.Upsample"
        nd = _args.spatial_rank(fn, self.ndim, factor=self.factor)
        self._set(ndim=nd, factor=_args.int_option(fn, "factor", self.factor, nd, minimum=1))

    def _op(self, x: jax.Array) -> jax.Array:
        return _adaptive.upsample(x, self.factor)
