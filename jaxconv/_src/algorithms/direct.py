"""The ``direct`` algorithm: shift and accumulate, one fused multiply-add per tap.

Channels-first, with the channels split into groups, ``(N, G, C/G, *S)``:

* forward:     ``y[:, g, o] = sum_{j, i} x_j[:, g, i] * w[g, o, i, j]`` where
  ``x_j`` is the strided slice tap ``j`` reads. ``T * C_in/G`` multiply-adds
  over the output; XLA fuses them into one loop over ``y``. Cheap when
  ``C_in/G`` is small: few input channels, depthwise, small groups.
* input_grad:  ``dx = sum_j place_j(sum_o g[:, g, o] * w[g, o, i, j])``, every
  tap's contribution put back where the tap reads (the adjoint of the slice).
* weight_grad: ``dw[g, o, i, j] = sum_{n, p} x_j[n, g, i, p] * g[n, g, o, p]``:
  one reduction per tap.
"""

from __future__ import annotations

import functools
import math
import operator

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from .. import algorithms
from .._linear import acc_dtype
from ..geometry import ConvGeometry
from . import crop_spatial, pad_spatial, pads, place_tap, sum_chunks, tap_slice, taps, transposed

NAME = "direct"

Precision = lax.Precision | None

#: Most unrolled terms (``prod(k)`` taps times the larger of ``C_in/G``, ``C_out/G``).
MAX_TERMS = 4096


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """None, unless the unrolled sum would be huge (more than :data:`MAX_TERMS` terms).

    The channel counts are not part of the geometry, so the limit is checked
    on the arrays by :func:`check_terms`.
    """
    return None


def check_terms(geom: ConvGeometry, cin_g: int, cout_g: int) -> str | None:
    """The reason ``direct`` declines these channel counts, or None."""
    terms = math.prod(geom.kernel) * max(cin_g, 1)
    if terms > MAX_TERMS:
        return (f"direct unrolls prod(kernel) * C_in/groups = {terms} multiply-adds per output, "
                f"more than {MAX_TERMS}")
    return None


