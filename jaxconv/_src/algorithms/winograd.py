"""The ``winograd`` algorithm: minimal filtering F(4x4, 3x3) for 3x3 stride-1 convolutions.

Winograd's minimal filtering (as brought to CNNs by Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016) computes a 4x4 block of
outputs of a 3x3 correlation from a 6x6 tile of the input with 36 products per
input/output channel pair instead of 144:

    Y = A^T [ (G w G^T) * (B^T d B) ] A        (* elementwise)

with the F(4, 3) matrices of the points 0, +-1, +-2 and infinity (``_BT``,
``_G``, ``_AT`` below). Summed over the input channels, the elementwise
products of the 36 tile positions become 36 matrix products of the tiles
``V = B^T d B`` (positions x C_in) and the transformed kernel ``U = G w G^T``
(C_in x C_out): a quarter of the direct method's multiply-adds, in 36 products.

* forward: tiles of the channels-last input, transformed along each spatial dim
  (linear combinations of strided slices), 36 products, and the output
  transform as one product with the 16 x 36 matrix ``A^T (x) A^T``, whose result
  is then put channels-first in one transposition.
* input_grad: at stride 1 the forward of the transposed geometry (the
  cotangent correlated with the flipped kernel), which is again 3x3, stride 1.
* weight_grad: the adjoint of the forward's product with respect to ``U``: the
  cotangent's tiles taken back through the output transform (``A (x) A``),
  36 products ``dM^T V`` (C_out x C_in), and ``G^T dU G``.

Every geometry is accepted: those outside the algorithm's core (2-D, a 3x3
kernel, stride 1, dilation 1, ungrouped) run ``im2col``'s map instead, as
``phase`` runs its inner algorithm at stride 1 (:func:`applies` says which).
Computation is in float32 for 16-bit floats (:func:`acc_dtype`), where the
transforms' constants (1/4, 1/6, 1/24) and sums of up to 36 terms would lose
too much; in float32 the forward's error is about 1e-5 of the output's largest
magnitude (measured; larger tiles' transforms have larger constants and lose
more, which is why F(4x4, 3x3) is the usual choice).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence

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

#: Outputs per tile and dim (m), kernel taps (r) and tile size (m + r - 1).
M_OUT, R_TAPS, TILE = 4, 3, 6

# F(4, 3) from the points 0, 1, -1, 2, -2 and infinity (Lavin & Gray, 2016).
_BT = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
_G = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)
#: The 2-D output transform ``A^T (x) A^T`` as a (16, 36) matrix: ``Y[ij] = sum A2[ij, uv] M[uv]``.
_A2 = np.einsum("iu,jv->ijuv", _AT, _AT).reshape(M_OUT * M_OUT, TILE * TILE)

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


def _budget(n: int, per_sample: int) -> int:
    """Elements a chunk may hold: the whole batch up to :data:`WHOLE_ELEMENTS`, else
    :data:`CHUNK_ELEMENTS`."""
    return n * per_sample if n * per_sample <= WHOLE_ELEMENTS else CHUNK_ELEMENTS


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """None for real floating dtypes, at any geometry (F(4x4, 3x3) where
    :func:`applies`, im2col's maps elsewhere); for other dtypes the reason."""
    return needs_floating(NAME, dtype)


def applies(geom: ConvGeometry) -> bool:
    """Whether the maps of ``geom`` run as F(4x4, 3x3) (else as ``im2col``'s): 2-D, a
    3x3 kernel, stride 1, dilation 1, one group (any padding, any size).

    Example:
      >>> g = ConvGeometry(in_spatial=(8, 8), kernel=(3, 3), out_spatial=(8, 8),
      ...                  stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
      >>> applies(g)
      True
    """
    return (geom.ndim == 2 and geom.kernel == (R_TAPS, R_TAPS) and geom.stride == (1, 1)
            and geom.dilation == (1, 1) and geom.groups == 1)


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
    """``V = B^T d B`` for every 6x6 tile of ``x`` ``(N, C, H, W)``: ``(36, N*Th*Tw, C)``.

    The input is channels-last and padded so that the tiles (stride 4) cover
    ``4 * T + 2`` rows and columns; each dim is transformed in turn, the first
    into a stacked array that the second reads with strided slices.
    """
    n, c = x.shape[:2]
    th, tw = tiles(geom)
    # pad (crop, where negative) to the rows and columns the tiles read
    pairs = [(lo, M_OUT * t + R_TAPS - 1 - lo - d)
             for (lo, _), t, d in zip(pads(geom), (th, tw), geom.in_spatial)]
    xh = pad_spatial(channels_last(x), pairs, 1)  # (N, 4Th+2, 4Tw+2, C)
    span = M_OUT * (th - 1) + 1
    rows = [lax.slice_in_dim(xh, i, i + span, M_OUT, axis=1) for i in range(TILE)]
    r = jnp.stack([_combine(_BT[u], rows) for u in range(TILE)])  # (6, N, Th, Wp, C)
    span = M_OUT * (tw - 1) + 1
    cols = [lax.slice_in_dim(r, j, j + span, M_OUT, axis=3) for j in range(TILE)]
    v = jnp.stack([_combine(_BT[v], cols) for v in range(TILE)], axis=1)  # (6, 6, N, Th, Tw, C)
    return v.reshape((TILE * TILE, n * th * tw, c))


def _kernel_tiles(w: jax.Array) -> jax.Array:
    """``U = G w G^T`` of a ``(C_out, C_in, 3, 3)`` kernel: ``(36, C_in, C_out)``."""
    wt = jnp.transpose(w, (2, 3, 1, 0))  # (3, 3, C_in, C_out)
    rows = [_combine(_G[u], [wt[k] for k in range(R_TAPS)]) for u in range(TILE)]  # (3, C, O)
    u = jnp.stack([jnp.stack([_combine(_G[v], [ru[k] for k in range(R_TAPS)])
                              for v in range(TILE)]) for ru in rows])  # (6, 6, C, O)
    return u.reshape((TILE * TILE, *w.shape[1::-1]))


def _forward(geom: ConvGeometry, x: jax.Array, u: jax.Array, precision: Precision) -> jax.Array:
    """One chunk of samples ``x`` times the transformed kernel ``u`` (:func:`_kernel_tiles`)."""
    n = x.shape[0]
    c_out = u.shape[-1]
    acc = u.dtype
    th, tw = tiles(geom)
    v = _input_tiles(geom, x.astype(acc))
    m = lax.dot_general(v, u, (((2,), (1,)), ((0,), (0,))), precision=precision,
                        preferred_element_type=acc)  # (36, P, C_out)
    y = jnp.dot(jnp.asarray(_A2, acc), m.reshape((TILE * TILE, -1)), precision=precision,
                preferred_element_type=acc)  # (16, P * C_out)
    y = y.reshape((M_OUT, M_OUT, n, th, tw, c_out))
    y = jnp.transpose(y, (2, 5, 3, 0, 4, 1)).reshape((n, c_out, M_OUT * th, M_OUT * tw))
    oh, ow = geom.out_spatial
    return y[:, :, :oh, :ow].astype(x.dtype)


def _weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array,
                 precision: Precision) -> jax.Array:
    n, c_in = x.shape[:2]
    c_out = g.shape[1]
    acc = acc_dtype(x.dtype)
    th, tw = tiles(geom)
    v = _input_tiles(geom, x.astype(acc))  # (36, P, C_in)
    # the cotangent in 4x4 tiles (zeros past the output), tile positions first and
    # channels before positions (transposing the positions innermost: a cheaper copy)
    gp = pad_spatial(g.astype(acc), [(0, M_OUT * t - o) for t, o in
                                     zip((th, tw), geom.out_spatial)], 2)
    gt = jnp.transpose(gp.reshape((n, c_out, th, M_OUT, tw, M_OUT)), (3, 5, 1, 0, 2, 4))
    dm = jnp.dot(jnp.asarray(_A2.T, acc), gt.reshape((M_OUT * M_OUT, -1)), precision=precision,
                 preferred_element_type=acc).reshape((TILE * TILE, c_out, -1))  # (36, O, P)
    du = lax.dot_general(dm, v, (((2,), (1,)), ((0,), (0,))), precision=precision,
                         preferred_element_type=acc)  # (36, C_out, C_in)
    du = du.reshape((TILE, TILE, c_out, c_in))
    # dw = G^T dU G, dim by dim
    rows = [_combine(_G[:, k], [du[u] for u in range(TILE)]) for k in range(R_TAPS)]
    dw = jnp.stack([jnp.stack([_combine(_G[:, l], [rk[v] for v in range(TILE)])
                               for l in range(R_TAPS)]) for rk in rows])  # (3, 3, C_out, C_in)
    return jnp.transpose(dw, (2, 3, 0, 1)).astype(x.dtype)


def _per_sample(geom: ConvGeometry, c_in: int, c_out: int) -> int:
    """Elements of one sample's tiles and products (``V`` and ``M``)."""
    return TILE * TILE * math.prod(tiles(geom)) * (c_in + c_out)


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w): (N, C_in, H, W) -> (N, C_out, Ho, Wo) by F(4x4, 3x3) where
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
    """dw = B_w^T(g; x) -> (C_out, C_in, 3, 3): the transposed product of the tiles
    with the cotangent's tiles (chunks of samples summed) where :func:`applies`,
    else ``im2col``'s weight gradient."""
    if not applies(geom):
        return im2col.weight_grad(geom, x, g, precision=precision)
    per_sample = _per_sample(geom, x.shape[1], g.shape[1])
    return sum_chunks(lambda xc, gc: _weight_grad(geom, xc, gc, precision), x, g,
                      per_sample=per_sample, budget=_budget(x.shape[0], per_sample),
                      acc=acc_dtype(x.dtype))
