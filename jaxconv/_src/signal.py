"""``scipy.signal``-compatible convolution and correlation of N-d arrays.

Every function here computes a window of one object, the full linear
convolution ``full[m] = sum_n a[n] * b[m - n]`` (``a * b``), which is bilinear
and commutative; correlation is the convolution with ``rev(conj(b))``:

* ``"full"``: the whole of it, ``n1 + n2 - 1`` per axis;
* ``"same"``: ``n1`` values centred on it, from ``(n2 - 1) // 2`` (and from
  ``n2 // 2`` for :func:`correlate2d`, as scipy does);
* ``"valid"``: where one input covers the other, ``|n1 - n2| + 1`` values from
  ``min(n1, n2) - 1`` (so either input may be the larger, as in scipy).

Three implementations compute such a window: ``"direct"`` (``lax``
convolution, exact for every size), ``"fft"`` (FFTs of 2-3-5-smooth
lengths, the shortest that do not alias into the window) and overlap-add
(:func:`oaconvolve`). ``method="auto"`` picks direct or FFT per call from the
cost estimate of :func:`choose_conv_method`. They, and the custom_vjp maps
below, live in :mod:`jaxconv._src.signal_maps`; this module holds scipy's
rules (modes, boundaries, axes, dtypes) and the public functions.

Gradients: every function is a ``jax.custom_vjp`` with hand-derived rules. For
``y = crop(a * b)`` the VJP in ``a`` is the transpose of ``a -> crop(a * b)``:
a "valid" correlation (without conjugation) of the zero-embedded cotangent with
``b``, itself a window of a full convolution, so gradients of gradients use the
same rules. Complex inputs follow JAX's convention: the VJP of a C-linear map
is its transpose (not the conjugate transpose), and of ``conj`` it is ``conj``.
Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
``custom_vjp`` functions; reverse-over-reverse is.

Dtypes: the result has the inputs' promoted dtype; integer and bool inputs are
promoted to the default float dtype, bf16/f16 are computed in float32.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from ._linear import acc_dtype, adjoint_pair
from .signal_maps import Window, bilinear, pick_method

Mode = Literal["full", "same", "valid"]
Method = Literal["auto", "direct", "fft"]
Boundary = Literal["fill", "wrap", "symm", "circular", "symmetric"]

_MODES = ("full", "same", "valid")
_METHODS = ("auto", "direct", "fft")
_BOUNDARIES = {"fill": "fill", "wrap": "wrap", "circular": "wrap", "symm": "symm",
               "symmetric": "symm"}


# --------------------------------------------------------------------------
# Boundary extension (convolve2d / correlate2d): a linear gather and its adjoint
# --------------------------------------------------------------------------


def _extend_index(n: int, lo: int, hi: int, boundary: str) -> np.ndarray:
    """Source index of each extended position ``-lo .. n + hi - 1`` (wrap or symm)."""
    t = np.arange(-lo, n + hi)
    if boundary == "wrap":
        return t % n
    t = t % (2 * n)  # symm: the input and its mirror image, repeated
    return np.where(t < n, t, 2 * n - 1 - t)


def _extend(cfg: tuple, a: jax.Array) -> jax.Array:
    boundary, pads = cfg
    for ax, (lo, hi) in enumerate(pads):
        if boundary == "fill":
            a = lax.pad(a, jnp.zeros((), a.dtype),
                        [(lo, hi, 0) if i == ax else (0, 0, 0) for i in range(a.ndim)])
        else:
            a = jnp.take(a, _extend_index(a.shape[ax], lo, hi, boundary), axis=ax)
    return a


def _extend_t(cfg: tuple, g: jax.Array) -> jax.Array:
    boundary, pads = cfg
    for ax in reversed(range(len(pads))):
        lo, hi = pads[ax]
        n = g.shape[ax] - lo - hi
        if boundary == "fill":
            g = lax.pad(g, jnp.zeros((), g.dtype),
                        [(-lo, -hi, 0) if i == ax else (0, 0, 0) for i in range(g.ndim)])
        else:
            idx = _extend_index(n, lo, hi, boundary)
            moved = jnp.moveaxis(g, ax, 0)
            g = jnp.moveaxis(jax.ops.segment_sum(moved, idx, num_segments=n), 0, ax)
    return g


# E extends a by its boundary rule: each extended value is a copy of one input
# value (wrap, symm) or zero (fill; the fill value is added as a constant), so
# E is a 0/1 gather matrix and E^T sums every copy's cotangent back into its
# source value (a segment sum), or crops for zero padding.
_extend_op, _extend_t_op = adjoint_pair(_extend, _extend_t)


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _check_choice(fn: str, name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ValueError(f"jaxconv.{fn}: {name} must be one of {opts}; got {value!r}")
    return value


def _as_arrays(fn: str, in1: ArrayLike, in2: ArrayLike) -> tuple[jax.Array, jax.Array]:
    arrays = []
    for name, v in (("in1", in1), ("in2", in2)):
        dtype = v.dtype if isinstance(v, (jax.Array, np.ndarray)) else np.asarray(v).dtype
        if not (jnp.issubdtype(dtype, jnp.number) or dtype == np.bool_):
            raise TypeError(f"jaxconv.{fn}: {name} must be numeric; got dtype {dtype}")
        arr = jnp.asarray(v)
        if arr.size == 0:
            raise ValueError(f"jaxconv.{fn}: {name} must not be empty; got shape {arr.shape}")
        arrays.append(arr)
    a, b = arrays
    if a.ndim != b.ndim:
        raise ValueError(
            f"jaxconv.{fn}: in2 must have as many dimensions as in1 ({a.ndim}); "
            f"got in1.shape={a.shape}, in2.shape={b.shape}")
    return a, b


def _compute_dtype(a: jax.Array, b: jax.Array) -> tuple[jnp.dtype, jnp.dtype]:
    """(result dtype, dtype computed in): promoted; ints -> default float; 16-bit -> f32."""
    d = jnp.result_type(a.dtype, b.dtype)
    if not jnp.issubdtype(d, jnp.inexact):
        d = jnp.asarray(1.0).dtype
    return jnp.dtype(d), acc_dtype(d)


def _valid_swap(fn: str, s1: Sequence[int], s2: Sequence[int]) -> None:
    if not (all(p >= q for p, q in zip(s1, s2)) or all(q >= p for p, q in zip(s1, s2))):
        raise ValueError(
            f"jaxconv.{fn}: for mode='valid' one input must be at least as large as the other "
            f"in every convolved dimension; got shapes {tuple(s1)} and {tuple(s2)}")


def _window(mode: str, n1: Sequence[int], n2: Sequence[int], *,
            same_start_floor: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(start, size) per axis of the full convolution for ``mode`` (scipy's rules)."""
    if mode == "full":
        return (0,) * len(n1), tuple(p + q - 1 for p, q in zip(n1, n2))
    if mode == "same":
        start = tuple((q - 1) // 2 if same_start_floor else q // 2 for q in n2)
        return start, tuple(n1)
    return (tuple(min(p, q) - 1 for p, q in zip(n1, n2)),
            tuple(abs(p - q) + 1 for p, q in zip(n1, n2)))


def _run(fn: str, a: jax.Array, b: jax.Array, axes: tuple[int, ...], mode: str, method: str,
         correlate: bool, *, same_start_floor: bool = True) -> jax.Array:
    out_dtype, cd = _compute_dtype(a, b)
    scalar = a.ndim == 0
    if scalar:
        a, b, axes = a.reshape(1), b.reshape(1), (0,)
    n1 = [a.shape[i] for i in axes]
    n2 = [b.shape[i] for i in axes]
    if mode == "valid":
        _valid_swap(fn, n1, n2)
    start, size = _window(mode, n1, n2, same_start_floor=same_start_floor)
    cfg = Window(tuple(a.shape), tuple(b.shape), axes, start, size, method, correlate)
    y = bilinear(cfg, a.astype(cd), b.astype(cd))
    if mode == "same":
        # scipy centres the broadcast (non-convolved) axes on in1's shape too
        y = _centred(y, a.shape, axes)
    y = y.astype(out_dtype)
    return y.reshape(()) if scalar else y


def _centred(y: jax.Array, shape: Sequence[int], axes: Sequence[int]) -> jax.Array:
    for i, (n, m) in enumerate(zip(y.shape, shape)):
        if i not in axes and n != m:
            s0 = (n - m) // 2
            y = lax.slice_in_dim(y, s0, s0 + m, axis=i)
    return y


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def convolve(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
             method: Method = "auto") -> jax.Array:
    """N-d linear convolution, ``scipy.signal.convolve`` semantics.

    ``out[m] = sum_n in1[n] * in2[m - n]`` over every axis, restricted by ``mode``.

    Args:
      in1: first input, any shape (0-d too), real or complex.
      in2: second input, same number of dimensions.
      mode: ``"full"`` (``n1 + n2 - 1`` per axis), ``"same"`` (``in1``'s shape,
        centred on the full output: it starts at ``(n2 - 1) // 2``) or
        ``"valid"`` (``|n1 - n2| + 1``: positions where one input covers the
        other; one must be at least as large as the other in every dimension).
      method: ``"direct"`` (``lax`` convolution), ``"fft"`` or ``"auto"`` (the
        cheaper by :func:`choose_conv_method`'s estimate).

    Returns:
      An array of ``in1``'s rank with, per axis, ``n1 + n2 - 1`` (full), ``n1``
      (same) or ``|n1 - n2| + 1`` (valid) values, in the inputs' promoted dtype
      (integers become the default float). Differentiable in both inputs in
      reverse mode (custom_vjp; see the :mod:`jaxconv.signal` module docs).

    Raises:
      ValueError, TypeError: bad mode / method, different ranks, empty inputs,
        or "valid" when neither input contains the other.

    Example:
      >>> convolve(jnp.array([1., 2, 3, 4, 5]), jnp.array([1., 2, 3])).tolist()
      [1.0, 4.0, 10.0, 16.0, 22.0, 22.0, 15.0]
      >>> convolve(jnp.array([1., 2, 3, 4, 5]), jnp.array([1., 2, 3]), "valid").tolist()
      [10.0, 16.0, 22.0]
    """
    mode = _check_choice("convolve", "mode", mode, _MODES)  # type: ignore[assignment]
    method = _check_choice("convolve", "method", method, _METHODS)  # type: ignore[assignment]
    a, b = _as_arrays("convolve", in1, in2)
    return _run("convolve", a, b, tuple(range(a.ndim)), mode, method, False)


def correlate(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
              method: Method = "auto") -> jax.Array:
    """N-d cross-correlation, ``scipy.signal.correlate`` semantics.

    ``out[k] = sum_n in1[n + k] * conj(in2[n])``, i.e. :func:`convolve` of
    ``in1`` with ``in2`` reversed on every axis and conjugated; ``"full"`` lag
    ``k`` runs from ``-(n2 - 1)`` to ``n1 - 1``, ``"same"`` and ``"valid"``
    windows are :func:`convolve`'s.

    Args:
      in1: first input, any shape, real or complex.
      in2: second input (conjugated), same number of dimensions.
      mode: ``"full"``, ``"same"`` or ``"valid"`` (see :func:`convolve`).
      method: ``"auto"``, ``"direct"`` or ``"fft"``.

    Returns:
      :func:`convolve`'s shape and dtype for the same ``mode``; reverse-mode
      differentiable in both inputs.

    Raises:
      ValueError, TypeError: as :func:`convolve`.

    Example:
      >>> f = jnp.array([[1., 2, 3], [4, 5, 6], [7, 8, 9]])
      >>> correlate(f, jnp.array([[1., 2], [3, 4]]), "valid").tolist()
      [[37.0, 47.0], [67.0, 77.0]]
    """
    mode = _check_choice("correlate", "mode", mode, _MODES)  # type: ignore[assignment]
    method = _check_choice("correlate", "method", method, _METHODS)  # type: ignore[assignment]
    a, b = _as_arrays("correlate", in1, in2)
    return _run("correlate", a, b, tuple(range(a.ndim)), mode, method, True)


def _conv2d(fn: str, in1: ArrayLike, in2: ArrayLike, mode: str, boundary: str,
            fillvalue: object, correlate: bool) -> jax.Array:
    mode = _check_choice(fn, "mode", mode, _MODES)
    bnd = _check_choice(fn, "boundary", boundary, tuple(_BOUNDARIES))
    bnd = _BOUNDARIES[bnd]
    a, b = _as_arrays(fn, in1, in2)
    if a.ndim != 2:
        raise ValueError(f"jaxconv.{fn}: in1 and in2 must be 2-D; got in1.shape={a.shape}, "
                         f"in2.shape={b.shape}")
    if not isinstance(fillvalue, numbers.Number) or isinstance(fillvalue, bool):
        if not (isinstance(fillvalue, (np.ndarray, jax.Array)) and np.size(fillvalue) == 1):
            raise TypeError(f"jaxconv.{fn}: fillvalue must be a scalar number; "
                            f"got {fillvalue!r}")
        fillvalue = np.asarray(fillvalue).reshape(()).item()
    out_dtype, cd = _compute_dtype(a, b)
    if not jnp.issubdtype(cd, jnp.complexfloating):
        if isinstance(fillvalue, complex) and fillvalue.imag != 0:
            raise TypeError(f"jaxconv.{fn}: fillvalue must be real for real inputs; "
                            f"got {fillvalue!r}")
        fillvalue = complex(fillvalue).real  # type: ignore[call-overload]
    if mode == "valid":  # no boundary value is read
        return _run(fn, a, b, (0, 1), mode, "auto", correlate)
    n1, n2 = a.shape, b.shape
    start, size = _window(mode, n1, n2, same_start_floor=not (correlate and mode == "same"))
    # Extend in1 to exactly what the window reads, then take the "valid" window.
    pads = tuple((q - 1 - s, s + m - p) for p, q, s, m in zip(n1, n2, start, size))
    ext = _extend_op((bnd, pads), a.astype(cd))
    if bnd == "fill" and fillvalue != 0:
        mask = np.pad(np.zeros(n1), [(max(lo, 0), max(hi, 0)) for lo, hi in pads],
                      constant_values=1.0)
        ext = ext + jnp.asarray(mask * np.asarray(fillvalue).astype(cd), cd)
    shape1 = tuple(ext.shape)
    cfg = Window(shape1, tuple(b.shape), (0, 1), tuple(q - 1 for q in n2), tuple(size),
                  "auto", correlate)
    return bilinear(cfg, ext, b.astype(cd)).astype(out_dtype)


def convolve2d(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full", boundary: Boundary = "fill",
               fillvalue: complex = 0) -> jax.Array:
    """2-D convolution with boundary conditions, ``scipy.signal.convolve2d`` semantics.

    ``in1`` is extended beyond its edges by ``boundary`` and convolved with
    ``in2``; ``mode`` picks the window as in :func:`convolve`.

    Args:
      in1: 2-D input, real or complex.
      in2: 2-D kernel.
      mode: ``"full"``, ``"same"`` (``in1``'s shape, from ``(n2 - 1) // 2``) or
        ``"valid"`` (no boundary value is read; either input may be the larger).
      boundary: ``"fill"`` (pad with ``fillvalue``), ``"wrap"`` (alias
        ``"circular"``: periodic) or ``"symm"`` (alias ``"symmetric"``: mirrored
        with the edge repeated, ``... b a | a b c | c b ...``, repeated as often
        as the kernel needs).
      fillvalue: the pad value for ``"fill"`` (not differentiated); complex only
        for complex inputs.

    Returns:
      A 2-D array, ``(n1 + n2 - 1)``, ``n1`` or ``|n1 - n2| + 1`` per axis for
      ``"full"``, ``"same"``, ``"valid"``, in the promoted dtype; reverse-mode
      differentiable in ``in1`` and ``in2`` (not in ``fillvalue``).

    Raises:
      ValueError, TypeError: non-2-D inputs, bad mode / boundary / fillvalue.

    Example:
      >>> f = jnp.array([[1., 2, 3], [4, 5, 6], [7, 8, 9]])
      >>> convolve2d(f, jnp.array([[1., 2], [3, 4]])).astype(int).tolist()
      [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]]
    """
    return _conv2d("convolve2d", in1, in2, mode, boundary, fillvalue, False)


def correlate2d(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
                boundary: Boundary = "fill", fillvalue: complex = 0) -> jax.Array:
    """2-D cross-correlation with boundary conditions, ``scipy.signal.correlate2d`` semantics.

    ``out[k] = sum_n ext(in1)[n + k] * conj(in2[n])``, ``ext`` the boundary
    extension of :func:`convolve2d`. As in scipy, ``"same"`` starts at lag
    ``n2 // 2`` of the full output (``correlate`` starts at ``(n2 - 1) // 2``:
    they differ for even ``n2``). One deliberate difference: for complex inputs
    in ``"valid"`` mode with ``in2`` the larger, scipy's ``correlate2d`` omits
    the conjugation its other modes apply; here the result is always that of
    :func:`correlate` (which equals ``scipy.signal.correlate``).

    Args:
      in1: 2-D input, real or complex.
      in2: 2-D template (conjugated).
      mode: ``"full"``, ``"same"`` or ``"valid"``.
      boundary: ``"fill"``, ``"wrap"`` / ``"circular"``, ``"symm"`` / ``"symmetric"``.
      fillvalue: the pad value for ``"fill"`` (not differentiated).

    Returns:
      :func:`convolve2d`'s shape and dtype (only ``"same"`` centres
      differently, from ``n2 // 2`` as scipy does).

    Raises:
      ValueError, TypeError: as :func:`convolve2d`.

    Example:
      >>> f = jnp.array([[1., 2, 3], [4, 5, 6], [7, 8, 9]])
      >>> correlate2d(f, jnp.array([[1., 2], [3, 4]])).astype(int).tolist()
      [[4, 11, 18, 9], [18, 37, 47, 21], [36, 67, 77, 33], [14, 23, 26, 9]]
    """
    return _conv2d("correlate2d", in1, in2, mode, boundary, fillvalue, True)


def _fft_axes(fn: str, a: jax.Array, b: jax.Array, axes: int | Sequence[int] | None,
              mode: str) -> tuple[int, ...]:
    nd = a.ndim
    if axes is None:
        ax: list[int] = list(range(nd))
    else:
        raw = list(axes) if isinstance(axes, Sequence) else [axes]
        if not raw:
            raise ValueError(f"jaxconv.{fn}: axes must not be empty; got {axes!r}")
        ax = []
        for v in raw:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not -nd <= v < nd:
                raise ValueError(f"jaxconv.{fn}: axes must be distinct ints in [-{nd}, {nd}); "
                                 f"got {axes!r}")
            ax.append(int(v) % nd)
        if len(set(ax)) != len(ax):
            raise ValueError(f"jaxconv.{fn}: axes must be distinct ints in [-{nd}, {nd}); "
                             f"got {axes!r}")
    for i in range(nd):
        if i not in ax and a.shape[i] != b.shape[i] and 1 not in (a.shape[i], b.shape[i]):
            raise ValueError(
                f"jaxconv.{fn}: in1 and in2 must be equal or 1 on every axis not convolved; "
                f"got in1.shape={a.shape}, in2.shape={b.shape}, axes={tuple(ax)}")
    # As scipy: an axis where either input has length 1 is a broadcast product.
    ax = [i for i in ax if a.shape[i] != 1 and b.shape[i] != 1]
    if mode == "valid":
        _valid_swap(fn, [a.shape[i] for i in ax], [b.shape[i] for i in ax])
    return tuple(sorted(ax))


def _fft_family(fn: str, in1: ArrayLike, in2: ArrayLike, mode: str,
                axes: int | Sequence[int] | None, method: str) -> jax.Array:
    """fftconvolve / oaconvolve: scipy's checks, then the window by ``method`` over ``axes``."""
    mode = _check_choice(fn, "mode", mode, _MODES)
    a, b = _as_arrays(fn, in1, in2)
    if a.ndim == 0:  # a product of scalars: nothing to transform
        return _run(fn, a, b, (), mode, "fft", False)
    return _run(fn, a, b, _fft_axes(fn, a, b, axes, mode), mode, method, False)


def fftconvolve(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
                axes: int | Sequence[int] | None = None) -> jax.Array:
    """Convolution by FFT over ``axes``, ``scipy.signal.fftconvolve`` semantics.

    FFT lengths are 2-3-5-smooth and as short as the window allows without
    wrap-around (``"valid"`` needs only ``max(n1, n2)``). Axes not in ``axes``
    broadcast elementwise (sizes equal, or one of them 1).

    Args:
      in1: first input, real or complex.
      in2: second input, same number of dimensions.
      mode: ``"full"``, ``"same"`` or ``"valid"`` (see :func:`convolve`;
        ``"same"`` takes ``in1``'s shape on every axis, centred).
      axes: the axes to convolve over (int or sequence); default all.

    Returns:
      Along ``axes`` the sizes of :func:`convolve`'s ``mode``; along the other
      axes the broadcast size. Promoted dtype; reverse-mode differentiable.

    Raises:
      ValueError, TypeError: bad mode / axes, incompatible broadcast axes.

    Example:
      >>> y = fftconvolve(jnp.ones((2, 5)), jnp.ones((1, 3)), axes=1)
      >>> y.shape, [round(float(v), 4) for v in y[0]]
      ((2, 7), [1.0, 2.0, 3.0, 3.0, 3.0, 2.0, 1.0])
    """
    return _fft_family("fftconvolve", in1, in2, mode, axes, "fft")


def oaconvolve(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
               axes: int | Sequence[int] | None = None) -> jax.Array:
    """Convolution by overlap-add over ``axes``, ``scipy.signal.oaconvolve`` semantics.

    The larger input is cut into blocks along each axis where it is at least
    twice the other; each block is convolved by a short FFT and the results are
    added where they overlap. Faster than :func:`fftconvolve` for a long signal
    and a short kernel; the same values (within rounding) otherwise.

    Args:
      in1: first input, real or complex.
      in2: second input, same number of dimensions.
      mode: ``"full"``, ``"same"`` or ``"valid"``.
      axes: the axes to convolve over; default all.

    Returns:
      :func:`fftconvolve`'s result, to rounding.

    Raises:
      ValueError, TypeError: as :func:`fftconvolve`.

    Example:
      >>> y = oaconvolve(jnp.ones(100), jnp.ones(3), mode="valid")
      >>> y.shape, round(float(y.min()), 4), round(float(y.max()), 4)
      ((98,), 3.0, 3.0)
    """
    return _fft_family("oaconvolve", in1, in2, mode, axes, "oa")


def choose_conv_method(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full") -> str:
    """The method ``convolve`` / ``correlate`` use for ``method="auto"``: "direct" or "fft".

    The estimate (``scipy.signal.choose_conv_method`` has the same role, with
    constants fitted to NumPy), in units of one multiply-add of the
    shift-and-accumulate direct method (about 0.1 ns on XLA:CPU): direct costs
    ``prod(out) * prod(min(n1, n2))`` multiply-adds, times 10 when the smaller
    input has more than 100 values (XLA's single-channel convolution then
    computes it, about ten times slower per multiply-add than the shifted
    slices used otherwise; times 3 only if the output has at most 100 values); FFT costs
    ``2.5 * 3 * F log2 F + 2000`` for ``F`` the product of the FFT lengths
    (three transforms; the constant is their fixed overhead). FFT is chosen
    when it is the smaller. Measured on a 2-core CPU; on GPU / TPU the same
    estimate applies (a conservative choice, as FFTs are relatively cheaper there).

    Args:
      in1: first input (only its shape is used).
      in2: second input (only its shape is used).
      mode: ``"full"``, ``"same"`` or ``"valid"``.

    Returns:
      ``"direct"`` or ``"fft"``.

    Example:
      >>> choose_conv_method(jnp.ones(100), jnp.ones(3)), choose_conv_method(
      ...     jnp.ones((300, 300)), jnp.ones((300, 300)), "same")
      ('direct', 'fft')
    """
    mode = _check_choice("choose_conv_method", "mode", mode, _MODES)  # type: ignore[assignment]
    a, b = _as_arrays("choose_conv_method", in1, in2)
    n1, n2 = a.shape or (1,), b.shape or (1,)
    if mode == "valid":
        _valid_swap("choose_conv_method", n1, n2)
    start, size = _window(mode, n1, n2)
    return pick_method(n1, n2, start, size)
