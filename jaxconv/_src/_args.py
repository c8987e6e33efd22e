"""Argument normalisation and argument errors.

This is the one place that turns the user's ``stride`` / ``padding`` /
``dilation`` / ``window`` arguments into static, hashable tuples and raises
the errors a user sees; the size arithmetic it applies lives in
:mod:`~jaxconv._src.geometry`. Every op (and every ``jaxconv.nn`` layer, at
construction) validates here before it traces anything, so a bad argument
never reaches XLA.

Error messages follow one pattern: ``jaxconv.<fn>: <argument> <what was
expected>; got <what was received>``.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from . import geometry as _geo
from .geometry import ConvGeometry, Pair, PoolGeometry

# Static tables of a pool geometry, defined in geometry.py (re-exported for pool.py).
from .geometry import adaptive_bounds as adaptive_bounds
from .geometry import pool_divisor as pool_divisor
from .geometry import pool_padding_taps as pool_padding_taps
from .plan import normalize_method

PADDING_STRINGS = ("valid", "same", "full")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

#: A padding option: an int, one int or ``(lo, hi)`` pair per dim, or a string.
IntOrSeq = int | Sequence[int]
"""An int option: one int broadcast to every spatial dim, or one int per dim."""
PaddingOption = int | str | Sequence[int] | Sequence[tuple[int, int]]
"""A padding option: int, one int per dim, one (lo, hi) pair per dim, or a string."""


# --------------------------------------------------------------------------
# Scalars and per-dimension tuples
# --------------------------------------------------------------------------


def is_int(v: object) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is not a size)."""
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v: object) -> bool:
    return isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(
        v, (bool, np.bool_)
    )


def _as_int(fn: str, name: str, v: Any) -> int:
    if not is_int(v):
        raise TypeError(f"jaxconv.{fn}: {name} must be an integer; got {v!r} of type "
                        f"{type(v).__name__}")
    return operator.index(v)


def positive_int(fn: str, name: str, v: Any) -> int:
    """An int >= 1 (a channel count, ``groups``, a number of dims)."""
    if not is_int(v):
        raise TypeError(f"jaxconv.{fn}: {name} must be a positive int; got {v!r} of type "
                        f"{type(v).__name__}")
    if v < 1:
        raise ValueError(f"jaxconv.{fn}: {name} must be a positive int; got {name}={v}")
    return operator.index(v)


def check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"jaxconv.{fn}: {name} must be a bool; got {value!r} of type "
                        f"{type(value).__name__}")
    return bool(value)


def _from_numpy(value: Any) -> Any:
    """A NumPy array of per-dim values (``np.array([1, 2])``) as nested lists."""
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return value.tolist()
    return value


def _dims(ndim: int | None) -> str:
    return "ints (one per spatial dim)" if ndim is None else f"{ndim} ints"


def int_tuple(fn: str, name: str, value: Any, ndim: int, *, minimum: int) -> tuple[int, ...]:
    """An int (broadcast to every dim) or a sequence of ``ndim`` ints, each >= ``minimum``,
    as a tuple of ``ndim`` Python ints (``fn`` and ``name`` are for the error message)."""
    return cast(tuple[int, ...], int_option(fn, name, value, ndim, minimum=minimum))


def int_option(
    fn: str, name: str, value: Any, ndim: int | None, *, minimum: int
) -> int | tuple[int, ...]:
    """:func:`int_tuple` where the number of spatial dims may not be known yet
    (``ndim=None``, a layer whose rank comes from its input): an int is then
    validated and returned as an int, a sequence as a tuple of its length."""
    value = _from_numpy(value)
    if is_int(value):
        values: tuple[int, ...] = (operator.index(value),) * (1 if ndim is None else ndim)
    elif isinstance(value, (tuple, list)):
        if ndim is not None and len(value) != ndim:
            raise ValueError(f"jaxconv.{fn}: {name} must be an int or a sequence of {ndim} ints "
                             f"(one per spatial dim); got {value!r} of length {len(value)}")
        values = tuple(_as_int(fn, f"{name}[{i}]", v) for i, v in enumerate(value))
    else:
        raise TypeError(f"jaxconv.{fn}: {name} must be an int or a sequence of {_dims(ndim)}; got "
                        f"{value!r} of type {type(value).__name__}")
    for i, v in enumerate(values):
        if v < minimum:
            raise ValueError(f"jaxconv.{fn}: {name} must be >= {minimum} in every dim; got "
                             f"{name}={value!r} (dim {i} is {v})")
    return values[0] if ndim is None and is_int(value) else values


