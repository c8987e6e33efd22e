"""The ``im2col`` algorithm: patches from shifted slices (channels-last) and one matrix product.

With ``T = prod(k)`` taps and the input channels-last, the patch matrix
``P`` stacks, for every output position, the ``T * C_in/G`` input values the
kernel reads (one strided slice per tap). Then, per group,

* forward:      ``Y = P @ W``           (``M x TC`` times ``TC x C_out/G``)
* weight_grad:  ``dW = P^T @ G``        (the matrix view of ``dw = X^T g``)
* input_grad:   ``dP = G @ W^T``, then the fold: every tap's columns are put
  back where they were read (:func:`~jaxconv._src.algorithms.place_tap`) and summed.

``M = N * prod(O)`` rows make the products large, which is where XLA's CPU
matrix multiplication (several times faster per flop than its CPU
convolution) pays. Groups are a batch dimension of the product.
"""

from __future__ import annotations

import functools
import math
import operator

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from .._linear import acc_dtype
from ..geometry import ConvGeometry
from . import (
    channels_first,
    channels_last,
    crop_spatial,
    pad_spatial,
    pads,
    place_tap,
    tap_slice,
    taps,
)

NAME = "im2col"

Precision = lax.Precision | None

#: Largest patch matrix built (elements); beyond it the algorithm declines.
MAX_PATCH_ELEMENTS = 1 << 28
#: Largest patch matrix built at once (elements, 2 MiB in float32): a larger
#: batch is processed in chunks of samples (a loop), so memory stays bounded.
CHUNK_ELEMENTS = 1 << 19


def _patch_elements(geom: ConvGeometry, n: int, c_in: int) -> int:
    return n * math.prod(geom.out_spatial) * math.prod(geom.kernel) * c_in


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """Every geometry (the patch size is checked per call, see :data:`MAX_PATCH_ELEMENTS`)."""
    return None


