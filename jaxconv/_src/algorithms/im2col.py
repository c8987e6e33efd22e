"""The ``im2col`` algorithm: patches from shifted slices and one matrix product per group.

With ``T = prod(k)`` taps, the patch matrix ``P`` (``M x TC``, ``M = N *
prod(O)`` output positions) stacks for every output position the ``T *
C_in/G`` input values the kernel reads, one strided slice per tap; ``W``
(``TC x C_out/G``) is the kernel as a matrix, so that ``Y = P @ W``. Per
group:

* forward:      ``Y^T = W^T @ P^T``: ``P^T`` is built directly (channels-first
  slices, :func:`_patches_kmajor`) so that the long ``M`` axis is minor. Or,
  mostly, from width patches instead: the last dim's taps only, every leading
  tap a block of rows of the kernel matrix, and the blocks of the product
  summed shifted (:func:`_forward_rows`, :func:`rows_forward`).
* weight_grad:  ``dW = P^T @ G`` with the same ``P^T`` and ``G`` channels-last
  (a plain row-major product, the faster layout for it, measured).
* input_grad:   ``dP^T = W @ G^T``, then the fold: every tap's columns are put
  back where they were read and summed (:func:`_fold`). Or, mostly at stride
  1, the forward of the transposed geometry (:func:`transposed_forward`).

``M = N * prod(O)`` rows make the products large, which is where XLA's CPU
matrix multiplication (up to twice as fast per flop as its CPU
convolution) pays. Groups are a batch dimension of the product.

When a row of taps (the ``k[-1]`` taps that differ only in their last index)
reads many channels, the forward and the weight gradient build ``P^T`` and
multiply it one row at a time (:data:`ROW_SPLIT_K`): each product's operand is
then a fraction of the patch matrix, read back while it is still in cache.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from .._linear import acc_dtype
from ..geometry import ConvGeometry
from . import (
    channels_last,
    crop_spatial,
    map_chunks,
    pad_spatial,
    pads,
    place_tap,
    sum_chunks,
    tap_slice,
    taps,
    transposed,
    transposed_geometry,
)

NAME = "im2col"

Precision = lax.Precision | None

#: Largest patch matrix built (elements); beyond it the algorithm declines.
MAX_PATCH_ELEMENTS = 1 << 28
#: Patch matrix elements built at once (2 MiB in float32), at least: a larger
#: batch is processed in chunks of samples (:func:`map_chunks`), so memory stays
#: bounded (2x this budget at batch 128 measured 7-10% faster but 1.2x lax's peak).
CHUNK_ELEMENTS = 1 << 19
#: The fold sums at most this many taps in one loop, more dim by dim (see :func:`_fold`).
FOLD_AT_ONCE = 9
#: The budget grows with the layer: up to this many times its input's elements,
#: and at most :data:`MAX_GROWTH` times :data:`CHUNK_ELEMENTS`. A training step
#: holds its activations anyway, so chunks that size keep its peak memory within
#: a constant factor of lax's while large batches take fewer, larger chunks:
#: LeNet step at batch 500, 92.6 against 104 ms (peak 1.05x lax's, was 1.00x);
#: unchanged at batch 128. Uncapped, 4 samples of the transposed-convolution
#: case's patches (16 MiB) ran 25% slower; a factor of 4 reached 1.42x the peak.
INPUT_FACTOR = 2.0
MAX_GROWTH = 4


def _budget(geom: ConvGeometry, n: int, c_in: int) -> int:
    """Patch elements per chunk for a layer with ``n`` samples of ``c_in`` channels."""
    grown = int(INPUT_FACTOR * n * c_in * math.prod(geom.in_spatial))
    grown = min(grown, MAX_GROWTH * CHUNK_ELEMENTS)
    return max(CHUNK_ELEMENTS, grown)


def _patch_elements(geom: ConvGeometry, n: int, c_in: int) -> int:
    return n * math.prod(geom.out_spatial) * math.prod(geom.kernel) * c_in


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """Every geometry (the patch size is checked per call, see :data:`MAX_PATCH_ELEMENTS`)."""
    return None


#: The forward and the weight gradient run one product per row of taps (see
#: :func:`_tap_rows`) when a row has at least this many patch-matrix rows per group
#: (``k[-1] * C_in/G``); fewer, one product of the whole matrix. Per map, ms, whole
#: -> per row, forward / weight gradient: 3x3 64->64 56x56 N=8 (192 per row) 22.5 /
#: 20.4 -> 16.8 / 15.5; the transposed-convolution case's 4x4 64-channel geometry
#: (256) 21.4 / 19.1 -> 17.3 / 16.6; but 7x7 stride 2 from 3 channels (21) 14.0 /
#: 14.6 -> 14.5 / 17.1 and LeNet's conv2 (100) 5.0 / 6.4 -> 6.0 / 6.6 (small
#: products run further below XLA's matmul rate). LeNet step: unchanged.
ROW_SPLIT_K = 128


def _tap_rows(geom: ConvGeometry, cin_g: int) -> list[list[tuple[int, ...]]]:
    """The taps in the groups the products run over: rows of the ``k[-1]`` taps that
    share their leading indices (C order) when a row has :data:`ROW_SPLIT_K` patch rows
    or more, else all taps in one group."""
    every = list(taps(geom))
    k_last = geom.kernel[-1]
    if k_last * cin_g < ROW_SPLIT_K:
        return [every]
    return [every[i:i + k_last] for i in range(0, len(every), k_last)]


def _padded(geom: ConvGeometry, x: jax.Array) -> jax.Array:
    """``(N, C, *D)`` -> ``(C, N, *Dp)``: channels first, padded."""
    return pad_spatial(jnp.swapaxes(x, 0, 1), pads(geom), 2)


def _stacked_taps(geom: ConvGeometry, xp: jax.Array, tap_list: list[tuple[int, ...]],
                  axis: int = 0) -> jax.Array:
    """Padded ``(C, N, *Dp)`` -> ``(R, C, N, *O)`` (or ``(N, C, *Dp)`` -> ``(N, C, R,
    *O)`` with ``axis=2``): the slices of ``R`` taps, stacked at ``axis`` one spatial dim
    at a time where the taps are every combination of their dims' indices (a product
    in C order; all taps, or one row of them), else one by one.

    Dim by dim, each stack has ``k[d]`` operands, which XLA fuses into one copy; the
    ``prod(k)`` slices stacked at once it copied one by one and then stacked (7x7
    stride 2 from 3 channels: 49 slice copies and an unfused stack of 4.4 ms). Per
    map, ms, tap by tap -> dim by dim (2026-12-07): 7x7 stride 2 3->64 224x224 N=4
    forward 10.9-12.0 -> 8.2-9.3, weight gradient 11.0 -> 9.5; 5x5 stride 2 3->32
    64x64 N=32 forward 3.4 -> 2.9; LeNet's conv2 weight gradient 5.0 -> 4.1; 3x3
    32->32 28x28 N=16 weight gradient 4.0 -> 3.4; per row of taps, unchanged (3x3
    64->64 56x56 10.5-10.7 / 10.8-11.8, noise).
    """
    nd = geom.ndim
    per_dim = [sorted({j[d] for j in tap_list}) for d in range(nd)]
    if tap_list != list(itertools.product(*per_dim)):
        return jnp.stack([tap_slice(xp, geom, j, 2) for j in tap_list], axis=axis)
    arr = xp
    for d, idx in enumerate(per_dim):
        ax = 2 + 2 * d  # N and C, d stacked axes and d spatial dims before it
        s, dil, o = geom.stride[d], geom.dilation[d], geom.out_spatial[d]
        arr = jnp.stack([lax.slice_in_dim(arr, i * dil, i * dil + (o - 1) * s + 1, s, axis=ax)
                         for i in idx], axis=axis + d)
    return arr.reshape((*arr.shape[:axis], len(tap_list), *arr.shape[axis + nd:]))


def _patches_kmajor(geom: ConvGeometry, xp: jax.Array,
                    tap_list: list[tuple[int, ...]]) -> jax.Array:
    """Padded ``(C, N, *Dp)`` -> ``(G, R, C/G, N, *O)`` for ``R`` taps: those taps' rows
    of the patch matrix transposed (taps and channels as rows, the ``M = N * prod(O)``
    positions as the long minor axis)."""
    c = xp.shape[0]
    G = geom.groups
    cols = _stacked_taps(geom, xp, tap_list)  # (R,C,N,*O)
    cols = cols.reshape((cols.shape[0], G, c // G, *cols.shape[2:]))
    return jnp.swapaxes(cols, 0, 1)


#: The forward multiplies width patches (:func:`_forward_rows`) when the rows it
#: computes per phase of the leading dims (see there) are at most this many times the
#: output's (LeNet's conv2: 12 / 8 rows, 1.5; 7x7 stride 2 padded 3: 115 / 112) ...
ROWS_MAX_EXTENT = 2.0
#: ... and the width patches have at least this many rows per group (``k[-1] * C_in/G``):
#: fewer run the product far below XLA's matmul rate (7x7 stride 2 from 3 channels,
#: 21 rows: 18.3 ms against 14.6 for the full patch matrix; 5x5 from 20 channels
#: (LeNet's conv2), 100 rows, and 3x3x3 from 16, 48 rows, are faster, see there).
ROWS_MIN_K = 32


#: :func:`_forward_rows` runs chunks of up to this many times :func:`_budget` elements
#: (its width patches and products; only the output outlives a chunk). Per map, ms,
#: budget x1 / x2 / x4: 3x3 64->64 56x56 N=8 16.3 / 13.9 / 12.4; LeNet's conv2 at
#: batch 128 4.9 / 4.2 / 3.5, at 500 20.5 / 17.6 / 18.5; 3x3x3 16->32 11.3 / 9.6 / 9.2.
#: LeNet step x1 -> x2: 23.3 -> 22.6 ms at batch 128, unchanged at 500, same peak
#: memory; x4 reached 1.47x lax's peak at batch 128.
ROWS_BUDGET_FACTOR = 2


def _phase_rows(geom: ConvGeometry) -> tuple[int, ...]:
    """Rows per phase of each leading dim: ``ceil(Dp / s)`` of its padded extent ``Dp``."""
    return tuple(-(-(D + lo + hi) // s) for D, (lo, hi), s in
                 zip(geom.in_spatial[:-1], pads(geom)[:-1], geom.stride[:-1]))


def _phases(geom: ConvGeometry) -> dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]]:
    """The leading taps by phase: ``{r: [(t, q), ...]}`` for every leading tap ``t`` (C
    order) reading input rows ``q + o`` of phase ``r`` (rows ``r, r + s, ...``) at output
    ``o``: ``i * d = q * s + r`` per dim."""
    out: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}
    leads = itertools.product(*(range(k) for k in geom.kernel[:-1]))
    for t, lead in enumerate(leads):
        qr = [divmod(i * d, s) for i, d, s in zip(lead, geom.dilation, geom.stride)]
        out.setdefault(tuple(r for _, r in qr), []).append((t, tuple(q for q, _ in qr)))
    return out


def rows_forward(geom: ConvGeometry, cin_g: int) -> bool:
    """Whether :func:`forward` runs as :func:`_forward_rows` (:data:`ROWS_MAX_EXTENT`,
    :data:`ROWS_MIN_K`) for ``cin_g`` input channels per group."""
    if geom.kernel[-1] * cin_g < ROWS_MIN_K:
        return False
    extent = math.prod(_phase_rows(geom))
    return extent <= ROWS_MAX_EXTENT * math.prod(geom.out_spatial[:-1])


def _rows_elements(geom: ConvGeometry, c_in: int, c_out: int) -> int:
    """Elements :func:`_forward_rows` builds per sample: its width patches and products."""
    rows = (geom.kernel[-1] * c_in * len(_phases(geom))
            + math.prod(geom.kernel[:-1]) * c_out)
    return rows * math.prod(_phase_rows(geom)) * geom.out_spatial[-1]


def _width_patches(geom: ConvGeometry, xp: jax.Array) -> jax.Array:
    """``(C, N, *R, Dp)`` -> ``(G, k[-1] * C/G, N * prod(R) * O[-1])``: the patch matrix
    of the last spatial dim alone (its ``k[-1]`` taps, strided), transposed, every row
    ``R`` of the leading dims kept."""
    c = xp.shape[0]
    G = geom.groups
    kl, dl, sl, ol = (geom.kernel[-1], geom.dilation[-1], geom.stride[-1],
                      geom.out_spatial[-1])
    cols = jnp.stack([lax.slice_in_dim(xp, j * dl, j * dl + (ol - 1) * sl + 1, sl,
                                       axis=xp.ndim - 1) for j in range(kl)])  # (k,C,N,*R,O)
    return jnp.swapaxes(cols.reshape((kl, G, c // G, -1)), 0, 1).reshape((G, kl * (c // G), -1))


def _forward_rows(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
                  precision: Precision = None) -> jax.Array:
    """y = B(x, w) from width patches: (N, C_in, D) -> (N, C_out, O).

    The kernel matrix stacks the ``L = prod(k[:-1])`` leading taps' slices as rows,
    ``(L * C_out/G) x (k[-1] * C_in/G)``, and multiplies the width patches
    (:func:`_width_patches`) at every padded leading position: ``Z = W_L @ P_w``. The
    output sums, over the leading taps ``i``, the block of ``Z`` of tap ``i`` shifted by
    ``i * dilation`` along the leading dims (one fused elementwise pass). A strided
    leading dim is first split into its ``s`` phases (rows ``r, r + s, ...``); each
    phase has the taps with ``i * d = q * s + r`` (:func:`_phases`), one product each,
    and tap ``i`` reads phase rows ``q + o``. Against the full patch matrix (``prod(k)``
    taps at ``prod(O)`` positions) this builds ``k[0]`` times fewer patches and runs
    one wider product, at the cost of computing every row of each phase
    (:func:`_phase_rows`, about ``O + d(k-1)/s``) where the output has ``O``. Per map,
    ms, full patches (per row of taps) -> width patches: 3x3 64->64 56x56 N=8 18.4 ->
    14.3; LeNet's conv2 at batch 128 / 500 5.5 / 21.2 -> 5.0 / 16.6; 3x3x3 16->32 on
    16x32x32, N=2 43.6 -> 11.4; 3x3 32->32 32x32 N=32 13.2 -> 7.4; 4 groups of 16, 3x3
    56x56: 20.4 -> 12.0; strided: 4x4 stride 2 64->128 64x64 N=8 (the transposed
    case's geometry) 17.6 -> 13.1-14.6; 3x3 stride 2 64->128 56x56 7.5 -> 6.3-7.8.
    """
    G = geom.groups
    n = x.shape[0]
    rows = _phase_rows(geom)
    lead_s = geom.stride[:-1]
    # channels first and padded, every leading dim further (zeros, never read) to
    # rows * s, so that each phase has `rows`: (C, N, *rows * s, Dp)
    pairs = [(lo, hi + q * s - (D + lo + hi)) for D, (lo, hi), q, s in
             zip(geom.in_spatial, pads(geom), rows, lead_s)]
    xp = pad_spatial(jnp.swapaxes(x, 0, 1), [*pairs, pads(geom)[-1]], 2)
    c_out, cin_g = w.shape[:2]
    cout_g = c_out // G
    L, kl = math.prod(geom.kernel[:-1]), geom.kernel[-1]
    wl = jnp.transpose(w.reshape((G, cout_g, cin_g, L, kl)), (0, 3, 1, 4, 2))  # (G,L,O,k,C)
    parts = []
    for r, tq in _phases(geom).items():
        xr = lax.slice(xp, (0, 0, *r, 0), xp.shape, (1, 1, *lead_s, 1))  # (C, N, *rows, Dp)
        taps_r = [t for t, _ in tq]
        wr = wl if taps_r == list(range(L)) else wl[:, jnp.asarray(taps_r)]
        z = lax.dot_general(wr.reshape((G, -1, kl * cin_g)), _width_patches(geom, xr),
                            (((2,), (1,)), ((0,), (0,))),
                            precision=precision, preferred_element_type=acc_dtype(x.dtype))
        z = z.reshape((G, len(tq), cout_g, n, *rows, geom.out_spatial[-1]))
        for u, (_, q) in enumerate(tq):
            part = z[:, u]  # (G, O/G, N, *rows, O[-1])
            for d, (qd, O) in enumerate(zip(q, geom.out_spatial)):
                part = lax.slice_in_dim(part, qd, qd + O, axis=3 + d)
            parts.append(part)
    y = functools.reduce(operator.add, parts)  # (G, O/G, N, *O)
    return jnp.swapaxes(y.reshape((c_out, n, *geom.out_spatial)), 0, 1).astype(x.dtype)


def _forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w) as ``Y^T = W^T @ P^T`` per group: (N, C_in, D) -> (N, C_out, O).

    The product is formed with the patch matrix transposed, so that its long
    ``M`` axis is the output's minor axis: XLA's CPU matmul runs this shape
    (a few dozen rows times a long row) up to twice as fast as ``P @ W``,
    whose output is a long, narrow column block (measured at LeNet's layers
    and 3x3 64->64, see the benchmarks).
    """
    G = geom.groups
    xp = _padded(geom, x)
    c_out, cin_g = w.shape[:2]
    wm = jnp.swapaxes(w.reshape((G, c_out // G, cin_g, -1)), 2, 3)  # (G,O/G,T,C/G)
    parts = []
    t0 = 0
    for row in _tap_rows(geom, cin_g):  # one product per group of taps, summed
        parts.append(lax.dot_general(
            wm[:, :, t0:t0 + len(row)], _patches_kmajor(geom, xp, row),  # (G,R,C/G,N,*O)
            (((2, 3), (1, 2)), ((0,), (0,))),
            precision=precision, preferred_element_type=acc_dtype(x.dtype),
        ))  # (G, O/G, N, *O)
        t0 += len(row)
    y = functools.reduce(operator.add, parts)
    return jnp.swapaxes(y.reshape((c_out, *y.shape[2:])), 0, 1).astype(x.dtype)


#: The weight gradient's product ``P^T @ G`` has ``C_out/G`` columns; XLA's CPU
#: matmul (AVX-512: 16 float32 lanes) runs a width that is not a multiple of 16
#: far below its rate, so ``G`` is padded with zero columns to the next multiple
#: when that adds at most :data:`PAD_WIDTH_AT_MOST` of the work. Measured,
#: ``(500 x 1024) @ (1024 x w)``: w=50 0.45 ms, w=64 0.33; LeNet's conv1
#: ``(25 x 18432) @ (18432 x w)``: w=20 0.43, w=32 0.32; w=8 -> 16 is slower
#: (0.10 against 0.17). LeNet step: 24.6 against 26.6 ms at batch 128, 112
#: against 116 at 500.
PAD_WIDTH_TO = 16
PAD_WIDTH_AT_MOST = 0.6


def _padded_width(c: int) -> int:
    wide = -(-c // PAD_WIDTH_TO) * PAD_WIDTH_TO
    return wide if wide <= c * (1 + PAD_WIDTH_AT_MOST) else c


def _weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x) per group as ``dW = P^T @ G`` -> (C_out, C_in/G, *k).

    ``P^T`` is the forward's transposed patch matrix (:func:`_patches_kmajor`,
    positions minor) and ``G`` the cotangent channels-last (positions major),
    so the product is a plain row-major ``(TC x M) @ (M x C_out/G)``. Against
    ``G^T @ P`` with ``P`` built channels-last, whose 25 narrow slices XLA
    copies one by one: LeNet step 26.6 against 28.2 ms at batch 128, 118
    against 122 at 500; 3x3 64->64 56x56 weight gradient 34.8 against 37.5.
    """
    G = geom.groups
    nd = geom.ndim
    xp = _padded(geom, x)
    c_out = g.shape[1]
    gl = channels_last(g)
    cout_g = c_out // G
    gl = gl.reshape((*gl.shape[:-1], G, cout_g))  # (N,*O,G,O/G)
    wide = _padded_width(cout_g)
    if wide != cout_g:
        gl = jnp.pad(gl, [(0, 0)] * (gl.ndim - 1) + [(0, wide - cout_g)])
    dw = jnp.concatenate([  # one product per group of taps
        lax.dot_general(
            _patches_kmajor(geom, xp, row), gl,  # (G,R,C/G,N,*O) x (N,*O,G,O/G)
            ((tuple(range(3, nd + 4)), tuple(range(nd + 1))), ((0,), (nd + 1,))),
            precision=precision, preferred_element_type=acc_dtype(x.dtype),
        )[..., :cout_g]
        for row in _tap_rows(geom, x.shape[1] // G)
    ], axis=1)  # (G, T, C/G, O/G)
    dw = jnp.transpose(dw, (0, 3, 2, 1)).reshape((c_out, x.shape[1] // G, *geom.kernel))
    return dw.astype(x.dtype)


#: :func:`weight_grad` multiplies each sample's own patches (:func:`_weight_grad_samples`)
#: for an ungrouped convolution whose patch matrix has at most this many rows
#: (``C_in * prod(k)``) ...
SAMPLE_ROWS = 32
#: ... onto at least this many output channels ...
SAMPLE_MIN_OUT = 20
#: ... at up to this many output positions a sample.
SAMPLE_POSITIONS = 32 * 32
#: Elements of one chunk's patches and cotangent in that form (16 MiB in float32): the
#: chunks run one per loop iteration, so that a chunk's patches are read back from
#: cache. Per map, ms, LeNet's conv1 (1 -> 20, 5x5, 28x28) at batch 500, chunk budget
#: 1 << 21 / 1 << 22 / 1 << 23: 13.3 / 8.5 / 9.0; the whole batch at once, 19-20.
SAMPLE_CHUNK_ELEMENTS = 1 << 22


def sample_products(geom: ConvGeometry, c_in: int, c_out: int) -> bool:
    """Whether :func:`weight_grad` runs one product per sample (:func:`_weight_grad_samples`):
    ungrouped, at most :data:`SAMPLE_ROWS` patch rows, at least :data:`SAMPLE_MIN_OUT`
    output channels and at most :data:`SAMPLE_POSITIONS` output positions a sample.

    Per map, ms, per-sample products / the patch matrix's one product / xla (2026-12-07):
    LeNet's conv1 (1 -> 20, 5x5, 28x28) 8.5 / 12.4 / 20.4 at batch 500, 2.0 / 3.7 / 3.1
    at 128 (0.28 / 0.29 / 0.24 at 8); 'same' 3x3, N=64 unless said: 1 -> 32 28x28 N=128
    2.1 / 2.8 / 2.6, 3 -> 64 32x32 4.1 / 5.7 / 5.3, 3 -> 32 2.7 / 3.8 / 2.6; 'valid' 4 ->
    32 28x28 1.7 / 2.1 / 1.7. Onto fewer channels the per-sample products are too
    narrow: 3 -> 16 32x32 3.0 / 2.8 / 1.5; 5x5 1 -> 6 28x28 1.8 / 1.7 / 0.9. More
    positions: 3 -> 16 56x56 8.9 / 8.0 / 3.8. More rows: 5x5 3 -> 32 6.5 / 7.1 / 4.7.
    """
    return (geom.groups == 1 and c_in * math.prod(geom.kernel) <= SAMPLE_ROWS
            and c_out >= SAMPLE_MIN_OUT and math.prod(geom.out_spatial) <= SAMPLE_POSITIONS)


def _weight_grad_samples(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                         precision: Precision = None) -> jax.Array:
    """dw summed over per-sample products: ``dW = sum_n G_n @ P_n^T`` -> (C_out, C_in, *k).

    ``P_n``: sample ``n``'s patch matrix with taps and channels as rows and its
    positions as columns, ``(C_in * prod(k), prod(O))``, stacked from shifted slices
    of ``x`` in its own layout; ``G_n``: the cotangent ``(C_out, prod(O))``, as
    given. One batched product over samples, whose sum over the batch XLA fuses
    into it: neither operand is transposed. Ungrouped only.
    """
    n, c_in = x.shape[:2]
    c_out = g.shape[1]
    positions = math.prod(geom.out_spatial)
    xp = pad_spatial(x, pads(geom), 2)  # (N, C_in, *Dp)
    p = _stacked_taps(geom, xp, list(taps(geom)), axis=2)  # (N,C_in,T,*O)
    p = p.reshape((n, -1, positions))
    dw = lax.dot_general(g.reshape((n, c_out, positions)), p, (((2,), (2,)), ((0,), (0,))),
                         precision=precision, preferred_element_type=acc_dtype(x.dtype))
    return jnp.sum(dw, axis=0).reshape((c_out, c_in, *geom.kernel)).astype(x.dtype)


def _fold(cols: jax.Array, geom: ConvGeometry) -> jax.Array:
    """col2im: ``(*k, C, N, *O)`` -> ``(C, N, *Dp)``, every tap's values added where it reads.

    At stride 1, :func:`_fold_at_stride_1`. Strided and undilated, one stride-1
    fold per phase (:func:`_fold_phases`) where taps overlap (a kernel wider than
    its stride; else each phase is one tap, and placing the taps interleaves them
    without the phases' transposition: 2x2 stride 2 64->64 56x56 N=16 3.7 against
    4.5 ms). Otherwise, up to :data:`FOLD_AT_ONCE` taps one loop sums the fully
    placed taps; more, the taps of one spatial dim at a time are placed along it
    (:func:`pad_spatial` with the stride as interior padding and the
    dilation as offset) and summed, which removes their axis: that is
    ``sum(k)`` reads of every output element where placing all ``prod(k)``
    taps at once is ``prod(k)`` in one branchy loop (2x slower at 5x5), and
    in place measured 1.5x slower there (7x7 stride 2 onto 3 channels: 15.7
    against 10.3 ms).
    """
    flat = cols.reshape((-1, *cols.shape[geom.ndim:]))  # (T, C, N, *O)
    size = [D + lo + hi for D, (lo, hi) in zip(geom.in_spatial, pads(geom))]
    if all(s == 1 for s in geom.stride):
        return _fold_at_stride_1(flat, geom.kernel, geom.dilation, geom.out_spatial, size)
    if all(d == 1 for d in geom.dilation) and any(k > s for k, s in zip(geom.kernel,
                                                                      geom.stride)):
        return _fold_phases(cols, geom, size)
    if math.prod(geom.kernel) <= FOLD_AT_ONCE:
        return functools.reduce(
            operator.add, (place_tap(flat[t], geom, j, 2) for t, j in enumerate(taps(geom)))
        )
    dims = zip(geom.kernel, geom.out_spatial, geom.stride, geom.dilation, geom.in_spatial,
               pads(geom))
    for d, (k, O, s, dil, D, (lo, hi)) in reversed(list(enumerate(dims))):
        axis = 2 * d + 2  # the spatial axis of dim d once tap axis d is indexed away
        placed = []
        for j in range(k):
            part = cols[(slice(None),) * d + (j,)]
            cfg = [(0, 0, 0)] * part.ndim
            cfg[axis] = (j * dil, D + lo + hi - j * dil - (O - 1) * s - 1, s - 1)
            placed.append(lax.pad(part, jnp.zeros((), part.dtype), cfg))
        cols = functools.reduce(operator.add, placed)
    return cols


def _fold_phases(cols: jax.Array, geom: ConvGeometry, size: list[int]) -> jax.Array:
    """Strided, undilated: ``(*k, C, N, *O)`` -> ``(C, N, *Dp)`` (``size``: the padded
    input's ``Dp``) one phase at a time.

    The padded input's rows ``r, r + s, ...`` (phase ``r`` of a dim with stride ``s``)
    receive only the taps ``i = r + q s``, tap ``q`` of the phase shifted by ``q``:
    each phase is the stride-1 fold of its sub-kernel (:func:`_fold_at_stride_1`,
    ``ceil(Dp / s)`` rows), and the phases interleave in one transposition. Against
    the taps placed with the stride as interior padding (all at once up to
    :data:`FOLD_AT_ONCE` taps, else dim by dim): input gradient, ms, before -> after
    (2026-12-07): 3x3 stride 2 32->64 56x56 N=8 4.0 -> 2.0, 16->32 N=16 3.7 -> 1.5,
    64->128 8.7 -> 5.2, 128->256 28x28 N=16 12.3 -> 8.7; 3x3 stride 3 32->32 48x48
    4.8 -> 1.5; 4x4 stride 2 64->128 64x64 N=8 25.5 -> 14.4, 64->64 23.7 -> 11.0; 5x5
    stride 2 3->32 64x64 N=32 3.9 -> 3.5; 7x7 stride 2 3->64 224x224 N=4 10.1 ->
    8.3, 8->16 28x28 N=32 4.1 -> 2.9.
    """
    nd = geom.ndim
    rows = [-(-d // s) for d, s in zip(size, geom.stride)]
    c, n = cols.shape[nd:nd + 2]
    phases = []
    for r in itertools.product(*(range(s) for s in geom.stride)):
        sub = cols[tuple(slice(rd, None, s) for rd, s in zip(r, geom.stride))]
        if 0 in sub.shape[:nd]:  # a phase no tap reads (stride beyond the kernel)
            phases.append(jnp.zeros((c, n, *rows), cols.dtype))
            continue
        phases.append(_fold_at_stride_1(sub.reshape((-1, *sub.shape[nd:])), sub.shape[:nd],
                                        (1,) * nd, geom.out_spatial, rows))
    stacked = jnp.stack(phases).reshape((*geom.stride, c, n, *rows))
    perm = [nd, nd + 1, *(a for d in range(nd) for a in (nd + 2 + d, d))]
    out = jnp.transpose(stacked, perm).reshape((c, n, *(q * s for q, s in zip(rows, geom.stride))))
    return out[(slice(None), slice(None), *(slice(0, d) for d in size))]


def _fold_at_stride_1(flat: jax.Array, kernel: tuple[int, ...], dilation: tuple[int, ...],
                      out: tuple[int, ...], size: list[int]) -> jax.Array:
    """Stride 1: ``(T, C, N, *out)`` taps of ``kernel`` (C order) -> ``(C, N, *size)``,
    tap ``j`` added at offset ``j * dilation``.

    Up to :data:`FOLD_AT_ONCE` taps, one loop sums the fully placed taps (3x3: 5.9
    ms against 6.5-8 for the alternatives). More are added a row at a time: the
    taps that differ only in their last index are placed along the last axis
    (padding) and summed, and that row is added to the block of the output its
    leading indices start at (a ``dynamic_update_slice`` XLA does in place). 5x5: 5
    in-place updates instead of 25 (one per tap), each op's fixed cost paid per
    chunk of samples: LeNet step 25.7 against 27.3 ms at batch 128, 116 against 120
    at 500; per map, LeNet's conv2 at batch 128 5.5 against 6.7 ms for the sum of
    placed taps, 7x7: 3.3 against 4.4.
    """
    nd = len(kernel)
    if math.prod(kernel) <= FOLD_AT_ONCE:
        return functools.reduce(operator.add, (
            pad_spatial(flat[t], [(jj * d, S - jj * d - o)
                                  for jj, d, S, o in zip(j, dilation, size, out)], 2)
            for t, j in enumerate(itertools.product(*(range(k) for k in kernel)))))
    z = jnp.zeros((*flat.shape[1:3], *size), flat.dtype)
    k_last, d_last, o_last = kernel[-1], dilation[-1], out[-1]
    rows = flat.reshape((-1, k_last, *flat.shape[1:]))  # (T/k_last, k_last, C, N, *out)
    for r, lead in enumerate(itertools.product(*(range(k) for k in kernel[:-1]))):
        row = functools.reduce(operator.add, (
            pad_spatial(rows[r, j], [(j * d_last, size[-1] - j * d_last - o_last)], nd + 1)
            for j in range(k_last)))
        start = (0, 0, *(j * d for j, d in zip(lead, dilation)), 0)
        z = lax.dynamic_update_slice(z, lax.dynamic_slice(z, start, row.shape) + row, start)
    return z


def _input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): ``dP^T = W @ G^T`` per group, then the fold (col2im) -> (N, C_in, D)."""
    G = geom.groups
    c_out, cin_g = w.shape[:2]
    gc = jnp.swapaxes(g, 0, 1).reshape((G, c_out // G, g.shape[0], *g.shape[2:]))  # (G,O/G,N,*O)
    wm = w.reshape((G, c_out // G, cin_g, -1))  # (G,O/G,C/G,T)
    cols = lax.dot_general(
        wm, gc, (((1,), (1,)), ((0,), (0,))),
        precision=precision, preferred_element_type=acc_dtype(g.dtype),
    )  # (G, C/G, T, N, *O)
    cols = jnp.moveaxis(cols, 2, 0).reshape((*geom.kernel, G * cin_g, *cols.shape[3:]))
    dx = crop_spatial(_fold(cols, geom), pads(geom), 2)  # (C, N, *D)
    return jnp.swapaxes(dx, 0, 1).astype(g.dtype)


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w) as patches @ kernel matrix: (N, C_in, D) -> (N, C_out, O).

    Width patches (:func:`_forward_rows`) where :func:`rows_forward` says so, else the
    full patch matrix (:func:`_forward`). Large batches run in chunks of samples (see
    :data:`CHUNK_ELEMENTS`, :func:`_budget`).
    """
    budget = _budget(geom, x.shape[0], x.shape[1])
    if rows_forward(geom, w.shape[1]):
        return map_chunks(lambda xc: _forward_rows(geom, xc, w, precision=precision), x,
                          per_sample=_rows_elements(geom, x.shape[1], w.shape[0]),
                          budget=ROWS_BUDGET_FACTOR * budget)
    return map_chunks(lambda xc: _forward(geom, xc, w, precision=precision), x,
                      per_sample=_patch_elements(geom, 1, x.shape[1]), budget=budget)


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x) = P^T @ g per group -> (C_out, C_in/G, *k); chunks summed for large batches.

    For few patch rows onto many output channels (:func:`sample_products`), one
    product per sample instead (:func:`_weight_grad_samples`).
    """
    if sample_products(geom, x.shape[1], g.shape[1]):
        c_in, c_out = x.shape[1], g.shape[1]
        positions = math.prod(geom.out_spatial)
        return sum_chunks(lambda xc, gc: _weight_grad_samples(geom, xc, gc, precision=precision),
                          x, g, per_sample=(c_in * math.prod(geom.kernel) + c_out) * positions,
                          budget=SAMPLE_CHUNK_ELEMENTS, acc=acc_dtype(x.dtype), at_once=1)
    return sum_chunks(lambda xc, gc: _weight_grad(geom, xc, gc, precision=precision), x, g,
                      per_sample=_patch_elements(geom, 1, x.shape[1]),
                      budget=_budget(geom, x.shape[0], x.shape[1]),
                      acc=acc_dtype(x.dtype))


#: At stride 1 the input gradient is the width-patch forward of the transposed
#: geometry (:func:`transposed_forward`) when at most this fraction of that forward's
#: padded input is padding: 'same' 3x3 on 56x56, 7%; 5x5 on 28x28 or 3x3 on 14x14,
#: 23%; 'valid' 3x3 on 28x28, 25%; LeNet's conv2 ('valid' 5x5 on 12x12: the 8x8
#: cotangent padded to 16x16), 75%, where the fold is twice as fast. Input gradient,
#: ms, fold -> transposed forward, two runs (3x3 'same' unless said, N scaled to
#: about the same work): 16->16 56x56 18.9-21.6 -> 13.9-17.8; 32->32 56x56 22.0-22.2
#: -> 19.0-19.8; 64->64 56x56 13.8-14.3 -> 12.7-13.9; 128->128 28x28 13.3-13.5 ->
#: 10.8-10.9; 32->64 28x28 17.4-19.4 -> 17.7-19.0; 64->128 28x28 13.2 -> 12.5-13.2;
#: 5x5 64->64 28x28 40.1-41.4 -> 33.4-34.0; 5x5 32->32 27.9-29.2 -> 20.7-23.1; 64->64
#: 14x14 8.7-10.0 -> 6.6-7.7; 'valid' 64->64 28x28 14.4-15.6 -> 13.5-15.0; 48->48
#: 20.5-21.6 -> 17.7-19.1; 64->32 22.8-23.5 -> 17.7-18.9.
TRANSPOSED_MAX_ZEROS = 0.3


def transposed_forward(geom: ConvGeometry, cout_g: int) -> bool:
    """Whether :func:`input_grad` runs as the forward of the transposed geometry: every
    stride 1, that forward from width patches (:func:`rows_forward`, ``cout_g`` its
    input channels per group) and at most :data:`TRANSPOSED_MAX_ZEROS` of its padded
    input padding."""
    if any(s != 1 for s in geom.stride):
        return False
    if not rows_forward(transposed_geometry(geom), cout_g):
        return False
    return transposed_zeros(geom) <= TRANSPOSED_MAX_ZEROS


def transposed_zeros(geom: ConvGeometry) -> float:
    """The fraction of the transposed geometry's padded input that is padding: how
    much of a stride-1 input gradient's correlation reads zeros (3x3 'same' on 56x56:
    0.07; LeNet's conv2, 'valid' 5x5 on 12x12: 0.75)."""
    geom_t = transposed_geometry(geom)
    size = math.prod(geom_t.in_spatial)
    padded = math.prod(D + lo + hi for D, (lo, hi) in zip(geom_t.in_spatial, pads(geom_t)))
    return 1 - size / padded


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): ``dP^T = W @ G^T`` per group, then the fold (col2im) -> (N, C_in, D).

    At stride 1, where :func:`transposed_forward` says so, instead :func:`forward` of
    the transposed geometry (the cotangent correlated with the flipped kernel,
    :func:`transposed`): its width patches read the cotangent, where ``dP^T`` writes
    ``prod(k)`` times the input's size before the fold reads it back.
    """
    if transposed_forward(geom, w.shape[0] // geom.groups):
        geom_t, w_t = transposed(geom, w)
        return forward(geom_t, g, w_t, precision=precision)
    return map_chunks(lambda gc: _input_grad(geom, gc, w, precision=precision), g,
                      per_sample=_patch_elements(geom, 1, w.shape[1] * geom.groups),
                      budget=_budget(geom, g.shape[0], w.shape[1] * geom.groups))
