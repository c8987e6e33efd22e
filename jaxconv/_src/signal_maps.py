"""The maps behind :mod:`jaxconv.signal`: a window of a full convolution and its transpose.

``y = crop(a * b')`` (``b' = b``, or ``rev(conj(b))`` for a correlation) is
bilinear in ``a`` and ``b``; :class:`Window` describes it statically (shapes,
convolved axes, the window's start and size, the method). :func:`bilinear`
computes it as a ``jax.custom_vjp`` whose backward rule calls the transposed
map ``T(g; b)`` (itself a window of a full convolution) and vice versa, so
gradients of gradients run the same rules. The public functions of
:mod:`jaxconv._src.signal` choose the window (scipy's modes and boundaries).

Each window is computed by one of three methods: ``"direct"`` (shifted
multiply-adds or a ``lax`` convolution), ``"fft"``
(:func:`jaxconv._src.algorithms.fft.conv_crop`) or ``"oa"`` (overlap-add);
``"auto"`` picks direct or FFT per call by the cost estimate of
:func:`pick_method`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._linear import backward_rule
from .algorithms.fft import conv_crop as _fft_conv_crop
from .algorithms.fft import fft_axes, fft_lengths, ifft_axes, next_fast_len, sum_to

# --------------------------------------------------------------------------
# Cost estimate (method="auto")
# --------------------------------------------------------------------------
# Calibrated on XLA:CPU (2 cores, float32), in units of one multiply-add of
# the shift-and-accumulate direct method (about 0.1 ns): a multiply-add of
# XLA's own single-channel convolution (kernels of more than _SHIFT_ADD_TAPS
# taps) costs about 10 of them (1-4 ns in 1-2 D, worse in 3-D), but only about
# 3 when the window has at most _SHIFT_ADD_TAPS values (a weight-gradient-like
# product of few long dot products, 0.1-0.7 ns); an FFT
# product costs about 2.5 per F*log2(F) for each of its three transforms (two
# forward, one inverse) over F = the product of the FFT lengths, plus a fixed
# overhead. Both count only the window actually computed.
_SHIFT_ADD_TAPS = 100
_LAX_CONV_UNIT = 10.0
_LAX_FEW_OUT_UNIT = 3.0
_FFT_UNIT = 2.5
_FFT_OVERHEAD = 2000.0
_OA_OVERHEAD = 2.0


def _direct_ops(n1: Sequence[int], n2: Sequence[int], size: Sequence[int]) -> float:
    """Cost of a direct window: each output reads at most min(n1, n2) taps per axis."""
    macs = float(np.prod([m * min(a, b) for a, b, m in zip(n1, n2, size)]))
    if min(math.prod(n1), math.prod(n2)) <= _SHIFT_ADD_TAPS:
        return macs
    # lax: long dot products for few outputs (weight gradients) run well, wide ones do not
    return macs * (_LAX_FEW_OUT_UNIT if math.prod(size) <= _SHIFT_ADD_TAPS else _LAX_CONV_UNIT)


def _fft_ops(n1: Sequence[int], n2: Sequence[int], start: Sequence[int],
             size: Sequence[int]) -> float:
    f = float(np.prod(fft_lengths(n1, n2, start, size)))
    return 3.0 * f * math.log2(max(f, 2.0)) * _FFT_UNIT + _FFT_OVERHEAD


def pick_method(n1: Sequence[int], n2: Sequence[int], start: Sequence[int],
          size: Sequence[int]) -> str:
    """"fft" if its estimated cost is below the direct method's, else "direct"."""
    if _fft_ops(n1, n2, start, size) < _direct_ops(n1, n2, size):
        return "fft"
    return "direct"


# --------------------------------------------------------------------------
# A window of the full convolution, by each method (no custom rules here)
# --------------------------------------------------------------------------