def padding_pairs(fn: str, padding: Any, ndim: int | None, *,
                  allow_strings: Sequence[str] = PADDING_STRINGS) -> tuple[Pair, ...] | str | int:
    """Normalises a padding argument: an int (both sides of every dim), ``ndim`` ints
    (both sides of each dim) or ``(lo, hi)`` pairs, to ``ndim`` ``(lo, hi)`` pairs; or
    one of ``allow_strings``, returned lower-cased for :func:`resolve_padding`. With
    ``ndim=None`` (rank not known yet) an int padding stays an int."""
    padding = _from_numpy(padding)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in allow_strings:
            raise ValueError(f"jaxconv.{fn}: padding must be an int, a sequence of ints or (lo, "
                             f"hi) pairs, or one of {', '.join(repr(s) for s in allow_strings)}; "
                             f"got {padding!r}")
        return mode
    if is_int(padding):
        pairs: tuple[Pair, ...] = ((operator.index(padding),) * 2,) * (ndim or 1)
    elif isinstance(padding, (tuple, list)):
        if ndim is not None and len(padding) != ndim:
            raise ValueError(f"jaxconv.{fn}: padding must give one entry per spatial dim ({ndim}); "
                             f"got {padding!r} of length {len(padding)}")
        out = []
        for i, p in enumerate(padding):
            if is_int(p):
                out.append((operator.index(p),) * 2)
            elif isinstance(p, (tuple, list)) and len(p) == 2:
                out.append(
                    (_as_int(fn, f"padding[{i}][0]", p[0]), _as_int(fn, f"padding[{i}][1]", p[1]))
                )
            else:
                raise TypeError(f"jaxconv.{fn}: padding[{i}] must be an int or a (lo, hi) pair of "
                                f"ints; got {p!r}")
        pairs = tuple(out)
    else:
        raise TypeError(f"jaxconv.{fn}: padding must be an int, a sequence of ints or (lo, hi) "
                        f"pairs, or a string; got {padding!r} of type {type(padding).__name__}")
    for i, (lo, hi) in enumerate(pairs):
        if lo < 0 or hi < 0:
            raise ValueError(f"jaxconv.{fn}: padding must be non-negative; got padding={padding!r} "
                             f"(dim {i} is ({lo}, {hi}))")
    if ndim is None and is_int(padding):
        return operator.index(padding)
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def resolve_padding(pads: tuple[Pair, ...] | str, in_spatial: Sequence[int], k_eff: Sequence[int],
                    stride: Sequence[int]) -> tuple[Pair, ...]:
    """The one padding-string resolver: explicit ``(lo, hi)`` pairs as they are,
    a string (from :func:`padding_pairs`) as the pairs it means for this input,
    dilated kernel and stride (:func:`~jaxconv._src.geometry.mode_pads`)."""
    if isinstance(pads, str):
        return tuple(_geo.mode_pads(pads, n, ke, s) for n, ke, s in zip(in_spatial, k_eff, stride))
    return pads


def spatial_rank(fn: str, ndim: Any, **options: Any) -> int | None:
    """The number of spatial dims a layer's options fix, or None: ``ndim`` (if given) and
    the length of every sequence among ``options`` must agree; ints and strings fit any."""
    known: dict[str, int] = {}
    if ndim is not None:
        known["ndim"] = positive_int(fn, "ndim", ndim)
        if known["ndim"] > 3:
            raise ValueError(f"jaxconv.{fn}: ndim must be 1, 2 or 3; got ndim={ndim}")
    for name, value in options.items():
        value = _from_numpy(value)
        if isinstance(value, (tuple, list)):
            if not 1 <= len(value) <= 3:
                raise ValueError(f"jaxconv.{fn}: {name} must be an int or a sequence of 1-3 ints "
                                 f"(one per spatial dim); got {value!r}")
            known[name] = len(value)
    if len(set(known.values())) > 1:
        got = ", ".join(f"{k}={options.get(k, ndim)!r}" for k in known)
        raise ValueError(f"jaxconv.{fn}: the per-dim options must agree on the number of spatial "
                         f"dims; got {got}")
    return next(iter(known.values()), None)


