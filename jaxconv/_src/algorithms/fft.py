"""The ``fft`` convolution algorithm, and the FFT helpers :mod:`jaxconv._src.signal_maps` uses.

Frequency-domain convolution: a circular convolution of length ``F`` is a
pointwise product of length-``F`` DFTs, and it equals the linear convolution on
every index the wrap-around cannot reach. Both users build on two helpers:

* :func:`next_fast_len` -- the smallest 2-3-5-smooth length ``>= n`` (XLA's
  CPU FFT, DUCC, is fastest on such lengths);
* :func:`conv_crop` -- a window of the full linear convolution of two arrays
  along some axes (broadcasting on the others), computed with FFTs of the
  shortest length that does not alias inside the window.

The conv-family algorithm (``NAME = "fft"``) implements the three bilinear maps
of a :class:`~jaxconv._src.geometry.ConvGeometry` on channels-first arrays:

* ``forward``: pad ``x``, dilate ``w`` by zero insertion, correlate at stride 1
  (``ifft(X * conj(W))``, channels contracted per frequency), then subsample by
  the stride;
* ``input_grad``: zero-insert the cotangent by the stride (the adjoint of
  subsampling), convolve with the dilated kernel (``ifft(G * W)``), crop the
  padding away (the adjoint of padding);
* ``weight_grad``: correlate the padded input with the zero-inserted cotangent
  (``ifft(X * conj(G))``, batch contracted per frequency) and keep every
  ``dilation``-th lag.

Work is ``O(F log F)`` per channel plus ``N*C_in*C_out/G`` complex products per
frequency, independent of the kernel size: it pays for large kernels at stride
1 (see :func:`flops`). Strides waste ``stride**d`` of the work (everything is
computed at stride 1). Real floating dtypes only; bf16/f16 are computed in f32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import DTypeLike

from .._linear import acc_dtype
from ..geometry import ConvGeometry
from . import crop_spatial, needs_floating, pad_spatial, pads

NAME = "fft"

def next_fast_len(n: int) -> int:
    """Smallest ``m >= n`` whose only prime factors are 2, 3 and 5.

    Like ``scipy.fft.next_fast_len``. Factors of 7 are left out on purpose:
    XLA's CPU FFT (DUCC) measured 2.2x slower on 70^3 points than on 72^3, and
    slower on 98^3 than on 100^3.

    Args:
      n: target length, ``>= 1``.

    Returns:
      The smallest 5-smooth integer ``>= n``.

    Example:
      >>> [next_fast_len(n) for n in (1, 11, 68, 97, 1000, 1025)]
      [1, 12, 72, 100, 1000, 1080]
    """
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()  # a power of two always qualifies
    # Enumerate 3^a 5^b < best and complete each with the least power of two.
    p5 = 1
    while p5 < best:
        p3 = p5
        while p3 < best:
            m = p3
            if m < n:
                m <<= (-(-n // m) - 1).bit_length()
            best = min(best, m)
            p3 *= 3
        p5 *= 5
    return best


def fft_axes(x: jax.Array, axes: Sequence[int], lengths: Sequence[int], real: bool) -> jax.Array:
    """``rfftn`` (``real``) or ``fftn`` of ``x`` over ``axes``, zero-padded to ``lengths``."""
    if real:
        return jnp.fft.rfftn(x, s=lengths, axes=axes)
    return jnp.fft.fftn(x, s=lengths, axes=axes)


def ifft_axes(x: jax.Array, axes: Sequence[int], lengths: Sequence[int], real: bool) -> jax.Array:
    """The inverse of :func:`fft_axes` (``lengths`` are the real-space lengths)."""
    if real:
        return jnp.fft.irfftn(x, s=lengths, axes=axes)
    return jnp.fft.ifftn(x, s=lengths, axes=axes)


def _crop(y: jax.Array, axes: Sequence[int], start: Sequence[int], size: Sequence[int]) -> jax.Array:
    for ax, s0, n in zip(axes, start, size):
        y = lax.slice_in_dim(y, s0, s0 + n, axis=ax)
    return y


def sum_to(y: jax.Array, shape: Sequence[int]) -> jax.Array:
    """Sums the axes where ``shape`` is 1 and ``y`` is not (the adjoint of broadcasting)."""
    axes = tuple(i for i, (n, m) in enumerate(zip(y.shape, shape)) if m == 1 and n != 1)
    return jnp.sum(y, axis=axes, keepdims=True) if axes else y


def fft_lengths(n1: Sequence[int], n2: Sequence[int], start: Sequence[int],
                size: Sequence[int]) -> tuple[int, ...]:
    """FFT length per axis for the window ``[start, start+size)`` of a full convolution.

    The full convolution of lengths ``n1`` and ``n2`` has support
    ``[0, n1+n2-1)``; a circular one of period ``F`` adds ``full[m +- F]`` to
    index ``m``. No alias reaches the window when ``F >= n1+n2-1-start`` and
    ``F >= start+size``; the result is rounded up by :func:`next_fast_len`.

    Example:
      >>> fft_lengths((100,), (9,), (8,), (92,))  # "valid": F >= 100 suffices
      (100,)
    """
    return tuple(next_fast_len(max(a + b - 1 - s, s + m, 1))
                 for a, b, s, m in zip(n1, n2, start, size))


def conv_crop(
    a: jax.Array,
    b: jax.Array,
    axes: Sequence[int],
    start: Sequence[int],
    size: Sequence[int],
    out_shape: Sequence[int] | None = None,
) -> jax.Array:
    """Window ``[start, start+size)`` (per axis in ``axes``) of the full linear convolution.

    ``full[m] = sum_n a[n] * b[m - n]`` along ``axes``; the other axes
    broadcast (NumPy rules) and are then summed down to ``out_shape`` where it
    has 1 (so the adjoint of a broadcasting product is this same function).
    Real inputs use real FFTs; a complex input makes both complex. ``a`` and
    ``b`` must already share one dtype (float32/64 or complex64/128).

    Example:
      >>> import jax.numpy as jnp
      >>> y = conv_crop(jnp.array([1., 2, 3, 4, 5]), jnp.array([1., 2, 3]), (0,), (0,), (7,))
      >>> [round(float(v), 3) for v in y]
      [1.0, 4.0, 10.0, 16.0, 22.0, 22.0, 15.0]
    """
    n1 = [a.shape[i] for i in axes]
    n2 = [b.shape[i] for i in axes]
    lengths = fft_lengths(n1, n2, start, size)
    real = not jnp.issubdtype(a.dtype, jnp.complexfloating)
    y = fft_axes(a, axes, lengths, real) * fft_axes(b, axes, lengths, real)
    y = ifft_axes(y, axes, lengths, real)
    y = _crop(y.astype(a.dtype), axes, start, size)
    return y if out_shape is None else sum_to(y, out_shape)


# --------------------------------------------------------------------------
# The conv-family algorithm
# --------------------------------------------------------------------------


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """None if :func:`forward` & co. handle ``geom`` in ``dtype``, else the reason.

    Every geometry is supported (stride by subsampling, dilation by dilating
    the kernel, any padding, groups); only real floating dtypes are.

    Example:
      >>> g = ConvGeometry(in_spatial=(8,), kernel=(3,), out_spatial=(6,), stride=(1,),
      ...                  padding=((0, 0),), dilation=(1,), groups=1)
      >>> supports(g, "float32") is None, supports(g, "int32")
      (True, 'fft: needs a real floating dtype; got int32')
    """
    return needs_floating(NAME, dtype)


def _dilate_kernel(geom: ConvGeometry, w: jax.Array) -> jax.Array:
    """Zero-insert ``dilation - 1`` values between taps."""
    return pad_spatial(w, [(0, 0)] * geom.ndim, 2, interior=[d - 1 for d in geom.dilation])


def _upsample(geom: ConvGeometry, g: jax.Array) -> jax.Array:
    """Zero-insert ``stride - 1`` values between outputs: the adjoint of subsampling."""
    return pad_spatial(g, [(0, 0)] * geom.ndim, 2, interior=[s - 1 for s in geom.stride])


def _fft_lengths(geom: ConvGeometry) -> tuple[int, ...]:
    """FFT length per dim: the padded input length ``Dp = (O-1)*stride + k_eff``, made fast.

    Every map's full (linear) result fits in ``Dp``, so no length ``>= Dp`` aliases.
    """
    return tuple(next_fast_len((o - 1) * s + ke)
                 for o, s, ke in zip(geom.out_spatial, geom.stride, geom.k_eff))


def _spectrum(v: jax.Array, lengths: tuple[int, ...], groups: int) -> jax.Array:
    """rfft over the spatial axes, channels split as (lead, G, C/G, flat frequencies)."""
    nd = len(lengths)
    f = jnp.fft.rfftn(v, s=lengths, axes=tuple(range(2, 2 + nd)))
    return f.reshape(v.shape[0], groups, v.shape[1] // groups, -1)


def _inverse(f: jax.Array, lengths: tuple[int, ...], lead: tuple[int, int]) -> jax.Array:
    half = (*lengths[:-1], lengths[-1] // 2 + 1)
    f = f.reshape(lead + half)
    return jnp.fft.irfftn(f, s=lengths, axes=tuple(range(2, 2 + len(lengths))))


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: lax.Precision | None = None) -> jax.Array:
    """``y = B(x, w)``: (N, C_in, *D), (C_out, C_in/G, *k) -> (N, C_out, *O).

    Correlation at stride 1 as ``ifft(X * conj(W))`` over the padded input
    (length ``Dp``; an FFT length ``>= Dp`` cannot alias into the first
    ``Dp - k_eff + 1`` lags), then every ``stride``-th output.

    Example:
      >>> import jax.numpy as jnp
      >>> g = ConvGeometry(in_spatial=(5,), kernel=(3,), out_spatial=(3,), stride=(1,),
      ...                  padding=((0, 0),), dilation=(1,), groups=1)
      >>> forward(g, jnp.arange(5.).reshape(1, 1, 5), jnp.ones((1, 1, 3))).tolist()
      [[[3.0, 6.0, 9.0]]]
    """
    dtype, cd = x.dtype, acc_dtype(x.dtype)
    x, w = x.astype(cd), w.astype(cd)
    lengths = _fft_lengths(geom)
    xp = pad_spatial(x, pads(geom), 2)
    fx = _spectrum(xp, lengths, geom.groups)                       # (N, G, Ci, F)
    fw = _spectrum(_dilate_kernel(geom, w), lengths, 1)
    fw = fw.reshape(geom.groups, w.shape[0] // geom.groups, w.shape[1], -1)  # (G, Co, Ci, F)
    fy = jnp.einsum("ngif,goif->ngof", fx, jnp.conj(fw), precision=precision)
    y = _inverse(fy, lengths, (x.shape[0], w.shape[0]))
    sl = tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(geom.out_spatial, geom.stride))
    return y[(slice(None), slice(None), *sl)].astype(dtype)


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: lax.Precision | None = None) -> jax.Array:
    """``dx = B_x^T(g; w)``: (N, C_out, *O) -> (N, C_in, *D).

    Zero-insert ``g`` by the stride (length ``(O-1)*stride + 1``), convolve
    with the dilated kernel (``ifft(G * W)``: full length exactly ``Dp``, no
    alias at FFT length ``>= Dp``), and crop the padding: ``[lo, lo + D)``,
    zeros where ``hi < 0`` left inputs unread.
    """
    dtype, cd = g.dtype, acc_dtype(g.dtype)
    g, w = g.astype(cd), w.astype(cd)
    G = geom.groups
    lengths = _fft_lengths(geom)
    fg = _spectrum(_upsample(geom, g), lengths, G)                 # (N, G, Co, F)
    fw = _spectrum(_dilate_kernel(geom, w), lengths, 1)
    fw = fw.reshape(G, w.shape[0] // G, w.shape[1], -1)            # (G, Co, Ci, F)
    fx = jnp.einsum("ngof,goif->ngif", fg, fw, precision=precision)
    xp = _inverse(fx, lengths, (g.shape[0], G * w.shape[1]))
    # xp holds x_pad at [0, Dp) (zeros after it up to the FFT length): keep [lo, lo + D).
    keep = [(lo, n - d - lo) for d, n, (lo, _) in zip(geom.in_spatial, lengths, geom.padding)]
    return crop_spatial(xp, keep, 2).astype(dtype)


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: lax.Precision | None = None) -> jax.Array:
    """``dw = B_w^T(g; x)``: -> (C_out, C_in/G, *k).

    ``dw[o, i, j] = sum_{n, q} x_pad[n, i, q + j*dilation] * g_up[n, o, q]`` with
    ``g_up`` the zero-inserted cotangent: lags ``0 .. k_eff - 1`` of the
    correlation ``ifft(X * conj(G))`` (batch contracted per frequency), every
    ``dilation``-th of them.
    """
    dtype, cd = x.dtype, acc_dtype(x.dtype)
    x, g = x.astype(cd), g.astype(cd)
    G = geom.groups
    lengths = _fft_lengths(geom)
    xp = pad_spatial(x, pads(geom), 2)
    fx = _spectrum(xp, lengths, G)                                 # (N, G, Ci, F)
    fg = _spectrum(_upsample(geom, g), lengths, G)                 # (N, G, Co, F)
    fw = jnp.einsum("ngif,ngof->goif", fx, jnp.conj(fg), precision=precision)
    c_out, c_in_g = g.shape[1], x.shape[1] // G
    dw = _inverse(fw, lengths, (c_out, c_in_g))
    sl = tuple(slice(0, ke, d) for ke, d in zip(geom.k_eff, geom.dilation))
    return dw[(slice(None), slice(None), *sl)].astype(dtype)


def flops(geom: ConvGeometry, batch: int, c_in: int, c_out: int) -> float:
    """Estimated real floating-point operations of :func:`forward` (each map is alike).

    FFTs: ``2.5 * F log2 F`` per real transform of ``F`` points (one per input
    channel, kernel channel pair and output channel); products:
    ``8 * N * C_in * C_out / G`` real operations per complex frequency
    (``F / 2`` of them). Compare with ``2 * N * C_in * C_out / G * prod(O) *
    prod(k)`` for direct / im2col / xla. See the module docstring.

    Example:
      >>> g = ConvGeometry(in_spatial=(64, 64), kernel=(15, 15), out_spatial=(50, 50),
      ...                  stride=(1, 1), padding=((0, 0),) * 2, dilation=(1, 1), groups=1)
      >>> flops(g, 1, 1, 1) < 2 * 50 * 50 * 15 * 15
      True
    """
    lengths = _fft_lengths(geom)
    f = float(np.prod(lengths))
    transforms = batch * c_in + c_out * c_in // geom.groups + batch * c_out
    fft = 2.5 * f * math.log2(max(f, 2.0)) * transforms
    products = 8.0 * batch * c_in * c_out / geom.groups * (f / 2)
    return fft + products


# Measured on XLA:CPU (2 cores, f32, forward / input_grad / weight_grad alike):
# the FFT algorithm does about 1/7 of the useful work per second of XLA's
# convolution, so it wins once its estimated flops fall below ~0.15 of direct
# (2-D, 16 -> 16 channels, 64x64: k >= 7; 1-D, 32 channels, L=1024: k >= ~40).
CPU_CROSSOVER = 0.15
#: ... and only while the kernel's spectrum, ``C_out * C_in/G * prod(F) / 2`` complex
#: values (:func:`kernel_spectrum`), stays below this many (24 MiB in complex64):
#: beyond it, transforming the kernel and reading its spectrum back for the products
#: runs far below the flop rate the crossover assumes. 2-D 'same', ms, fft against
#: the best of xla / im2col (2026-12-04): 128 -> 128 at 28x28, N=4, 9x9 (10.1 Mi
#: values, flops 0.11 of direct) 242 against 91; 11x11 (12.5 Mi) 212 against 130;
#: 5x5 64 -> 128, N=23 (4.0 Mi) 122 against 57; within it, 64 -> 64 N=16 9x9 (2.5
#: Mi) 75 against 80, 7x7 78 against 72; 32 -> 32 32x32 N=16 9x9 (0.8 Mi) 17
#: against 31; 16 -> 16 64x64 N=8 11x11 18 against 25.
MAX_KERNEL_SPECTRUM = 3 << 20


def kernel_spectrum(geom: ConvGeometry, c_in: int, c_out: int) -> int:
    """Complex values in the kernel's spectrum, about: ``C_out * C_in/G`` real
    transforms of ``prod(F) / 2`` frequencies each (``F``: the padded transform lengths).

    Example:
      >>> g = ConvGeometry(in_spatial=(28, 28), kernel=(9, 9), out_spatial=(28, 28),
      ...                  stride=(1, 1), padding=((4, 4),) * 2, dilation=(1, 1), groups=1)
      >>> kernel_spectrum(g, 128, 128) > MAX_KERNEL_SPECTRUM
      True
    """
    return c_out * (c_in // geom.groups) * math.prod(_fft_lengths(geom)) // 2


def prefer_over_direct(geom: ConvGeometry, batch: int, c_in: int, c_out: int,
                       crossover: float = CPU_CROSSOVER) -> bool:
    """True when :func:`flops` is below ``crossover`` times a direct convolution's
    and the kernel's spectrum is at most :data:`MAX_KERNEL_SPECTRUM` values.

    Direct: ``2 * N * C_in * C_out / G * prod(O) * prod(k)`` flops (xla, im2col
    and direct all do this work). The default crossover is measured on XLA:CPU.

    Example:
      >>> def square(k):
      ...     return ConvGeometry(in_spatial=(64, 64), kernel=(k, k), out_spatial=(64, 64),
      ...                         stride=(1, 1), padding=((k // 2, k // 2),) * 2,
      ...                         dilation=(1, 1), groups=1)
      >>> g3, g15 = square(3), square(15)
      >>> prefer_over_direct(g3, 8, 16, 16), prefer_over_direct(g15, 8, 16, 16)
      (False, True)
    """
    direct = (2.0 * batch * c_in * c_out / geom.groups * math.prod(geom.out_spatial)
              * math.prod(geom.kernel))
    return (flops(geom, batch, c_in, c_out) < crossover * direct
            and kernel_spectrum(geom, c_in, c_out) <= MAX_KERNEL_SPECTRUM)
