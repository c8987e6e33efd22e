"""Layers with unshared or factorised kernels: :class:`LocallyConnected`,
:class:`TiledConv` and :class:`SeparableConv`, over :func:`jaxconv.local_conv`,
:func:`jaxconv.tiled_conv` and :func:`jaxconv.depthwise_separable_conv`.

Their kernels are initialised position by position (tile by tile): each
``(C_out, C_in, *k)`` kernel is one draw of ``w_init``, so its fans are those of
an ordinary convolution kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import cast

import jax
from jax.typing import ArrayLike, DTypeLike

from .._src import _args
from .._src.local import depthwise_separable_conv, local_conv, tiled_conv
from .base import Params
from .conv import KernelLayer


def _kernels(init: Callable[..., jax.Array], key: jax.Array, lead: tuple[int, ...],
             kernel: tuple[int, ...], dtype: DTypeLike) -> jax.Array:
    """``prod(lead)`` independent draws of ``init(key_i, kernel, dtype)``, shape ``lead + kernel``."""
    n = 1
    for d in lead:
        n *= d
    keys = jax.random.split(key, n)
    return jax.vmap(lambda k: init(k, kernel, dtype))(keys).reshape(lead + kernel)


class _Unshared(KernelLayer):
    """One ``(out_features, in_features, *kernel)`` kernel per position of ``_lead``."""

    @property
    def _lead(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def w_shape(self) -> tuple[int, ...]:
        """``(*lead, out_features, in_features, *kernel)``."""
        return self._lead + (self.out_features, self.in_features) + self.kernel_tuple

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Fresh ``{"w", "b"}``: one ``w_init`` draw per kernel position.

        Args:
          key: a JAX PRNG key.
        """
        _args.check_key(f"nn.{type(self).__name__}.init", key)
        kw, kb = jax.random.split(key)
        nd = len(self._lead)
        params = {"w": _kernels(self.w_init, kw, self.w_shape[:nd], self.w_shape[nd:],
                                self.dtype)}
        if self.bias:
            params["b"] = self.b_init(kb, self.b_shape, self.dtype)
        return params


@dataclasses.dataclass(frozen=True)
class LocallyConnected(_Unshared):
    """Locally connected layer: a different kernel at every output position
    (Keras' ``LocallyConnected1D/2D``), over :func:`jaxconv.local_conv`.

    Parameters: ``{"w": (*O, out_features, in_features, *kernel), "b":
    (out_features, *O)}`` (one bias per output position, as Keras), ``O`` the
    output size for inputs of spatial size ``input_size``.

    Args:
      in_features, out_features, kernel, ndim, stride, padding, dilation: as
        for :class:`~jaxconv.nn.Conv` (no groups).
      input_size: the spatial size ``D`` of the inputs (an int or one per dim):
        the number of kernels depends on it.
      bias, w_init, b_init, dtype: as for :class:`~jaxconv.nn.Conv`.

    ``apply(params, x)``: ``x`` ``(N, in_features, *input_size)`` -> ``(N, out_features, *O)``.

    Example:
      >>> layer = LocallyConnected(3, 4, 3, input_size=(8, 8))
      >>> layer.out_spatial, layer.param_shapes["w"]
      ((6, 6), (6, 6, 4, 3, 3, 3))
    """

    _: dataclasses.KW_ONLY
    input_size: int | tuple[int, ...]
    out_spatial: tuple[int, ...] = dataclasses.field(init=False, default=())

    def __post_init__(self) -> None:
        fn = "nn.LocallyConnected"
        self._validate(fn, input_size=(self.input_size, 1))
        # The output size and every size check, as jaxconv.conv computes them.
        geom = _args.conv_geometry(
            fn, (1, self.in_features, *self.input_size),  # type: ignore[misc]
            (self.out_features, self.in_features, *self.kernel_tuple), None,
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=1)
        object.__setattr__(self, "out_spatial", geom.out_spatial)

    @property
    def _lead(self) -> tuple[int, ...]:
        return self.out_spatial

    @property
    def b_shape(self) -> tuple[int, ...]:
        """``(out_features, *out_spatial)``: one bias per output position."""
        return (self.out_features, *self.out_spatial)

    def _op(self, x: ArrayLike, params: Params) -> jax.Array:
        return local_conv(x, params["w"], params.get("b"), stride=self.stride,
                          padding=self.padding, dilation=self.dilation)