def _split(a: jax.Array, G: int) -> jax.Array:
    """``(N, C, *S)`` -> ``(N, G, C/G, *S)``."""
    return a.reshape((a.shape[0], G, a.shape[1] // G, *a.shape[2:]))


def _split_kernel(w: jax.Array, G: int) -> jax.Array:
    """``(C_out, C_in/G, *k)`` -> ``(G, C_out/G, C_in/G, T)``, taps flattened in C order."""
    return w.reshape((G, w.shape[0] // G, w.shape[1], -1))


def _forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
             precision: Precision = None) -> jax.Array:
    """y = B(x, w) by shifted multiply-adds: (N, C_in, D) -> (N, C_out, O)."""
    G = geom.groups
    c_out, cin_g = w.shape[:2]
    acc = acc_dtype(x.dtype)
    xp = _split(pad_spatial(x, pads(geom), 2), G).astype(acc)  # (N,G,C/G,*Dp)
    wg = _split_kernel(w, G).astype(acc)  # (G,O/G,C/G,T)
    bshape = (1, G, c_out // G) + (1,) * geom.ndim
    terms = []
    for t, j in enumerate(taps(geom)):
        xj = tap_slice(xp, geom, j, 3)  # (N,G,C/G,*O)
        for i in range(cin_g):
            terms.append(xj[:, :, i:i + 1] * wg[:, :, i, t].reshape(bshape))
    y = functools.reduce(operator.add, terms)  # (N,G,O/G,*O)
    return y.reshape((x.shape[0], c_out, *geom.out_spatial)).astype(x.dtype)


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): every tap's weighted cotangent put back where it was read.

    At stride 1 that is the forward of the transposed geometry: ``g``
    correlated with the flipped kernel, in/out channels swapped per group --
    one fused loop of slices, measured 2.5x faster than placing every tap
    (depthwise 3x3 C=128 56x56 N=8: 1.3 against 3.3 ms). It sums ``T *
    C_out/G`` products per element, so it is used when that is no more than
    the forward's ``T * C_in/G`` (LeNet's conv1, 1 -> 20 channels: 21 ms
    against 2). Otherwise, and when strided, the taps are placed (the stride
    as interior padding).
    """
    if all(s == 1 for s in geom.stride) and w.shape[0] // geom.groups <= w.shape[1]:
        geom_t, wt = transposed(geom, w)
        return _forward(geom_t, g, wt, precision=precision)
    G = geom.groups
    c_out, cin_g = w.shape[:2]
    acc = acc_dtype(g.dtype)
    gg = _split(g, G).astype(acc)  # (N,G,O/G,*O)
    wg = _split_kernel(w, G).astype(acc)  # (G,O/G,C/G,T)
    out_g = c_out // G
    parts = []
    for t, j in enumerate(taps(geom)):
        if out_g == 1:
            cj = gg * wg[:, :, :, t].reshape((1, G, cin_g) + (1,) * geom.ndim)  # (N,G,C/G,*O)
        else:
            cj = jnp.einsum("ngo...,goi->ngi...", gg, wg[..., t], precision=precision)
        parts.append(place_tap(cj, geom, j, 3))
    dx = functools.reduce(operator.add, parts)
    dx = crop_spatial(dx, pads(geom), 3)
    return dx.reshape((g.shape[0], G * cin_g, *geom.in_spatial)).astype(g.dtype)


def _weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                 precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x): one reduction over batch and positions per tap -> (C_out, C_in/G, *k)."""
    G = geom.groups
    c_out = g.shape[1]
    cin_g = x.shape[1] // G
    acc = acc_dtype(x.dtype)
    if cin_g == 1 and c_out == G:  # depthwise: per channel, on the unsplit (N, C, *S) arrays
        xp = pad_spatial(x, pads(geom), 2).astype(acc)
        red = (0, *range(2, 2 + geom.ndim))  # (measured 20% faster than the 5-d split form)
        cols = [jnp.sum(tap_slice(xp, geom, j, 2) * g.astype(acc), axis=red) for j in taps(geom)]
        return jnp.stack(cols, axis=-1).reshape((c_out, 1, *geom.kernel)).astype(x.dtype)
    xp = _split(pad_spatial(x, pads(geom), 2), G).astype(acc)  # (N,G,C/G,*Dp)
    gg = _split(g, G).astype(acc)  # (N,G,O/G,*O)
    cols = [jnp.einsum("ngi...,ngo...->goi", tap_slice(xp, geom, j, 3), gg, precision=precision)
            for j in taps(geom)]
    dw = jnp.stack(cols, axis=-1)  # (G,O/G,C/G,T)
    return dw.reshape((c_out, cin_g, *geom.kernel)).astype(x.dtype)


# --------------------------------------------------------------------------
# The weight gradient in chunks of samples. Its prod(k) reductions each read
# the whole input and the whole cotangent: on a CPU whose caches hold a few
# samples but not the batch, that is prod(k) trips to memory. Summed over
# chunks small enough to stay in cache (a loop), depthwise 3x3 C=128 56x56
# N=8 takes 8-13 ms instead of 40-44 on the 2-core benchmark machine. The
# forward and the input gradient are single fused loops over their output,
# which read each input element from cache already: chunking them measured
# slower (the loop's overhead), so they run whole.
# --------------------------------------------------------------------------

#: Elements of one chunk's input plus output (4 MiB in float32).
CHUNK_ELEMENTS = 1 << 20


def _per_sample(geom: ConvGeometry, c_in: int, c_out: int) -> int:
    return c_in * math.prod(geom.in_spatial) + c_out * math.prod(geom.out_spatial)


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w) by shifted multiply-adds: (N, C_in, D) -> (N, C_out, O).

    The multiply-adds are one elementwise loop, which XLA fuses into whatever
    consumes ``y``. Into a max-pool's window reduction that loop runs
    unvectorised (LeNet's conv1 + max-pool in a training step: 4.9 ms against
    0.5 + 0.6). Ungrouped, ``y`` is therefore computed in at least two
    chunks of samples (:func:`map_chunks`: a loop, or chunks computed at once
    and joined), which materialises it: conv1's forward in a LeNet step takes
    0.8-1.5 ms so (3.2 with im2col). A batch of one sample runs whole.
    Grouped and depthwise run whole: chunks measured slower there.
    """
    if geom.groups > 1:  # depthwise 3x3 C=128 56x56: 23 ms in chunks against 18-20
        return _forward(geom, x, w, precision=precision)
    return algorithms.map_chunks(lambda xc: _forward(geom, xc, w, precision=precision), x,
                                 per_sample=_per_sample(geom, x.shape[1], w.shape[0]),
                                 budget=CHUNK_ELEMENTS, at_least=2)


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x): per tap a reduction over samples and positions, summed over chunks.

    One chunk at a time: its ``prod(k)`` passes over the chunk are what the
    cache must hold (depthwise 3x3 C=128 56x56 N=8: 12.3 ms against 15-17
    with two chunks at once).
    """
    return sum_chunks(lambda xc, gc: _weight_grad(geom, xc, gc, precision=precision), x, g,
                      per_sample=_per_sample(geom, x.shape[1], g.shape[1]),
                      budget=CHUNK_ELEMENTS, acc=acc_dtype(x.dtype), at_once=1)
