"""Argument normalisation, output-shape arithmetic and argument errors.

This is the one place that turns the user's ``stride`` / ``padding`` /
``dilation`` / ``window`` arguments into static, hashable tuples, computes
output shapes, and raises the errors a user sees. Every op validates here
before it traces anything, so a bad argument never reaches XLA.

Error messages follow one pattern: ``jaxconv.<fn>: <argument> <what was
expected>; got <what was received>``.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from .geometry import ConvGeometry, Pair, PoolGeometry, same_pads, window_output_size

PADDING_STRINGS = ("valid", "same", "full")


# --------------------------------------------------------------------------
# Scalars and per-dimension tuples
# --------------------------------------------------------------------------


def is_int(v: Any) -> bool:
    """True for Python and NumPy integers, False for bools (``True`` is not a size)."""
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


_is_int = is_int


def _as_int(fn: str, name: str, v: Any) -> int:
    if not _is_int(v):
        raise TypeError(
            f"jaxconv.{fn}: {name} must be an integer; got {v!r} of type {type(v).__name__}"
        )
    return operator.index(v)


def _from_numpy(value: Any) -> Any:
    """A NumPy array of per-dim values (``np.array([1, 2])``) as nested lists."""
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return value.tolist()
    return value


def int_tuple(fn: str, name: str, value: Any, ndim: int, *, minimum: int) -> tuple[int, ...]:
    """Normalises an int-or-sequence argument to one int per spatial dim.

    Args:
      fn: public function name, for the error message.
      name: argument name, for the error message.
      value: an int (broadcast to every dim) or a sequence of ``ndim`` ints.
      ndim: number of spatial dims.
      minimum: smallest allowed value.

    Returns:
      A tuple of ``ndim`` Python ints.
    """
    value = _from_numpy(value)
    if _is_int(value):
        values = (operator.index(value),) * ndim
    elif isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(
                f"jaxconv.{fn}: {name} must be an int or a sequence of {ndim} ints "
                f"(one per spatial dim); got {value!r} of length {len(value)}"
            )
        values = tuple(_as_int(fn, f"{name}[{i}]", v) for i, v in enumerate(value))
    else:
        raise TypeError(
            f"jaxconv.{fn}: {name} must be an int or a sequence of {ndim} ints; "
            f"got {value!r} of type {type(value).__name__}"
        )
    for i, v in enumerate(values):
        if v < minimum:
            raise ValueError(
                f"jaxconv.{fn}: {name} must be >= {minimum} in every dim; "
                f"got {name}={value!r} (dim {i} is {v})"
            )
    return values


def padding_pairs(
    fn: str,
    padding: Any,
    ndim: int,
    *,
    allow_strings: Sequence[str] = PADDING_STRINGS,
) -> tuple[Pair, ...] | str:
    """Normalises a padding argument.

    Accepted forms: an int (same on both sides of every dim), a sequence of
    ``ndim`` ints (same on both sides of that dim), a sequence of ``ndim``
    ``(lo, hi)`` pairs, or one of ``allow_strings`` (returned lower-cased, to be
    resolved by the caller, which knows the kernel and stride).

    Returns:
      A tuple of ``ndim`` ``(lo, hi)`` pairs of non-negative ints, or a string.
    """
    padding = _from_numpy(padding)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in allow_strings:
            raise ValueError(
                f"jaxconv.{fn}: padding must be an int, a sequence of ints or (lo, hi) pairs, "
                f"or one of {', '.join(repr(s) for s in allow_strings)}; got {padding!r}"
            )
        return mode
    if _is_int(padding):
        pairs = ((operator.index(padding),) * 2,) * ndim
    elif isinstance(padding, (tuple, list)):
        if len(padding) != ndim:
            raise ValueError(
                f"jaxconv.{fn}: padding must give one entry per spatial dim ({ndim}); "
                f"got {padding!r} of length {len(padding)}"
            )
        out = []
        for i, p in enumerate(padding):
            if _is_int(p):
                out.append((operator.index(p),) * 2)
            elif isinstance(p, (tuple, list)) and len(p) == 2:
                out.append(
                    (_as_int(fn, f"padding[{i}][0]", p[0]), _as_int(fn, f"padding[{i}][1]", p[1]))
                )
            else:
                raise TypeError(
                    f"jaxconv.{fn}: padding[{i}] must be an int or a (lo, hi) pair of ints; got {p!r}"
                )
        pairs = tuple(out)
    else:
        raise TypeError(
            f"jaxconv.{fn}: padding must be an int, a sequence of ints or (lo, hi) pairs, or a "
            f"string; got {padding!r} of type {type(padding).__name__}"
        )
    for i, (lo, hi) in enumerate(pairs):
        if lo < 0 or hi < 0:
            raise ValueError(
                f"jaxconv.{fn}: padding must be non-negative; got padding={padding!r} "
                f"(dim {i} is ({lo}, {hi}))"
            )
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------


def as_array(fn: str, name: str, a: Any) -> jnp.ndarray:
    """Converts an array-like to a JAX array, with a clear error for non-arrays."""
    if a is None:
        raise TypeError(f"jaxconv.{fn}: {name} must be an array; got None")
    try:
        arr = jnp.asarray(a)
    except TypeError as e:
        raise TypeError(
            f"jaxconv.{fn}: {name} must be an array; got {type(a).__name__} ({e})"
        ) from None
    return arr


def check_floating(fn: str, **arrays: Any) -> None:
    """Every array must be floating point and all must share one dtype."""
    dtypes = {}
    for name, a in arrays.items():
        if a is None:
            continue
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(
                f"jaxconv.{fn}: {name} must have a floating-point dtype; got {name}.dtype={a.dtype}"
            )
        dtypes[name] = a.dtype
    if len(set(dtypes.values())) > 1:
        got = ", ".join(f"{k}.dtype={v}" for k, v in dtypes.items())
        raise TypeError(f"jaxconv.{fn}: {', '.join(dtypes)} must share one dtype; got {got}")


def check_batched(fn: str, name: str, shape: tuple[int, ...], what: str = "(N, C, *spatial)") -> int:
    """Checks a ``(N, C, *spatial)`` shape with 1-3 spatial dims; returns ``len(spatial)``."""
    if len(shape) not in (3, 4, 5):
        raise ValueError(
            f"jaxconv.{fn}: {name} must be {what} with 1, 2 or 3 spatial dims "
            f"(rank 3, 4 or 5); got {name}.shape={tuple(shape)} (rank {len(shape)})"
        )
    if any(d < 1 for d in shape[1:]):
        raise ValueError(
            f"jaxconv.{fn}: {name} must have non-empty channel and spatial dims; "
            f"got {name}.shape={tuple(shape)}"
        )
    return len(shape) - 2


# --------------------------------------------------------------------------
# Convolution geometry
# --------------------------------------------------------------------------


def _check_groups(fn: str, groups: Any, c_in: int, c_out: int, x_name: str, w_name: str,
                  x_shape, w_shape) -> int:
    groups = _as_int(fn, "groups", groups)
    if groups < 1:
        raise ValueError(f"jaxconv.{fn}: groups must be >= 1; got groups={groups}")
    if c_in % groups:
        raise ValueError(
            f"jaxconv.{fn}: groups must divide the input channels; got groups={groups} and "
            f"C_in={c_in}; {x_name}.shape={tuple(x_shape)}, {w_name}.shape={tuple(w_shape)}"
        )
    if c_out % groups:
        raise ValueError(
            f"jaxconv.{fn}: groups must divide the output channels; got groups={groups} and "
            f"C_out={c_out}; {x_name}.shape={tuple(x_shape)}, {w_name}.shape={tuple(w_shape)}"
        )
    return groups


def _check_bias(fn: str, b_shape, c_out: int) -> None:
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(
            f"jaxconv.{fn}: b must have shape (C_out,) = ({c_out},); got b.shape={tuple(b_shape)}"
        )


def conv_geometry(
    fn: str,
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    b_shape: tuple[int, ...] | None,
    *,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
) -> ConvGeometry:
    """Validates the arguments of ``conv`` and returns its geometry.

    ``x`` is ``(N, C_in, *D)``, ``w`` is ``(C_out, C_in // groups, *k)``,
    ``b`` is ``(C_out,)`` or None.
    """
    nd = check_batched(fn, "x", x_shape, "(N, C_in, *spatial)")
    if len(w_shape) != nd + 2:
        raise ValueError(
            f"jaxconv.{fn}: w must be (C_out, C_in // groups, *kernel) with {nd} kernel dims to "
            f"match x; got w.shape={tuple(w_shape)} (rank {len(w_shape)}) and "
            f"x.shape={tuple(x_shape)} (rank {len(x_shape)})"
        )
    if any(d < 1 for d in w_shape):
        raise ValueError(f"jaxconv.{fn}: w must have no empty dims; got w.shape={tuple(w_shape)}")
    c_in, c_out = x_shape[1], w_shape[0]
    groups = _check_groups(fn, groups, c_in, c_out, "x", "w", x_shape, w_shape)
    if w_shape[1] != c_in // groups:
        raise ValueError(
            f"jaxconv.{fn}: x has {c_in} channels but w expects {w_shape[1] * groups} "
            f"(C_in // groups = {w_shape[1]}, groups = {groups}); "
            f"x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}"
        )
    _check_bias(fn, b_shape, c_out)
    stride = int_tuple(fn, "stride", stride, nd, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, nd, minimum=1)
    D, k = tuple(x_shape[2:]), tuple(w_shape[2:])
    k_eff = tuple(d * (kk - 1) + 1 for d, kk in zip(dilation, k))
    pads = padding_pairs(fn, padding, nd)
    if pads == "valid":
        pads = ((0, 0),) * nd
    elif pads == "full":
        pads = tuple((ke - 1, ke - 1) for ke in k_eff)
    elif pads == "same":
        pads = tuple(same_pads(n, ke, s) for n, ke, s in zip(D, k_eff, stride))
    out = tuple(
        window_output_size(n, ke, s, lo, hi)
        for n, ke, s, (lo, hi) in zip(D, k_eff, stride, pads)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"jaxconv.{fn}: the (dilated) kernel is larger than the padded input: "
            f"expected dilation*(k-1)+1 <= D+lo+hi in every dim; got kernel {k} "
            f"(dilated {k_eff}), input {D}, padding {pads}; x.shape={tuple(x_shape)}, "
            f"w.shape={tuple(w_shape)}"
        )
    return ConvGeometry(D, k, out, stride, pads, dilation, groups)


def conv_transpose_geometry(
    fn: str,
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    b_shape: tuple[int, ...] | None,
    *,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
    groups: Any,
) -> ConvGeometry:
    """Validates the arguments of ``conv_transpose``; returns the geometry of the
    forward convolution whose adjoint it is (so ``out_spatial`` is x's spatial
    size and ``in_spatial`` the transposed convolution's output size).

    ``x`` is ``(N, C_in, *D)``, ``w`` is ``(C_in, C_out // groups, *k)``.
    Output size per dim: ``(D - 1)*stride - lo - hi + dilation*(k - 1) +
    output_padding + 1``.
    """
    nd = check_batched(fn, "x", x_shape, "(N, C_in, *spatial)")
    if len(w_shape) != nd + 2:
        raise ValueError(
            f"jaxconv.{fn}: w must be (C_in, C_out // groups, *kernel) with {nd} kernel dims to "
            f"match x; got w.shape={tuple(w_shape)} (rank {len(w_shape)}) and "
            f"x.shape={tuple(x_shape)} (rank {len(x_shape)})"
        )
    if any(d < 1 for d in w_shape):
        raise ValueError(f"jaxconv.{fn}: w must have no empty dims; got w.shape={tuple(w_shape)}")
    c_in = x_shape[1]
    if w_shape[0] != c_in:
        raise ValueError(
            f"jaxconv.{fn}: x has {c_in} channels but w expects {w_shape[0]} "
            f"(w is (C_in, C_out // groups, *k)); x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}"
        )
    groups = _as_int(fn, "groups", groups)
    if groups < 1:
        raise ValueError(f"jaxconv.{fn}: groups must be >= 1; got groups={groups}")
    if c_in % groups:
        raise ValueError(
            f"jaxconv.{fn}: groups must divide the input channels; got groups={groups} and "
            f"C_in={c_in}; x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}"
        )
    c_out = w_shape[1] * groups
    _check_bias(fn, b_shape, c_out)
    stride = int_tuple(fn, "stride", stride, nd, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, nd, minimum=1)
    output_padding = int_tuple(fn, "output_padding", output_padding, nd, minimum=0)
    for i, (op, s, d) in enumerate(zip(output_padding, stride, dilation)):
        if op >= max(s, d):
            raise ValueError(
                f"jaxconv.{fn}: output_padding must be smaller than stride or dilation in every "
                f"dim; got output_padding={output_padding}, stride={stride}, dilation={dilation} "
                f"(dim {i})"
            )
    O, k = tuple(x_shape[2:]), tuple(w_shape[2:])
    k_eff = tuple(d * (kk - 1) + 1 for d, kk in zip(dilation, k))
    pads = padding_pairs(fn, padding, nd)
    if pads == "valid":
        pads = ((0, 0),) * nd
    elif pads == "full":
        pads = tuple((ke - 1, ke - 1) for ke in k_eff)
    if pads == "same":
        # The adjoint of a "same" conv whose input was D * stride long.
        if any(output_padding):
            raise ValueError(
                f"jaxconv.{fn}: padding='same' fixes the output size at D * stride, so "
                f"output_padding must be 0; got output_padding={output_padding}"
            )
        D = tuple(o * s for o, s in zip(O, stride))
        pads = tuple(same_pads(n, ke, s) for n, ke, s in zip(D, k_eff, stride))
    else:
        D = tuple(
            (o - 1) * s - lo - hi + ke + op
            for o, s, (lo, hi), ke, op in zip(O, stride, pads, k_eff, output_padding)
        )
    if any(n < 1 for n in D):
        raise ValueError(
            f"jaxconv.{fn}: the padding removes the whole output: expected "
            f"(D-1)*stride - lo - hi + dilation*(k-1) + output_padding + 1 >= 1 in every dim; "
            f"got output size {D} from x.shape={tuple(x_shape)}, w.shape={tuple(w_shape)}, "
            f"padding={pads}"
        )
    return ConvGeometry(D, k, O, stride, pads, dilation, groups)


# --------------------------------------------------------------------------
# Pooling geometry
# --------------------------------------------------------------------------


def pool_geometry(
    fn: str,
    x_shape: tuple[int, ...],
    window: Any,
    *,
    stride: Any,
    padding: Any,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> PoolGeometry:
    """Validates pooling arguments (PyTorch semantics) and returns the geometry.

    Output size per dim: ``floor((D + lo + hi - dilation*(k-1) - 1 + (stride-1 if
    ceil_mode)) / stride) + 1``, less one when ceil_mode makes the last window
    start past the input and its left padding (PyTorch's rule). Explicit padding
    may be at most half the window on each side (PyTorch's rule); ``"same"``
    computes it and ``"valid"`` is zero.
    """
    nd = check_batched(fn, "x", x_shape)
    window = int_tuple(fn, "window", window, nd, minimum=1)
    stride = window if stride is None else int_tuple(fn, "stride", stride, nd, minimum=1)
    dilation = int_tuple(fn, "dilation", dilation, nd, minimum=1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"jaxconv.{fn}: ceil_mode must be a bool; got {ceil_mode!r}")
    D = tuple(x_shape[2:])
    k_eff = tuple(d * (k - 1) + 1 for d, k in zip(dilation, window))
    pads = padding_pairs(fn, padding, nd, allow_strings=("valid", "same"))
    if pads == "valid":
        pads = ((0, 0),) * nd
    elif pads == "same":
        pads = tuple(same_pads(n, ke, s) for n, ke, s in zip(D, k_eff, stride))
    else:
        for i, ((lo, hi), k) in enumerate(zip(pads, window)):
            if lo > k // 2 or hi > k // 2:
                raise ValueError(
                    f"jaxconv.{fn}: padding must be at most half the window on each side "
                    f"(padding <= window // 2, as in PyTorch); got padding={padding!r} and "
                    f"window={window} (dim {i})"
                )
    out, extra = [], []
    for n, ke, s, (lo, hi) in zip(D, k_eff, stride, pads):
        span = n + lo + hi - ke
        if span < 0:
            raise ValueError(
                f"jaxconv.{fn}: the (dilated) window is larger than the padded input: expected "
                f"dilation*(window-1)+1 <= D+lo+hi in every dim; got window {window} (dilated "
                f"{k_eff}), padding {pads}, x.shape={tuple(x_shape)}"
            )
        o = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + lo:
            o -= 1
        out.append(o)
        extra.append(max((o - 1) * s + ke - (n + lo + hi), 0))
    return PoolGeometry(
        D, window, tuple(out), stride, pads, dilation, bool(ceil_mode), tuple(extra)
    )


# --------------------------------------------------------------------------
# Pooling helpers: static tables and the arguments of the other pools
# --------------------------------------------------------------------------


def _is_real(v: Any) -> bool:
    return isinstance(v, (numbers.Real, np.floating, np.integer)) and not isinstance(
        v, (bool, np.bool_)
    )


def check_bool(fn: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"jaxconv.{fn}: {name} must be a bool; got {value!r} of type {type(value).__name__}"
        )
    return bool(value)


def pool_norm(fn: str, p: Any) -> float:
    """The ``p`` of an Lp pool: a finite real number > 0."""
    if not _is_real(p):
        raise TypeError(
            f"jaxconv.{fn}: p must be a real number > 0; got {p!r} of type {type(p).__name__}"
        )
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


def pool_divisor(geom: PoolGeometry, count_include_pad: bool, divisor: int | None) -> np.ndarray:
    """The divisor of every average-pool output, shape ``out_spatial`` (float64, static).

    PyTorch's rule: with ``count_include_pad`` a window counts the positions it
    covers inside the padded input ``[-lo, D + hi)`` (the ceil-mode overhang
    beyond it is never counted); without it only real elements ``[0, D)``.
    ``divisor`` replaces both.
    """
    if divisor is not None:
        return np.full(geom.out_spatial, float(divisor))
    out = np.ones((), np.float64)
    for D, k, O, s, d, (lo, hi) in zip(geom.in_spatial, geom.window, geom.out_spatial,
                                       geom.stride, geom.dilation, geom.padding):
        taps = (np.arange(O) * s - lo)[:, None] + d * np.arange(k)[None, :]
        lo_b, hi_b = (-lo, D + hi) if count_include_pad else (0, D)
        cnt = ((taps >= lo_b) & (taps < hi_b)).sum(1)
        out = np.multiply.outer(out, cnt.astype(np.float64))
    return out


def pool_padding_taps(geom: PoolGeometry) -> np.ndarray:
    """Which taps of which window read padding (or the ceil-mode overhang), not
    the input: bool, shape ``out_spatial + (prod(window),)``, taps in window order."""
    masks = []
    for D, k, O, s, d, (lo, _) in zip(geom.in_spatial, geom.window, geom.out_spatial,
                                      geom.stride, geom.dilation, geom.padding):
        taps = (np.arange(O) * s - lo)[:, None] + d * np.arange(k)[None, :]
        masks.append((taps < 0) | (taps >= D))  # (O_d, k_d)
    nd = len(masks)
    out = np.zeros(geom.out_spatial + geom.window, bool)
    for a, m in enumerate(masks):
        shape = [1] * (2 * nd)
        shape[a], shape[nd + a] = m.shape
        out = out | m.reshape(shape)
    return out.reshape(geom.out_spatial + (-1,))


def adaptive_output_size(fn: str, x_shape: tuple[int, ...], output_size: Any) -> tuple[int, ...]:
    """Adaptive pools' ``output_size``: an int, or one int (or None = keep D) per dim, >= 1."""
    nd = check_batched(fn, "x", x_shape)
    D = tuple(x_shape[2:])
    output_size = _from_numpy(output_size)
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != nd:
            raise ValueError(
                f"jaxconv.{fn}: output_size must be an int or a sequence of {nd} ints or None "
                f"(one per spatial dim); got {output_size!r} of length {len(output_size)}"
            )
        out = tuple(
            n if v is None else _as_int(fn, f"output_size[{i}]", v)
            for i, (v, n) in enumerate(zip(output_size, D))
        )
    elif _is_int(output_size):
        out = (operator.index(output_size),) * nd
    else:
        raise TypeError(
            f"jaxconv.{fn}: output_size must be an int or a sequence of {nd} ints or None; "
            f"got {output_size!r} of type {type(output_size).__name__}"
        )
    if any(o < 1 for o in out):
        raise ValueError(
            f"jaxconv.{fn}: output_size cannot be produced: every output size must be >= 1; "
            f"got output_size={output_size!r} for x.shape={tuple(x_shape)}"
        )
    return out


def adaptive_bounds(size: int, out: int) -> list[Pair]:
    """PyTorch's adaptive windows: ``[floor(i*D/out), ceil((i+1)*D/out))`` for each i."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def unpool_output_size(
    fn: str, x_shape: tuple[int, ...], indices_shape: tuple[int, ...], output_size: Any
) -> tuple[int, ...]:
    """``max_unpool``'s spatial output size (``output_size`` may be ``(N, C, *spatial)``
    or just ``spatial``, as in PyTorch); checks ``indices`` has ``x``'s shape."""
    nd = check_batched(fn, "x", x_shape)
    if tuple(indices_shape) != tuple(x_shape):
        raise ValueError(
            f"jaxconv.{fn}: indices must have the shape of x (the two outputs of "
            f"max_pool(..., return_indices=True)); got indices.shape={tuple(indices_shape)}, "
            f"x.shape={tuple(x_shape)}"
        )
    output_size = _from_numpy(output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (nd, nd + 2):
        raise TypeError(
            f"jaxconv.{fn}: output_size must be a sequence of {nd} spatial sizes (or the full "
            f"shape (N, C, *spatial)); got {output_size!r}"
        )
    sizes = tuple(_as_int(fn, f"output_size[{i}]", v) for i, v in enumerate(output_size))
    if len(sizes) == nd + 2:
        if sizes[:2] != tuple(x_shape[:2]):
            raise ValueError(
                f"jaxconv.{fn}: output_size (N, C) must match x's; got output_size={sizes}, "
                f"x.shape={tuple(x_shape)}"
            )
        sizes = sizes[2:]
    if any(s < 1 for s in sizes):
        raise ValueError(
            f"jaxconv.{fn}: output_size cannot be produced: spatial sizes must be >= 1; "
            f"got output_size={tuple(output_size)}"
        )
    return sizes