# --------------------------------------------------------------------------
# Arrays, keys, strings
# --------------------------------------------------------------------------


def as_array(fn: str, name: str, a: Any) -> jax.Array:
    """Converts an array-like to a JAX array, with a clear error for non-arrays."""
    if a is None:
        raise TypeError(f"jaxconv.{fn}: {name} must be an array; got None")
    try:
        arr = jnp.asarray(a)
    except TypeError as e:
        raise TypeError(f"jaxconv.{fn}: {name} must be an array; got {type(a).__name__} "
                        f"({e})") from None
    return arr


def check_key(fn: str, key: Any) -> None:
    """``key`` must be a JAX PRNG key (a ``jax.Array``)."""
    if not isinstance(key, jax.Array):
        raise TypeError(f"jaxconv.{fn}: key must be a jax PRNG key (jax.random.key(0) or "
                        f"jax.random.PRNGKey(0)); got {type(key).__name__}")


def check_floating(fn: str, **arrays: Any) -> None:
    """Every array must be floating point and all must share one dtype."""
    dtypes = {}
    for name, a in arrays.items():
        if a is None:
            continue
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"jaxconv.{fn}: {name} must have a floating-point dtype; got "
                            f"{name}.dtype={a.dtype}")
        dtypes[name] = a.dtype
    if len(set(dtypes.values())) > 1:
        got = ", ".join(f"{k}.dtype={v}" for k, v in dtypes.items())
        raise TypeError(f"jaxconv.{fn}: {', '.join(dtypes)} must share one dtype; got {got}")


def check_batched(fn: str, name: str, shape: tuple[int, ...], what: str = "(N, C, *spatial)") -> int:
    """Checks a ``(N, C, *spatial)`` shape with 1-3 spatial dims; returns ``len(spatial)``."""
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"jaxconv.{fn}: {name} must be {what} with 1, 2 or 3 spatial dims (rank "
                         f"3, 4 or 5); got {name}.shape={tuple(shape)} (rank {len(shape)})")
    if any(d < 1 for d in shape[1:]):
        raise ValueError(f"jaxconv.{fn}: {name} must have non-empty channel and spatial dims; got "
                         f"{name}.shape={tuple(shape)}")
    return len(shape) - 2


def padding_mode(fn: str, mode: Any) -> str:
    """``padding_mode``: one of ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"``."""
    if not isinstance(mode, str) or mode not in PADDING_MODES:
        raise ValueError(f"jaxconv.{fn}: padding_mode must be one of "
                         f"{', '.join(map(repr, PADDING_MODES))}; got {mode!r}")
    return mode


def conv_method(fn: str, method: Any) -> str | tuple[tuple[str, str], ...]:
    """``method``: an algorithm name (``"auto"``, ``"xla"``, ...) or a mapping from map
    name (``"forward"``, ``"input_grad"``, ``"weight_grad"``) to one; returned hashable.
    Which names exist is the plan's business: its check runs too."""
    if isinstance(method, str):
        normalize_method(fn, method)
        return method
    if isinstance(method, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in method.items()
    ):
        normalize_method(fn, method)
        return tuple(sorted(method.items()))
    raise TypeError(f"jaxconv.{fn}: method must be an algorithm name or a mapping from map name to "
                    f"algorithm name; got {method!r}")


