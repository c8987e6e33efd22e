"""The ``xla`` algorithm: the three maps as ``lax.conv_general_dilated`` calls.

It supports every geometry and dtype, and is what ``"auto"`` picks on GPU and
TPU, where XLA's convolutions are the vendor libraries'. The arrays stay
channels-first: XLA chooses its own internal layout for a convolution and
transposes once at entry and exit.

On CPU, a 2-D convolution is widened where that is cheap (:func:`widened`): one
output more than the input along a stride-1 dim, sliced off again, which keeps
it on XLA's own convolution instead of YNNPACK's (see :data:`WIDEN_AT_MOST`).
The weight gradient's correlation dilates its input instead
(:func:`dilates_weight_grad`). Both only where :func:`ynn_takes_convolutions`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from .._linear import acc_dtype
from ..geometry import ConvGeometry, k_eff, window_output_size
from . import fenced, pads, transposed

NAME = "xla"

Precision = lax.Precision | None


def _preferred(dtype: DTypeLike) -> jnp.dtype | None:
    d = jnp.dtype(dtype)
    return acc_dtype(d) if d != acc_dtype(d) else None


#: XLA's CPU runtime (jaxlib 0.10) hands a 2-D float convolution with more than 16
#: input or output channels to YNNPACK unless, among other conditions, an output
#: spatial dim is larger than the input's; XLA's own convolution (Eigen's) ran
#: 1.1-4.2x faster per map in every ungrouped and grouped shape measured from 16
#: channels each way but the depthwise one. :func:`widened` therefore makes one output more than the input
#: along a stride-1 dim (a higher padding there, the extra outputs sliced off) when
#: that costs at most this fraction more work. Forward, ms, YNNPACK -> widened
#: (extra work): 3x3 'same' 64->64 56x56 N=8 15.4 -> 9.4 (2%); 16->32 8.2 -> 5.9;
#: 128->128 28x28 N=32 33.6 -> 31.2; 256->256 14x14 8.2 -> 7.9 (7%); 5x5 'same'
#: 64->64 56x56 37.7 -> 22.3; 'valid' 3x3 64->64 56x56 39.9 -> 9.5 (6%), 32->32
#: 28x28 1.5 -> 1.0 (12%); LeNet's conv2 ('valid' 5x5 20->50 on 12x12, N=128) 10.2
#: -> 4.4 (63%); 32 groups of 8, 14x14, 7.3 -> 3.9; 4 groups of 32, 28x28, 4.9 ->
#: 3.8; input gradients alike (3x3 'same' 64->64 15.3 -> 9.6). Strided dims are
#: not widened: one more output than the input doubles the work (7x7 stride 2 3->64
#: 224x224: 8.5 -> 22.9). Depthwise convolutions are not: YNNPACK's is the faster
#: (C=128 56x56 N=8: 101 against 125; ``auto`` runs ``direct`` there anyway). Nor is
#: the weight gradient's correlation: there the cotangent is the kernel, and a kernel
#: larger than the input ran 30-170x slower in XLA's convolution (3x3 'same' 64->64
#: 56x56: 1604 against YNNPACK's 49 ms). Nor are 16-bit floats, which YNNPACK does not
#: take. Only where :func:`ynn_takes_convolutions`.
WIDEN_AT_MOST = 0.75
#: ... and from at least this many input and output channels: from fewer, widened
#: ran slower than YNNPACK's, ms, forward / input gradient: LeNet's conv1 (1 -> 20,
#: 5x5, N=128) 3.5 -> 4.5 forward; 3x3 'same' 3->64 56x56 N=16 3.4 -> 5.7 / 5.4 ->
#: 7.9; 8->32 28x28 N=32 1.5 -> 1.8 / 1.8 -> 2.2; 5x5 'same' 3->32 32x32 N=64 15.4 ->
#: 6.1 but 5.5 -> 14.2 (16->32 56x56: 8.2 -> 5.9 forward).
WIDEN_MIN_CHANNELS = 16


def widened(lhs_shape: Sequence[int], rhs_shape: Sequence[int], strides: Sequence[int],
            padding: Sequence[tuple[int, int]], rhs_dilation: Sequence[int],
            lhs_dilation: Sequence[int], feature_groups: int = 1,
            dtype: DTypeLike = jnp.float32,
            backend: str | None = None) -> tuple[int, int] | None:
    """``(dim, extra)`` when :func:`_conv` widens this convolution, else None.

    A channels-first 2-D float32 or float64 convolution on CPU with more than 16
    input or output channels and at least :data:`WIDEN_MIN_CHANNELS` of each, no
    input dilation, not depthwise, whose every output
    spatial dim is at most the input's: ``extra`` outputs more along spatial dim
    ``dim``, the stride-1 dim where that costs least, at most :data:`WIDEN_AT_MOST` of
    the work. (:func:`_conv` widens only where :func:`ynn_takes_convolutions`.)

    Args:
      lhs_shape: the input's shape ``(N, C_in, H, W)``.
      rhs_shape: the kernel's ``(C_out, C_in / feature_groups, kh, kw)``.
      strides: the window strides, one per spatial dim.
      padding: ``(lo, hi)`` per spatial dim.
      rhs_dilation: the kernel dilation per spatial dim.
      lhs_dilation: the input dilation per spatial dim.
      feature_groups: ``feature_group_count``.
      dtype: the operands' dtype.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; None = ``jax.default_backend()``.

    Returns:
      ``(dim, extra)`` or None.

    Example:
      >>> widened((8, 64, 56, 56), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1),
      ...         backend="cpu")
      (0, 1)
      >>> widened((8, 64, 56, 56), (64, 64, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1),
      ...         backend="gpu") is None
      True
    """
    if (len(lhs_shape) != 4 or any(d != 1 for d in lhs_dilation)
            or max(lhs_shape[1], rhs_shape[0]) <= 16
            or min(lhs_shape[1], rhs_shape[0]) < WIDEN_MIN_CHANNELS
            or (feature_groups > 1 and feature_groups == lhs_shape[1] == rhs_shape[0])
            or not _ynn_dtype_on_cpu(dtype, backend)):
        return None
    outs = [window_output_size(D, k_eff(k, d), s, lo, hi) for D, k, (lo, hi), s, d in
            zip(lhs_shape[2:], rhs_shape[2:], padding, strides, rhs_dilation)]
    return _widest(lhs_shape[2:], outs, strides)


def _ynn_dtype_on_cpu(dtype: DTypeLike, backend: str | None) -> bool:
    """A float32 or float64 convolution on CPU (``backend`` None: JAX's default),
    the ones YNNPACK takes."""
    return (jnp.dtype(dtype) in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
            and (jax.default_backend() if backend is None else backend) == "cpu")


def _widest(sizes: Sequence[int], outs: Sequence[int],
            strides: Sequence[int]) -> tuple[int, int] | None:
    """``(dim, extra)``: ``outs[dim] + extra == sizes[dim] + 1`` at the stride-1 dim
    where ``extra / outs[dim]`` is least, if at most :data:`WIDEN_AT_MOST`; None if
    an ``outs`` is larger than its ``sizes`` already."""
    if any(O > D for O, D in zip(outs, sizes)):
        return None  # XLA's own convolution already
    costs = [((D + 1 - O) / O, i) for i, (D, O, s) in enumerate(zip(sizes, outs, strides))
             if s == 1 and O > 0]
    if not costs:
        return None
    cost, dim = min(costs)
    if cost > WIDEN_AT_MOST:
        return None
    return dim, sizes[dim] + 1 - outs[dim]


@functools.cache
def ynn_takes_convolutions() -> bool:
    """Whether XLA's CPU compiler in this process hands a plain 2-D convolution to
    YNNPACK and a widened one (:func:`widened`) to its own convolution.

    Compiled once per process from two small convolutions (64 -> 64 channels 3x3 on
    8x8); True with jaxlib 0.10's defaults, False where XLA's flags keep convolutions
    off YNNPACK (``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution``)
    or a jaxlib routes them otherwise: then nothing is widened.
    """
    if jax.default_backend() != "cpu":
        return False
    x = jax.ShapeDtypeStruct((1, 64, 8, 8), jnp.float32)
    w = jax.ShapeDtypeStruct((64, 64, 3, 3), jnp.float32)

    def ynn(hi: int) -> bool:
        f = functools.partial(lax.conv_general_dilated, window_strides=(1, 1),
                              padding=((1, 1), (1, hi)))
        return "__ynn_fusion" in (jax.jit(f).lower(x, w).compile().as_text() or "")

    return ynn(1) and not ynn(2)


def _conv(lhs: jax.Array, rhs: jax.Array, *, window_strides: Sequence[int],
          padding: Sequence[tuple[int, int]], rhs_dilation: Sequence[int] | None = None,
          lhs_dilation: Sequence[int] | None = None, feature_group_count: int = 1,
          **kw: Any) -> jax.Array:
    """``lax.conv_general_dilated`` (channels-first), widened where :func:`widened` says."""
    nd = lhs.ndim - 2
    rdil = tuple(rhs_dilation or (1,) * nd)
    ldil = tuple(lhs_dilation or (1,) * nd)
    wide = widened(lhs.shape, rhs.shape, window_strides, padding, rdil, ldil,
                   feature_group_count, lhs.dtype)
    if wide is not None and not ynn_takes_convolutions():
        wide = None
    pad = list(padding)
    if wide is not None:
        dim, extra = wide
        pad[dim] = (pad[dim][0], pad[dim][1] + extra)
    y = lax.conv_general_dilated(lhs, rhs, window_strides=window_strides, padding=pad,
                                 rhs_dilation=rdil, lhs_dilation=ldil,
                                 feature_group_count=feature_group_count, **kw)
    if wide is None:
        return y
    return lax.slice_in_dim(y, 0, y.shape[2 + wide[0]] - wide[1], axis=2 + wide[0])


#: Groups up to which a grouped convolution runs as one ungrouped convolution per group.
SPLIT_GROUPS = 16


def _grouped_conv(lhs: jax.Array, rhs: jax.Array, groups: int, **kw: Any) -> jax.Array:
    """``lax.conv_general_dilated`` with ``feature_group_count=groups``, formulated so that
    XLA's SPMD partitioner keeps a batch-sharded input sharded.

    The partitioner all-gathers the batch of a grouped convolution unless every group
    has one input and one output channel (a plain depthwise convolution). With
    ``a = C_in / G`` input and ``b = C_out / G`` output channels per group:

    * ``a == b == 1`` or ``G == 1``: as it is;
    * ``a == 1`` (depthwise with channel multiplier ``b``): repeat each input channel
      ``b`` times, then a depthwise convolution with multiplier 1;
    * ``b == 1`` (each output sums ``a`` inputs): a depthwise convolution over the
      ``G*a`` input channels, then the sum over each group's ``a`` results;
    * otherwise, up to :data:`SPLIT_GROUPS` groups: one ungrouped convolution per
      group, concatenated. More groups stay one grouped convolution.
    """
    c_in, c_out = lhs.shape[1], rhs.shape[0]
    a, b = c_in // groups, c_out // groups
    if groups == 1 or (a == 1 and b == 1):
        return _conv(lhs, rhs, feature_group_count=groups, **kw)
    if a == 1:
        return _conv(jnp.repeat(lhs, b, axis=1), rhs, feature_group_count=c_out, **kw)
    if b == 1:
        rhs_dw = rhs.reshape((c_in, 1, *rhs.shape[2:]))
        y = _conv(lhs, rhs_dw, feature_group_count=c_in, **kw)
        return y.reshape((y.shape[0], groups, a, *y.shape[2:])).sum(axis=2, dtype=y.dtype)
    if groups > SPLIT_GROUPS:
        return _conv(lhs, rhs, feature_group_count=groups, **kw)
    return jnp.concatenate([
        _conv(lhs[:, g * a:(g + 1) * a], rhs[g * b:(g + 1) * b], **kw)
        for g in range(groups)
    ], axis=1)


def _correlate(geom: ConvGeometry, lhs: jax.Array, rhs: jax.Array, precision: Precision,
               **kw: Any) -> jax.Array:
    """:func:`_grouped_conv` with the geometry's groups and kernel dilation, accumulating
    in at least float32 and returning ``lhs``'s dtype."""
    y = _grouped_conv(lhs, rhs, geom.groups, rhs_dilation=geom.dilation, precision=precision,
                      preferred_element_type=_preferred(lhs.dtype), **kw)
    return y.astype(lhs.dtype)


def supports(geom: ConvGeometry, dtype: DTypeLike) -> str | None:
    """Every geometry and floating dtype: always None."""
    return None


def forward(geom: ConvGeometry, x: jax.Array, w: jax.Array, *,
            precision: Precision = None) -> jax.Array:
    """y = B(x, w): cross-correlation, (N, C_in, D) x (C_out, C_in/G, k) -> (N, C_out, O)."""
    return _correlate(geom, x, w, precision, window_strides=geom.stride, padding=pads(geom))


def input_grad(geom: ConvGeometry, g: jax.Array, w: jax.Array, *,
               precision: Precision = None) -> jax.Array:
    """dx = B_x^T(g; w): (N, C_out, O) -> (N, C_in, D).

    The correlation of :func:`~jaxconv._src.algorithms.transposed`, with the
    stride as XLA's ``lhs_dilation`` (the padding absorbs output_padding too).
    """
    geom_t, wt = transposed(geom, w)
    return _correlate(geom, g, wt, precision, window_strides=(1,) * geom.ndim,
                      padding=geom_t.padding, lhs_dilation=geom.stride)


def weight_grad(geom: ConvGeometry, x: jax.Array, g: jax.Array, *,
                precision: Precision = None) -> jax.Array:
    """dw = B_w^T(g; x): correlate x with g over batch and positions -> (C_out, C_in/G, *k).

    ``dw[o, i, t] = sum_{n, p} x_pad[n, g(o)*C_in/G + i, p*stride + t*dilation] * g[n, o, p]``:
    a correlation in which batch plays the role of channels, ``g`` is the
    kernel, the conv's dilation becomes the stride and its stride the kernel
    dilation; groups become batch groups, or, on CPU, one correlation per group
    (:func:`split_weight_grad`).

    On CPU, in 2-D, ``g`` is first transposed to the layout XLA's convolution takes
    its kernel in, ``(*O, N, C_out)``, as a computation of its own
    (:func:`~jaxconv._src.algorithms.fenced`). Left to XLA, that copy was fused with
    ``g``'s producer, where it ran unvectorised: fwd+bwd of ``relu`` of a 'same' 5x5 1 ->
    20 convolution at 28x28, N=128, spent 14.8 of its 30.5 ms there (18.7 ms fenced;
    in LeNet's step, after the max-pool's backward, 1.1 ms either way). Not in 1-D:
    there the fenced copy made the fwd+bwd of the k=9 64->64 benchmark case 5-7%
    slower (A/B in one process, two runs, 2026-12-07); 3-D is unmeasured.
    """
    G = geom.groups
    kernel_layout = jax.default_backend() == "cpu" and geom.ndim == 2
    if split_weight_grad(G, x.shape[1], g.shape[1]):
        a, b = x.shape[1] // G, g.shape[1] // G

        def split(g: jax.Array) -> list[jax.Array]:
            gs = [g[:, i * b:(i + 1) * b] for i in range(G)]
            # one transposition a group (of the whole g: 1.1-1.3x slower)
            return [_kernel_layout(gi) for gi in gs] if kernel_layout else gs

        gs = fenced(split, g) if kernel_layout else split(g)
        return jnp.concatenate([
            _correlate_batch(geom, x[:, i * a:(i + 1) * a], gi, 1, precision, kernel_layout)
            for i, gi in enumerate(gs)
        ], axis=0)
    if kernel_layout:
        g = fenced(_kernel_layout, g)
    return _correlate_batch(geom, x, g, G, precision, kernel_layout)


def _kernel_layout(g: jax.Array) -> jax.Array:
    """``(N, C, *O)`` -> ``(*O, N, C)``, as the transposition of an ``(N*C, prod(O))``
    matrix. XLA's CPU backend emits different copies for the two forms, and which is
    faster depends on the context: alone, (128, 20, 24, 24), 0.55 against 2.1 ms for
    the permutation of the dims; in LeNet's step (conv1's cotangent) 0.67-0.75
    against 0.8, the step 5-8% faster at batch 128 (A/B in one process, three runs,
    2026-12-07); but after a 'same' 5x5 1 -> 20 convolution's ``relu`` at 28x28,
    N=128, 2.2 against 1.35 (fwd+bwd 5-7% slower)."""
    n, c, *o = g.shape
    return g.reshape((n * c, math.prod(o))).T.reshape((*o, n, c))


#: On CPU, grouped weight gradients of up to this many groups (not depthwise) run one
#: ungrouped correlation per group (:func:`split_weight_grad`).
SPLIT_WEIGHT_GROUPS = 128


def split_weight_grad(groups: int, c_in: int, c_out: int, backend: str | None = None) -> bool:
    """Whether :func:`weight_grad` runs one ungrouped correlation per group.

    On CPU, XLA's weight gradient of a grouped convolution (``batch_group_count``)
    is 100-700x slower than one ungrouped correlation per group, concatenated
    (3x3 stride 1, N=8, float32: 256 -> 256 channels at 14x14 in 32 groups
    1633 against 2.5-3.9 ms; 64 -> 64 at 56x56 in 8 groups 898 (an earlier
    measurement) against 7.4). So on CPU it splits grouped convolutions of
    :data:`SPLIT_WEIGHT_GROUPS` groups at most (more: one program per group
    would take long to compile). A depthwise convolution (one input and one
    output channel per group) stays whole; so does every grouped convolution on
    GPU and TPU, where the vendor libraries run grouped weight gradients and the
    split is unmeasured.

    Args:
      groups: the convolution's groups.
      c_in: its input channels.
      c_out: its output channels.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; None = ``jax.default_backend()``.

    Returns:
      True where the weight gradient is split per group.

    Example:
      >>> split_weight_grad(32, 256, 256, backend="cpu"), split_weight_grad(32, 256, 256, "gpu")
      (True, False)
      >>> split_weight_grad(128, 128, 128, backend="cpu")  # depthwise
      False
    """
    if not 1 < groups <= SPLIT_WEIGHT_GROUPS or (c_in == groups and c_out == groups):
        return False
    return (jax.default_backend() if backend is None else backend) == "cpu"


def dilates_weight_grad(ndim: int, groups: int, n: int, c_out: int, dtype: DTypeLike,
                        backend: str | None = None) -> bool:
    """Whether :func:`weight_grad`'s correlation runs with its input dilated by 2.

    A 2-D ungrouped float32 or float64 weight gradient on CPU whose correlation
    YNNPACK would take (``max(n, c_out) > 16``: the batch is that correlation's
    input channels), where :func:`ynn_takes_convolutions`. Its first spatial dim
    is then computed with input dilation 2 and twice the stride and dilation, the
    same sums over the same products, which YNNPACK does not take, so XLA runs
    its own convolution: per map, ms, YNNPACK -> dilated (im2col): 3x3 'same'
    64->64 56x56 N=8 52.9 -> 15.4 (12.7); 256->256 14x14 10.5 -> 8.2 (21.2);
    'valid' 64->64 28x28 N=16 22.6 -> 5.8 (8.0); 24->24 28x28 3.7 -> 2.2 (3.4);
    LeNet's conv2 at batch 128 15.1 -> 3.8 (5.6) and conv1 9.0 -> 3.5 (3.6); 3x3
    stride 2 64->128 14.7 -> 6.8 (6.3); 7x7 stride 2 3->64 224x224 28.4 -> 14.2
    (13.8). (The forward is widened instead, :func:`widened`: dilated, a
    one-channel input ran 2x slower.)

    Args:
      ndim: spatial dims.
      groups: the convolution's groups.
      n: the batch size.
      c_out: the output channels.
      dtype: the operands' dtype.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; None = ``jax.default_backend()``.

    Returns:
      True where the correlation is dilated (given the probe).

    Example:
      >>> dilates_weight_grad(2, 1, 128, 50, "float32", backend="cpu")
      True
      >>> dilates_weight_grad(2, 1, 8, 8, "float32", backend="cpu")  # YNNPACK declines
      False
    """
    return (ndim == 2 and groups == 1 and max(n, c_out) > 16
            and _ynn_dtype_on_cpu(dtype, backend))


def after_cotangent(x: jax.Array, g: jax.Array) -> jax.Array:
    """``x`` unchanged, but computed from each sample's cotangent too, so that XLA
    cannot copy it before the backward pass.

    XLA's own convolution copies the dilated weight gradient's operands into its
    layout. The copy of ``x``, a forward activation, was scheduled as soon as ``x``
    existed, and so lived through the rest of the forward pass: with LeNet's conv2
    on the dilated weight gradient the step's peak memory rose from 1.15x to 1.21x
    lax's. Tied to the cotangent, the copy is made in the backward pass: the peak
    was 0.98x what it was without the dilated conv2 (test network, batch 128).

    The result is ``x - 0 * isnan(g[n, first element])`` per sample ``n``: exactly
    ``x``, bit for bit (``-0.0 - 0.0`` is ``-0.0``; NaN stays NaN), whatever ``g``
    holds. Per sample, so that a batch sharded over devices needs no collective.
    (``lax.optimization_barrier`` had no effect: XLA's CPU pipeline removes it
    before scheduling.)

    Args:
      x: ``(N, ...)``, a floating dtype.
      g: ``(N, ...)``, the cotangent.

    Returns:
      ``x``'s values, with a data dependency on ``g``.

    Example:
      >>> x = jnp.array([[-0.0, 1.0], [jnp.nan, 2.0]])
      >>> after_cotangent(x, jnp.full((2, 3), jnp.nan))
      Array([[-0.,  1.],
             [nan,  2.]], dtype=float32)
    """
    first = g.reshape((g.shape[0], -1))[:, 0]
    zero = jnp.isnan(first).astype(x.dtype) * jnp.zeros((), x.dtype)
    return x - zero.reshape((-1,) + (1,) * (x.ndim - 1))


def _correlate_batch(geom: ConvGeometry, x: jax.Array, g: jax.Array, groups: int,
                     precision: Precision, kernel_layout: bool) -> jax.Array:
    """:func:`weight_grad` as one correlation with ``groups`` batch groups (its input
    dilated where :func:`dilates_weight_grad`); ``g`` is ``(N, C_out, *O)``, or with
    ``kernel_layout`` ``(*O, N, C_out)``."""
    nd = geom.ndim
    spec = (1, 0, *range(2, nd + 2))  # swap the roles of the first two axes
    g_spec = (nd + 1, nd, *range(nd)) if kernel_layout else spec
    dn = lax.ConvDimensionNumbers(lhs_spec=spec, rhs_spec=g_spec, out_spec=spec)
    strides, rhs_dil, padding = list(geom.dilation), list(geom.stride), list(pads(geom))
    lhs_dil = [1] * geom.ndim
    c_out = g.shape[-1] if kernel_layout else g.shape[1]
    if (dilates_weight_grad(geom.ndim, groups, x.shape[0], c_out, x.dtype)
            and ynn_takes_convolutions()):
        # x[i] -> x_dil[2i]: every index the correlation reads doubles along dim 0
        strides[0], rhs_dil[0], lhs_dil[0] = 2 * strides[0], 2 * rhs_dil[0], 2
        padding[0] = (2 * padding[0][0], 2 * padding[0][1])
        # per sample: (*O, N, C) -> (N, ...), read by after_cotangent, not copied
        x = after_cotangent(x, jnp.moveaxis(g, nd, 0) if kernel_layout else g)
    dw = lax.conv_general_dilated(
        x, g,
        window_strides=strides,
        padding=padding,
        lhs_dilation=lhs_dil,
        rhs_dilation=rhs_dil,
        dimension_numbers=dn,
        batch_group_count=groups,
        precision=precision,
        preferred_element_type=_preferred(x.dtype),
    )
    return dw.astype(x.dtype)
