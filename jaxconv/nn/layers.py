"""Layers as pure ``init`` / ``apply`` pairs over nested-dict parameters.

A layer is a small frozen (immutable, hashable) dataclass holding only its
static configuration. It never holds parameters or any other state:

* ``layer.init(key) -> params`` builds fresh parameters, a dict of arrays
  (``{"w": ..., "b": ...}``; ``{}`` for a layer without parameters);
* ``layer.apply(params, x) -> y`` is a pure function of its arguments, safe
  under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

:func:`sequential` chains named layers; its parameters are a nested dict with
one entry per layer that has parameters, e.g.
``{"conv1": {"w": ..., "b": ...}, "fc1": {"w": ..., "b": ...}}``, so they are a
pytree that optax, ``jax.tree`` and checkpoints handle directly.

Layout is the library's: channels first, ``x`` is ``(N, C, *spatial)``, a
conv kernel is ``(C_out, C_in // groups, *k)``, a dense weight is
``(out_features, in_features)`` (PyTorch's ``nn.Linear`` layout).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .._src import _args
from .._src._args import is_int as _is_int
from .._src.conv import conv as _conv
from .._src.pool import avg_pool as _avg_pool
from .._src.pool import max_pool as _max_pool
from . import initializers as _inits

__all__ = [
    "AvgPool",
    "Conv",
    "Dense",
    "Flatten",
    "Layer",
    "MaxPool",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "count_params",
    "sequential",
]

Params = Mapping[str, Any]


def _init_weight_bias(layer: Any, fn: str, key: jax.Array) -> dict:
    """``{"w": w_init(...), "b": b_init(...)}`` for a layer with ``param_shapes``,
    ``w_init``, ``b_init``, ``bias`` and ``dtype`` (Conv, Dense)."""
    _check_key(fn, key)
    kw, kb = jax.random.split(key)
    shapes = layer.param_shapes
    params = {"w": layer.w_init(kw, shapes["w"], layer.dtype)}
    if layer.bias:
        params["b"] = layer.b_init(kb, shapes["b"], layer.dtype)
    return params


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _positive_int(fn: str, name: str, v: Any) -> int:
    if not _is_int(v):
        raise TypeError(f"jaxconv.nn.{fn}: {name} must be a positive int; got {v!r} of type "
                        f"{type(v).__name__}")
    if v < 1:
        raise ValueError(f"jaxconv.nn.{fn}: {name} must be a positive int; got {name}={v}")
    return int(v)


def _check_init(fn: str, name: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(
            f"jaxconv.nn.{fn}: {name} must be an initialiser init(key, shape, dtype); got {f!r}"
        )


def _check_bool(fn: str, name: str, v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"jaxconv.nn.{fn}: {name} must be a bool; got {v!r}")
    return bool(v)


def _check_key(fn: str, key: Any) -> None:
    if not isinstance(key, jax.Array):
        raise TypeError(
            f"jaxconv.nn.{fn}: key must be a jax PRNG key (jax.random.key(0) or "
            f"jax.random.PRNGKey(0)); got {type(key).__name__}"
        )


def _check_params(fn: str, params: Any, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """``params`` must be a mapping with exactly ``shapes``' keys and those shapes."""
    if not shapes:
        if params is None or (isinstance(params, Mapping) and not params):
            return
        raise ValueError(f"jaxconv.nn.{fn}: this layer has no parameters, so params must be "
                         f"{{}} or None; got {_describe(params)}")
    if not isinstance(params, Mapping):
        raise TypeError(f"jaxconv.nn.{fn}: params must be a dict with keys {sorted(shapes)}; "
                        f"got {type(params).__name__}")
    if set(params) != set(shapes):
        raise ValueError(f"jaxconv.nn.{fn}: params must have keys {sorted(shapes)}; "
                         f"got keys {sorted(map(str, params))}")
    for k, shape in shapes.items():
        got = tuple(getattr(params[k], "shape", np.shape(params[k])))
        if got != tuple(shape):
            raise ValueError(f"jaxconv.nn.{fn}: params[{k!r}] must have shape {tuple(shape)}; "
                             f"got shape {got}")


