"""Pooling with hand-derived VJPs: max, average, Lp, weighted average,
unpooling, adaptive pooling and nearest-neighbour upsampling.

Semantics follow ``torch.nn.functional`` (``ceil_mode``, ``count_include_pad``,
``divisor_override``, ``return_indices``, ``max_unpool``'s ``output_size``,
NaN propagation). Every differentiable op is a ``jax.custom_vjp`` whose
backward is written with the linear ops of this module, which come in adjoint
pairs (each one's VJP is the other), so a gradient of a gradient again runs
hand-derived rules:

* window sum      ``(N, C, D) -> (N, C, O)``  /  window spread   ``O -> D``
* scatter to the argmax of each window        /  gather at the argmax
* scatter-add at flat plane indices           /  gather at flat plane indices
* upsample (Kronecker product with ones)      /  block sum

The max-pool backward never uses XLA's ``select_and_scatter`` (a slow,
single-threaded loop on CPU): the forward keeps the window offset of each
maximum (a small int), and the backward places the cotangent at it with one
``lax.pad`` per window offset (interior padding ``stride - 1``), which XLA fuses.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _args
from ._args import ConvGeometry, PoolGeometry
from .conv import _b as _conv_b
from .conv import _conv_transpose, _conv_weight

_HIGHEST = lax.Precision.HIGHEST


def _acc(dtype):
    """Accumulation dtype: f32 for half-precision inputs, else the input's own."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else jnp.dtype(dtype)


def _offsets(window):
    """Every window offset, in window order (row-major: the last dim fastest)."""
    return list(itertools.product(*(range(k) for k in window)))


def _pad(geom: PoolGeometry, x, value):
    cfg = [(0, 0, 0), (0, 0, 0)] + [(lo, hi, 0) for lo, hi in geom.full_padding]
    return lax.pad(x, jnp.asarray(value, x.dtype), cfg)


def _tap(geom: PoolGeometry, xp, j):
    """The input value that tap ``j`` of every window reads: ``xp[p*stride + j*dilation]``,
    shape ``(N, C, *out_spatial)``, from the fully padded input ``xp``."""
    start = [0, 0] + [jj * d for jj, d in zip(j, geom.dilation)]
    limit = list(xp.shape[:2]) + [
        st + (o - 1) * s + 1 for st, o, s in zip(start[2:], geom.out_spatial, geom.stride)
    ]
    return lax.slice(xp, start, limit, (1, 1) + geom.stride)


def _place(geom: PoolGeometry, y, j):
    """The adjoint of :func:`_tap` for the unpadded input: ``y[p]`` goes to input
    position ``p*stride + j*dilation - lo`` (interior padding ``stride - 1``;
    negative edge padding crops what falls into the padding)."""
    cfg = [(0, 0, 0), (0, 0, 0)]
    for D, O, s, jj, d, (lo, _) in zip(geom.in_spatial, geom.out_spatial, geom.stride, j,
                                       geom.dilation, geom.padding):
        first = jj * d - lo
        cfg.append((first, D - 1 - ((O - 1) * s + first), s - 1))
    return lax.pad(y, jnp.zeros((), y.dtype), cfg)


# --------------------------------------------------------------------------
# Window sum / window spread: the linear core of avg, Lp (and their VJPs).
# --------------------------------------------------------------------------


def _window_sum_impl(geom: PoolGeometry, x):
    xa = _pad(geom, x.astype(_acc(x.dtype)), 0)
    y = lax.reduce_window(
        xa, jnp.zeros((), xa.dtype), lax.add, (1, 1) + geom.window, (1, 1) + geom.stride,
        "VALID", window_dilation=(1, 1) + geom.dilation,
    )
    return y[(slice(None), slice(None)) + tuple(slice(0, o) for o in geom.out_spatial)]


def _window_spread_impl(geom: PoolGeometry, g):
    ga = g.astype(_acc(g.dtype))
    out = None
    for j in _offsets(geom.window):
        placed = _place(geom, ga, j)
        out = placed if out is None else out + placed
    return out


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _window_sum(geom, x):
    """``y[p] = sum_j x_pad[p*stride + j*dilation]`` (zero padding), in x's dtype."""
    return _window_sum_impl(geom, x).astype(x.dtype)


def _window_sum_fwd(geom, x):
    return _window_sum(geom, x), None


# y = S x with S a 0/1 matrix (S[p, t] = 1 iff input t is a tap of window p),
# so dx = S^T g: every window spreads its cotangent, unscaled, over its taps
# (overlapping windows add; taps in the padding are dropped) -- the window spread.
def _window_sum_bwd(geom, _, g):
    return (_window_spread(geom, g),)


