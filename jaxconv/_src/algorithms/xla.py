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
    dilation; groups become batch groups.
    """
    spec = (1, 0, *range(2, geom.ndim + 2))  # swap the roles of the first two axes
    dn = lax.ConvDimensionNumbers(lhs_spec=spec, rhs_spec=spec, out_spec=spec)
    dw = lax.conv_general_dilated(
        x, g,
        window_strides=geom.dilation,
        padding=pads(geom),
        rhs_dilation=geom.stride,
        dimension_numbers=dn,
        batch_group_count=geom.groups,
        precision=precision,
        preferred_element_type=_preferred(x.dtype),
    )
    return dw.astype(x.dtype)