def precision_arg(fn: str, precision: Any) -> jax.lax.Precision | None:
    """``precision``: None (JAX's default), a ``jax.lax.Precision`` or its name
    (``"highest"``, ...); returned as a ``jax.lax.Precision`` or None."""
    if precision is None or isinstance(precision, jax.lax.Precision):
        return precision
    if isinstance(precision, str):
        try:
            return jax.lax.Precision(precision.lower())
        except ValueError:
            names = ", ".join(repr(p.name.lower()) for p in jax.lax.Precision)
            raise ValueError(f"jaxconv.{fn}: precision must be None, a jax.lax.Precision or one "
                             f"of {names}; got {precision!r}") from None
    raise TypeError(f"jaxconv.{fn}: precision must be None, a jax.lax.Precision or a string; "
                    f"got {precision!r} of type {type(precision).__name__}")


# --------------------------------------------------------------------------
# Convolution geometry
# --------------------------------------------------------------------------


def check_groups(fn: str, groups: Any, c_in: int, c_out: int, context: str) -> int:
    """``groups`` >= 1 dividing both channel counts; ``context`` ends the message
    (the shapes, or a layer's channel arguments)."""
    groups = _as_int(fn, "groups", groups)
    if groups < 1:
        raise ValueError(f"jaxconv.{fn}: groups must be >= 1; got groups={groups}")
    if c_in % groups:
        raise ValueError(f"jaxconv.{fn}: groups must divide the input channels; got "
                         f"groups={groups} and C_in={c_in}; {context}")
    if c_out % groups:
        raise ValueError(f"jaxconv.{fn}: groups must divide the output channels; got "
                         f"groups={groups} and C_out={c_out}; {context}")
    return groups


def _check_bias(fn: str, b_shape: Sequence[int] | None, c_out: int) -> None:
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"jaxconv.{fn}: b must have shape (C_out,) = ({c_out},); got "
                         f"b.shape={tuple(b_shape)}")


def _check_kernel(fn: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...], layout: str) -> int:
    nd = check_batched(fn, "x", x_shape, "(N, C_in, *spatial)")
    if len(w_shape) != nd + 2:
        raise ValueError(f"jaxconv.{fn}: w must be {layout} with {nd} kernel dims to match x; got "
                         f"w.shape={tuple(w_shape)} (rank {len(w_shape)}) and "
                         f"x.shape={tuple(x_shape)} (rank {len(x_shape)})")
    if any(d < 1 for d in w_shape):
        raise ValueError(f"jaxconv.{fn}: w must have no empty dims; got w.shape={tuple(w_shape)}")
    return nd


def conv_geometry(fn: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                  b_shape: tuple[int, ...] | None, *, stride: Any, padding: Any, dilation: Any,
                  groups: Any) -> ConvGeometry:
    """Validates the arguments of ``conv`` and returns its geometry.

    ``x`` is ``(N, C_in, *D)``, ``w`` is ``(C_out, C_in // groups, *k)``,
    ``b`` is ``(C_out,)`` or None.
    """
    _check_kernel(fn, x_shape, w_shape, "(C_out, C_in // groups, *kernel)")
    shapes = f"x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}"
    c_in, c_out = x_shape[1], w_shape[0]
    groups = check_groups(fn, groups, c_in, c_out, shapes)
    if w_shape[1] != c_in // groups:
        raise ValueError(f"jaxconv.{fn}: x has {c_in} channels but w expects {w_shape[1] * groups} "
                         f"(C_in // groups = {w_shape[1]}, groups = {groups}); {shapes}")
    _check_bias(fn, b_shape, c_out)
    return sliding_geometry(fn, tuple(x_shape[2:]), tuple(w_shape[2:]), stride=stride,
                            padding=padding, dilation=dilation, groups=groups,
                            context=f"; {shapes}")


