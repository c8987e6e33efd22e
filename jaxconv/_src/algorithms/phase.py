"""The ``phase`` algorithm: strided maps as ``prod(stride)`` stride-1 maps on sub-kernels.

The sub-pixel (polyphase) decomposition. In padded input coordinates a tap
``j`` of output ``p`` reads ``t = p*s + j*d``. Write ``j*d = m_j*s + r_j``
with residue ``r_j < s``: the taps of one residue ``r`` read only the input
phase ``x_r[q] = x_pad[q*s + r]``, at ``q = p + m_j``, and their offsets
``m_j`` are equally spaced (step ``d / gcd(d, s)``). So, per dim and per
residue ``r``, with the sub-kernel ``w_r`` (the taps of residue ``r``):

* forward:     ``y = sum_r corr(x_r, w_r)``, stride-1 correlations summed;
* weight_grad: ``dw[taps of r] = B_w^T(g; x_r)``, stride-1 weight gradients;
* input_grad:  ``dx_r = B_x^T(g; w_r)`` is a stride-1 correlation of ``g``
  with the flipped sub-kernel, and the phases ``dx_r`` interleave into
  ``dx``. No zeros are inserted between the cotangent's elements (XLA's
  ``lhs_dilation`` transposed convolution spends ``prod(stride) - 1`` of
  every ``prod(stride)`` multiplications on such zeros).

Over ``n`` dims the residues are tuples: ``prod(stride)`` stride-1 maps. Each
runs with the inner algorithm (``xla``).
Stride-1 geometries are passed to the inner algorithm unchanged.
"""

from __future__ import annotations

import itertools
import math
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from ..geometry import ConvGeometry
from . import crop_spatial, pad_spatial, pads, transpose_kernel, xla

NAME = "phase"

Precision = lax.Precision | None


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """Every geometry (stride 1 simply runs the inner algorithm)."""
    return None


def _inner() -> types.ModuleType:
    # XLA's stride-1 convolutions beat im2col's patch matrices on these
    # sub-problems (measured on CPU: 52 vs 56 ms for the 4x4 stride-2
    # transposed conv benchmark, fwd+bwd), and are the vendor's on GPU/TPU.
    return xla


@dataclass(frozen=True)
class _Dim:
    """One residue of one spatial dim: its taps ``j0, j0+step, ...`` (``count`` of them)
    read the input phase ``r`` at offsets ``m0, m0+dm, ...``."""

    r: int
    j0: int
    step: int
    count: int
    m0: int
    dm: int


