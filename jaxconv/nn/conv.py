"""Convolution layers: :class:`Conv` and :class:`ConvTranspose`.

Parameters follow PyTorch's layout: a conv kernel is ``(out_features,
in_features // groups, *kernel)``, a transposed-conv kernel ``(in_features,
out_features // groups, *kernel)``; the bias is ``(out_features,)``. Channels
are called features here as in :class:`~jaxconv.nn.Dense` (a channel is one
feature map).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, cast

import jax
from jax.typing import ArrayLike, DTypeLike

from .._src import _args
from .._src.conv import conv as _conv
from .._src.conv import conv_transpose as _conv_transpose
from . import initializers as _inits
from .base import Params, WeightBias, check_params, frozen_tuple


@dataclasses.dataclass(frozen=True)
class KernelLayer(WeightBias):
    """The fields, validation and parameters of a layer with a ``kernel`` sliding
    over its input (the conv layers here, the layers of :mod:`jaxconv.nn.local`)."""

    in_features: int
    out_features: int
    kernel: int | tuple[int, ...]
    _: dataclasses.KW_ONLY
    ndim: int | None = None
    stride: int | tuple[int, ...] = 1
    padding: _args.PaddingOption = 0
    dilation: int | tuple[int, ...] = 1
    bias: bool = True
    w_init: Callable[..., jax.Array] = _inits.glorot_uniform
    b_init: Callable[..., jax.Array] = _inits.zeros
    dtype: DTypeLike = "float32"

    def _validate(self, fn: str, **per_dim: tuple[Any, int]) -> None:
        """Validates every option and stores the normalised values; ``per_dim`` are the
        subclass's other per-dim options, ``name=(value, minimum)``.

        The number of spatial dims is ``len(kernel)`` (or of any other per-dim
        sequence), else ``ndim``, else 2 (an int kernel is square).
        """
        _args.positive_int(fn, "in_features", self.in_features)
        _args.positive_int(fn, "out_features", self.out_features)
        options = {"kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                   "dilation": self.dilation, **{k: v for k, (v, _) in per_dim.items()}}
        nd = _args.spatial_rank(fn, self.ndim, **options) or 2
        if not (_args.is_int(self.kernel) or isinstance(self.kernel, (tuple, list))):
            raise TypeError(f"jaxconv.{fn}: kernel must be an int or a tuple of 1-3 ints; "
                            f"got {self.kernel!r}")
        values: dict[str, Any] = {"ndim": nd, "padding": _args.padding_pairs(fn, self.padding, nd)}
        for name, (value, minimum) in {"kernel": (self.kernel, 1), "stride": (self.stride, 1),
                                       "dilation": (self.dilation, 1), **per_dim}.items():
            values[name] = _args.int_tuple(fn, name, value, nd, minimum=minimum)
        for name, v in values.items():
            object.__setattr__(self, name, frozen_tuple(v))
        self._check_common(fn)

    @property
    def kernel_tuple(self) -> tuple[int, ...]:
        """``kernel`` (a tuple once the layer is constructed)."""
        return cast(tuple[int, ...], self.kernel)

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """Applies the layer's op (named in the class docstring) to ``x``.

        Args:
          params: as returned by :meth:`init` (checked against :attr:`param_shapes`).
          x: ``(N, in_features, *D)`` with ``ndim`` spatial dims.
        """
        params = check_params(f"{type(self).__name__}.apply", params, self.param_shapes)
        return self._op(x, params)

    def _op(self, x: ArrayLike, params: Params) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class _ConvLayer(KernelLayer):
    """What :class:`Conv` and :class:`ConvTranspose` add: groups, method, precision."""

    _: dataclasses.KW_ONLY
    groups: int = 1
    method: str | Mapping[str, str] = "auto"
    precision: jax.lax.Precision | str | None = None

    #: Options passed to the op only when they differ from these defaults.
    _OP_DEFAULTS = {"method": "auto", "precision": None}

    def _validate(self, fn: str, **per_dim: tuple[Any, int]) -> None:
        super()._validate(fn, **per_dim)
        for name, v in (
            ("groups", _args.check_groups(
                fn, self.groups, self.in_features, self.out_features,
                f"in_features={self.in_features}, out_features={self.out_features}")),
            ("method", _args.conv_method(fn, self.method)),
            ("precision", _args.precision_arg(fn, self.precision)),
        ):
            object.__setattr__(self, name, v)

    def _w_shape(self, c_first: int, c_second: int) -> tuple[int, ...]:
        return (c_first, c_second // self.groups) + self.kernel_tuple

    def _op_kwargs(self) -> dict[str, Any]:
        """The options that differ from the op's defaults (a mapping method as a dict)."""
        out = {}
        for name, default in self._OP_DEFAULTS.items():
            v = getattr(self, name)
            if v != default:
                out[name] = dict(v) if name == "method" and isinstance(v, tuple) else v
        return out