def sliding_geometry(fn: str, in_spatial: tuple[int, ...], kernel: tuple[int, ...], *,
                     stride: Any, padding: Any, dilation: Any, groups: int = 1,
                     what: str = "kernel", context: str = "") -> ConvGeometry:
    """Validates stride / padding / dilation of sliding ``kernel`` (already
    checked) over ``in_spatial`` and returns the geometry (conv, unfold, local ops).

    ``what`` names the kernel in the error ("kernel" or "window"); ``context``
    is appended to it (e.g. the shapes).
    """
    nd = len(in_spatial)
    stride = int_tuple(fn, "stride", stride, nd, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, nd, minimum=1)
    k_eff = tuple(map(_geo.k_eff, kernel, dilation))
    mode = padding_pairs(fn, padding, nd)  # not an int: nd is given
    pads = resolve_padding(mode, in_spatial, k_eff, stride)  # type: ignore[arg-type]
    out = tuple(
        _geo.window_output_size(n, ke, s, lo, hi)
        for n, ke, s, (lo, hi) in zip(in_spatial, k_eff, stride, pads)
    )
    if any(o < 1 for o in out):
        raise ValueError(f"jaxconv.{fn}: the (dilated) {what} is larger than the padded input: "
                         f"expected dilation*(k-1)+1 <= D+lo+hi in every dim; got {what} "
                         f"{kernel} (dilated {k_eff}), input {in_spatial}, padding {pads}"
                         f"{context}")
    return ConvGeometry(in_spatial=in_spatial, kernel=kernel, out_spatial=out, stride=stride,
                        padding=pads, dilation=dilation, groups=groups)


def check_output_padding(fn: str, output_padding: tuple[int, ...], stride: tuple[int, ...],
                         dilation: tuple[int, ...]) -> None:
    """PyTorch's rule: ``output_padding < max(stride, dilation)`` in every dim."""
    for i, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if op >= max(s, d):
            raise ValueError(f"jaxconv.{fn}: output_padding must be smaller than stride or "
                             f"dilation in every dim; got output_padding={output_padding}, "
                             f"stride={stride}, dilation={dilation} (dim {i})")


def conv_transpose_geometry(fn: str, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                            b_shape: tuple[int, ...] | None, *, stride: Any, padding: Any,
                            output_padding: Any, dilation: Any, groups: Any) -> ConvGeometry:
    """Validates the arguments of ``conv_transpose``; returns the geometry of the
    forward convolution whose adjoint it is (so ``out_spatial`` is x's spatial
    size and ``in_spatial`` the transposed convolution's output size).

    ``x`` is ``(N, C_in, *D)``, ``w`` is ``(C_in, C_out // groups, *k)``.
    Output size per dim: ``(D - 1)*stride - lo - hi + dilation*(k - 1) +
    output_padding + 1``.
    """
    nd = _check_kernel(fn, x_shape, w_shape, "(C_in, C_out // groups, *kernel)")
    shapes = f"x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}"
    c_in = x_shape[1]
    if w_shape[0] != c_in:
        raise ValueError(f"jaxconv.{fn}: x has {c_in} channels but w expects {w_shape[0]} (w is "
                         f"(C_in, C_out // groups, *k)); {shapes}")
    # C_out = w_shape[1] * groups is a multiple of groups whatever groups is.
    groups = check_groups(fn, groups, c_in, 0, shapes)
    c_out = w_shape[1] * groups
    _check_bias(fn, b_shape, c_out)
    stride = int_tuple(fn, "stride", stride, nd, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, nd, minimum=1)
    output_padding = int_tuple(fn, "output_padding", output_padding, nd, minimum=0)
    check_output_padding(fn, output_padding, stride, dilation)
    O, k = tuple(x_shape[2:]), tuple(w_shape[2:])
    k_eff = tuple(map(_geo.k_eff, k, dilation))
    mode = padding_pairs(fn, padding, nd)
    if mode == "same":
        # The adjoint of a "same" conv whose input was O * stride long.
        if any(output_padding):
            raise ValueError(f"jaxconv.{fn}: padding='same' fixes the output size at D * stride, "
                             f"so output_padding must be 0; got output_padding={output_padding}")
        D = tuple(o * s for o, s in zip(O, stride))
        pads = resolve_padding(mode, D, k_eff, stride)
    else:
        pads = resolve_padding(mode, O, k_eff, stride)  # type: ignore[arg-type]  # not "same"
        D = tuple(
            _geo.transpose_output_size(o, ke, s, lo, hi, op)
            for o, ke, s, (lo, hi), op in zip(O, k_eff, stride, pads, output_padding)
        )
    if any(n < 1 for n in D):
        raise ValueError(f"jaxconv.{fn}: the padding removes the whole output: expected "
                         "(D-1)*stride - lo - hi + dilation*(k-1) + output_padding + 1 >= 1 in "
                         f"every dim; got output size {D} from {shapes}, padding={pads}")
    return ConvGeometry(in_spatial=D, kernel=k, out_spatial=O, stride=stride, padding=pads,
                        dilation=dilation, groups=groups)


