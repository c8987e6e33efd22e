"""The linear window maps that pools are built from, each declared as an adjoint pair.

A pool with static :class:`~jaxconv._src.geometry.PoolGeometry` reads, for
output position ``p`` and window tap ``j``, the padded input at
``p*stride + j*dilation`` (the unpadded input at ``t = p*stride + j*dilation - lo``).
Three linear maps over that index relation, and their adjoints:

* window sum ``y = diag(scale) S x`` / window spread ``S^T diag(scale) g``
  (``S[p, t] = 1`` iff ``t`` is a tap of window ``p``): avg and Lp pools;
* gather at the argmax ``M_idx h`` / scatter to the argmax ``M_idx^T g``
  (``idx`` the window offset of each window's maximum): max pool;
* gather at flat plane indices ``P_idx h`` / scatter-add at them ``P_idx^T v``:
  adaptive max pool and unpooling.

Each pair is declared with :func:`jaxconv._src._linear.adjoint_pair`, so each
map's VJP is the other and a gradient of a gradient runs the same maps.
Forward mode (``jax.jvp``) is not available on these ``custom_vjp`` maps.

The transposes that scatter into the input (spread, argmax scatter) use no
``select_and_scatter`` or scatter op (slow loops on CPU): input position
``t = q*stride + r`` belongs to *phase* ``r`` (one per ``stride`` residue), a
tap reaches exactly one phase, shifted by a whole number of output positions.
So each phase is a sum of shifted (padded or cropped) tap contributions of the
output's size, and the phases interleave into the input with one
stack-and-reshape: about ``prod(window)`` element operations per *output*
instead of per input element and tap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._linear import acc_dtype, adjoint_pair
from .geometry import PoolGeometry

Tap = tuple[int, ...]


def offsets(geom: PoolGeometry) -> list[Tap]:
    """Every window tap, in window order (row-major: the last dim fastest)."""
    return list(itertools.product(*(range(k) for k in geom.window)))


def tap(geom: PoolGeometry, x: jax.Array, j: Tap, value: float) -> jax.Array:
    """What tap ``j`` of every window reads: ``x[p*stride + j*dilation - lo]``, and
    ``value`` where that falls into the padding; shape ``(N, C, *out_spatial)``.

    A strided slice of the positions inside ``x``, padded to the output's size,
    so no padded copy of ``x`` is made: XLA fuses both into the consumer.
    """
    start, limit, pads = [0, 0], list(x.shape[:2]), [(0, 0, 0)] * 2
    for D, O, s, jj, d, (lo, _) in zip(geom.in_spatial, geom.out_spatial, geom.stride, j,
                                       geom.dilation, geom.padding):
        off = jj * d - lo
        first = min(max(-(off // s), 0), O)  # first p with p*s + off >= 0
        last = min(max((D - 1 - off) // s, first - 1), O - 1)  # last p with p*s + off < D
        start.append(first * s + off if last >= first else 0)
        limit.append((last * s + off + 1) if last >= first else 0)
        pads.append((first, O - 1 - last, 0))
    strides = (1, 1) + geom.stride
    inside = lax.slice(x, start, limit, strides)
    return lax.pad(inside, jnp.asarray(value, x.dtype), pads)


def phase_scatter(geom: PoolGeometry, part: Callable[[int, Tap], jax.Array]) -> jax.Array:
    """``sum_j T_j^T part(jf, j)``: every output-shaped contribution ``part(jf, j)``
    of tap ``j`` (``jf`` its flat number) sent back to the input positions the
    tap reads, ``(N, C, *out_spatial) -> (N, C, *in_spatial)``.

    Tap ``j`` reads input ``t = p*s + j*d - lo``. With ``off = j*d - lo``,
    ``t = (p + off // s)*s + off % s``: phase ``r = off % s`` at position
    ``q = p + off // s``. Each phase (``ceil(D / s)`` long per dim) sums its taps
    shifted by ``off // s`` (``lax.pad``; a negative pad crops what falls into the
    padding), and the phases interleave: ``(.., Q, s, ..) -> (.., Q*s, ..)``,
    cropped to ``D`` (the ceil-mode overhang).
    """
    nd = geom.ndim
    Q = tuple(-(-D // s) for D, s in zip(geom.in_spatial, geom.stride))
    phases: dict[Tap, jax.Array] = {}
    for jf, j in enumerate(offsets(geom)):
        off = [jj * d - lo for jj, d, (lo, _) in zip(j, geom.dilation, geom.padding)]
        r = tuple(o % s for o, s in zip(off, geom.stride))
        v = part(jf, j)
        cfg = [(0, 0, 0)] * 2 + [(o // s, q - n - o // s, 0) for o, s, q, n in
                                 zip(off, geom.stride, Q, geom.out_spatial)]
        shifted = lax.pad(v, jnp.zeros((), v.dtype), cfg)
        phases[r] = shifted + phases[r] if r in phases else shifted
    some = next(iter(phases.values()))
    zero = jnp.zeros(some.shape, some.dtype)
    # Interleave the last dim's phases first: arrays keyed by r[:a+1] hold
    # (N, C, Q_0 .. Q_a, D'_{a+1} ..) with the later dims already merged.
    level = {r: phases.get(r, zero) for r in itertools.product(*(range(s) for s in geom.stride))}
    for a in reversed(range(nd)):
        merged: dict[Tap, jax.Array] = {}
        for prefix in itertools.product(*(range(s) for s in geom.stride[:a])):
            parts = [level[prefix + (r,)] for r in range(geom.stride[a])]
            st = jnp.stack(parts, axis=3 + a)
            shape = st.shape[:2 + a] + (Q[a] * geom.stride[a],) + st.shape[4 + a:]
            merged[prefix] = st.reshape(shape)
        level = merged
    out = level[()]
    return out[(slice(None), slice(None)) + tuple(slice(0, D) for D in geom.in_spatial)]


# --------------------------------------------------------------------------
# Window sum / window spread (avg and Lp pools)
# --------------------------------------------------------------------------


def _scaled(v: jax.Array, scale: jax.Array | None) -> jax.Array:
    return v if scale is None else v * scale.astype(v.dtype)


def _window_sum(geom: PoolGeometry, scale: jax.Array | None, x: jax.Array) -> jax.Array:
    """``diag(scale) S x``: ``y[p] = scale[p] * sum_j x_pad[p*stride + j*dilation]``
    (zero padding; ``scale`` broadcasts to ``out_spatial``, None = 1), in x's dtype.

    A sum of strided slices, one per tap, which XLA fuses into one loop (on CPU
    several times faster than ``lax.reduce_window``)."""
    xa = x.astype(acc_dtype(x.dtype))
    taps = [tap(geom, xa, j, 0.0) for j in offsets(geom)]
    y = taps[0]
    for t in taps[1:]:
        y = y + t
    return _scaled(y, scale).astype(x.dtype)


def _window_spread(geom: PoolGeometry, scale: jax.Array | None, g: jax.Array) -> jax.Array:
    """``S^T diag(scale) g``: every window's (scaled) value added to each of its
    taps; taps in the padding are dropped. ``(N, C, *out) -> (N, C, *in)``."""
    ga = _scaled(g.astype(acc_dtype(g.dtype)), scale)
    return phase_scatter(geom, lambda jf, j: ga).astype(g.dtype)


# y = diag(scale) S x with S the 0/1 window matrix (S[p, t] = 1 iff input t is a
# tap of window p), so dx = S^T diag(scale) g: each window spreads its scaled
# cotangent over its taps (overlaps add; taps in the padding drop). And back:
# x = S^T diag(scale) g gives dg = diag(scale) S h. scale is constant.
window_sum, window_spread = adjoint_pair(_window_sum, _window_spread)


# --------------------------------------------------------------------------
# Gather at / scatter to the argmax (max pool)
# --------------------------------------------------------------------------


def _gather_argmax(geom: PoolGeometry, idx: jax.Array, h: jax.Array) -> jax.Array:
    """``M_idx h``: ``h`` at each window's argmax (window offset ``idx``, flat in
    window order). ``(N, C, *in) -> (N, C, *out)``."""
    out = jnp.zeros(idx.shape, h.dtype)
    for jf, j in enumerate(offsets(geom)):
        out = jnp.where(idx == jf, tap(geom, h, j, 0.0), out)
    return out


def _scatter_argmax(geom: PoolGeometry, idx: jax.Array, g: jax.Array) -> jax.Array:
    """``M_idx^T g``: each window's value added at its argmax (windows sharing
    one add up). ``(N, C, *out) -> (N, C, *in)``."""
    ga = g.astype(acc_dtype(g.dtype))
    zero = jnp.zeros((), ga.dtype)
    if _tiles(geom):
        return _scatter_tiles(geom, idx, ga).astype(g.dtype)
    return phase_scatter(geom, lambda jf, j: jnp.where(idx == jf, ga, zero)).astype(g.dtype)


def _tiles(geom: PoolGeometry) -> bool:
    """Whether the windows tile the input: stride = window, no dilation, no padding."""
    return (geom.stride == geom.window and all(d == 1 for d in geom.dilation)
            and all(p == (0, 0) for p in geom.full_padding))


def _scatter_tiles(geom: PoolGeometry, idx: jax.Array, g: jax.Array) -> jax.Array:
    """:func:`_scatter_argmax` for windows that tile the input: one select over the
    input, seen as ``(N, C, O_0, k_0, O_1, k_1, ..)`` blocks, keeps ``g`` where the
    window offset is the argmax (LeNet's 2x2 pools: one fused loop where the phases
    took one select per tap and an interleaving copy)."""
    lead = idx.shape[:2]
    blocks = [n for O, k in zip(geom.out_spatial, geom.window) for n in (O, k)]
    wide = (*lead, *(n if a % 2 == 0 else 1 for a, n in enumerate(blocks)))
    offs = np.arange(int(np.prod(geom.window))).reshape(geom.window)
    offs = offs.reshape([n for k in geom.window for n in (1, k)])  # (1, k_0, 1, k_1, ..)
    hit = idx.reshape(wide) == jnp.asarray(offs, idx.dtype)
    dx = jnp.where(hit, g.reshape(wide), jnp.zeros((), g.dtype))
    dx = dx.reshape((*lead, *(O * k for O, k in zip(geom.out_spatial, geom.window))))
    tail = [(0, 0)] * 2 + [(0, D - O * k) for D, O, k in
                           zip(geom.in_spatial, geom.out_spatial, geom.window)]
    return jnp.pad(dx, tail) if any(hi for _, hi in tail) else dx


# y = M_idx h with M the 0/1 matrix reading each window's argmax (fixed by the
# integer idx: no cotangent), so dh = M^T g: scatter each window's cotangent to
# its argmax; and for x = M^T g, dg = M h: read the cotangent at the argmax.
gather_argmax, scatter_argmax = adjoint_pair(_gather_argmax, _scatter_argmax)


# --------------------------------------------------------------------------
# Gather at / scatter-add at flat plane indices (adaptive max pool, unpool)
# --------------------------------------------------------------------------


def _gather_flat(spatial: tuple[int, ...], idx: jax.Array, h: jax.Array) -> jax.Array:
    """``P_idx h``: ``h[n, c].flat[idx[n, c, ...]]`` (out of range: 0); ``h`` is
    ``(N, C, *spatial)``, the result has idx's shape."""
    nc = idx.shape[0] * idx.shape[1]
    out = jnp.take_along_axis(h.reshape(nc, -1), idx.reshape(nc, -1), axis=1, mode="fill",
                              fill_value=0)
    return out.reshape(idx.shape)