def _patches(geom: ConvGeometry, x: jax.Array) -> jax.Array:
    """``(N, C, *D)`` -> ``(N, *O, G, T, C/G)``: the values each output reads, per group."""
    c = x.shape[1]
    G = geom.groups
    xp = pad_spatial(channels_last(x), pads(geom), 1)
    cols = jnp.stack([tap_slice(xp, geom, j, 1) for j in taps(geom)], axis=-2)  # (N,*O,T,C)
    if G == 1:
        return cols[..., None, :, :]
    cols = cols.reshape((*cols.shape[:-1], G, c // G))  # (N,*O,T,G,C/G)
    return jnp.swapaxes(cols, -3, -2)


def _kernel_matrix(w: jax.Array, G: int) -> jax.Array:
    """``(C_out, C_in/G, *k)`` -> ``(G, T, C_in/G, C_out/G)``."""
    c_out, cin_g = w.shape[:2]
    wg = w.reshape((G, c_out // G, cin_g, -1))  # (G, O/G, C/G, T)
    return jnp.transpose(wg, (0, 3, 2, 1))


def _forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w) as patches @ kernel matrix: (N, C_in, D) -> (N, C_out, O)."""
    G = geom.groups
    p = _patches(geom, x)  # (N,*O,G,T,C/G)
    wm = _kernel_matrix(w, G)  # (G,T,C/G,O/G)
    nd = geom.ndim
    y = lax.dot_general(
        p, wm, (((nd + 2, nd + 3), (1, 2)), ((nd + 1,), (0,))),
        precision=precision, preferred_element_type=acc_dtype(x.dtype),
    )  # (G, N, *O, O/G)
    y = jnp.moveaxis(y, 0, -2).reshape((*y.shape[1:-1], w.shape[0]))
    return channels_first(y).astype(x.dtype)


def _weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x) = P^T @ g per group -> (C_out, C_in/G, *k)."""
    G = geom.groups
    nd = geom.ndim
    p = _patches(geom, x)  # (N,*O,G,T,C/G)
    c_out = g.shape[1]
    gl = channels_last(g)
    gl = gl.reshape((*gl.shape[:-1], G, c_out // G))  # (N,*O,G,O/G)
    rows = tuple(range(nd + 1))
    dw = lax.dot_general(
        gl, p, ((rows, rows), ((nd + 1,), (nd + 1,))),
        precision=precision, preferred_element_type=acc_dtype(x.dtype),
    )  # (G, O/G, T, C/G)
    dw = jnp.swapaxes(dw, -1, -2).reshape((c_out, x.shape[1] // G, *geom.kernel))
    return dw.astype(x.dtype)


def _input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): dP = g @ W^T per group, then the fold (col2im) -> (N, C_in, D)."""
    G = geom.groups
    nd = geom.ndim
    c_out, cin_g = w.shape[:2]
    gl = channels_last(g)
    gl = gl.reshape((*gl.shape[:-1], G, c_out // G))  # (N,*O,G,O/G)
    wm = _kernel_matrix(w, G)  # (G,T,C/G,O/G)
    cols = lax.dot_general(
        wm, gl, (((3,), (nd + 2,)), ((0,), (nd + 1,))),
        precision=precision, preferred_element_type=acc_dtype(g.dtype),
    )  # (G, T, C/G, N, *O)
    cols = jnp.moveaxis(cols, 0, 1).reshape((cols.shape[1], G * cin_g, *cols.shape[3:]))
    cols = jnp.swapaxes(cols, 1, 2)  # (T, N, C, *O): channels-first per tap
    acc = functools.reduce(
        operator.add, (place_tap(cols[t], geom, j, 2) for t, j in enumerate(taps(geom)))
    )
    return crop_spatial(acc, pads(geom), 2).astype(g.dtype)


def _chunk(geom: ConvGeometry, n: int, c_in: int) -> int:
    """Samples per chunk: the largest divisor of ``n`` whose patch matrix fits CHUNK_ELEMENTS."""
    per = max(_patch_elements(geom, 1, c_in), 1)
    best = 1
    for d in range(1, n + 1):
        if n % d == 0 and d * per <= CHUNK_ELEMENTS:
            best = d
    return best


def _split(a: jax.Array, nc: int) -> jax.Array:
    return a.reshape((a.shape[0] // nc, nc, *a.shape[1:]))


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w) as patches @ kernel matrix: (N, C_in, D) -> (N, C_out, O).

    Large batches run in chunks of samples (see :data:`CHUNK_ELEMENTS`).
    """
    n, c_in = x.shape[:2]
    nc = _chunk(geom, n, c_in)
    if nc == n:
        return _forward(geom, x, w, precision=precision)
    y = lax.map(lambda xc: _forward(geom, xc, w, precision=precision), _split(x, nc))
    return y.reshape((n, *y.shape[2:]))


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x) = P^T @ g per group -> (C_out, C_in/G, *k); chunks summed for large batches."""
    n, c_in = x.shape[:2]
    nc = _chunk(geom, n, c_in)
    if nc == n:
        return _weight_grad(geom, x, g, precision=precision)
    acc = acc_dtype(x.dtype)

    def step(total: jax.Array, xg: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        return total + _weight_grad(geom, xg[0], xg[1], precision=precision).astype(acc), None

    zero = jnp.zeros((g.shape[1], c_in // geom.groups, *geom.kernel), acc)
    total, _ = lax.scan(step, zero, (_split(x, nc), _split(g, nc)))
    return total.astype(x.dtype)


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): dP = g @ W^T per group, then the fold (col2im) -> (N, C_in, D)."""
    n = g.shape[0]
    nc = _chunk(geom, n, w.shape[1] * geom.groups)
    if nc == n:
        return _input_grad(geom, g, w, precision=precision)
    dx = lax.map(lambda gc: _input_grad(geom, gc, w, precision=precision), _split(g, nc))
    return dx.reshape((n, *dx.shape[2:]))