@dataclasses.dataclass(frozen=True)
class Conv(_ConvLayer):
    """Convolution layer (cross-correlation, as in every ML library) over :func:`jaxconv.conv`.

    As PyTorch's ``nn.Conv1d/2d/3d``. Parameters: ``{"w": (out_features,
    in_features // groups, *kernel), "b": (out_features,)}`` (no ``"b"`` when
    ``bias=False``).

    Args:
      in_features: input channels ``C_in``.
      out_features: output channels ``C_out``.
      kernel: an int or a tuple of 1-3 ints (one per spatial dim).
      ndim: number of spatial dims; default: the length of ``kernel`` (or of any
        other per-dim sequence given), or 2 when every option is an int.
      stride, padding, dilation, groups: as in :func:`jaxconv.conv` (an int
        broadcasts to every spatial dim).
      padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``
        (passed to the op only when not ``"zeros"``).
      method: the algorithm, ``"auto"`` or a name, or a mapping from map name to
        one (passed to the op only when not ``"auto"``).
      precision: None or a ``jax.lax.Precision`` (passed on only when not None).
      bias: whether to add a learned per-channel bias.
      w_init: initialiser for ``w`` (default :func:`~jaxconv.nn.glorot_uniform`).
      b_init: initialiser for ``b`` (default :func:`~jaxconv.nn.zeros`).
      dtype: parameter dtype.

    ``apply(params, x)``: ``x`` ``(N, in_features, *D)`` -> ``(N, out_features, *O)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> layer = Conv(3, 8, 3, padding=1)
      >>> params = layer.init(jax.random.key(0))
      >>> params["w"].shape, layer.apply(params, jnp.ones((2, 3, 16, 16))).shape
      ((8, 3, 3, 3), (2, 8, 16, 16))
    """

    _: dataclasses.KW_ONLY
    padding_mode: str = "zeros"

    _OP_DEFAULTS = {"padding_mode": "zeros", "method": "auto", "precision": None}

    def __post_init__(self) -> None:
        _args.padding_mode("nn.Conv", self.padding_mode)
        self._validate("nn.Conv")

    @property
    def w_shape(self) -> tuple[int, ...]:
        """``(out_features, in_features // groups, *kernel)``."""
        return self._w_shape(self.out_features, self.in_features)

    def _op(self, x: ArrayLike, params: Params) -> jax.Array:
        return _conv(x, params["w"], params.get("b"), stride=self.stride, padding=self.padding,
                     dilation=self.dilation, groups=self.groups, **self._op_kwargs())


@dataclasses.dataclass(frozen=True)
class ConvTranspose(_ConvLayer):
    """Transposed convolution layer over :func:`jaxconv.conv_transpose`.

    As PyTorch's ``nn.ConvTranspose1d/2d/3d``: the adjoint of a :class:`Conv`
    (upsampling by ``stride``). Parameters: ``{"w": (in_features, out_features //
    groups, *kernel), "b": (out_features,)}``.

    Args:
      in_features: input channels ``C_in``.
      out_features: output channels ``C_out``.
      kernel: an int or a tuple of 1-3 ints.
      ndim: number of spatial dims (as for :class:`Conv`).
      stride, padding, output_padding, dilation, groups: as in
        :func:`jaxconv.conv_transpose`.
      method, precision: as for :class:`Conv` (passed on only when not the default).
      bias, w_init, b_init, dtype: as for :class:`Conv` (fans are computed on
        ``w``'s shape, as in PyTorch).

    ``apply(params, x)``: ``x`` ``(N, in_features, *D)`` -> ``(N, out_features, *O)``
    with ``O = (D - 1)*stride - lo - hi + dilation*(k - 1) + output_padding + 1``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> up = ConvTranspose(8, 4, 2, stride=2)
      >>> up.apply(up.init(jax.random.key(0)), jnp.ones((1, 8, 5, 5))).shape
      (1, 4, 10, 10)
    """

    _: dataclasses.KW_ONLY
    output_padding: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        fn = "nn.ConvTranspose"
        self._validate(fn, output_padding=(self.output_padding, 0))
        _args.check_output_padding(fn, self.output_padding, self.stride,  # type: ignore[arg-type]
                                   self.dilation)  # type: ignore[arg-type]

    @property
    def w_shape(self) -> tuple[int, ...]:
        """``(in_features, out_features // groups, *kernel)``."""
        return self._w_shape(self.in_features, self.out_features)

    def _op(self, x: ArrayLike, params: Params) -> jax.Array:
        return _conv_transpose(x, params["w"], params.get("b"), stride=self.stride,
                               padding=self.padding, output_padding=self.output_padding,
                               dilation=self.dilation, groups=self.groups, **self._op_kwargs())
