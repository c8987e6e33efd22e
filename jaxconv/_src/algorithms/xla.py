"""The ``xla`` algorithm: the three maps as ``lax.conv_general_dilated`` calls.

It supports every geometry and dtype, and is what ``"auto"`` picks on GPU and
TPU, where XLA's convolutions are the vendor libraries'. The arrays stay
channels-first: XLA chooses its own internal layout for a convolution and
transposes once at entry and exit.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike

from .._linear import acc_dtype
from ..geometry import ConvGeometry
from . import pads, transposed

NAME = "xla"

Precision = lax.Precision | None


def _preferred(dtype: DTypeLike) -> jnp.dtype | None:
    d = jnp.dtype(dtype)
    return acc_dtype(d) if d != acc_dtype(d) else None


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
        return lax.conv_general_dilated(lhs, rhs, feature_group_count=groups, **kw)
    if a == 1:
        return lax.conv_general_dilated(jnp.repeat(lhs, b, axis=1), rhs,
                                        feature_group_count=c_out, **kw)
    if b == 1:
        rhs_dw = rhs.reshape((c_in, 1, *rhs.shape[2:]))
        y = lax.conv_general_dilated(lhs, rhs_dw, feature_group_count=c_in, **kw)
        return y.reshape((y.shape[0], groups, a, *y.shape[2:])).sum(axis=2, dtype=y.dtype)
    if groups > SPLIT_GROUPS:
        return lax.conv_general_dilated(lhs, rhs, feature_group_count=groups, **kw)
    return jnp.concatenate([
        lax.conv_general_dilated(lhs[:, g * a:(g + 1) * a], rhs[g * b:(g + 1) * b], **kw)
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
    """
    G = geom.groups
    if split_weight_grad(G, x.shape[1], g.shape[1]):
        a, b = x.shape[1] // G, g.shape[1] // G
        return jnp.concatenate([
            _correlate_batch(geom, x[:, i * a:(i + 1) * a], g[:, i * b:(i + 1) * b], 1, precision)
            for i in range(G)
        ], axis=0)
    return _correlate_batch(geom, x, g, G, precision)


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


def _correlate_batch(geom: ConvGeometry, x: jax.Array, g: jax.Array, groups: int,
                     precision: Precision) -> jax.Array:
    """:func:`weight_grad` as one correlation with ``groups`` batch groups."""
    spec = (1, 0, *range(2, geom.ndim + 2))  # swap the roles of the first two axes
    dn = lax.ConvDimensionNumbers(lhs_spec=spec, rhs_spec=spec, out_spec=spec)
    dw = lax.conv_general_dilated(
        x, g,
        window_strides=geom.dilation,
        padding=pads(geom),
        rhs_dilation=geom.stride,
        dimension_numbers=dn,
        batch_group_count=groups,
        precision=precision,
        preferred_element_type=_preferred(x.dtype),
    )
    return dw.astype(x.dtype)