# --------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------


def pool_options(fn: str, window: Any, *, stride: Any, padding: Any, dilation: Any = 1,
                 ceil_mode: Any = False, ndim: int | None) -> tuple[Any, Any, Any, Any, bool]:
    """Validates a pool's options without an input: the checks ``pool_geometry``
    and the ``nn`` pool layers (at construction) share.

    Returns:
      ``(window, stride, padding, dilation, ceil_mode)`` normalised as
      :func:`int_option` / :func:`padding_pairs` do for ``ndim`` (``stride``
      None stays None: it defaults to the window).
    """
    window = int_option(fn, "window", window, ndim, minimum=1)
    if stride is not None:
        stride = int_option(fn, "stride", stride, ndim, minimum=1)
    dilation = int_option(fn, "dilation", dilation, ndim, minimum=1)
    ceil_mode = check_bool(fn, "ceil_mode", ceil_mode)
    pads = padding_pairs(fn, padding, ndim, allow_strings=("valid", "same"))
    if not isinstance(pads, str):
        # With ndim=None (rank not fixed yet) both are ints; otherwise both are tuples.
        wins = (window,) if isinstance(window, int) else window
        pairs = ((pads, pads),) if isinstance(pads, int) else pads
        for i, ((lo, hi), k) in enumerate(zip(pairs, wins)):
            if lo > k // 2 or hi > k // 2:
                raise ValueError(f"jaxconv.{fn}: padding must be at most half the window on each "
                                 "side (padding <= window // 2, as in PyTorch); got "
                                 f"padding={padding!r} and window={window} (dim {i})")
    return window, stride, pads, dilation, ceil_mode


def pool_geometry(fn: str, x_shape: tuple[int, ...], window: Any, *, stride: Any, padding: Any,
                  dilation: Any = 1, ceil_mode: Any = False) -> PoolGeometry:
    """Validates pooling arguments (PyTorch semantics) and returns the geometry.

    Output size per dim: :func:`~jaxconv._src.geometry.pool_output_size`.
    Explicit padding may be at most half the window on each side (PyTorch's
    rule); ``"same"`` computes it and ``"valid"`` is zero.
    """
    nd = check_batched(fn, "x", x_shape)
    window, stride, pads, dilation, ceil_mode = pool_options(
        fn, window, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
        ndim=nd)
    stride = window if stride is None else stride
    D = tuple(x_shape[2:])
    k_eff = tuple(map(_geo.k_eff, window, dilation))
    pads = resolve_padding(pads, D, k_eff, stride)
    out, extra = [], []
    for n, ke, s, (lo, hi) in zip(D, k_eff, stride, pads):
        if n + lo + hi < ke:
            raise ValueError(f"jaxconv.{fn}: the (dilated) window is larger than the padded input: "
                             "expected dilation*(window-1)+1 <= D+lo+hi in every dim; got window "
                             f"{window} (dilated {k_eff}), padding {pads}, "
                             f"x.shape={tuple(x_shape)}")
        o, e = _geo.pool_output_size(n, ke, s, lo, hi, ceil_mode)
        out.append(o)
        extra.append(e)
    return PoolGeometry(in_spatial=D, window=window, out_spatial=tuple(out), stride=stride,
                        padding=pads, dilation=dilation, ceil_mode=ceil_mode,
                        extra_hi=tuple(extra))