def _direct_conv_crop(a: jax.Array, b: jax.Array, start: Sequence[int],
                      size: Sequence[int]) -> jax.Array:
    """``crop(a * b)`` over every axis, directly (no broadcasting).

    ``full[m] = sum_j a_pad[m + j] * rev(b)[j]`` with ``a`` padded by
    ``n2 - 1`` in front: a correlation with the reversed kernel. The window
    shifts the padding to ``(n2 - 1 - start, start + size - n1)`` (negative pads
    crop). Convolution commutes, so the smaller array is made the kernel. A
    kernel of at most ``_SHIFT_ADD_TAPS`` taps is applied by shift-and-accumulate
    (one fused multiply-add per tap; XLA:CPU's single-channel convolution is
    several times slower per multiply-add), a larger one by
    ``lax.conv_general_dilated``.
    """
    if b.size > a.size:
        a, b = b, a
    nd = a.ndim
    pads = [(n2 - 1 - s, s + m - n1) for n1, n2, s, m in zip(a.shape, b.shape, start, size)]
    if b.size <= _SHIFT_ADD_TAPS:  # one multiply-add of a shifted slice per tap
        ap = lax.pad(a, jnp.zeros((), a.dtype), [(lo, hi, 0) for lo, hi in pads])
        kr = jnp.flip(b)
        taps = [ap[tuple(slice(j, j + m) for j, m in zip(jj, size))] * kr[jj]
                for jj in np.ndindex(*b.shape)]
        return sum(taps[1:], taps[0])
    spec = tuple(range(nd + 2))
    dn = lax.ConvDimensionNumbers(lhs_spec=spec, rhs_spec=spec, out_spec=spec)
    y = lax.conv_general_dilated(
        a[None, None], jnp.flip(b)[None, None], (1,) * nd, pads, dimension_numbers=dn,
        precision=lax.Precision.HIGHEST,
    )
    return y[0, 0]