def _describe(params: Any) -> str:
    if isinstance(params, Mapping):
        return f"a dict with keys {sorted(map(str, params))}"
    return f"{type(params).__name__}"


def _as_input(fn: str, x: Any) -> jax.Array:
    if isinstance(x, jax.Array) or isinstance(x, np.ndarray):
        return jnp.asarray(x)
    try:
        return jnp.asarray(x)
    except TypeError:
        raise TypeError(f"jaxconv.nn.{fn}: x must be an array; got {type(x).__name__}") from None


def count_params(params: Any) -> int:
    """Total number of scalar parameters in a pytree.

    Args:
      params: any pytree of arrays (or of ``jax.ShapeDtypeStruct``, e.g. from
        ``jax.eval_shape(model.init, key)``).

    Returns:
      The sum of the sizes of all leaves, as a Python int.

    Raises:
      TypeError: if a leaf is not array-like.
    """
    total = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        shape = getattr(leaf, "shape", None)
        if shape is None:
            if isinstance(leaf, (numbers.Number, np.generic)):
                shape = ()
            else:
                raise TypeError(
                    f"jaxconv.nn.count_params: every leaf must be an array; got "
                    f"{type(leaf).__name__} at {jax.tree_util.keystr(path)}"
                )
        total += math.prod(shape)
    return int(total)


# --------------------------------------------------------------------------
# The layer protocol
# --------------------------------------------------------------------------