def pool_norm(fn: str, p: Any) -> float:
    """The ``p`` of an Lp pool: a finite real number > 0."""
    if not _is_real(p):
        raise TypeError(f"jaxconv.{fn}: p must be a real number > 0; got {p!r} of type "
                        f"{type(p).__name__}")
    p = float(p)
    if not (np.isfinite(p) and p > 0):
        raise ValueError(f"jaxconv.{fn}: p must be a finite number > 0; got p={p!r}")
    return p


def pool_divisor_arg(fn: str, divisor: Any) -> int | None:
    """``divisor`` (PyTorch's ``divisor_override``): None or an int >= 1."""
    if divisor is None:
        return None
    d = _as_int(fn, "divisor", divisor)
    if d < 1:
        raise ValueError(f"jaxconv.{fn}: divisor must be >= 1 (or None); got divisor={d}")
    return d


def output_size_option(fn: str, output_size: Any, ndim: int | None) -> Any:
    """Adaptive pools' ``output_size`` before an input is seen: an int >= 1, or one
    int >= 1 or None (keep the input's size) per dim; returned as an int or a tuple."""
    output_size = _from_numpy(output_size)
    if isinstance(output_size, (tuple, list)):
        if ndim is not None and len(output_size) != ndim:
            raise ValueError(f"jaxconv.{fn}: output_size must be an int or a sequence of {ndim} "
                             f"ints or None (one per spatial dim); got {output_size!r} of length "
                             f"{len(output_size)}")
        out: Any = tuple(
            None if v is None else _as_int(fn, f"output_size[{i}]", v)
            for i, v in enumerate(output_size)
        )
    elif is_int(output_size):
        out = operator.index(output_size)
    else:
        raise TypeError(f"jaxconv.{fn}: output_size must be an int or a sequence of {_dims(ndim)} "
                        f"or None; got {output_size!r} of type {type(output_size).__name__}")
    if any(o is not None and o < 1 for o in (out if isinstance(out, tuple) else (out,))):
        raise ValueError(f"jaxconv.{fn}: output_size cannot be produced: every output size must be "
                         f">= 1; got output_size={output_size!r}")
    return out


def adaptive_output_size(fn: str, x_shape: tuple[int, ...], output_size: Any) -> tuple[int, ...]:
    """Adaptive pools' ``output_size`` for an input: one int >= 1 per spatial dim."""
    nd = check_batched(fn, "x", x_shape)
    out = output_size_option(fn, output_size, nd)
    if isinstance(out, int):
        return (out,) * nd
    return tuple(n if o is None else o for o, n in zip(out, x_shape[2:]))


def unpool_output_size(
    fn: str, x_shape: tuple[int, ...], indices_shape: tuple[int, ...], output_size: Any
) -> tuple[int, ...]:
    """``max_unpool``'s spatial output size (``output_size`` may be ``(N, C, *spatial)``
    or just ``spatial``, as in PyTorch); checks ``indices`` has ``x``'s shape."""
    nd = check_batched(fn, "x", x_shape)
    if tuple(indices_shape) != tuple(x_shape):
        raise ValueError(f"jaxconv.{fn}: indices must have the shape of x (the two outputs of "
                         "max_pool(..., return_indices=True)); got "
                         f"indices.shape={tuple(indices_shape)}, x.shape={tuple(x_shape)}")
    output_size = _from_numpy(output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (nd, nd + 2):
        raise TypeError(f"jaxconv.{fn}: output_size must be a sequence of {nd} spatial sizes (or "
                        f"the full shape (N, C, *spatial)); got {output_size!r}")
    sizes = tuple(_as_int(fn, f"output_size[{i}]", v) for i, v in enumerate(output_size))
    if len(sizes) == nd + 2:
        if sizes[:2] != tuple(x_shape[:2]):
            raise ValueError(f"jaxconv.{fn}: output_size (N, C) must match x's; got "
                             f"output_size={sizes}, x.shape={tuple(x_shape)}")
        sizes = sizes[2:]
    if any(s < 1 for s in sizes):
        raise ValueError(f"jaxconv.{fn}: output_size cannot be produced: spatial sizes must be >= "
                         f"1; got output_size={tuple(output_size)}")
    return sizes
