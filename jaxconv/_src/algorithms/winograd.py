"""The ``winograd`` algorithm: minimal filtering F(4x4, 3x3) and F(4x4, 5x5) for
3x3 and 5x5 stride-1 convolutions.

Winograd's minimal filtering (as brought to CNNs by Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016) computes a 4x4 block of
outputs of an r x r correlation from an n x n tile of the input (``n = 4 + r -
1``) with ``n * n`` products per input/output channel pair instead of ``16 * r *
r`` (3x3: 36 instead of 144; 5x5: 64 instead of 400):

    Y = A^T [ (G w G^T) * (B^T d B) ] A        (* elementwise)

with the F(4, r) matrices of Toom-Cook's construction (:func:`_toom_cook`,
exact in rationals) from the points 0, +-1, +-2 (and +-1/2 for 5x5) and
infinity: for 3x3 these are Lavin & Gray's matrices. Summed over the input
channels, the elementwise products of the ``n * n`` tile positions become as
many matrix products of the tiles ``V = B^T d B`` (positions x C_in) and the
transformed kernel ``U = G w G^T`` (C_in x C_out).

* forward: tiles of the channels-last input, transformed along each spatial dim
  (linear combinations of strided slices), ``n * n`` products, and the output
  transform as one product with the ``16 x n*n`` matrix ``A^T (x) A^T``, whose
  result is then put channels-first in one transposition.
* input_grad: at stride 1 the forward of the transposed geometry (the
  cotangent correlated with the flipped kernel), which is again r x r, stride 1.
* weight_grad: the adjoint of the forward's product with respect to ``U``: the
  cotangent's tiles taken back through the output transform (``A (x) A``),
  ``n * n`` products ``dM^T V`` (C_out x C_in), and ``G^T dU G``.

Every geometry is accepted: those outside the algorithm's core (2-D, a 3x3 or
5x5 kernel, stride 1, dilation 1, ungrouped) run ``im2col``'s map instead, as
``phase`` runs its inner algorithm at stride 1 (:func:`applies` says which).
Computation is in float32 for 16-bit floats (:func:`acc_dtype`), where the
transforms' constants (1/4, 1/6, 1/24; for 5x5 down to 1/90 and up to 5.25) and
sums of up to 64 terms would lose too much. In float32 the forward's error is
about 5e-6 of the output's largest magnitude for both sizes (measured, unit
normal data: 64->64 3x3 7.6e-6, 64->96 5x5 5.6e-6, 256->256 1.2e-5 / 1.5e-5;
root mean square 2-6e-6, against 2-4e-7 for im2col and XLA); larger tiles'
transforms have larger constants and lose more, which is why F(4x4, r x r) is
as far as this goes.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import DTypeLike

from .._linear import acc_dtype
from ..geometry import ConvGeometry
from . import (
    channels_last,
    im2col,
    map_chunks,
    needs_floating,
    pad_spatial,
    pads,
    sum_chunks,
    transposed,
)

NAME = "winograd"

Precision = lax.Precision | None

#: Outputs per tile and spatial dim (m); the kernels it runs are r x r for r in :data:`KERNELS`.
M_OUT = 4


def _toom_cook(m: int, r: int, points: Sequence[Fraction]) -> tuple[np.ndarray, ...]:
    """``(B^T, G, A^T)`` of F(m, r) from ``m + r - 2`` finite points and infinity, exactly.

    The correlation ``y_i = sum_k d_{i+k} w_k`` (``i < m``, ``k < r``) is the
    transpose of the product of polynomials of degrees ``m - 1`` and ``r - 1``,
    whose ``n = m + r - 1`` coefficients Toom-Cook recovers from the values at
    ``n`` points: with ``V_k`` the ``n x k`` Vandermonde matrix of the points
    (infinity's row ``[0, ..., 0, 1]``, the leading coefficient), ``A^T = V_m^T``,
    ``G = D^-1 V_r`` and ``B^T = D V_n^-T``, where ``D`` scales each finite point's
    row by ``prod_{l != j} (a_j - a_l)`` (Lavin & Gray's scaling: it puts the
    fractions in ``G``, which is transformed once per call). Exact in rationals;
    returned as float64.
    """
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) takes {n - 1} finite points, got {len(points)}")

    def vandermonde(k: int) -> list[list[Fraction]]:
        rows = [[a ** i for i in range(k)] for a in points]
        return rows + [[Fraction(int(i == k - 1)) for i in range(k)]]

    scale = [math.prod((a - b for b in points if b != a), start=Fraction(1)) for a in points]
    scale.append(Fraction(1))
    # V_n^-1 by Gauss-Jordan elimination over the rationals
    v = vandermonde(n)
    aug = [row + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(v)]
    for col in range(n):
        piv = next(i for i in range(col, n) if aug[i][col] != 0)
        aug[col], aug[piv] = aug[piv], aug[col]
        aug[col] = [e / aug[col][col] for e in aug[col]]
        for i in range(n):
            if i != col and aug[i][col] != 0:
                f = aug[i][col]
                aug[i] = [e - f * c for e, c in zip(aug[i], aug[col])]
    inv = [row[n:] for row in aug]  # V_n^-1
    bt = [[scale[i] * inv[j][i] for j in range(n)] for i in range(n)]  # D V_n^-T
    g = [[e / scale[i] for e in row] for i, row in enumerate(vandermonde(r))]
    at = [list(col) for col in zip(*vandermonde(m))]
    return tuple(np.array([[float(e) for e in row] for row in mat]) for mat in (bt, g, at))


class _Transforms:
    """The F(4, r) matrices of one kernel size: ``bt`` (n x n), ``g`` (n x r), ``at``
    (m x n), the tile size ``n = m + r - 1``, and ``a2``, the 2-D output transform
    ``A^T (x) A^T`` as an (m*m, n*n) matrix: ``Y[ij] = sum a2[ij, uv] M[uv]``."""

    def __init__(self, r: int, points: Sequence[Fraction]) -> None:
        self.r = r
        self.tile = M_OUT + r - 1
        self.bt, self.g, self.at = _toom_cook(M_OUT, r, points)
        self.a2 = np.einsum("iu,jv->ijuv", self.at, self.at).reshape(M_OUT * M_OUT, -1)


_HALF = Fraction(1, 2)
#: F(4x4, r x r) per kernel size r: F(4, 3) from the points 0, +-1, +-2 and infinity
#: (Lavin & Gray's matrices), F(4, 5) from those and +-1/2.
TRANSFORMS = {3: _Transforms(3, [Fraction(a) for a in (0, 1, -1, 2, -2)]),
              5: _Transforms(5, [Fraction(a) for a in (0, 1, -1, 2, -2)] + [_HALF, -_HALF])}
#: The kernel sizes (square) winograd runs.
KERNELS = tuple(TRANSFORMS)

#: Elements (tiles and products) that the forward and the weight gradient hold at once:
#: a batch whose tiles and products are more than :data:`WHOLE_ELEMENTS` (16 MiB in
#: float32) runs in chunks of samples of at most this many (8 MiB); up to that, whole.
#: With the whole batch's tiles, a forward and an input gradient in one program (both
#: memory-bound, run at once) were slower than XLA's: fwd+bwd, fixed cotangent, 3x3
#: 64->64 56x56 N=8 (7.2 M elements), ms, budget 2^21 / 2^22 / 2^23 elements: 28.7 /
#: 36.9 / 35.3 (the previous plan 31.0); 28x28 N=32 (7.2 M): 28.8 / 36.3 / 34.6 (31.2).
#: Smaller batches ran best whole: 128->128 28x28 N=8 (3.6 M) 23.6 / 22.9 / 22.7
#: (25.5); 256->256 14x14 N=8 (2.4 M) 21.4 / 20.4 whole (23.3). The forward alone, in
#: chunks against whole, ms: 64->64 56x56 8.8 / 7.3 (XLA 9.5), 256->256 14x14 10.4 /
#: 7.0 (XLA 8.3), 7x7 N=32 10.2 / 6.9 (8.2).
CHUNK_ELEMENTS = 1 << 21
WHOLE_ELEMENTS = 1 << 22
#: The weight gradient's own budget: the whole batch up to :data:`WEIGHT_GRAD_WHOLE`
#: elements (4 MiB), else chunks of at most :data:`WEIGHT_GRAD_CHUNK`, one per loop
#: iteration (:data:`WEIGHT_GRAD_AT_ONCE`). Its cotangent tiles taken back through
#: the output transform (``dM``, 4x the cotangent for 5x5) live beside the backward
#: pass's other buffers: with LeNet's conv2 on it the whole batch-128 step's peak
#: memory was 1.41x lax's (test network; 1.14x in chunks). LeNet step, ms, whole /
#: two chunks one per loop iteration / chunks of 1 Mi: 14.2-15.0 / 15.5 / 16.0-16.2 at
#: batch 128, 75.7-76.9 / 77.3 / 76.6-78.2 at 500 (2026-12-07).
WEIGHT_GRAD_WHOLE = 1 << 20
WEIGHT_GRAD_CHUNK = 1 << 21
WEIGHT_GRAD_AT_ONCE = 1


def _budget(n: int, per_sample: int, whole: int | None = None,
            chunk: int | None = None) -> int:
    """Elements a chunk may hold: the whole batch up to ``whole`` (default
    :data:`WHOLE_ELEMENTS`), else ``chunk`` (default :data:`CHUNK_ELEMENTS`)."""
    whole = WHOLE_ELEMENTS if whole is None else whole
    chunk = CHUNK_ELEMENTS if chunk is None else chunk
    return n * per_sample if n * per_sample <= whole else chunk


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """None for real floating dtypes, at any geometry (F(4x4, r x r) where
    :func:`applies`, im2col's maps elsewhere); for other dtypes the reason."""
    return needs_floating(NAME, dtype)


def applies(geom: ConvGeometry) -> bool:
    """Whether the maps of ``geom`` run as F(4x4, r x r) (else as ``im2col``'s): 2-D, a
    3x3 or 5x5 kernel (:data:`KERNELS`), stride 1, dilation 1, one group (any padding,
    any size).

    Example:
      >>> g = ConvGeometry(in_spatial=(8, 8), kernel=(3, 3), out_spatial=(8, 8),
      ...                  stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
      >>> applies(g)
      True
    """
    return (geom.ndim == 2 and geom.kernel[0] == geom.kernel[1] and geom.kernel[0] in KERNELS
            and geom.stride == (1, 1) and geom.dilation == (1, 1) and geom.groups == 1)


def _combine(coefs: Sequence[float] | np.ndarray, arrays: Sequence[jax.Array]) -> jax.Array:
    """``sum_i coefs[i] * arrays[i]``, skipping zeros and multiplying by +-1 for free."""
    terms = []
    for c, a in zip(coefs, arrays):
        if c == 0:
            continue
        terms.append(a if c == 1 else -a if c == -1 else a * np.asarray(c, a.dtype))
    return functools.reduce(operator.add, terms)


def tiles(geom: ConvGeometry) -> tuple[int, ...]:
    """4x4 output tiles per spatial dim of one sample: ``ceil(O / 4)``.

    Example:
      >>> g = ConvGeometry(in_spatial=(14, 9), kernel=(3, 3), out_spatial=(14, 9),
      ...                  stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
      >>> tiles(g)
      (4, 3)
    """
    return tuple(-(-o // M_OUT) for o in geom.out_spatial)


def _input_tiles(geom: ConvGeometry, x: jax.Array) -> jax.Array:
    """``V = B^T d B`` for every ``n x n`` tile of ``x`` ``(N, C, H, W)`` (``n = 4 + r - 1``):
    ``(n*n, N*Th*Tw, C)``.

    The input is channels-last and padded so that the tiles (stride 4) cover
    ``4 * T + r - 1`` rows and columns; each dim is transformed in turn, the first
    into a stacked array that the second reads with strided slices.
    """
    f = TRANSFORMS[geom.kernel[0]]
    n, c = x.shape[:2]
    th, tw = tiles(geom)
    # pad (crop, where negative) to the rows and columns the tiles read
    pairs = [(lo, M_OUT * t + f.r - 1 - lo - d)
             for (lo, _), t, d in zip(pads(geom), (th, tw), geom.in_spatial)]
    xh = pad_spatial(channels_last(x), pairs, 1)  # (N, 4Th+r-1, 4Tw+r-1, C)
    span = M_OUT * (th - 1) + 1
    rows = [lax.slice_in_dim(xh, i, i + span, M_OUT, axis=1) for i in range(f.tile)]
    r = jnp.stack([_combine(f.bt[u], rows) for u in range(f.tile)])  # (n, N, Th, Wp, C)
    span = M_OUT * (tw - 1) + 1
    cols = [lax.slice_in_dim(r, j, j + span, M_OUT, axis=3) for j in range(f.tile)]
    v = jnp.stack([_combine(f.bt[v], cols) for v in range(f.tile)], axis=1)  # (n,n,N,Th,Tw,C)
    return v.reshape((f.tile * f.tile, n * th * tw, c))


def _kernel_tiles(w: jax.Array) -> jax.Array:
    """``U = G w G^T`` of a ``(C_out, C_in, r, r)`` kernel: ``(n*n, C_in, C_out)``."""
    f = TRANSFORMS[w.shape[-1]]
    wt = jnp.transpose(w, (2, 3, 1, 0))  # (r, r, C_in, C_out)
    rows = [_combine(f.g[u], [wt[k] for k in range(f.r)]) for u in range(f.tile)]  # (r, C, O)
    u = jnp.stack([jnp.stack([_combine(f.g[v], [ru[k] for k in range(f.r)])
                              for v in range(f.tile)]) for ru in rows])  # (n, n, C, O)
    return u.reshape((f.tile * f.tile, *w.shape[1::-1]))


def _forward(geom: ConvGeometry, x: jax.Array, u: jax.Array, precision: Precision) -> jax.Array:
    """One chunk of samples ``x`` times the transformed kernel ``u`` (:func:`_kernel_tiles`)."""
    f = TRANSFORMS[geom.kernel[0]]
    n = x.shape[0]
    c_out = u.shape[-1]
    acc = u.dtype
    th, tw = tiles(geom)
    v = _input_tiles(geom, x.astype(acc))
    m = lax.dot_general(v, u, (((2,), (1,)), ((0,), (0,))), precision=precision,
                        preferred_element_type=acc)  # (n*n, P, C_out)
    y = jnp.dot(jnp.asarray(f.a2, acc), m.reshape((f.tile * f.tile, -1)), precision=precision,
                preferred_element_type=acc)  # (16, P * C_out)
    y = y.reshape((M_OUT, M_OUT, n, th, tw, c_out))
    y = jnp.transpose(y, (2, 5, 3, 0, 4, 1)).reshape((n, c_out, M_OUT * th, M_OUT * tw))
    oh, ow = geom.out_spatial
    return y[:, :, :oh, :ow].astype(x.dtype)


def _weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array,
                 precision: Precision) -> jax.Array:
    f = TRANSFORMS[geom.kernel[0]]
    n, c_in = x.shape[:2]
    c_out = g.shape[1]
    acc = acc_dtype(x.dtype)
    th, tw = tiles(geom)
    # the cotangent in 4x4 tiles (zeros past the output), tile positions first and
    # channels before positions (transposing the positions innermost: a cheaper copy)
    gp = pad_spatial(g.astype(acc), [(0, M_OUT * t - o) for t, o in
                                     zip((th, tw), geom.out_spatial)], 2)
    gt = jnp.transpose(gp.reshape((n, c_out, th, M_OUT, tw, M_OUT)), (3, 5, 1, 0, 2, 4))
    # no reshape merges the samples with the channels: with the batch sharded over
    # devices, that made XLA's partitioner gather the cotangent's tiles
    gt = gt.reshape((M_OUT * M_OUT, c_out, n, th * tw))
    dm = lax.dot_general(jnp.asarray(f.a2.T, acc), gt, (((1,), (0,)), ((), ())),
                         precision=precision, preferred_element_type=acc)  # (n*n, O, N, T)
    v = _input_tiles(geom, x.astype(acc)).reshape((f.tile * f.tile, n, th * tw, c_in))
    du = lax.dot_general(dm, v, (((2, 3), (1, 2)), ((0,), (0,))), precision=precision,
                         preferred_element_type=acc)  # (n*n, C_out, C_in)
    du = du.reshape((f.tile, f.tile, c_out, c_in))
    # dw = G^T dU G, dim by dim
    rows = [_combine(f.g[:, k], [du[u] for u in range(f.tile)]) for k in range(f.r)]
    dw = jnp.stack([jnp.stack([_combine(f.g[:, l], [rk[v] for v in range(f.tile)])
                               for l in range(f.r)]) for rk in rows])  # (r, r, C_out, C_in)
    return jnp.transpose(dw, (2, 3, 0, 1)).astype(x.dtype)


def _per_sample(geom: ConvGeometry, c_in: int, c_out: int) -> int:
    """Elements of one sample's tiles and products (``V`` and ``M``)."""
    return TRANSFORMS[geom.kernel[0]].tile ** 2 * math.prod(tiles(geom)) * (c_in + c_out)


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w): (N, C_in, H, W) -> (N, C_out, Ho, Wo) by F(4x4, r x r) where
    :func:`applies`, else ``im2col``'s forward."""
    if not applies(geom):
        return im2col.forward(geom, x, w, precision=precision)
    u = _kernel_tiles(w.astype(acc_dtype(x.dtype)))  # once, outside the chunks
    per_sample = _per_sample(geom, x.shape[1], w.shape[0])
    return map_chunks(lambda xc: _forward(geom, xc, u, precision), x, per_sample=per_sample,
                      budget=_budget(x.shape[0], per_sample))


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): the forward of the transposed geometry (the cotangent
    correlated with the flipped kernel, channels swapped) where :func:`applies`,
    else ``im2col``'s input gradient."""
    if not applies(geom):
        return im2col.input_grad(geom, g, w, precision=precision)
    geom_t, w_t = transposed(geom, w)
    return forward(geom_t, g, w_t, precision=precision)


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x) -> (C_out, C_in, r, r): the transposed product of the tiles
    with the cotangent's tiles (chunks of samples summed) where :func:`applies`,
    else ``im2col``'s weight gradient."""
    if not applies(geom):
        return im2col.weight_grad(geom, x, g, precision=precision)
    per_sample = _per_sample(geom, x.shape[1], g.shape[1])
    budget = _budget(x.shape[0], per_sample, WEIGHT_GRAD_WHOLE, WEIGHT_GRAD_CHUNK)
    return sum_chunks(lambda xc, gc: _weight_grad(geom, xc, gc, precision), x, g,
                      per_sample=per_sample, budget=budget, acc=acc_dtype(x.dtype),
                      at_once=WEIGHT_GRAD_AT_ONCE)