class Layer:
    """Base class of the layers: static configuration only, no state.

    Subclasses are frozen dataclasses implementing :meth:`init` and
    :meth:`apply`; ``has_params`` says whether :meth:`init` returns a
    non-empty dict.
    """

    has_params: ClassVar[bool] = False

    def init(self, key: jax.Array) -> dict:
        """Fresh parameters: a dict of arrays (``{}`` for a parameter-free layer).

        Args:
          key: a JAX PRNG key.
        """
        _check_key(type(self).__name__ + ".init", key)
        return {}

    def apply(self, params: Params, x: Any) -> jax.Array:  # pragma: no cover - abstract
        """Applies the layer: a pure function of ``params`` and ``x``."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...], dtype: Any = jnp.float32) -> tuple[int, ...]:
        """Shape of ``apply(params, x)`` for an ``x`` of ``input_shape``, without computing it.

        Args:
          input_shape: e.g. ``(N, C, H, W)``.
          dtype: dtype of the hypothetical input.

        Returns:
          The output shape (via ``jax.eval_shape``; nothing is computed). Raises
          the layer's own error if the input shape does not fit.
        """
        params = jax.eval_shape(self.init, jax.random.PRNGKey(0))
        out = jax.eval_shape(self.apply, params, jax.ShapeDtypeStruct(tuple(input_shape), dtype))
        return tuple(out.shape)

    def __call__(self, params: Params, x: Any) -> jax.Array:
        """Same as :meth:`apply`."""
        return self.apply(params, x)


# --------------------------------------------------------------------------
# Layers with parameters
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Conv(Layer):
    """Convolution layer (cross-correlation, as in every ML library) over :func:`jaxconv.conv`.

    Parameters: ``{"w": (c_out, c_in // groups, *kernel), "b": (c_out,)}``
    (no ``"b"`` when ``bias=False``).

    Args:
      c_in: input channels.
      c_out: output channels.
      kernel: an int (a square 2-d kernel) or a tuple of 1-3 ints, whose
        length fixes the number of spatial dims.
      stride, padding, dilation, groups: as in :func:`jaxconv.conv`.
      bias: whether to add a learned per-channel bias.
      w_init: initialiser for ``w`` (default :func:`~jaxconv.nn.glorot_uniform`).
      b_init: initialiser for ``b`` (default :func:`~jaxconv.nn.zeros`).
      dtype: parameter dtype.

    ``apply(params, x)``: ``x`` ``(N, c_in, *D)`` -> ``(N, c_out, *O)``.
    """

    c_in: int
    c_out: int
    kernel: Any
    _: dataclasses.KW_ONLY
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    bias: bool = True
    w_init: Callable = _inits.glorot_uniform
    b_init: Callable = _inits.zeros
    dtype: Any = jnp.float32

    has_params: ClassVar[bool] = True

    def __post_init__(self):
        fn = "Conv"
        _positive_int(fn, "c_in", self.c_in)
        _positive_int(fn, "c_out", self.c_out)
        k = self.kernel
        if _is_int(k):
            k = (k, k)
        if not isinstance(k, (tuple, list)) or not 1 <= len(k) <= 3:
            raise TypeError(f"jaxconv.nn.Conv: kernel must be an int or a tuple of 1-3 ints; "
                            f"got {self.kernel!r}")
        nd = len(k)
        k = _args.int_tuple("nn.Conv", "kernel", tuple(k), nd, minimum=1)
        stride = _args.int_tuple("nn.Conv", "stride", _tuple(self.stride), nd, minimum=1)
        dilation = _args.int_tuple("nn.Conv", "dilation", _tuple(self.dilation), nd, minimum=1)
        padding = _args.padding_pairs("nn.Conv", _tuple(self.padding), nd)
        groups = _positive_int(fn, "groups", self.groups)
        if self.c_in % groups or self.c_out % groups:
            raise ValueError(f"jaxconv.nn.Conv: groups must divide c_in and c_out; got "
                             f"groups={groups}, c_in={self.c_in}, c_out={self.c_out}")
        _check_bool(fn, "bias", self.bias)
        _check_init(fn, "w_init", self.w_init)
        _check_init(fn, "b_init", self.b_init)
        _inits._check_dtype(fn, self.dtype)
        for name, v in (("kernel", k), ("stride", stride), ("dilation", dilation),
                        ("padding", padding), ("groups", groups)):
            object.__setattr__(self, name, v)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"w": (c_out, c_in // groups, *kernel), "b": (c_out,)}``."""
        shapes = {"w": (self.c_out, self.c_in // self.groups) + tuple(self.kernel)}
        if self.bias:
            shapes["b"] = (self.c_out,)
        return shapes

    def init(self, key: jax.Array) -> dict:
        """Fresh ``{"w", "b"}`` from ``w_init`` and ``b_init``.

        Args:
          key: a JAX PRNG key.

        Returns:
          ``{"w": (c_out, c_in // groups, *kernel), "b": (c_out,)}``.
        """
        return _init_weight_bias(self, "Conv.init", key)

    def apply(self, params: Params, x: Any) -> jax.Array:
        """``conv(x, w, b, ...)``: ``(N, c_in, *D)`` -> ``(N, c_out, *O)``.

        Args:
          params: ``{"w", "b"}`` as returned by :meth:`init`.
          x: ``(N, c_in, *D)`` with ``len(kernel)`` spatial dims.
        """
        _check_params("Conv.apply", params, self.param_shapes)
        return _conv(x, params["w"], params.get("b"), stride=self.stride, padding=self.padding,
                     dilation=self.dilation, groups=self.groups)


def _tuple(v: Any) -> Any:
    """Lists (unhashable) to tuples, recursively; other values unchanged."""
    if isinstance(v, (list, tuple)):
        return tuple(_tuple(e) for e in v)
    return v


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Fully connected layer ``y = x @ w.T + b``.

    Parameters: ``{"w": (out_features, in_features), "b": (out_features,)}``
    (PyTorch's ``nn.Linear`` layout; no ``"b"`` when ``bias=False``).

    Args:
      in_features: size of ``x``'s last axis.
      out_features: size of ``y``'s last axis.
      bias: whether to add a learned bias.
      w_init: initialiser for ``w`` (default :func:`~jaxconv.nn.glorot_uniform`).
      b_init: initialiser for ``b`` (default :func:`~jaxconv.nn.zeros`).
      dtype: parameter dtype.

    ``apply(params, x)``: ``x`` ``(..., in_features)`` -> ``(..., out_features)``.
    """

    in_features: int
    out_features: int
    _: dataclasses.KW_ONLY
    bias: bool = True
    w_init: Callable = _inits.glorot_uniform
    b_init: Callable = _inits.zeros
    dtype: Any = jnp.float32

    has_params: ClassVar[bool] = True

    def __post_init__(self):
        fn = "Dense"
        _positive_int(fn, "in_features", self.in_features)
        _positive_int(fn, "out_features", self.out_features)
        _check_bool(fn, "bias", self.bias)
        _check_init(fn, "w_init", self.w_init)
        _check_init(fn, "b_init", self.b_init)
        _inits._check_dtype(fn, self.dtype)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"w": (out_features, in_features), "b": (out_features,)}``."""
        shapes = {"w": (self.out_features, self.in_features)}
        if self.bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def init(self, key: jax.Array) -> dict:
        """Fresh ``{"w": (out_features, in_features), "b": (out_features,)}``.

        Args:
          key: a JAX PRNG key.
        """
        return _init_weight_bias(self, "Dense.init", key)

    def apply(self, params: Params, x: Any) -> jax.Array:
        """``x @ w.T + b``: ``(..., in_features)`` -> ``(..., out_features)``.

        Args:
          params: ``{"w", "b"}`` as returned by :meth:`init`.
          x: ``(..., in_features)``, floating point.
        """
        _check_params("Dense.apply", params, self.param_shapes)
        x = _as_input("Dense.apply", x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            hint = " (flatten conv features first with Flatten())" if x.ndim > 2 else ""
            raise ValueError(
                f"jaxconv.nn.Dense.apply: x must be (..., in_features) with in_features="
                f"{self.in_features}; got x.shape={tuple(x.shape)}{hint}"
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"jaxconv.nn.Dense.apply: x must be floating point; got x.dtype={x.dtype}")
        w = params["w"]
        y = jnp.matmul(x, w.T.astype(x.dtype), precision=jax.lax.Precision.HIGHEST)
        if self.bias:
            y = y + params["b"].astype(x.dtype)
        return y


# --------------------------------------------------------------------------
# Parameter-free layers
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MaxPool(Layer):
    """Max pooling layer over :func:`jaxconv.max_pool` (no parameters).

    Args:
      window: an int or one int per spatial dim.
      stride: default ``window`` (non-overlapping).
      padding, dilation, ceil_mode: as in :func:`jaxconv.max_pool`.

    ``apply(params, x)``: ``x`` ``(N, C, *D)`` -> ``(N, C, *O)``; ``params`` is ``{}``.
    """

    window: Any
    _: dataclasses.KW_ONLY
    stride: Any = None
    padding: Any = 0
    dilation: Any = 1
    ceil_mode: bool = False

    def __post_init__(self):
        _check_window("MaxPool", self.window)
        _check_bool("MaxPool", "ceil_mode", self.ceil_mode)
        for name in ("window", "stride", "padding", "dilation"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))

    def apply(self, params: Params, x: Any) -> jax.Array:
        """``max_pool(x, window, ...)``.

        Args:
          params: ``{}`` (or None).
          x: ``(N, C, *D)``.
        """
        _check_params("MaxPool.apply", params, {})
        return _max_pool(x, self.window, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, ceil_mode=self.ceil_mode)


@dataclasses.dataclass(frozen=True)
class AvgPool(Layer):
    """Average pooling layer over :func:`jaxconv.avg_pool` (no parameters).

    Args:
      window: an int or one int per spatial dim.
      stride: default ``window`` (non-overlapping).
      padding, ceil_mode, count_include_pad, divisor: as in :func:`jaxconv.avg_pool`.

    ``apply(params, x)``: ``x`` ``(N, C, *D)`` -> ``(N, C, *O)``; ``params`` is ``{}``.
    """

    window: Any
    _: dataclasses.KW_ONLY
    stride: Any = None
    padding: Any = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor: Any = None

    def __post_init__(self):
        _check_window("AvgPool", self.window)
        _check_bool("AvgPool", "ceil_mode", self.ceil_mode)
        _check_bool("AvgPool", "count_include_pad", self.count_include_pad)
        for name in ("window", "stride", "padding"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))

    def apply(self, params: Params, x: Any) -> jax.Array:
        """``avg_pool(x, window, ...)``.

        Args:
          params: ``{}`` (or None).
          x: ``(N, C, *D)``.
        """
        _check_params("AvgPool.apply", params, {})
        return _avg_pool(x, self.window, stride=self.stride, padding=self.padding,
                        ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                        divisor=self.divisor)


def _check_window(fn: str, window: Any) -> None:
    ok = (_is_int(window) and window >= 1) or (
        isinstance(window, (tuple, list)) and 1 <= len(window) <= 3
        and all(_is_int(w) and w >= 1 for w in window)
    )
    if not ok:
        raise ValueError(f"jaxconv.nn.{fn}: window must be a positive int or a tuple of 1-3 "
                         f"positive ints; got {window!r}")


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Flattens every axis but the first: ``(N, *rest)`` -> ``(N, prod(rest))`` (no parameters)."""

    def apply(self, params: Params, x: Any) -> jax.Array:
        """``x.reshape(N, -1)``.

        Args:
          params: ``{}`` (or None).
          x: ``(N, *rest)`` with at least one axis.
        """
        _check_params("Flatten.apply", params, {})
        x = _as_input("Flatten.apply", x)
        if x.ndim < 1:
            raise ValueError("jaxconv.nn.Flatten.apply: x must have a batch axis; got a scalar "
                             "(x.shape=())")
        return x.reshape(x.shape[0], -1)


@dataclasses.dataclass(frozen=True)
class _Elementwise(Layer):
    _fn: ClassVar[Callable]

    def apply(self, params: Params, x: Any) -> jax.Array:
        """Applies the activation elementwise (any shape; ``params`` is ``{}``)."""
        name = type(self).__name__
        _check_params(f"{name}.apply", params, {})
        x = _as_input(f"{name}.apply", x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"jaxconv.nn.{name}.apply: x must be floating point; got x.dtype={x.dtype}")
        return type(self)._fn(x)


@dataclasses.dataclass(frozen=True)
class Tanh(_Elementwise):
    """Hyperbolic tangent activation layer (no parameters; any shape)."""

    _fn: ClassVar[Callable] = staticmethod(jnp.tanh)


@dataclasses.dataclass(frozen=True)
class Sigmoid(_Elementwise):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` activation layer (no parameters; any shape)."""

    _fn: ClassVar[Callable] = staticmethod(jax.nn.sigmoid)


@dataclasses.dataclass(frozen=True)
class ReLU(_Elementwise):
    """Rectified linear ``max(x, 0)`` activation layer (no parameters; any shape)."""

    _fn: ClassVar[Callable] = staticmethod(jax.nn.relu)


# --------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sequential(Layer):
    """Named layers applied in order; build it with :func:`sequential`.

    ``init(key)`` returns ``{name: layer_params}`` for every layer with
    parameters (parameter-free layers have no entry); ``apply(params, x)``
    feeds ``x`` through the layers in order.
    """

    layers: tuple[tuple[str, Layer], ...]

    @property
    def has_params(self) -> bool:  # type: ignore[override]
        return any(layer.has_params for _, layer in self.layers)

    @property
    def names(self) -> tuple[str, ...]:
        """The layer names, in order."""
        return tuple(name for name, _ in self.layers)

    def __getitem__(self, name: str) -> Layer:
        for n, layer in self.layers:
            if n == name:
                return layer
        raise KeyError(f"jaxconv.nn.Sequential: no layer named {name!r}; layers are {list(self.names)}")

    def init(self, key: jax.Array) -> dict:
        """Fresh parameters ``{name: layer.init(key_i)}`` for the layers with parameters.

        Args:
          key: a JAX PRNG key; layer ``i`` gets ``jax.random.fold_in(key, i)``,
            so adding a parameter-free layer does not change the others' draws
            at other positions.

        Returns:
          A nested dict of arrays.
        """
        _check_key("Sequential.init", key)
        return {
            name: layer.init(jax.random.fold_in(key, i))
            for i, (name, layer) in enumerate(self.layers)
            if layer.has_params
        }

    def apply(self, params: Params, x: Any) -> jax.Array:
        """Applies the layers in order.

        Args:
          params: ``{name: layer_params}`` as returned by :meth:`init`.
          x: the first layer's input.

        Returns:
          The last layer's output.
        """
        expected = [name for name, layer in self.layers if layer.has_params]
        if not isinstance(params, Mapping):
            raise TypeError(f"jaxconv.nn.Sequential.apply: params must be a dict with keys "
                            f"{expected}; got {type(params).__name__}")
        if set(params) != set(expected):
            raise ValueError(f"jaxconv.nn.Sequential.apply: params must have keys {sorted(expected)} "
                             f"(one per layer with parameters); got keys {sorted(map(str, params))}")
        for name, layer in self.layers:
            try:
                x = layer.apply(params[name] if layer.has_params else {}, x)
            except (ValueError, TypeError) as e:
                if hasattr(e, "add_note"):
                    e.add_note(f"  (in layer {name!r} of jaxconv.nn.Sequential: {layer!r})")
                raise
        return x

    def summary(self, input_shape: tuple[int, ...]) -> str:
        """A table of layer names, output shapes and parameter counts.

        Args:
          input_shape: shape of the input, e.g. ``(1, 1, 28, 28)``.

        Returns:
          A multi-line string (nothing is computed: shapes come from ``jax.eval_shape``).
        """
        params = jax.eval_shape(self.init, jax.random.PRNGKey(0))
        shape = tuple(input_shape)
        rows = [("input", str(shape), "")]
        for name, layer in self.layers:
            p = params.get(name, {})
            out = jax.eval_shape(layer.apply, p, jax.ShapeDtypeStruct(shape, jnp.float32))
            shape = tuple(out.shape)
            n = count_params(p)
            rows.append((f"{name} ({type(layer).__name__})", str(shape), f"{n:,}" if n else ""))
        rows.append(("total", "", f"{count_params(params):,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}".rstrip() for a, b, c in rows
        )


def sequential(*layers: Layer | tuple[str, Layer]) -> Sequential:
    """Chains layers into one :class:`Sequential` layer.

    Args:
      *layers: each a ``(name, layer)`` pair or a bare layer. A bare layer is
        named after its class and its position among layers of that class
        (``conv1``, ``conv2``, ``dense1``, ``maxpool1``, ``tanh1``, ...).

    Returns:
      A :class:`Sequential`, whose parameters are ``{name: layer_params}``.

    Raises:
      TypeError: an item is neither a layer nor a ``(str, layer)`` pair.
      ValueError: no layers, a duplicate name, or an empty name / one containing ``/``.

    Example::

        net = sequential(("conv1", Conv(1, 6, 5, padding=2)), ("act1", Tanh()),
                         ("flat", Flatten()), ("fc", Dense(6 * 28 * 28, 10)))
        params = net.init(jax.random.key(0))   # {"conv1": {"w", "b"}, "fc": {"w", "b"}}
        logits = net.apply(params, x)
    """
    if not layers:
        raise ValueError("jaxconv.nn.sequential: expected at least one layer; got none")
    named: list[tuple[str, Layer]] = []
    counters: dict[str, int] = {}
    for i, item in enumerate(layers):
        if isinstance(item, Layer):
            base = type(item).__name__.lower()
            counters[base] = counters.get(base, 0) + 1
            name, layer = f"{base}{counters[base]}", item
        elif (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], Layer)):
            name, layer = item
        else:
            raise TypeError(
                f"jaxconv.nn.sequential: layer {i} must be a jaxconv.nn layer or a (name, layer) "
                f"pair; got {item!r}"
            )
        if not name or "/" in name:
            raise ValueError(f"jaxconv.nn.sequential: layer names must be non-empty and contain no "
                             f"'/'; got {name!r} (layer {i})")
        if any(name == n for n, _ in named):
            raise ValueError(f"jaxconv.nn.sequential: duplicate layer name {name!r} (layer {i}); "
                             f"names so far {[n for n, _ in named]}")
        named.append((name, layer))
    return Sequential(tuple(named))