def _residues(k: int, s: int, d: int) -> list[_Dim]:
    step = s // math.gcd(s, d)
    dm = d // math.gcd(s, d)
    out = []
    for r in range(s):
        js = [j for j in range(k) if (j * d) % s == r]
        if js:
            out.append(_Dim(r, js[0], step, len(js), (js[0] * d - r) // s, dm))
        else:
            out.append(_Dim(r, 0, step, 0, 0, dm))
    return out


def _phases(geom: ConvGeometry) -> list[tuple[_Dim, ...]]:
    per_dim = [_residues(k, s, d) for k, s, d in zip(geom.kernel, geom.stride, geom.dilation)]
    return list(itertools.product(*per_dim))


def _sub_kernel(w: jax.Array, ph: Sequence[_Dim]) -> jax.Array:
    start = [0, 0] + [p.j0 for p in ph]
    limit = list(w.shape[:2]) + [p.j0 + (p.count - 1) * p.step + 1 for p in ph]
    return lax.slice(w, start, limit, [1, 1] + [p.step for p in ph])


def _padded_len(geom: ConvGeometry) -> list[int]:
    """Per dim, the padded input length rounded up to a multiple of the stride."""
    return [-(-((O - 1) * s + d * (k - 1) + 1) // s) * s
            for O, k, s, d in zip(geom.out_spatial, geom.kernel, geom.stride, geom.dilation)]


def _phase_input(xp: jax.Array, ph: Sequence[_Dim], geom: ConvGeometry) -> jax.Array:
    """``x_r[q] = x_pad[q*s + r]``, from ``q = m0`` on."""
    start = [0, 0] + [p.r + p.m0 * s for p, s in zip(ph, geom.stride)]
    return lax.slice(xp, start, list(xp.shape), [1, 1, *geom.stride])


def _sub_geom(geom: ConvGeometry, ph: Sequence[_Dim], in_spatial: Sequence[int]) -> ConvGeometry:
    """The stride-1 geometry of one phase: x_r (from m0) read by the sub-kernel (dilation dm)."""
    return ConvGeometry(
        in_spatial=tuple(in_spatial),
        kernel=tuple(p.count for p in ph),
        out_spatial=geom.out_spatial,
        stride=(1,) * geom.ndim,
        padding=((0, 0),) * geom.ndim,
        dilation=tuple(p.dm for p in ph),
        groups=geom.groups,
    )


def _input_pads(geom: ConvGeometry) -> list[tuple[int, int]]:
    """(lo, hi) per dim that pad the input to :func:`_padded_len`."""
    full = _padded_len(geom)
    return [(lo, L - D - lo) for (lo, _), L, D in zip(pads(geom), full, geom.in_spatial)]


def _phase_problems(
    geom: ConvGeometry, x: jax.Array,
) -> Iterator[tuple[tuple[_Dim, ...], jax.Array, ConvGeometry]]:
    """Each phase with taps: its residues, the input phase ``x_r`` it reads, its geometry.

    ``x_r`` (from ``q = m0``) is padded or cropped behind to exactly what the
    sub-kernel reads for ``out_spatial`` outputs, so the stride-1 geometry
    needs no padding.
    """
    xp = pad_spatial(x, _input_pads(geom), 2)
    for ph in _phases(geom):
        if any(p.count == 0 for p in ph):
            continue
        xr = _phase_input(xp, ph, geom)
        need = [(O - 1) + p.dm * (p.count - 1) + 1 for O, p in zip(geom.out_spatial, ph)]
        xr = pad_spatial(xr, [(0, n - L) for n, L in zip(need, xr.shape[2:])], 2)
        yield ph, xr, _sub_geom(geom, ph, xr.shape[2:])


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w) as a sum of stride-1 correlations of the input phases with sub-kernels."""
    inner = _inner()
    if all(s == 1 for s in geom.stride):
        return inner.forward(geom, x, w, precision=precision)
    y = None
    for ph, xr, sub in _phase_problems(geom, x):
        yr = inner.forward(sub, xr, _sub_kernel(w, ph), precision=precision)
        y = yr if y is None else y + yr
    if y is None:  # pragma: no cover - every geometry has at least one tap
        raise ValueError("phase: empty kernel")
    return y


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x): per residue, the stride-1 weight gradient of that phase's taps."""
    inner = _inner()
    if all(s == 1 for s in geom.stride):
        return inner.weight_grad(geom, x, g, precision=precision)
    dw = jnp.zeros((g.shape[1], x.shape[1] // geom.groups, *geom.kernel), x.dtype)
    for ph, xr, sub in _phase_problems(geom, x):
        dwr = inner.weight_grad(sub, xr, g, precision=precision)
        idx = (slice(None), slice(None)) + tuple(
            slice(p.j0, p.j0 + (p.count - 1) * p.step + 1, p.step) for p in ph)
        dw = dw.at[idx].set(dwr)
    return dw


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): per residue a stride-1 correlation of g with the flipped,
    channel-swapped sub-kernel; the phases interleave into dx (no zero insertion)."""
    inner = _inner()
    if all(s == 1 for s in geom.stride):
        return inner.input_grad(geom, g, w, precision=precision)
    nd = geom.ndim
    n = g.shape[0]
    c_in = w.shape[1] * geom.groups
    full = _padded_len(geom)
    q = [L // s for L, s in zip(full, geom.stride)]  # phase length per dim
    wt = transpose_kernel(w, geom.groups)
    parts = []
    for ph in _phases(geom):
        if any(p.count == 0 for p in ph):
            parts.append(jnp.zeros((n, c_in, *q), g.dtype))
            continue
        # dx_r[q] = sum_u g[q - m0 - u*dm] w_r[u]: a correlation of g with the
        # flipped sub-kernel, padded in front by m0 + (count-1)*dm.
        sub_w = jnp.flip(_sub_kernel(wt, ph), axis=tuple(range(2, nd + 2)))
        lo = [p.m0 + (p.count - 1) * p.dm for p in ph]
        sub = ConvGeometry(
            in_spatial=geom.out_spatial,
            kernel=tuple(p.count for p in ph),
            out_spatial=tuple(q),
            stride=(1,) * nd,
            padding=tuple((lo_i, 0) for lo_i in lo),
            dilation=tuple(p.dm for p in ph),
            groups=geom.groups,
        )
        parts.append(inner.forward(sub, g, sub_w, precision=precision))
    # interleave: stack the residues of the last dim first, then merge (q, s) pairs
    arr = jnp.stack(parts, axis=0).reshape((*geom.stride, n, c_in, *q))
    # axes: s_0..s_{nd-1}, N, C, q_0..q_{nd-1} -> N, C, q_0, s_0, q_1, s_1, ...
    perm = [nd, nd + 1]
    for i in range(nd):
        perm += [nd + 2 + i, i]
    arr = jnp.transpose(arr, perm).reshape((n, c_in, *full))
    return crop_spatial(arr, _input_pads(geom), 2)