_window_sum.defvjp(_window_sum_fwd, _window_sum_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _window_spread(geom, g):
    """``S^T g``: ``(N, C, *out_spatial) -> (N, C, *in_spatial)``, in g's dtype."""
    return _window_spread_impl(geom, g).astype(g.dtype)


def _window_spread_fwd(geom, g):
    return _window_spread(geom, g), None


# x = S^T g, so dg = (S^T)^T h = S h: the window sum of the cotangent.
def _window_spread_bwd(geom, _, h):
    return (_window_sum(geom, h),)


_window_spread.defvjp(_window_spread_fwd, _window_spread_bwd)


# --------------------------------------------------------------------------
# Max pool: argmax by strided slices; scatter to / gather at the argmax.
# --------------------------------------------------------------------------


def _non_overlapping(geom: PoolGeometry) -> bool:
    """stride == window, no dilation, no padding and no ceil overhang: each input
    element is in at most one window, and the windows tile a leading block."""
    return (
        geom.stride == geom.window
        and all(d == 1 for d in geom.dilation)
        and all(lo == 0 and hi == 0 for lo, hi in geom.full_padding)
    )


def _argmax_select(a, b):
    """Combiner of the argmax reduction: the larger of two (value, tap) pairs in a
    total order -- NaN above every number, and among NaNs the later tap; among
    equal numbers the earlier tap. Associative and commutative, so the reduction
    order does not matter, and its maximum is what PyTorch's sequential scan
    ("replace if larger or NaN") finds."""
    (va, ia), (vb, ib) = a, b
    na, nb = va != va, vb != vb
    b_wins = (nb & (~na | (ib > ia))) | (~na & ~nb & ((vb > va) | ((vb == va) & (ib < ia))))
    return jnp.where(b_wins, vb, va), jnp.where(b_wins, ib, ia)


def _max_argmax(geom: PoolGeometry, x):
    """Max of every window and the flat window offset (window order) of its maximum.

    PyTorch's CPU rule: scanning the window in order, a value replaces the
    running maximum if it is larger or NaN -- so the first maximum wins on ties
    and the last NaN wins if the window has NaNs (their max is NaN). Taps in the
    padding never win over real elements (their tap number is raised by K, the
    window size, for the reduction), so a window of real -inf reports its first
    real element, as PyTorch does.

    One variadic ``lax.reduce`` over the stacked taps, not a chain of selects:
    XLA does not fuse a reduction into its consumers, so the indices are
    materialised once instead of being recomputed inside the backward's loop.
    """
    xp = _pad(geom, x, -jnp.inf)
    offs = _offsets(geom.window)
    K = len(offs)
    # Taps on a trailing axis suit non-overlapping windows (contiguous taps);
    # on a leading axis, the reduction vectorises over the outputs (measured
    # ~5x faster for overlapping, padded windows on CPU).
    axis = x.ndim if _non_overlapping(geom) else 0
    taps = jnp.stack([_tap(geom, xp, j) for j in offs], axis=axis)
    tap_ids = np.broadcast_to(np.arange(K, dtype=np.int32), geom.out_spatial + (K,))
    if any(lo or hi for lo, hi in geom.full_padding):
        tap_ids = tap_ids + K * _args.pool_padding_taps(geom).astype(np.int32)
    if axis == 0:
        tap_ids = np.moveaxis(tap_ids, -1, 0)[:, None, None]
    ids = jnp.broadcast_to(jnp.asarray(tap_ids), taps.shape)
    init = (jnp.array(-jnp.inf, x.dtype), jnp.int32(2 * K))
    best, idx = lax.reduce((taps, ids), init, _argmax_select, (axis,))
    return best, idx % K if K > 1 else idx


def _scatter_argmax_impl(geom: PoolGeometry, idx, g):
    offs = _offsets(geom.window)
    if _non_overlapping(geom):
        # One fused select: broadcast g and idx over each window's block.
        N, C = g.shape[:2]
        shape = (N, C) + sum(((o, 1) for o in geom.out_spatial), ())
        bshape = (N, C) + sum(((o, k) for o, k in zip(geom.out_spatial, geom.window)), ())
        grid = np.arange(len(offs), dtype=np.int32).reshape(geom.window)
        grid = grid.reshape(sum(((1, k) for k in geom.window), ()))
        m = jnp.where(idx.reshape(shape) == grid, g.reshape(shape), jnp.zeros((), g.dtype))
        m = jnp.broadcast_to(m, bshape).reshape(
            (N, C) + tuple(o * k for o, k in zip(geom.out_spatial, geom.window)))
        cfg = [(0, 0, 0)] * 2 + [(0, D - o * k, 0) for D, o, k in
                                 zip(geom.in_spatial, geom.out_spatial, geom.window)]
        return lax.pad(m, jnp.zeros((), g.dtype), cfg)
    ga = g.astype(_acc(g.dtype))
    zero = jnp.zeros((), ga.dtype)
    out = None
    for jf, j in enumerate(offs):
        placed = _place(geom, jnp.where(idx == jf, ga, zero), j)
        out = placed if out is None else out + placed
    return out.astype(g.dtype)


def _gather_argmax_impl(geom: PoolGeometry, idx, h):
    hp = _pad(geom, h, 0)
    out = None
    for jf, j in enumerate(_offsets(geom.window)):
        v = _tap(geom, hp, j)
        out = v if out is None else jnp.where(idx == jf, v, out)
    return out


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _scatter_argmax(geom, idx, g):
    """``M_idx^T g``: each window's cotangent goes to its argmax (windows sharing
    an argmax add up). ``(N, C, *out) -> (N, C, *in)``."""
    return _scatter_argmax_impl(geom, idx, g)


def _scatter_argmax_fwd(geom, idx, g):
    return _scatter_argmax(geom, idx, g), idx


# x = M^T g where M (fixed by idx) is the 0/1 matrix picking each window's
# argmax; so dg = M h: read the cotangent at each window's argmax. idx is an
# integer array: no cotangent.
def _scatter_argmax_bwd(geom, idx, h):
    return None, _gather_argmax(geom, idx, h)


_scatter_argmax.defvjp(_scatter_argmax_fwd, _scatter_argmax_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _gather_argmax(geom, idx, h):
    """``M_idx h``: the value of ``h`` at each window's argmax. ``(N, C, *in) -> (N, C, *out)``."""
    return _gather_argmax_impl(geom, idx, h)


def _gather_argmax_fwd(geom, idx, h):
    return _gather_argmax(geom, idx, h), idx


# y = M h, so dh = M^T g: the scatter to the argmax.
def _gather_argmax_bwd(geom, idx, g):
    return None, _scatter_argmax(geom, idx, g)


_gather_argmax.defvjp(_gather_argmax_fwd, _gather_argmax_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _max_pool(geom, x):
    return _max_argmax(geom, x)


def _max_pool_fwd(geom, x):
    y, idx = _max_pool(geom, x)  # (under grad-of-grad, differentiated by its own rule)
    return (y, idx), idx


# Locally (away from ties) y = M_idx x with M the 0/1 matrix that picks each
# window's argmax, so dx = M^T g: each window's cotangent goes to the element
# that won it -- on ties the first maximum in window order, with NaNs the last
# NaN (PyTorch's rule) -- and windows that share a winner add up. The integer
# index output has no cotangent.
def _max_pool_bwd(geom, idx, cts):
    g, _ = cts
    return (_scatter_argmax(geom, idx, g),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def _flat_indices(geom: PoolGeometry, idx):
    """Window offsets -> flat index in the unpadded ``(N, C)`` plane, as PyTorch returns."""
    nd = geom.ndim
    plane = np.cumprod((1,) + geom.in_spatial[::-1])[:-1][::-1]  # row-major strides
    flat = jnp.zeros(idx.shape, jnp.int32)
    rem = idx
    for a in reversed(range(nd)):
        k = geom.window[a]
        ja = rem % k
        rem = rem // k
        shape = [1] * (nd + 2)
        shape[a + 2] = geom.out_spatial[a]
        base = (np.arange(geom.out_spatial[a]) * geom.stride[a] - geom.padding[a][0])
        t = jnp.asarray(base.astype(np.int32).reshape(shape)) + ja * geom.dilation[a]
        flat = flat + t * int(plane[a])
    return flat


# --------------------------------------------------------------------------
# Average and Lp pools
# --------------------------------------------------------------------------


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _avg_pool(geom, opts, x):
    div = _args.pool_divisor(geom, *opts)
    y = _window_sum_impl(geom, x) / jnp.asarray(div, _acc(x.dtype))
    return y.astype(x.dtype)


def _avg_pool_fwd(geom, opts, x):
    return _avg_pool(geom, opts, x), None


# y = diag(1/div) S x (S the 0/1 window-sum matrix), so dx = S^T (g / div):
# every window spreads its cotangent divided by its divisor over its taps;
# overlapping windows add up, taps in the padding are dropped.
def _avg_pool_bwd(geom, opts, _, g):
    div = jnp.asarray(_args.pool_divisor(geom, *opts), g.dtype)
    return (_window_spread(geom, g / div),)


_avg_pool.defvjp(_avg_pool_fwd, _avg_pool_bwd)


def _lp_scale(geom):
    """PyTorch's ceil-mode rescaling: a window clipped by the ceil overhang counts
    ``prod(window) / covered`` times (torch computes ``avg_pool(x^p) * prod(window)``).
    None when no window is clipped (the scale is 1 everywhere)."""
    if not any(geom.extra_hi):
        return None
    return float(np.prod(geom.window)) / _args.pool_divisor(geom, True, None)


def _lp_forward(geom, p, x):
    xa = x.astype(_acc(x.dtype))
    a = xa * xa if p == 2.0 else (jnp.abs(xa) if p == 1.0 else jnp.abs(xa) ** p)
    s = _window_sum_impl(geom, a)
    scale = _lp_scale(geom)
    if scale is not None:
        s = s * jnp.asarray(scale, s.dtype)
    return s if p == 1.0 else (jnp.sqrt(s) if p == 2.0 else s ** (1.0 / p))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _lp_pool(geom, p, x):
    return _lp_forward(geom, p, x).astype(x.dtype)


def _lp_pool_fwd(geom, p, x):
    out = _lp_pool(geom, p, x)
    return out, (x, out)


# out = (c * sum_j |x_j|^p)^(1/p) per window (c the ceil-mode scale, else 1), so
#   d out / d x_j = (1/p) (c S)^(1/p - 1) * c p |x_j|^(p-1) sign(x_j)
#                 = c |x_j|^(p-1) sign(x_j) / out^(p-1).
# Summed over the windows containing x_j: dx = |x|^(p-1) sign(x) * S^T(c g / out^(p-1)),
# with S^T the window spread. An all-zero window (out = 0) gets a zero gradient,
# and so does x = 0 (for p < 1 the derivative is infinite there); both use the
# double-where so neither the value nor a second derivative is NaN.
def _lp_pool_bwd(geom, p, res, g):
    x, out = res
    acc = _acc(x.dtype)
    xa, oa, ga = x.astype(acc), out.astype(acc), g.astype(acc)
    zero_o = oa == 0
    safe_o = jnp.where(zero_o, 1.0, oa)
    coef = jnp.where(zero_o, 0.0, ga / (safe_o if p == 2.0 else safe_o ** (p - 1.0)))
    scale = _lp_scale(geom)
    if scale is not None:
        coef = coef * jnp.asarray(scale, acc)
    spread = _window_spread(geom, coef)
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
# Weighted average pool: a depthwise correlation with normalised weights.
# --------------------------------------------------------------------------


def _depthwise(w, C):
    return jnp.broadcast_to(w, (C, 1) + w.shape)


def _normalise(w):
    acc = _acc(w.dtype)
    s = jnp.sum(w, dtype=acc)
    return (w.astype(acc) / s).astype(w.dtype), s


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _weighted_pool(cg, x, w):
    wn, _ = _normalise(w)
    return _conv_b(cg, x, _depthwise(wn, x.shape[1]))


def _weighted_pool_fwd(cg, x, w):
    wn, s = _normalise(w)
    return _weighted_pool(cg, x, w), (x, wn, s)


# y = B(x, K) with K = broadcast(w / sum(w)) over channels, B the depthwise
# correlation (conv with groups = C). Linear in x: dx = B_x^T(g; K), a depthwise
# transposed conv. Linear in K: dK = B_w^T(g; x), shape (C, 1, *k); the broadcast's
# transpose sums it over channels: dwn. Then wn = w / s with s = sum(w):
# d wn_i / d w_j = delta_ij / s - wn_i / s, so dw = (dwn - <dwn, wn>) / s.
def _weighted_pool_bwd(cg, res, g):
    x, wn, s = res
    acc = _acc(x.dtype)
    dx = _conv_transpose(cg, g, _depthwise(wn, x.shape[1]), None)
    dwn = jnp.sum(_conv_weight(cg, x, g).astype(acc), axis=(0, 1))
    wna = wn.astype(acc)
    dw = (dwn - jnp.sum(dwn * wna)) / s
    return dx, dw.astype(wn.dtype)


_weighted_pool.defvjp(_weighted_pool_fwd, _weighted_pool_bwd)


# --------------------------------------------------------------------------
# Flat plane indices: scatter(-add) and gather (unpool, adaptive max).
# --------------------------------------------------------------------------


def _rows(idx):
    nc = idx.shape[0] * idx.shape[1]
    return nc, jnp.arange(nc, dtype=jnp.int32)[:, None]


def _scatter_flat_impl(out_spatial, idx, v, mode):
    nc, rows = _rows(idx)
    size = int(np.prod(out_spatial))
    z = jnp.zeros((nc, size), v.dtype)
    i2, v2 = idx.reshape(nc, -1), v.reshape(nc, -1)
    z = z.at[rows, i2].add(v2, mode="drop") if mode == "add" else z.at[rows, i2].set(v2, mode="drop")
    return z.reshape(idx.shape[:2] + tuple(out_spatial))


def _gather_flat_impl(idx, h):
    nc = idx.shape[0] * idx.shape[1]
    out = jnp.take_along_axis(
        h.reshape(nc, -1), idx.reshape(nc, -1), axis=1, mode="fill", fill_value=0
    )
    return out.reshape(idx.shape)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _scatter_add_flat(out_spatial, idx, v):
    """``P_idx^T v``: add ``v`` at flat plane positions ``idx`` (out of range: dropped)."""
    return _scatter_flat_impl(out_spatial, idx, v, "add")


def _scatter_add_flat_fwd(out_spatial, idx, v):
    return _scatter_add_flat(out_spatial, idx, v), idx


# x = P^T v with P (fixed by idx) the 0/1 matrix reading positions idx; so
# dv = P h: gather the cotangent at idx.
def _scatter_add_flat_bwd(out_spatial, idx, h):
    return None, _gather_flat(idx, h)


_scatter_add_flat.defvjp(_scatter_add_flat_fwd, _scatter_add_flat_bwd)


@jax.custom_vjp
def _gather_flat(idx, h):
    """``P_idx h``: read ``h`` at flat plane positions ``idx`` (out of range: 0)."""
    return _gather_flat_impl(idx, h)


def _gather_flat_fwd(idx, h):
    return _gather_flat(idx, h), (idx, h.shape[2:])


# y = P h, so dh = P^T g: scatter-add the cotangent at idx.
def _gather_flat_bwd(res, g):
    idx, spatial = res
    return None, _scatter_add_flat(spatial, idx, g)


_gather_flat.defvjp(_gather_flat_fwd, _gather_flat_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpool(out_spatial, idx, x):
    return _scatter_flat_impl(out_spatial, idx, x, "set")


def _unpool_fwd(out_spatial, idx, x):
    return _unpool(out_spatial, idx, x), idx


# y[idx[p]] = x[p] (positions no index names stay 0). As a matrix y = P^T x,
# so dx = P h: every input reads the cotangent at its index (PyTorch's rule,
# also when two inputs share an index -- which max_pool only produces for
# equal values).
def _unpool_bwd(out_spatial, idx, h):
    return None, _gather_flat(idx, h)


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


# --------------------------------------------------------------------------
# Adaptive pools
# --------------------------------------------------------------------------


def _adaptive_tables(size, out, transpose):
    """Index and weight tables ``(rows, L)`` of the adaptive averaging matrix
    ``A`` (``out x size``, ``A[i, t] = 1/|window i|`` on window i) or of ``A^T``.

    Row ``j`` of the map reads positions ``idx[j, :]`` with weights ``wts[j, :]``;
    a zero weight marks padding of the table (rows differ in length).
    """
    bounds = _args.adaptive_bounds(size, out)
    if not transpose:
        rows = [list(range(s, e)) for s, e in bounds]
        weights = [[1.0 / (e - s)] * (e - s) for s, e in bounds]
    else:  # row t of A^T: the windows containing input t (a contiguous run)
        rows = [[i for i, (s, e) in enumerate(bounds) if s <= t < e] for t in range(size)]
        weights = [[1.0 / (bounds[i][1] - bounds[i][0]) for i in r] for r in rows]
    width = max(len(r) for r in rows)
    idx = np.array([r + [r[-1]] * (width - len(r)) for r in rows], np.int32)
    wts = np.array([w + [0.0] * (width - len(w)) for w in weights])
    return idx, wts


def _apply_per_dim(x, sizes_from, sizes_to, transpose):
    """Apply ``A`` (or ``A^T``) along every spatial dim, as weighted gathers.

    Not a dense matrix product: there ``0 * nan`` would carry one non-finite
    input into every output of its row. Each output reads only its own window
    (masked with ``where``), so a NaN or inf stays in the windows holding it,
    as in PyTorch.
    """
    acc = _acc(x.dtype)
    y = x.astype(acc)
    for a, (n, o) in enumerate(zip(sizes_from, sizes_to)):
        axis = a + 2
        idx, wts = _adaptive_tables(o, n, True) if transpose else _adaptive_tables(n, o, False)
        taken = jnp.take(y, jnp.asarray(idx.ravel()), axis=axis)
        taken = taken.reshape(y.shape[:axis] + idx.shape + y.shape[axis + 1:])
        w = jnp.asarray(wts.reshape(wts.shape + (1,) * (y.ndim - axis - 1)), acc)
        y = jnp.sum(jnp.where(w != 0, taken * w, jnp.zeros((), acc)), axis=axis + 1)
    return y.astype(x.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _adaptive_avg(cfg, x):
    """``A x`` with ``A = A_1 (x) ... (x) A_nd``, ``A_d[i, t] = 1/|window i|`` on window i."""
    D, O = cfg
    return _apply_per_dim(x, D, O, False)


def _adaptive_avg_fwd(cfg, x):
    return _adaptive_avg(cfg, x), None


# y = A x with A the (separable) averaging matrix, so dx = A^T g: each
# window spreads its cotangent over its elements divided by its size;
# overlapping windows add up.
def _adaptive_avg_bwd(cfg, _, g):
    return (_adaptive_avg_t(cfg, g),)


_adaptive_avg.defvjp(_adaptive_avg_fwd, _adaptive_avg_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _adaptive_avg_t(cfg, g):
    D, O = cfg
    return _apply_per_dim(g, O, D, True)


def _adaptive_avg_t_fwd(cfg, g):
    return _adaptive_avg_t(cfg, g), None


# x = A^T g, so dg = A h.
def _adaptive_avg_t_bwd(cfg, _, h):
    return (_adaptive_avg(cfg, h),)


_adaptive_avg_t.defvjp(_adaptive_avg_t_fwd, _adaptive_avg_t_bwd)


def _adaptive_max_impl(D, O, x):
    """Max and flat plane index of every adaptive window, one spatial dim at a time.

    The max over a box is the max over its rows of the max within each row.
    Reducing the last dim first with PyTorch's scan rule (replace if larger or
    NaN) and then each earlier dim with the same rule gives exactly PyTorch's
    row-major answer: the first maximum on ties, the last NaN if any.
    """
    nd = len(D)
    vals = x
    pos: list = []  # position arrays of the dims already reduced (a+1, ..., nd-1)
    for a in reversed(range(nd)):
        axis = a + 2
        bounds = _args.adaptive_bounds(D[a], O[a])
        kmax = max(e - s for s, e in bounds)
        shape = [1] * (nd + 2)
        shape[axis] = O[a]
        best = bpos = None
        bcarried: list = []
        for slot in range(kmax):
            ids = np.array([min(s + slot, e - 1) for s, e in bounds], np.int32)
            v = jnp.take(vals, jnp.asarray(ids), axis=axis)
            ids_b = jnp.asarray(ids.reshape(shape))
            carried = [jnp.take(c, jnp.asarray(ids), axis=axis) for c in pos]
            if best is None:
                best, bpos, bcarried = v, jnp.broadcast_to(ids_b, v.shape), carried
                continue
            valid = np.array([s + slot < e for s, e in bounds]).reshape(shape)
            take = jnp.asarray(valid) & ((v > best) | jnp.isnan(v))
            best = jnp.where(take, v, best)
            bpos = jnp.where(take, ids_b, bpos)
            bcarried = [jnp.where(take, c, bc) for c, bc in zip(carried, bcarried)]
        vals = best
        pos = [bpos] + bcarried
    plane = np.cumprod((1,) + tuple(D)[::-1])[:-1][::-1]
    flat = sum(p * int(st) for p, st in zip(pos, plane))
    return vals, flat.astype(jnp.int32)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _adaptive_max(cfg, x):
    D, O = cfg
    return _adaptive_max_impl(D, O, x)


def _adaptive_max_fwd(cfg, x):
    y, flat = _adaptive_max(cfg, x)
    return (y, flat), flat


# Locally y = P_idx x with P the 0/1 matrix reading each window's argmax
# (first maximum in row-major window order on ties, last NaN with NaNs), so
# dx = P^T g: scatter-add the cotangent at the argmax (adaptive windows may
# overlap and share it).
def _adaptive_max_bwd(cfg, flat, cts):
    g, _ = cts
    return (_scatter_add_flat(cfg[0], flat, g),)


_adaptive_max.defvjp(_adaptive_max_fwd, _adaptive_max_bwd)


# --------------------------------------------------------------------------
# Upsample / block sum
# --------------------------------------------------------------------------


def _upsample_impl(factor, x):
    N, C = x.shape[:2]
    sp = x.shape[2:]
    inter = (N, C) + sum(((d, 1) for d in sp), ())
    big = (N, C) + sum(((d, f) for d, f in zip(sp, factor)), ())
    return jnp.broadcast_to(x.reshape(inter), big).reshape(
        (N, C) + tuple(d * f for d, f in zip(sp, factor)))


def _block_sum_impl(factor, g):
    N, C = g.shape[:2]
    sp = tuple(d // f for d, f in zip(g.shape[2:], factor))
    big = (N, C) + sum(((d, f) for d, f in zip(sp, factor)), ())
    axes = tuple(3 + 2 * a for a in range(len(sp)))
    return jnp.sum(g.reshape(big), axis=axes, dtype=_acc(g.dtype)).astype(g.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _upsample(factor, x):
    return _upsample_impl(factor, x)


def _upsample_fwd(factor, x):
    return _upsample(factor, x), None


# y = (x kron ones(factor)) = U x, U copying each element into its block;
# dx = U^T g: the sum of the cotangent over each block.
def _upsample_bwd(factor, _, g):
    return (_block_sum(factor, g),)


_upsample.defvjp(_upsample_fwd, _upsample_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _block_sum(factor, g):
    return _block_sum_impl(factor, g)


def _block_sum_fwd(factor, g):
    return _block_sum(factor, g), None


# x = U^T g, so dg = U h: upsample the cotangent.
def _block_sum_bwd(factor, _, h):
    return (_upsample(factor, h),)


_block_sum.defvjp(_block_sum_fwd, _block_sum_bwd)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------

def _float_input(fn, x):
    x = _args.as_array(fn, "x", x)
    _args.check_batched(fn, "x", x.shape)
    _args.check_floating(fn, x=x)
    return x


def max_pool(
    x: Any,
    window: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
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
    an argmax add up. It uses no ``select_and_scatter``. Gradients are
    hand-derived ``jax.custom_vjp`` rules; reverse-over-reverse (grad of grad)
    works. Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not
    available on ``custom_vjp`` functions; use ``jax.jacrev(jax.grad(f))``.
    """
    fn = "max_pool"
    x = _float_input(fn, x)
    geom = _args.pool_geometry(fn, x.shape, window, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
    return_indices = _args.check_bool(fn, "return_indices", return_indices)
    y, idx = _max_pool(geom, x)
    if return_indices:
        return y, _flat_indices(geom, lax.stop_gradient(idx))
    return y


def avg_pool(
    x: Any,
    window: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor: int | None = None,
):
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
    divisor (overlapping windows add up). Gradients are hand-derived
    ``jax.custom_vjp`` rules; reverse-over-reverse works. Forward mode
    (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
    ``custom_vjp`` functions.
    """
    fn = "avg_pool"
    x = _float_input(fn, x)
    geom = _args.pool_geometry(fn, x.shape, window, stride=stride, padding=padding,
                               ceil_mode=ceil_mode)
    cip = _args.check_bool(fn, "count_include_pad", count_include_pad)
    div = _args.pool_divisor_arg(fn, divisor)
    return _avg_pool(geom, (cip, div), x)


def lp_pool(x: Any, p: float, window: Any, *, stride: Any = None, padding: Any = 0,
            ceil_mode: bool = False):
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
    ``x = 0`` (no NaN). Gradients are hand-derived ``jax.custom_vjp`` rules;
    reverse-over-reverse works. Forward mode (``jax.jvp``, ``jax.jacfwd``,
    ``jax.hessian``) is not available on ``custom_vjp`` functions.
    """
    fn = "lp_pool"
    x = _float_input(fn, x)
    p = _args.pool_norm(fn, p)
    geom = _args.pool_geometry(fn, x.shape, window, stride=stride, padding=padding,
                               ceil_mode=ceil_mode)
    return _lp_pool(geom, p, x)


def weighted_pool(x: Any, weights: Any, *, stride: Any = None, padding: Any = 0):
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
    normalisation). Gradients are hand-derived ``jax.custom_vjp`` rules;
    reverse-over-reverse works. Forward mode (``jax.jvp``, ``jax.jacfwd``,
    ``jax.hessian``) is not available on ``custom_vjp`` functions.
    """
    fn = "weighted_pool"
    x = _float_input(fn, x)
    w = _args.as_array(fn, "weights", weights)
    nd = x.ndim - 2
    if w.ndim != nd or any(d < 1 for d in w.shape):
        raise ValueError(
            f"jaxconv.{fn}: weights must have the window's shape, one non-empty dim per "
            f"spatial dim of x ({nd}); got weights.shape={tuple(w.shape)}, x.shape={tuple(x.shape)}"
        )
    _args.check_floating(fn, x=x, weights=w)
    geom = _args.pool_geometry(fn, x.shape, tuple(w.shape), stride=stride, padding=padding)
    if not isinstance(w, jax.core.Tracer):
        total = float(jnp.sum(w, dtype=_acc(w.dtype)))
        if not np.isfinite(total) or abs(total) <= 1e-6 * float(jnp.sum(jnp.abs(w), dtype=_acc(w.dtype))):
            raise ValueError(
                f"jaxconv.{fn}: weights must have a finite, nonzero sum (they are divided by "
                f"it); got sum(weights)={total:g}"
            )
    cg = ConvGeometry(geom.in_spatial, geom.window, geom.out_spatial, geom.stride,
                      geom.full_padding, geom.dilation, x.shape[1])
    return _weighted_pool(cg, x, w)


def gaussian_window(window: Any, sigma: Any, *, dtype: Any = jnp.float32):
    """A Gaussian weight window for :func:`weighted_pool`, normalised to sum 1.

    ``w[j] ∝ exp(-sum_d (j_d - c_d)^2 / (2 sigma_d^2))`` with ``c_d = (k_d - 1) / 2``
    the window's centre: the weight falls off with the distance from the
    central pixel.

    Args:
      window: tuple of ints (one per spatial dim) >= 1; an int gives a 1-D window.
      sigma: a positive number or one per dim.
      dtype: floating dtype of the result.

    Returns:
      An array of shape ``window``.
    """
    fn = "gaussian_window"
    nd = len(window) if isinstance(window, (tuple, list)) else 1
    window = _args.int_tuple(fn, "window", window, nd, minimum=1)
    sig = sigma if isinstance(sigma, (tuple, list)) else (sigma,) * nd
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
    e = np.zeros(window)
    for a, (k, s) in enumerate(zip(window, sig)):
        shape = [1] * nd
        shape[a] = k
        e = e + ((np.arange(k) - (k - 1) / 2.0) ** 2 / (2.0 * float(s) ** 2)).reshape(shape)
    w = np.exp(-e)
    return jnp.asarray(w / w.sum(), dtype)


def max_unpool(x: Any, indices: Any, output_size: Any):
    """Partial inverse of :func:`max_pool`, PyTorch ``max_unpool1d/2d/3d`` semantics.

    ``y[n, c].flat[indices[n, c, p]] = x[n, c, p]``; every other element is 0.

    Args:
      x: pooled values ``(N, C, *O)``, floating point.
      indices: integer array of x's shape: flat indices within each ``(N, C)``
        output plane, as returned by ``max_pool(..., return_indices=True)``.
      output_size: the spatial size of the result (``D``, usually the pooled
        input's), or the full shape ``(N, C, *D)``, as PyTorch accepts.

    Returns:
      ``(N, C, *D)`` in x's dtype.

    Differences from PyTorch: indices outside ``[0, prod(D))`` raise a
    ValueError when ``indices`` is concrete; under ``jit`` they are dropped
    (PyTorch raises). Where two entries share an index (overlapping windows'
    shared maximum, equal values) one of them is written, as in PyTorch.

    Raises:
      ValueError, TypeError: bad shapes or arguments.

    The gradient in ``x`` gathers the cotangent at the indices (none for the
    integer indices). Gradients are hand-derived ``jax.custom_vjp`` rules;
    reverse-over-reverse works. Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
    ``custom_vjp`` functions.
    """
    fn = "max_unpool"
    x = _float_input(fn, x)
    idx = _args.as_array(fn, "indices", indices)
    out = _args.unpool_output_size(fn, x.shape, idx.shape, output_size)
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(
            f"jaxconv.{fn}: indices must have an integer dtype; got indices.dtype={idx.dtype}")
    if not isinstance(idx, jax.core.Tracer):
        size = int(np.prod(out))
        lo, hi = int(jnp.min(idx)), int(jnp.max(idx))
        if lo < 0 or hi >= size:
            raise ValueError(
                f"jaxconv.{fn}: indices must lie in [0, {size}) (the output plane "
                f"{tuple(out)}); got indices in [{lo}, {hi}]")
    return _unpool(out, idx.astype(jnp.int32), x)


def adaptive_avg_pool(x: Any, output_size: Any):
    """Adaptive average pooling, PyTorch ``adaptive_avg_pool1d/2d/3d`` semantics.

    Output ``i`` along a dim of size ``D`` averages input ``[floor(i*D/out),
    ceil((i+1)*D/out))``; windows may overlap when ``out`` does not divide
    ``D``. ``output_size=1`` is global average pooling.

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      output_size: int >= 1 or one per dim (None keeps that dim's size).

    Returns:
      ``(N, C, *output_size)`` in x's dtype.

    Raises:
      ValueError, TypeError: bad shapes or an output size < 1.

    The gradient spreads each window's cotangent divided by its size
    (overlaps add up). Gradients are hand-derived ``jax.custom_vjp`` rules;
    reverse-over-reverse works. Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
    ``custom_vjp`` functions.
    """
    fn = "adaptive_avg_pool"
    x = _float_input(fn, x)
    out = _args.adaptive_output_size(fn, x.shape, output_size)
    return _adaptive_avg((tuple(x.shape[2:]), out), x)


def adaptive_max_pool(x: Any, output_size: Any, *, return_indices: bool = False):
    """Adaptive max pooling, PyTorch ``adaptive_max_pool1d/2d/3d`` semantics.

    Output ``i`` along a dim of size ``D`` is the max of input
    ``[floor(i*D/out), ceil((i+1)*D/out))``. ``output_size=1`` is global max pooling.

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      output_size: int >= 1 or one per dim (None keeps that dim's size).
      return_indices: also return the flat plane index of each maximum (int32;
        PyTorch: int64): the first maximum in row-major window order on ties,
        the last NaN if the window has NaNs (PyTorch's CPU rule).

    Returns:
      ``(N, C, *output_size)`` in x's dtype, or ``(y, indices)``.

    Raises:
      ValueError, TypeError: bad shapes or an output size < 1.

    The gradient (in ``x``) sends each window's cotangent to its argmax
    (windows sharing one add up). Gradients are hand-derived
    ``jax.custom_vjp`` rules; reverse-over-reverse works. Forward mode
    (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
    ``custom_vjp`` functions.
    """
    fn = "adaptive_max_pool"
    x = _float_input(fn, x)
    out = _args.adaptive_output_size(fn, x.shape, output_size)
    return_indices = _args.check_bool(fn, "return_indices", return_indices)
    y, flat = _adaptive_max((tuple(x.shape[2:]), out), x)
    return (y, lax.stop_gradient(flat)) if return_indices else y


def upsample(x: Any, factor: Any):
    """Nearest-neighbour upsampling: ``x`` Kronecker ``ones(factor)`` on the spatial dims.

    ``y[n, c, t] = x[n, c, t // factor]``: the "upsample" of backprop through
    mean pooling (with a ``1 / prod(factor)`` scale), and PyTorch's
    ``F.interpolate(x, scale_factor=factor, mode="nearest")`` for integer factors.

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      factor: int >= 1 or one per spatial dim.

    Returns:
      ``(N, C, *(D * factor))`` in x's dtype.

    Raises:
      ValueError, TypeError: bad shapes or arguments.

    The gradient sums the cotangent over each block. Gradients are
    hand-derived ``jax.custom_vjp`` rules; reverse-over-reverse works.
    Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on ``custom_vjp`` functions.
    """
    fn = "upsample"
    x = _float_input(fn, x)
    factor = _args.int_tuple(fn, "factor", factor, x.ndim - 2, minimum=1)
    return _upsample(factor, x)
