"""Adaptive pools, unpooling and nearest-neighbour upsampling, with hand-derived VJPs.

Semantics follow ``torch.nn.functional`` (``adaptive_avg_pool*d``,
``adaptive_max_pool*d``, ``max_unpool*d``, ``interpolate(mode="nearest")``
for integer factors). The linear maps come in adjoint pairs declared with
:func:`jaxconv._src._linear.adjoint_pair` (adaptive average / its transpose,
upsample / block sum); adaptive max and unpooling use the flat-index gather /
scatter-add pair of :mod:`jaxconv._src.window`.

Forward mode: every op here is a ``jax.custom_vjp`` function, so ``jax.jvp``,
``jax.jacfwd`` and ``jax.hessian`` are not available; reverse-over-reverse is.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Literal, cast, overload

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from . import _args
from ._linear import acc_dtype, adjoint_pair
from .pool import IntOrSeq, _float_input
from .window import gather_flat, scatter_add_flat, scatter_flat

Sizes = tuple[int, ...]

# --------------------------------------------------------------------------
# Adaptive average pool: a separable averaging matrix and its transpose
# --------------------------------------------------------------------------


def _adaptive_tables(size: int, out: int, transpose: bool) -> tuple[np.ndarray, np.ndarray]:
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


def _apply_per_dim(x: jax.Array, sizes_from: Sizes, sizes_to: Sizes, transpose: bool) -> jax.Array:
    """Apply ``A`` (or ``A^T``) along every spatial dim, as weighted gathers.

    Not a dense matrix product: there ``0 * nan`` would carry one non-finite
    input into every output of its row. Each output reads only its own window
    (masked with ``where``), so a NaN or inf stays in the windows holding it,
    as in PyTorch.
    """
    acc = acc_dtype(x.dtype)
    y = x.astype(acc)
    for a, (n, o) in enumerate(zip(sizes_from, sizes_to)):
        axis = a + 2
        idx, wts = _adaptive_tables(o, n, True) if transpose else _adaptive_tables(n, o, False)
        taken = jnp.take(y, jnp.asarray(idx.ravel()), axis=axis)
        taken = taken.reshape(y.shape[:axis] + idx.shape + y.shape[axis + 1:])
        w = jnp.asarray(wts.reshape(wts.shape + (1,) * (y.ndim - axis - 1)), acc)
        y = jnp.sum(jnp.where(w != 0, taken * w, jnp.zeros((), acc)), axis=axis + 1)
    return y.astype(x.dtype)


def _adaptive_avg(cfg: tuple[Sizes, Sizes], x: jax.Array) -> jax.Array:
    """``A x``, ``A = A_1 (x) ... (x) A_nd``: ``(N, C, *D) -> (N, C, *O)``, cfg = (D, O)."""
    return _apply_per_dim(x, cfg[0], cfg[1], False)


def _adaptive_avg_t(cfg: tuple[Sizes, Sizes], g: jax.Array) -> jax.Array:
    """``A^T g``: ``(N, C, *O) -> (N, C, *D)``."""
    return _apply_per_dim(g, cfg[1], cfg[0], True)


# y = A x with A the separable averaging matrix (A_d[i, t] = 1/|window i| on
# window i), so dx = A^T g: each window spreads its cotangent over its elements
# divided by its size (overlapping windows add up); and x = A^T g gives dg = A h.
adaptive_avg, adaptive_avg_t = adjoint_pair(_adaptive_avg, _adaptive_avg_t)


# --------------------------------------------------------------------------
# Adaptive max pool
# --------------------------------------------------------------------------


def _adaptive_max_impl(D: Sizes, O: Sizes, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Max and flat plane index of every adaptive window, one spatial dim at a time.

    The max over a box is the max over its rows of the max within each row.
    Reducing the last dim first with PyTorch's scan rule (replace if larger or
    NaN) and then each earlier dim with the same rule gives exactly PyTorch's
    row-major answer: the first maximum on ties, the last NaN if any.
    """
    nd = len(D)
    vals = x
    pos: list[jax.Array] = []  # position arrays of the dims already reduced
    for a in reversed(range(nd)):
        axis = a + 2
        starts, ends = np.array(_args.adaptive_bounds(D[a], O[a]), np.int32).T
        slots = np.arange(int(np.max(ends - starts)), dtype=np.int32)[:, None]
        # slot i of every window (its last element where the window is shorter)
        table = np.minimum(starts + slots, ends - 1)  # (slots, O[a])
        valid = (starts + slots < ends).reshape((-1, *[1] * axis, O[a], *[1] * (nd - a - 1)))
        bshape = [1] * (nd + 2)
        bshape[axis] = O[a]
        best = jnp.take(vals, jnp.asarray(table[0]), axis=axis)
        bpos = jnp.broadcast_to(jnp.asarray(table[0].reshape(bshape)), best.shape)
        bcarried = [jnp.take(c, jnp.asarray(table[0]), axis=axis) for c in pos]
        for i in range(1, len(table)):
            v = jnp.take(vals, jnp.asarray(table[i]), axis=axis)
            take = jnp.asarray(valid[i]) & ((v > best) | jnp.isnan(v))
            best = jnp.where(take, v, best)
            bpos = jnp.where(take, jnp.asarray(table[i].reshape(bshape)), bpos)
            bcarried = [jnp.where(take, jnp.take(c, jnp.asarray(table[i]), axis=axis), bc)
                        for c, bc in zip(pos, bcarried)]
        vals = best
        pos = [bpos, *bcarried]
    plane = np.cumprod((1,) + tuple(D)[::-1])[:-1][::-1]
    flat = sum(p * int(st) for p, st in zip(pos, plane))
    return vals, jnp.asarray(flat).astype(jnp.int32)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _adaptive_max(cfg: tuple[Sizes, Sizes], x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _adaptive_max_impl(cfg[0], cfg[1], x)


def _adaptive_max_fwd(cfg: tuple[Sizes, Sizes], x: jax.Array):
    y, flat = _adaptive_max(cfg, x)
    return (y, flat), flat


# Locally y = P_idx x with P the 0/1 matrix reading each window's argmax
# (first maximum in row-major window order on ties, last NaN with NaNs), so
# dx = P^T g: scatter-add the cotangent at the argmax (adaptive windows may
# overlap and share it).
def _adaptive_max_bwd(cfg: tuple[Sizes, Sizes], flat: jax.Array,
                      cts: tuple[jax.Array, jax.Array]):
    g, _ = cts
    return (scatter_add_flat(cfg[0], flat, g),)


_adaptive_max.defvjp(_adaptive_max_fwd, _adaptive_max_bwd)


# --------------------------------------------------------------------------
# Unpool: write at flat plane indices
# --------------------------------------------------------------------------


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpool(spatial: Sizes, idx: jax.Array, x: jax.Array) -> jax.Array:
    return scatter_flat(spatial, idx, x, add=False)


def _unpool_fwd(spatial: Sizes, idx: jax.Array, x: jax.Array):
    return _unpool(spatial, idx, x), idx


# y[idx[p]] = x[p] (positions no index names stay 0). As a matrix y = P^T x,
# so dx = P h: every input reads the cotangent at its index (PyTorch's rule,
# also when two inputs share an index -- which max_pool only produces for
# equal values).
def _unpool_bwd(spatial: Sizes, idx: jax.Array, h: jax.Array):
    return None, gather_flat(spatial, idx, h)


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


def _unpool_size(fn: str, x_shape: Sizes, idx_shape: Sizes, output_size: Sequence[int] | None,
                 window: IntOrSeq | None, stride: IntOrSeq | None,
                 padding: int | Sequence[int] | Sequence[tuple[int, int]]) -> Sizes:
    """The spatial output size; with ``window``, checked by PyTorch's
    ``_unpool_output_size`` rule: ``default - stride < size < default + stride``
    per dim, ``default = (O - 1)*stride + window - lo - hi`` (every input size
    a max pool with these arguments maps to ``O`` lies in that range)."""
    if window is None:
        if output_size is None:
            raise TypeError(
                f"jaxconv.{fn}: output_size must be given when window is not (the size of the "
                f"pooled input); got output_size=None, window=None")
        return _args.unpool_output_size(fn, x_shape, idx_shape, output_size)
    nd = _args.check_batched(fn, "x", x_shape)
    k = _args.int_tuple(fn, "window", window, nd, minimum=1)
    s = k if stride is None else _args.int_tuple(fn, "stride", stride, nd, minimum=1)
    pads = cast(tuple[tuple[int, int], ...],  # no strings allowed: never a str
                _args.padding_pairs(fn, padding, nd, allow_strings=()))
    default = tuple((o - 1) * ss + kk - lo - hi
                    for o, ss, kk, (lo, hi) in zip(x_shape[2:], s, k, pads))
    sizes = _args.unpool_output_size(fn, x_shape, idx_shape,
                                     default if output_size is None else output_size)
    for d, (n, dflt, ss) in enumerate(zip(sizes, default, s)):
        if not dflt - ss < n < dflt + ss:
            raise ValueError(
                f"jaxconv.{fn}: output_size cannot be the input of a max_pool with window={k}, "
                f"stride={s}, padding={pads} that gives x's size {tuple(x_shape[2:])}: expected "
                f"{dflt - ss} < output_size[{d}] < {dflt + ss} (PyTorch's rule); "
                f"got output_size={tuple(sizes)}")
    return sizes


# --------------------------------------------------------------------------
# Upsample / block sum
# --------------------------------------------------------------------------


def _upsample(factor: Sizes, x: jax.Array) -> jax.Array:
    """``x kron ones(factor)`` on the spatial dims: ``(N, C, *D) -> (N, C, *(D*f))``."""
    N, C = x.shape[:2]
    sp = x.shape[2:]
    inter = (N, C) + sum(((d, 1) for d in sp), ())
    big = (N, C) + sum(((d, f) for d, f in zip(sp, factor)), ())
    return jnp.broadcast_to(x.reshape(inter), big).reshape(
        (N, C) + tuple(d * f for d, f in zip(sp, factor)))


def _block_sum(factor: Sizes, g: jax.Array) -> jax.Array:
    """The sum over each ``factor``-shaped block: ``(N, C, *(D*f)) -> (N, C, *D)``."""
    N, C = g.shape[:2]
    sp = tuple(d // f for d, f in zip(g.shape[2:], factor))
    big = (N, C) + sum(((d, f) for d, f in zip(sp, factor)), ())
    axes = tuple(3 + 2 * a for a in range(len(sp)))
    return jnp.sum(g.reshape(big), axis=axes, dtype=acc_dtype(g.dtype)).astype(g.dtype)


# y = x kron ones(factor) = U x, U copying each element into its block, so
# dx = U^T g: the sum of the cotangent over each block; and x = U^T g gives
# dg = U h: upsample the cotangent.
upsample_map, block_sum = adjoint_pair(_upsample, _block_sum)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def max_unpool(
    x: ArrayLike,
    indices: ArrayLike,
    output_size: Sequence[int] | None = None,
    *,
    window: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: int | Sequence[int] | Sequence[tuple[int, int]] = 0,
) -> jax.Array:
    """Partial inverse of :func:`max_pool`, PyTorch ``max_unpool1d/2d/3d`` semantics.

    ``y[n, c].flat[indices[n, c, p]] = x[n, c, p]``; every other element is 0.

    Args:
      x: pooled values ``(N, C, *O)``, floating point.
      indices: integer array of x's shape: flat indices within each ``(N, C)``
        output plane, as returned by ``max_pool(..., return_indices=True)``.
      output_size: the spatial size of the result (``D``, usually the pooled
        input's), or the full shape ``(N, C, *D)``, as PyTorch accepts. May be
        None when ``window`` is given: then PyTorch's default
        ``(O - 1)*stride + window - lo - hi``.
      window: optional, the pooling window (int or one per dim). With it,
        ``output_size`` must be a size that pooling could have mapped to ``O``:
        ``default - stride < D < default + stride`` per dim (PyTorch's rule).
      stride: with ``window``: the pooling stride (defaults to ``window``).
      padding: with ``window``: the pooling padding (int, one per dim, or
        ``(lo, hi)`` pairs).

    Returns:
      ``(N, C, *D)`` in x's dtype.

    Differences from PyTorch: ``window`` is optional (without it, any
    ``output_size`` holding the indices is accepted); indices outside
    ``[0, prod(D))`` raise a ValueError when ``indices`` is concrete, under
    ``jit`` they are dropped (PyTorch raises). Where two entries share an index
    (overlapping windows' shared maximum, equal values) one of them is written,
    as in PyTorch.

    Raises:
      ValueError, TypeError: bad shapes or arguments, an ``output_size`` outside
        the range above.

    The gradient in ``x`` gathers the cotangent at the indices (none for the
    integer indices). Differentiable in reverse mode only (custom_vjp, no
    ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.array([[[1.0, 4.0, 2.0, 3.0, 0.0]]])
      >>> y, i = jaxconv.max_pool(x, 2, return_indices=True)
      >>> jaxconv.max_unpool(y, i, (5,))[0, 0].tolist()
      [0.0, 4.0, 0.0, 3.0, 0.0]
      >>> jaxconv.max_unpool(y, i, window=2)[0, 0].tolist()
      [0.0, 4.0, 0.0, 3.0]
    """
    fn = "max_unpool"
    arr = _float_input(fn, x)
    idx = _args.as_array(fn, "indices", indices)
    out = _unpool_size(fn, tuple(arr.shape), tuple(idx.shape), output_size, window, stride,
                       padding)
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
    return _unpool(out, idx.astype(jnp.int32), arr)


def adaptive_avg_pool(x: ArrayLike, output_size: int | Sequence[int | None]) -> jax.Array:
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
    (overlaps add up). Differentiable in reverse mode only (custom_vjp, no
    ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
      >>> jaxconv.adaptive_avg_pool(x, 2)[0, 0].tolist()
      [2.0, 4.0]
    """
    fn = "adaptive_avg_pool"
    arr = _float_input(fn, x)
    out = _args.adaptive_output_size(fn, arr.shape, output_size)
    return adaptive_avg((tuple(arr.shape[2:]), out), arr)


@overload
def adaptive_max_pool(x: ArrayLike, output_size: int | Sequence[int | None], *,
                      return_indices: Literal[False] = ...) -> jax.Array: ...
@overload
def adaptive_max_pool(x: ArrayLike, output_size: int | Sequence[int | None], *,
                      return_indices: Literal[True]) -> tuple[jax.Array, jax.Array]: ...
@overload
def adaptive_max_pool(x: ArrayLike, output_size: int | Sequence[int | None], *,
                      return_indices: bool) -> jax.Array | tuple[jax.Array, jax.Array]: ...


def adaptive_max_pool(
    x: ArrayLike, output_size: int | Sequence[int | None], *, return_indices: bool = False
) -> jax.Array | tuple[jax.Array, jax.Array]:
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
    (windows sharing one add up). Differentiable in reverse mode only
    (custom_vjp, no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x = jnp.array([[[1.0, 5.0, 3.0, 4.0, 2.0]]])
      >>> y, i = jaxconv.adaptive_max_pool(x, 2, return_indices=True)
      >>> y[0, 0].tolist(), i[0, 0].tolist()
      ([5.0, 4.0], [1, 3])
    """
    fn = "adaptive_max_pool"
    arr = _float_input(fn, x)
    out = _args.adaptive_output_size(fn, arr.shape, output_size)
    return_indices = _args.check_bool(fn, "return_indices", return_indices)
    y, flat = _adaptive_max((tuple(arr.shape[2:]), out), arr)
    return (y, lax.stop_gradient(flat)) if return_indices else y


def upsample(x: ArrayLike, factor: IntOrSeq) -> jax.Array:
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

    The gradient sums the cotangent over each block. Differentiable in reverse
    mode only (custom_vjp, no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> jaxconv.upsample(jnp.array([[[1.0, 2.0]]]), 2)[0, 0].tolist()
      [1.0, 1.0, 2.0, 2.0]
    """
    fn = "upsample"
    arr = _float_input(fn, x)
    f = _args.int_tuple(fn, "factor", factor, arr.ndim - 2, minimum=1)
    return upsample_map(f, arr)
