"""The layer protocol, parameter checks and ``count_params``.

A layer is a small frozen (immutable, hashable) dataclass holding only its
static configuration, validated when it is constructed (through the same
``jaxconv._src._args`` checks the ops use). It never holds parameters or any
other state:

* ``layer.init(key) -> params`` builds fresh parameters, a dict of arrays
  (``{"w": ..., "b": ...}``; ``{}`` for a layer without parameters);
* ``layer.apply(params, x) -> y`` is a pure function of its arguments, safe
  under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

Per-dim options follow the ops' rule: an int broadcasts to every spatial dim,
a sequence gives one value per dim. A layer's number of spatial dims comes
from its kernel / window tuple (or any other per-dim sequence it is given), or
from ``ndim=``; a parameter-free layer given only ints takes it from its input.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from .._src import _args
from .initializers import check_dtype

#: Parameters of one layer (``{"w": ..., "b": ...}``) or of a :class:`Sequential`.
Params = Mapping[str, Any]


def check_init(fn: str, name: str, f: object) -> None:
    if not callable(f):
        raise TypeError(
            f"jaxconv.nn.{fn}: {name} must be an initialiser init(key, shape, dtype); got {f!r}"
        )


def check_param_keys(fn: str, params: object, keys: Iterable[str],
                     what: str = "") -> Mapping[str, Any]:
    """``params`` must be a mapping with exactly ``keys`` (``what`` explains them);
    returns it."""
    keys = sorted(keys)
    if not isinstance(params, Mapping):
        raise TypeError(f"jaxconv.nn.{fn}: params must be a dict with keys {keys}; "
                        f"got {type(params).__name__}")
    if set(params) != set(keys):
        raise ValueError(f"jaxconv.nn.{fn}: params must have keys {keys}{what}; "
                         f"got keys {sorted(map(str, params))}")
    return params


def check_params(fn: str, params: object,
                 shapes: Mapping[str, tuple[int, ...]]) -> Mapping[str, Any]:
    """``params`` must be a mapping with exactly ``shapes``' keys and those shapes
    (``{}`` or None for a parameter-free layer); returns it (``{}`` for None)."""
    if not shapes:
        if params is None or (isinstance(params, Mapping) and not params):
            return {}
        got = (f"a dict with keys {sorted(map(str, params))}" if isinstance(params, Mapping)
               else type(params).__name__)
        raise ValueError(f"jaxconv.nn.{fn}: this layer has no parameters, so params must be "
                         f"{{}} or None; got {got}")
    params = check_param_keys(fn, params, shapes)
    for k, shape in shapes.items():
        got_shape = tuple(getattr(params[k], "shape", np.shape(params[k])))
        if got_shape != tuple(shape):
            raise ValueError(f"jaxconv.nn.{fn}: params[{k!r}] must have shape {tuple(shape)}; "
                             f"got shape {got_shape}")
    return params


def check_input_rank(fn: str, x: jax.Array, ndim: int | None) -> None:
    """``x`` must be ``(N, C, *spatial)`` with the layer's ``ndim`` spatial dims."""
    nd = _args.check_batched(f"nn.{fn}", "x", tuple(x.shape))
    if ndim is not None and nd != ndim:
        raise ValueError(f"jaxconv.nn.{fn}: x must have {ndim} spatial dims (the layer's "
                         f"ndim); got x.shape={tuple(x.shape)}")


def frozen_tuple(v: Any) -> Any:
    """Lists (unhashable) to tuples, recursively; other values unchanged."""
    if isinstance(v, (list, tuple)):
        return tuple(frozen_tuple(e) for e in v)
    return v


def count_params(params: Any) -> int:
    """Total number of scalar parameters in a pytree.

    Args:
      params: any pytree of arrays (or of ``jax.ShapeDtypeStruct``, e.g. from
        ``jax.eval_shape(model.init, key)``).

    Returns:
      The sum of the sizes of all leaves, as a Python int.

    Raises:
      TypeError: if a leaf is not array-like.

    Example:
      >>> import jax.numpy as jnp
      >>> count_params({"conv": {"w": jnp.zeros((6, 1, 5, 5)), "b": jnp.zeros(6)}})
      156
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


class Layer:
    """Base class of the layers: static configuration only, no state.

    Subclasses are frozen dataclasses implementing :meth:`apply` (and
    :meth:`init` when they have parameters); ``has_params`` says whether
    :meth:`init` returns a non-empty dict.

    Example:
      >>> import dataclasses, jax, jax.numpy as jnp
      >>> @dataclasses.dataclass(frozen=True)
      ... class Double(Layer):
      ...     def apply(self, params, x):
      ...         return 2 * jnp.asarray(x)
      >>> layer = Double()
      >>> layer.init(jax.random.key(0)), layer.apply({}, jnp.ones(2))
      ({}, Array([2., 2.], dtype=float32))
    """

    has_params: ClassVar[bool] = False

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Fresh parameters: a dict of arrays (``{}`` for a parameter-free layer).

        Args:
          key: a JAX PRNG key.
        """
        _args.check_key(f"nn.{type(self).__name__}.init", key)
        return {}

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:  # pragma: no cover
        """Applies the layer: a pure function of ``params`` and ``x``."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...],
                     dtype: DTypeLike = jnp.float32) -> tuple[int, ...]:
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

    def __call__(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """Same as :meth:`apply`."""
        return self.apply(params, x)


class WeightBias(Layer):
    """A layer with parameters ``{"w", "b"}`` drawn by ``w_init`` / ``b_init``
    (``b`` only when ``bias``); subclasses define ``param_shapes``."""

    has_params: ClassVar[bool] = True
    bias: bool
    w_init: Callable[..., jax.Array]
    b_init: Callable[..., jax.Array]
    dtype: DTypeLike

    out_features: int

    @property
    def w_shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        """The shape of ``w``."""
        raise NotImplementedError

    @property
    def b_shape(self) -> tuple[int, ...]:
        """The shape of ``b``: ``(out_features,)``."""
        return (self.out_features,)

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{"w": w_shape, "b": b_shape}`` (no ``"b"`` without ``bias``)."""
        shapes = {"w": self.w_shape}
        if self.bias:
            shapes["b"] = self.b_shape
        return shapes

    def _check_common(self, fn: str) -> None:
        """The options every weight-and-bias layer has."""
        _args.check_bool(fn, "bias", self.bias)
        check_init(fn, "w_init", self.w_init)
        check_init(fn, "b_init", self.b_init)
        check_dtype(fn, self.dtype)

    def init(self, key: jax.Array) -> dict[str, jax.Array]:
        """Fresh ``{"w", "b"}`` from ``w_init`` and ``b_init`` (shapes: ``param_shapes``).

        Args:
          key: a JAX PRNG key.
        """
        _args.check_key(f"nn.{type(self).__name__}.init", key)
        kw, kb = jax.random.split(key)
        shapes = self.param_shapes
        params = {"w": self.w_init(kw, shapes["w"], self.dtype)}
        if self.bias:
            params["b"] = self.b_init(kb, shapes["b"], self.dtype)
        return params