@dataclasses.dataclass(frozen=True)
class TiledConv(_Unshared):
    """Tiled convolution layer: output position ``p`` uses kernel ``p mod tile``
    (Le et al. 2010), over :func:`jaxconv.tiled_conv`.

    Parameters: ``{"w": (*tile, out_features, in_features, *kernel), "b": (out_features,)}``.

    Args:
      in_features, out_features, kernel, ndim, stride, padding, dilation: as
        for :class:`~jaxconv.nn.Conv` (no groups).
      tile: an int >= 1 or one per spatial dim (1: an ordinary convolution).
      bias, w_init, b_init, dtype: as for :class:`~jaxconv.nn.Conv`.

    ``apply(params, x)``: ``x`` ``(N, in_features, *D)`` -> ``(N, out_features, *O)``.

    Example:
      >>> TiledConv(1, 2, 3, tile=2).param_shapes["w"]
      (2, 2, 2, 1, 3, 3)
    """

    _: dataclasses.KW_ONLY
    tile: int | tuple[int, ...] = 1

    def __post_init__(self) -> None:
        self._validate("nn.TiledConv", tile=(self.tile, 1))

    @property
    def _lead(self) -> tuple[int, ...]:
        return cast(tuple[int, ...], self.tile)

    def _op(self, x: ArrayLike, params: Params) -> jax.Array:
        return tiled_conv(x, params["w"], params.get("b"), tile=self.tile, stride=self.stride,
                          padding=self.padding, dilation=self.dilation)


@dataclasses.dataclass(frozen=True)
class SeparableConv(KernelLayer):
    """Depthwise separable convolution layer (MobileNet; Keras' ``SeparableConv2D``):
    a depthwise convolution then a pointwise (1x1) one, over
    :func:`jaxconv.depthwise_separable_conv`.

    Parameters: ``{"w_depthwise": (in_features * depth_multiplier, 1, *kernel),
    "w_pointwise": (out_features, in_features * depth_multiplier, 1, ..., 1),
    "b": (out_features,)}``.

    Args:
      in_features, out_features, kernel, ndim, stride, padding, dilation: as
        for :class:`~jaxconv.nn.Conv` (stride, padding and dilation are the
        depthwise convolution's).
      depth_multiplier: depthwise output channels per input channel, >= 1.
      bias, w_init, b_init, dtype: as for :class:`~jaxconv.nn.Conv` (``w_init``
        draws both kernels).

    ``apply(params, x)``: ``x`` ``(N, in_features, *D)`` -> ``(N, out_features, *O)``.

    Example:
      >>> sorted(SeparableConv(3, 8, 3, depth_multiplier=2).param_shapes.items())
      [('b', (8,)), ('w_depthwise', (6, 1, 3, 3)), ('w_pointwise', (8, 6, 1, 1))]
    """

    _: dataclasses.KW_ONLY
    depth_multiplier: int = 1

    def __post_init__(self) -> None:
        fn = "nn.SeparableConv"
        _args.positive_int(fn, "depth_multiplier", self.depth_multiplier)
        self._validate(fn)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"w_depthwise", "w_pointwise", "b"}`` shapes (no ``"b"`` without ``bias``)."""
        k = self.kernel_tuple
        mid = self.in_features * self.depth_multiplier
        shapes = {"w_depthwise": (mid, 1) + k,
                  "w_pointwise": (self.out_features, mid) + (1,) * len(k)}
        if self.bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Fresh ``{"w_depthwise", "w_pointwise", "b"}``.

        Args:
          key: a JAX PRNG key.
        """
        _args.check_key("nn.SeparableConv.init", key)
        keys = jax.random.split(key, 3)
        return {name: (self.b_init if name == "b" else self.w_init)(k, shape, self.dtype)
                for k, (name, shape) in zip(keys, self.param_shapes.items())}

    def _op(self, x: ArrayLike, params: Params) -> jax.Array:
        return depthwise_separable_conv(
            x, params["w_depthwise"], params["w_pointwise"], params.get("b"),
            stride=self.stride, padding=self.padding, dilation=self.dilation)