def _oa_conv_crop(a: jax.Array, b: jax.Array, axes: Sequence[int], start: Sequence[int],
                  size: Sequence[int], out_shape: Sequence[int] | None) -> jax.Array:
    """``crop(a * b)`` by overlap-add: blocks of the larger input, each convolved by FFT.

    Along each axis where the larger input ``a`` is at least twice the smaller
    ``b``, ``a`` is cut into blocks of ``step`` values; each block's full
    convolution (``step + n2 - 1`` values, FFT length ``L``) is added into the
    result at offset ``block * step``. ``L`` minimises the FFT work per output
    value, ``L log L / (L - n2 + 1)``, over fast lengths. Other axes use one
    block. When the blocks' transforms would cost more than one FFT of the
    window (inputs of similar size, a small window), a plain FFT convolution
    is computed instead.
    """
    if math.prod(b.shape[i] for i in axes) > math.prod(a.shape[i] for i in axes):
        a, b = b, a
    k = len(axes)
    lead = [i for i in range(a.ndim) if i not in axes]
    a = jnp.transpose(a, (*lead, *axes))
    b = jnp.transpose(b, (*lead, *axes))
    n1, n2 = a.shape[-k:], b.shape[-k:]
    steps, lengths = [], []
    for p, q in zip(n1, n2):
        step, length = p, next_fast_len(p + q - 1)
        if p >= 2 * q:
            best = math.inf
            for mult in (2, 3, 4, 6, 8, 12, 16, 24, 32, 64):  # candidate L = mult * n2
                cand = next_fast_len(mult * q)
                s = cand - q + 1
                if s >= p:
                    break
                cost = cand * math.log2(cand) / s
                if cost < best:
                    best, step, length = cost, s, cand
        steps.append(step)
        lengths.append(length)
    blocks = [-(-p // s) for p, s in zip(n1, steps)]
    # Blocks pay only if their transforms cost less than one FFT of the window;
    # their padding, reshapes and additions about double their cost (measured).
    lf = math.prod(lengths)
    oa_work = _OA_OVERHEAD * (2 * math.prod(blocks) + 1) * lf * math.log2(max(lf, 2))
    full = math.prod(fft_lengths(n1, n2, start, size))
    if 3 * full * math.log2(max(full, 2)) <= oa_work:
        a = jnp.transpose(a, [int(i) for i in np.argsort((*lead, *axes))])
        b = jnp.transpose(b, [int(i) for i in np.argsort((*lead, *axes))])
        return _fft_conv_crop(a, b, axes, start, size, out_shape)
    a = jnp.pad(a, [(0, 0)] * (a.ndim - k) + [(0, nb * s - p) for nb, s, p in
                                              zip(blocks, steps, n1)])
    split = [v for nb, s in zip(blocks, steps) for v in (nb, s)]
    a = a.reshape(*a.shape[:-k], *split)
    b = b.reshape(*b.shape[:-k], *[v for q in n2 for v in (1, q)])
    fax = tuple(range(a.ndim - 2 * k + 1, a.ndim, 2))
    real = not jnp.issubdtype(a.dtype, jnp.complexfloating)
    prod = fft_axes(a, fax, lengths, real) * fft_axes(b, fax, lengths, real)
    y = ifft_axes(prod, fax, lengths, real).astype(a.dtype)
    # Overlap-add, one axis at a time: block i's values j land at i*step + j.
    for ax_i in range(k):
        nb, s, length = blocks[ax_i], steps[ax_i], lengths[ax_i]
        pos = y.ndim - 2 * k + 2 * ax_i  # block axis; values at pos + 1
        c = -(-length // s)
        y = jnp.pad(y, [(0, 0)] * (pos + 1) + [(0, c * s - length)] + [(0, 0)] * (y.ndim - pos - 2))
        y = y.reshape(*y.shape[:pos + 1], c, s, *y.shape[pos + 2:])
        parts = [jnp.pad(lax.index_in_dim(y, j, axis=pos + 1, keepdims=False),
                         [(0, 0)] * pos + [(j, c - 1 - j)] + [(0, 0)] * (y.ndim - pos - 2))
                 for j in range(c)]
        acc = sum(parts[1:], parts[0])
        y = acc.reshape(*acc.shape[:pos], (nb + c - 1) * s, *acc.shape[pos + 2:])
        # pos now holds this axis' values; later axes shift left by one
    for ax_i, (s0, m) in enumerate(zip(start, size)):
        y = lax.slice_in_dim(y, s0, s0 + m, axis=y.ndim - k + ax_i)
    y = jnp.transpose(y, [int(i) for i in np.argsort((*lead, *axes))])
    return y if out_shape is None else sum_to(y, out_shape)


def _conv_crop(method: str, a: jax.Array, b: jax.Array, axes: tuple[int, ...],
               start: Sequence[int], size: Sequence[int],
               out_shape: Sequence[int] | None) -> jax.Array:
    """``crop(a * b)`` by ``method`` ("auto" decides here, per call, by the cost estimate)."""
    if not axes:  # nothing to convolve: a broadcast product
        y = a * b
        return y if out_shape is None else sum_to(y, out_shape)
    n1 = [a.shape[i] for i in axes]
    n2 = [b.shape[i] for i in axes]
    if method == "auto":
        method = pick_method(n1, n2, start, size)
    if method == "oa":
        return _oa_conv_crop(a, b, axes, start, size, out_shape)
    if method == "direct" and a.shape == tuple(n1) and b.shape == tuple(n2):
        return _direct_conv_crop(a, b, start, size)
    return _fft_conv_crop(a, b, axes, start, size, out_shape)


# --------------------------------------------------------------------------
# The bilinear map and its transpose, as custom_vjp ops
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Window:
    """Static description of ``y = crop(a * b')``, ``b' = rev(conj(b))`` if ``correlate``.

    ``start``/``size`` are per axis in ``axes`` (the convolved axes); the other
    axes broadcast. ``method`` is "auto", "direct", "fft" or "oa".
    """

    shape1: tuple[int, ...]
    shape2: tuple[int, ...]
    axes: tuple[int, ...]
    start: tuple[int, ...]
    size: tuple[int, ...]
    method: str
    correlate: bool = False

    def plain(self) -> Window:
        return dataclasses.replace(self, correlate=False)

    def swapped(self) -> Window:
        """The same window of ``b * a`` (convolution commutes)."""
        return dataclasses.replace(self, shape1=self.shape2, shape2=self.shape1, correlate=False)


def _rc(axes: tuple[int, ...], v: jax.Array) -> jax.Array:
    """``rev(conj(v))`` over ``axes``: its own VJP (rev is its own transpose, conj's VJP is conj)."""
    return jnp.flip(jnp.conj(v), axis=axes)


def _apply(cfg: Window, a: jax.Array, b: jax.Array) -> jax.Array:
    b = _rc(cfg.axes, b) if cfg.correlate else b
    return _conv_crop(cfg.method, a, b, cfg.axes, cfg.start, cfg.size, None)


def _apply_t(cfg: Window, g: jax.Array, b: jax.Array) -> jax.Array:
    """``T(g; b)``, the transpose of ``a -> crop(a * b)``: ``cfg.shape1``-shaped.

    ``T(g; b)[n] = sum_m g_full[m] b[m - n]`` (``g_full``: ``g`` placed at
    ``start`` in the full range) ``= (g * rev(b))[n + n2 - 1 - start]``: again a
    window of a full convolution, summed over the axes ``a`` was broadcast on.
    """
    n1 = [cfg.shape1[i] for i in cfg.axes]
    n2 = [cfg.shape2[i] for i in cfg.axes]
    start = [q - 1 - s for q, s in zip(n2, cfg.start)]
    return _conv_crop(cfg.method, g, jnp.flip(b, axis=cfg.axes), cfg.axes, start, n1,
                      cfg.shape1)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def bilinear(cfg: Window, a: jax.Array, b: jax.Array) -> jax.Array:
    """``crop(a * b')`` described by ``cfg``; its VJPs again call :func:`bilinear` / ``_transpose``."""
    return _apply(cfg, a, b)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _transpose(cfg: Window, g: jax.Array, b: jax.Array) -> jax.Array:
    return _apply_t(cfg, g, b)


# y = crop(a * b') with b' = b (convolution) or rev(conj(b)) (correlation).
# For fixed b' it is C-linear in a, y = A a, so da = A^T g = T(g; b') (JAX's
# convention: the transpose, not the conjugate transpose). Convolution
# commutes, so for fixed a it is y = crop(b' * a) and db' = T_swapped(g; a).
# b' = rev(conj(b)) has VJP conj(rev(.)) = rev(conj(.)), so db = rev(conj(db')).
@backward_rule(bilinear)
def _bilinear_bwd(cfg: Window, res: tuple[jax.Array, jax.Array],
                  g: jax.Array) -> tuple[jax.Array, jax.Array]:
    a, b = res
    plain = cfg.plain()
    bb = _rc(cfg.axes, b) if cfg.correlate else b
    da = _transpose(plain, g, bb)
    db = _transpose(plain.swapped(), g, a)
    return da, (_rc(cfg.axes, db) if cfg.correlate else db)


# x = T(g; b) is defined by <T(g; b), h> = <g, crop(h * b)> for every
# a-shaped h (<u, v> = sum u*v, bilinear). So dg = crop(h * b) = B(h, b); and
# crop(h * b) = crop(b * h) is B_swapped(b, h), linear in b with transpose
# T_swapped(.; h), so db = T_swapped(g; h).
@backward_rule(_transpose)
def _transpose_bwd(cfg: Window, res: tuple[jax.Array, jax.Array],
                   h: jax.Array) -> tuple[jax.Array, jax.Array]:
    g, b = res
    return bilinear(cfg, h, b), _transpose(cfg.swapped(), g, h)
