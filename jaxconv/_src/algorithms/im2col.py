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
from . import channels_first, channels_last, pad_spatial, pads, place_tap, tap_slice, taps

NAME = "im2col"

Precision = lax.Precision | None

#: Largest patch matrix built (elements); beyond it the algorithm declines.
MAX_PATCH_ELEMENTS = 1 << 28


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


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
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


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
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


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
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
    lohi = [(-lo, -hi) for lo, hi in pads(geom)]
    return pad_spatial(acc, lohi, 2).astype(g.dtype)
