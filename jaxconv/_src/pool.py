"""Sliding-window pools with hand-derived VJPs: max, average, Lp and weighted average.

Semantics follow ``torch.nn.functional`` (``ceil_mode``, ``count_include_pad``,
``divisor_override``, ``return_indices``, NaN propagation). The backward rules
are written with the linear window maps of :mod:`jaxconv._src.window` (window
sum / spread, argmax gather / scatter), which come in adjoint pairs, so a
gradient of a gradient again runs hand-derived rules.

Forward mode: every op here is a ``jax.custom_vjp`` function, so ``jax.jvp``,
``jax.jacfwd`` and ``jax.hessian`` are not available; reverse-over-reverse
(``jax.grad(jax.grad(...))``, ``jax.jacrev``) is.

The max-pool forward keeps, per window, the offset of its maximum in the
window as a small integer (int8 for windows of up to 64 taps), never a copy of
the input; the backward sends the cotangent to it phase by phase (see
:func:`jaxconv._src.window.phase_scatter`), without XLA's ``select_and_scatter``
(a slow single-threaded loop on CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from . import _args
from ._args import IntOrSeq
from ._args import PaddingOption as Padding
from ._linear import acc_dtype
from .conv import _conv
from .geometry import ConvGeometry, PoolGeometry
from .window import offsets, scatter_argmax, tap, window_spread, window_sum

# --------------------------------------------------------------------------
# Max pool
# --------------------------------------------------------------------------


def _index_dtype(n: int) -> jnp.dtype:
    """The smallest signed integer dtype holding ``0 .. n-1``."""
    for d in (jnp.int8, jnp.int16):
        if n <= jnp.iinfo(d).max + 1:
            return jnp.dtype(d)
    return jnp.dtype(jnp.int32)


def _argmax_select(a: tuple[jax.Array, jax.Array],
                   b: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """The larger of two (value, id) pairs in a total order: NaN above every
    number and among NaNs the larger id; among equal numbers the smaller id.
    Associative and commutative; its maximum over a window is what PyTorch's
    sequential scan ("replace if larger or NaN") finds."""
    (va, ia), (vb, ib) = a, b
    na, nb = va != va, vb != vb
    b_wins = (nb & (~na | (ib > ia))) | (~na & ~nb & ((vb > va) | ((vb == va) & (ib < ia))))
    return jnp.where(b_wins, vb, va), jnp.where(b_wins, ib, ia)


def _max_argmax(geom: PoolGeometry, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Max of every window and the flat window offset (window order) of its maximum.

    PyTorch's CPU rule: scanning the window in order, a value replaces the
    running maximum if it is larger or NaN -- the first maximum wins ties, the
    last NaN wins if the window has NaNs. Taps in the padding (``-inf``) never
    win over real elements: where tap ``j`` is the first real one of its window
    (a static mask), it replaces the padding unconditionally.

    Taps ``0 .. K-2`` are scanned by an elementwise chain of selects over
    strided slices (one fused loop); the last tap joins in a variadic
    ``lax.reduce`` over the pair (chain result, last tap) with the same order
    (a real tap's id below every padding tap's). XLA materialises a
    reduction's output, so the backward reads the indices instead of
    re-running the chain once per tap inside its own loop (measured 5x slower).
    """
    offs = offsets(geom)
    K = len(offs)
    if K == 1:
        t0 = tap(geom, x, offs[0], -np.inf)
        return t0, jnp.zeros(t0.shape, jnp.int8)
    padded = any(lo or hi for lo, hi in geom.full_padding)
    pad_taps = _args.pool_padding_taps(geom) if padded else np.zeros(geom.out_spatial + (K,), bool)
    real = ~pad_taps
    seen = np.zeros(geom.out_spatial, bool)  # a real tap came before
    best = tap(geom, x, offs[0], -np.inf)
    idx = jnp.zeros(best.shape, _index_dtype(2 * K))
    seen |= real[..., 0]
    for jf in range(1, K - 1):
        v = tap(geom, x, offs[jf], -np.inf)
        take = (v > best) | (v != v)
        first_real = real[..., jf] & ~seen
        if first_real.any():
            take = take | jnp.asarray(first_real)
        seen |= real[..., jf]
        best = jnp.where(take, v, best)
        idx = jnp.where(take, jnp.asarray(jf, idx.dtype), idx)
    # ids for the final step: a padding result ranks after every real one
    ids_chain = idx + jnp.asarray(K * ~seen, idx.dtype) if (~seen).any() else idx
    ids_last = jnp.broadcast_to(jnp.asarray((K - 1) + K * pad_taps[..., K - 1], idx.dtype),
                                best.shape)
    vals = jnp.stack([best, tap(geom, x, offs[K - 1], -np.inf)])
    init = (jnp.asarray(-np.inf, x.dtype), jnp.asarray(2 * K - 1, idx.dtype))
    y, ids = lax.reduce((vals, jnp.stack([ids_chain, ids_last])), init, _argmax_select, (0,))
    return y, (ids % K if padded else ids)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _max_pool(geom: PoolGeometry, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _max_argmax(geom, x)


def _max_pool_fwd(geom: PoolGeometry, x: jax.Array):
    y, idx = _max_pool(geom, x)  # (under grad-of-grad, differentiated by its own rule)
    return (y, idx), idx


# Locally (away from ties) y = M_idx x with M the 0/1 matrix that picks each
# window's argmax, so dx = M^T g: each window's cotangent goes to the element
# that won it (on ties the first maximum in window order, with NaNs the last
# NaN: PyTorch's rule), and windows that share a winner add up. The integer
# index output has no cotangent.
def _max_pool_bwd(geom: PoolGeometry, idx: jax.Array, cts: tuple[jax.Array, jax.Array]):
    g, _ = cts
    return (scatter_argmax(geom, idx, g),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def _flat_indices(geom: PoolGeometry, idx: jax.Array) -> jax.Array:
    """Window offsets -> flat index in the unpadded ``(N, C)`` plane, as PyTorch returns."""
    nd = geom.ndim
    plane = np.cumprod((1,) + geom.in_spatial[::-1])[:-1][::-1]  # row-major strides
    flat = jnp.zeros(idx.shape, jnp.int32)
    rem = idx.astype(jnp.int32)
    for a in reversed(range(nd)):
        k = geom.window[a]
        ja, rem = rem % k, rem // k
        shape = [1] * (nd + 2)
        shape[a + 2] = geom.out_spatial[a]
        base = np.arange(geom.out_spatial[a]) * geom.stride[a] - geom.padding[a][0]
        t = jnp.asarray(base.astype(np.int32).reshape(shape)) + ja * geom.dilation[a]
        flat = flat + t * int(plane[a])
    return flat


# --------------------------------------------------------------------------
# Lp pool (average pool is window_sum scaled by 1 / divisor)
# --------------------------------------------------------------------------


def _lp_scale(geom: PoolGeometry) -> np.ndarray | None:
    """PyTorch's ceil-mode rescaling: a window clipped by the ceil overhang counts
    ``prod(window) / covered`` times (torch computes ``avg_pool(x^p) * prod(window)``).
    None when no window is clipped (the scale is 1 everywhere)."""
    if not any(geom.extra_hi):
        return None
    return float(np.prod(geom.window)) / _args.pool_divisor(geom, True, None)


def _lp_forward(geom: PoolGeometry, p: float, x: jax.Array) -> jax.Array:
    xa = x.astype(acc_dtype(x.dtype))
    a = xa * xa if p == 2.0 else (jnp.abs(xa) if p == 1.0 else jnp.abs(xa) ** p)
    s = window_sum(geom, _lp_scale(geom), a)
    return s if p == 1.0 else (jnp.sqrt(s) if p == 2.0 else s ** (1.0 / p))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _lp_pool(geom: PoolGeometry, p: float, x: jax.Array) -> jax.Array:
    return _lp_forward(geom, p, x).astype(x.dtype)


def _lp_pool_fwd(geom: PoolGeometry, p: float, x: jax.Array):
    out = _lp_pool(geom, p, x)
    return out, (x, out)


# out = (c * sum_j |x_j|^p)^(1/p) per window (c the ceil-mode scale, else 1), so
#   d out / d x_j = (1/p) (c S)^(1/p - 1) * c p |x_j|^(p-1) sign(x_j)
#                 = c |x_j|^(p-1) sign(x_j) / out^(p-1).
# Summed over the windows containing x_j: dx = |x|^(p-1) sign(x) * S^T(c g / out^(p-1)),
# with S^T the window spread. An all-zero window (out = 0) gets a zero gradient,
# and so does x = 0 (for p < 1 the derivative is infinite there); both use the
# double-where so neither the value nor a second derivative is NaN.
def _lp_pool_bwd(geom: PoolGeometry, p: float, res: tuple[jax.Array, jax.Array], g: jax.Array):
    x, out = res
    acc = acc_dtype(x.dtype)
    xa, oa, ga = x.astype(acc), out.astype(acc), g.astype(acc)
    zero_o = oa == 0
    safe_o = jnp.where(zero_o, 1.0, oa)
    coef = jnp.where(zero_o, 0.0, ga / (safe_o if p == 2.0 else safe_o ** (p - 1.0)))
    spread = window_spread(geom, _lp_scale(geom), coef)
    if p == 2.0:
        local = xa
    elif p == 1.0:
        local = jnp.sign(xa)
    else:
        zero_x = xa == 0
        safe_x = jnp.where(zero_x, 1.0, jnp.abs(xa))
        local = jnp.where(zero_x, 0.0, safe_x ** (p - 1.0) * jnp.sign(xa))
    return ((spread * local).astype(x.dtype),)


_lp_pool.defvjp(_lp_pool_fwd, _lp_pool_bwd)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _float_input(fn: str, x: ArrayLike) -> jax.Array:
    arr = _args.as_array(fn, "x", x)
    _args.check_batched(fn, "x", arr.shape)
    _args.check_floating(fn, x=arr)
    return arr


@overload
def max_pool(x: ArrayLike, window: IntOrSeq, *, stride: IntOrSeq | None = ...,
             padding: Padding = ..., dilation: IntOrSeq = ..., ceil_mode: bool = ...,
             return_indices: Literal[False] = ...) -> jax.Array: ...
@overload
def max_pool(x: ArrayLike, window: IntOrSeq, *, stride: IntOrSeq | None = ...,
             padding: Padding = ..., dilation: IntOrSeq = ..., ceil_mode: bool = ...,
             return_indices: Literal[True]) -> tuple[jax.Array, jax.Array]: ...
@overload
def max_pool(x: ArrayLike, window: IntOrSeq, *, stride: IntOrSeq | None = ...,
             padding: Padding = ..., dilation: IntOrSeq = ..., ceil_mode: bool = ...,
             return_indices: bool) -> jax.Array | tuple[jax.Array, jax.Array]: ...


def max_pool(x: ArrayLike, window: IntOrSeq, *, stride: IntOrSeq | None = None,
             padding: Padding = 0, dilation: IntOrSeq = 1, ceil_mode: bool = False,
             return_indices: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Max pooling, PyTorch ``max_pool1d/2d/3d`` semantics.

    ``y[n, c, p] = max_j x_pad[n, c, p*stride + j*dilation]`` with ``-inf``
    padding. A NaN in a window is its maximum (NaN propagates).

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      window: int or one int per spatial dim, >= 1.
      stride: int or one per dim, >= 1; defaults to ``window``.
      padding: int, one int per dim, one ``(lo, hi)`` pair per dim (each at most
        ``window // 2``, PyTorch's rule), ``"valid"`` or ``"same"``.
      dilation: int or one per dim, >= 1: spacing between window taps.
      ceil_mode: round the output size up (PyTorch's rule: the last window must
        start inside the input or its left padding).
      return_indices: also return the flat index of each maximum within its
        ``(N, C)`` spatial plane of the unpadded input, as PyTorch does (for
        :func:`max_unpool`).

    Returns:
      ``y`` of shape ``(N, C, *O)`` in x's dtype, ``O = floor((D + lo + hi -
      dilation*(window-1) - 1 + (stride-1 if ceil_mode)) / stride) + 1``
      (less one if ceil_mode would start the last window past the input);
      with ``return_indices``, ``(y, indices)`` with int32 indices (PyTorch:
      int64). Index rule (PyTorch's CPU kernel): scanning the window in
      row-major order, the first maximum on ties; if the window holds NaNs, the
      last NaN.

    Raises:
      ValueError, TypeError: bad shapes or arguments (window larger than the
        padded input, padding over half the window, stride < 1, ...).

    The gradient (in ``x`` only; indices are integer outputs) sends each
    window's cotangent to its argmax by the index rule above; windows sharing
    an argmax add up. Differentiable in reverse mode only (custom_vjp, no
    ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> y, i = jaxconv.max_pool(x, 3, stride=2, padding=1, return_indices=True)
      >>> y[0, 0].tolist(), i[0, 0].tolist()
      ([[5.0, 7.0], [13.0, 15.0]], [[5, 7], [13, 15]])
    """
    fn = "max_pool"
    arr = _float_input(fn, x)
    geom = _args.pool_geometry(fn, arr.shape, window, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
    return_indices = _args.check_bool(fn, "return_indices", return_indices)
    y, idx = _max_pool(geom, arr)
    if return_indices:
        return y, _flat_indices(geom, lax.stop_gradient(idx))
    return y


def avg_pool(x: ArrayLike, window: IntOrSeq, *, stride: IntOrSeq | None = None,
             padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
             divisor: int | None = None) -> jax.Array:
    """Average pooling, PyTorch ``avg_pool1d/2d/3d`` semantics.

    ``y[n, c, p] = sum_j x_pad[n, c, p*stride + j] / div[p]`` with zero padding.

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      window: int or one int per spatial dim, >= 1.
      stride: int or one per dim, >= 1; defaults to ``window``.
      padding: int, one int per dim, one ``(lo, hi)`` pair per dim (each at most
        ``window // 2``), ``"valid"`` or ``"same"``.
      ceil_mode: round the output size up (the last window must start inside the
        input or its left padding).
      count_include_pad: if True (default) the divisor counts the window's
        positions inside the padded input (not the ceil-mode overhang beyond
        it); if False only the real input elements.
      divisor: if given (int >= 1), the divisor of every window (PyTorch's
        ``divisor_override``).

    Returns:
      ``(N, C, *O)`` in x's dtype (bf16/f16 sum in f32); ``O`` as in :func:`max_pool`.

    Raises:
      ValueError, TypeError: bad shapes or arguments.

    The gradient spreads each window's cotangent over it divided by the
    divisor (overlapping windows add up). Differentiable in reverse mode only
    (custom_vjp, no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> jaxconv.avg_pool(x, 2)[0, 0].tolist()
      [[2.5, 4.5], [10.5, 12.5]]
      >>> jaxconv.avg_pool(x, 3, stride=2, padding=1, count_include_pad=False)[0, 0].tolist()
      [[2.5, 4.0], [8.5, 10.0]]
    """
    fn = "avg_pool"
    arr = _float_input(fn, x)
    geom = _args.pool_geometry(fn, arr.shape, window, stride=stride, padding=padding,
                               ceil_mode=ceil_mode)
    cip = _args.check_bool(fn, "count_include_pad", count_include_pad)
    div = _args.pool_divisor_arg(fn, divisor)
    # y = diag(1 / div) S x: the window-sum pair with a constant scale.
    return window_sum(geom, 1.0 / _args.pool_divisor(geom, cip, div), arr)


def lp_pool(x: ArrayLike, p: float, window: IntOrSeq, *, stride: IntOrSeq | None = None,
            padding: Padding = 0, ceil_mode: bool = False) -> jax.Array:
    """Lp pooling: the Lp norm ``(sum_j |x_j|^p)^(1/p)`` of every window (p=2: L2 pooling).

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      p: the norm, a finite number > 0.
      window: int or one int per spatial dim, >= 1.
      stride: int or one per dim, >= 1; defaults to ``window``.
      padding: zero padding (does not change the norm): int, one per dim, or
        ``(lo, hi)`` pairs (at most ``window // 2``), ``"valid"``, ``"same"``.
      ceil_mode: round the output size up (PyTorch's rule).

    Returns:
      ``(N, C, *O)`` in x's dtype (bf16/f16 accumulate in f32).

    Differences from ``torch.nn.functional.lp_pool1d/2d/3d``: PyTorch sums
    ``x^p`` without the absolute value (so odd or fractional ``p`` with
    negative inputs gives a signed sum or NaN; they agree for ``x >= 0`` and
    for even integer ``p``); PyTorch takes no ``padding`` (zero padding here,
    which does not change a norm). As in PyTorch, with ``ceil_mode`` a window
    clipped by the input's end is rescaled by ``prod(window) / covered`` (PyTorch
    computes ``avg_pool(x^p) * prod(window)``), so it is not the plain norm of
    the elements it covers. ``p = inf`` is not supported (use ``max_pool(abs(x))``).

    Raises:
      ValueError, TypeError: bad shapes or arguments, ``p <= 0``.

    The gradient is ``g * |x|^(p-1) * sign(x) / out^(p-1)`` summed over the
    windows containing ``x``; it is zero for an all-zero window and at
    ``x = 0`` (no NaN). Differentiable in reverse mode only (custom_vjp, no
    ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.array([[[3.0, 4.0, 0.0, -2.0]]])
      >>> jaxconv.lp_pool(x, 2, 2)[0, 0].tolist()
      [5.0, 2.0]
    """
    fn = "lp_pool"
    arr = _float_input(fn, x)
    p = _args.pool_norm(fn, p)
    geom = _args.pool_geometry(fn, arr.shape, window, stride=stride, padding=padding,
                               ceil_mode=ceil_mode)
    return _lp_pool(geom, p, arr)


def weighted_pool(x: ArrayLike, weights: ArrayLike, *, stride: IntOrSeq | None = None,
                  padding: Padding = 0) -> jax.Array:
    """Weighted-average pooling: ``y[n, c, p] = sum_j wn[j] x_pad[n, c, p*stride + j]``
    with ``wn = weights / sum(weights)`` (zero padding, counted in the average).

    With ``weights = gaussian_window(window, sigma)`` this is the classic
    "weighted average by distance from the central pixel"; with
    ``jnp.ones(window)`` it equals ``avg_pool`` (``count_include_pad=True``).
    No single PyTorch function does this (it is ``conv2d`` with a normalised
    kernel repeated per channel and ``groups=C``).

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      weights: window-shaped ``(*k)`` array with one dim per spatial dim, same
        dtype as x; its sum must be finite and nonzero (checked when ``weights``
        is concrete; under ``jit`` a zero sum gives inf/NaN).
      stride: int or one per dim, >= 1; defaults to the window.
      padding: int, one per dim, ``(lo, hi)`` pairs (at most ``k // 2``),
        ``"valid"`` or ``"same"``.

    Returns:
      ``(N, C, *O)`` in x's dtype, ``O = floor((D + lo + hi - k) / stride) + 1``.

    Raises:
      ValueError, TypeError: bad shapes or arguments (weights not of a window's shape).

    Differentiable in ``x`` (a depthwise transposed convolution) and in
    ``weights`` (a correlation of ``x`` with the cotangent, through the
    normalisation). Differentiable in reverse mode only (custom_vjp, no
    ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.arange(16.0).reshape(1, 1, 4, 4)
      >>> jaxconv.weighted_pool(x, jnp.array([[1.0, 1.0], [1.0, 1.0]]))[0, 0].tolist()
      [[2.5, 4.5], [10.5, 12.5]]
    """
    fn = "weighted_pool"
    arr = _float_input(fn, x)
    w = _args.as_array(fn, "weights", weights)
    nd = arr.ndim - 2
    if w.ndim != nd or any(d < 1 for d in w.shape):
        raise ValueError(
            f"jaxconv.{fn}: weights must have the window's shape, one non-empty dim per "
            f"spatial dim of x ({nd}); got weights.shape={tuple(w.shape)}, "
            f"x.shape={tuple(arr.shape)}"
        )
    _args.check_floating(fn, x=arr, weights=w)
    geom = _args.pool_geometry(fn, arr.shape, tuple(w.shape), stride=stride, padding=padding)
    acc = acc_dtype(w.dtype)
    if not isinstance(w, jax.core.Tracer):
        total = float(jnp.sum(w, dtype=acc))
        if not np.isfinite(total) or abs(total) <= 1e-6 * float(jnp.sum(jnp.abs(w), dtype=acc)):
            raise ValueError(
                f"jaxconv.{fn}: weights must have a finite, nonzero sum (they are divided by "
                f"it); got sum(weights)={total:g}"
            )
    C = arr.shape[1]
    cg = ConvGeometry(in_spatial=geom.in_spatial, kernel=geom.window, out_spatial=geom.out_spatial,
                      stride=geom.stride, padding=geom.full_padding, dilation=geom.dilation,
                      groups=C)
    # y = B(x, K) with K = broadcast(w / sum(w)) over channels and B the depthwise
    # correlation (groups = C): conv's custom_vjp gives dx = B_x^T(g; K) and
    # dK = B_w^T(g; x); JAX transposes the broadcast (a sum over channels) and
    # the normalisation (dw = (dwn - <dwn, wn>) / sum(w)).
    wn = (w.astype(acc) / jnp.sum(w, dtype=acc)).astype(w.dtype)
    return _conv(cg, arr, jnp.broadcast_to(wn, (C, 1) + wn.shape), None)


def gaussian_window(window: IntOrSeq, sigma: float | Sequence[float], *,
                    dtype: DTypeLike = jnp.float32) -> jax.Array:
    """A Gaussian weight window for :func:`weighted_pool`, normalised to sum 1.

    ``w[j] ∝ exp(-sum_d (j_d - c_d)^2 / (2 sigma_d^2))`` with ``c_d = (k_d - 1) / 2``
    the window's centre: the weight falls off with the distance from the
    central pixel (``scipy.signal.windows.gaussian`` per dim, normalised).

    Args:
      window: tuple of ints (one per spatial dim) >= 1; an int gives a 1-D window.
      sigma: a positive number or one per dim.
      dtype: floating dtype of the result.

    Returns:
      An array of shape ``window``.

    Example:
      >>> import jaxconv
      >>> w = jaxconv.gaussian_window((3, 3), 1.0)
      >>> w.shape, round(float(w.sum()), 6), bool(w[1, 1] > w[0, 0])
      ((3, 3), 1.0, True)
    """
    fn = "gaussian_window"
    nd = len(window) if isinstance(window, (tuple, list)) else 1
    win = _args.int_tuple(fn, "window", window, nd, minimum=1)
    sig: tuple[Any, ...] = tuple(sigma) if isinstance(sigma, (tuple, list)) else (sigma,) * nd
    if len(sig) != nd:
        raise ValueError(
            f"jaxconv.{fn}: sigma must be a number or one per dim ({nd}); got sigma={sigma!r}")
    for s in sig:
        if not _args._is_real(s):
            raise TypeError(f"jaxconv.{fn}: sigma must be a positive number; got {s!r}")
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"jaxconv.{fn}: sigma must be a positive number; got sigma={sigma!r}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"jaxconv.{fn}: dtype must be floating point; got {dtype}")
    e = np.zeros(win)
    for a, (k, s) in enumerate(zip(win, sig)):
        shape = [1] * nd
        shape[a] = k
        e = e + ((np.arange(k) - (k - 1) / 2.0) ** 2 / (2.0 * float(s) ** 2)).reshape(shape)
    w = np.exp(-e)
    return jnp.asarray(w / w.sum(), dtype)