def scatter_flat(spatial: tuple[int, ...], idx: jax.Array, v: jax.Array, *,
                 add: bool) -> jax.Array:
    """Write (``add=False``) or add ``v`` at flat plane positions ``idx`` of a zero
    ``(N, C, *spatial)`` array; out-of-range indices are dropped."""
    nc = idx.shape[0] * idx.shape[1]
    z = jnp.zeros((nc, int(np.prod(spatial))), v.dtype)
    rows = jnp.arange(nc, dtype=jnp.int32)[:, None]
    at = z.at[rows, idx.reshape(nc, -1)]
    z = at.add(v.reshape(nc, -1), mode="drop") if add else at.set(v.reshape(nc, -1), mode="drop")
    return z.reshape(idx.shape[:2] + tuple(spatial))


def _scatter_add_flat(spatial: tuple[int, ...], idx: jax.Array, v: jax.Array) -> jax.Array:
    """``P_idx^T v``: add ``v`` at flat plane positions ``idx``."""
    return scatter_flat(spatial, idx, v, add=True)


# y = P_idx h with P the 0/1 matrix reading the flat positions idx (integer: no
# cotangent), so dh = P^T g: scatter-add the cotangent at idx; and for
# x = P^T v, dv = P h: gather the cotangent at idx.
gather_flat, scatter_add_flat = adjoint_pair(_gather_flat, _scatter_add_flat)
