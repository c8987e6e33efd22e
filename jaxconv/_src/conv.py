"""Convolution and transposed convolution with hand-derived VJPs.

A convolution with fixed geometry is a bilinear map ``y = B(x, w)``. Three
linear maps come from it, and each one's VJP is written with the other two:

* ``B(x, w)``        -- :func:`conv`            (N, C_in, D) -> (N, C_out, O)
* ``B_x^T(y; w)``    -- :func:`conv_transpose`  (N, C_out, O) -> (N, C_in, D)
* ``B_w^T(y; x)``    -- the weight gradient     -> (C_out, C_in // groups, *k)

All three share one :class:`~jaxconv._src._args.ConvGeometry` (static), so a
gradient of a gradient again runs these hand-derived rules.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from . import _args
from . import padding as _padding
from ._args import ConvGeometry
from ._linear import match_varying

_HIGHEST = lax.Precision.HIGHEST


def _acc_type(dtype):
    """Accumulation dtype: f32 for half-precision inputs, else the input's own."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else None


def _channel_sum(g, dtype):
    """Sum over every axis but the channel axis (1), accumulated in >= f32."""
    axes = (0,) + tuple(range(2, g.ndim))
    return jnp.sum(g, axis=axes, dtype=_acc_type(dtype)).astype(dtype)


def _add_bias(y, b):
    if b is None:
        return y
    return y + b.reshape((1, -1) + (1,) * (y.ndim - 2)).astype(y.dtype)


# --------------------------------------------------------------------------
# The three bilinear maps, as plain lax calls (no custom rules here).
# --------------------------------------------------------------------------


def _forward_pads(geom: ConvGeometry):
    """(lo, hi) with hi trimmed so that exactly ``out_spatial`` outputs come out.

    All three maps are defined by one index relation, ``t = p*stride +
    j*dilation - lo`` for x position ``t < D``, y position ``p < O`` and tap
    ``j < k``; ``hi`` only matters through ``O`` (it is what conv_transpose's
    output_padding changes), so each map derives its padding from D and O.
    """
    return tuple(
        (lo, (O - 1) * s + d * (kk - 1) + 1 - D - lo)
        for D, O, kk, s, d, (lo, _) in zip(
            geom.in_spatial, geom.out_spatial, geom.kernel, geom.stride, geom.dilation,
            geom.padding,
        )
    )


def _b(geom: ConvGeometry, x, w):
    """y = B(x, w): cross-correlation, (N, C_in, D) x (C_out, C_in/G, k) -> (N, C_out, O)."""
    y = lax.conv_general_dilated(
        x, w,
        window_strides=geom.stride,
        padding=_forward_pads(geom),
        rhs_dilation=geom.dilation,
        feature_group_count=geom.groups,
        precision=_HIGHEST,
        preferred_element_type=_acc_type(x.dtype),
    )
    return y.astype(x.dtype)


def _bxt(geom: ConvGeometry, y, w):
    """x = B_x^T(y; w): (N, C_out, O) -> (N, C_in, D).

    The transpose of a strided, padded correlation is a correlation of the
    stride-dilated ``y`` (``lhs_dilation=stride``) with the spatially flipped
    kernel whose in/out channels are swapped within each group, padded by
    ``dilation*(k-1) - lo`` in front and whatever makes the output exactly D
    long behind (negative padding crops; it absorbs output_padding too).
    """
    G = geom.groups
    c_out, cin_g = w.shape[:2]
    k = w.shape[2:]
    wt = w.reshape((G, c_out // G, cin_g) + k).swapaxes(1, 2).reshape((G * cin_g, c_out // G) + k)
    wt = jnp.flip(wt, axis=tuple(range(2, wt.ndim)))
    pads = []
    for D, O, kk, s, d, (lo, _) in zip(
        geom.in_spatial, geom.out_spatial, geom.kernel, geom.stride, geom.dilation, geom.padding
    ):
        ke = d * (kk - 1)
        pads.append((ke - lo, D - (O - 1) * s - 1 + lo))
    x = lax.conv_general_dilated(
        y, wt,
        window_strides=(1,) * geom.ndim,
        padding=pads,
        lhs_dilation=geom.stride,
        rhs_dilation=geom.dilation,
        feature_group_count=G,
        precision=_HIGHEST,
        preferred_element_type=_acc_type(y.dtype),
    )
    return x.astype(y.dtype)


def _bwt(geom: ConvGeometry, x, y):
    """w = B_w^T(y; x): correlate x with y over batch and positions -> (C_out, C_in/G, *k).

    ``dw[o, i, t] = sum_{n, p} x_pad[n, g(o)*C_in/G + i, p*stride + t*dilation] * y[n, o, p]``:
    a correlation in which batch plays the role of channels, ``y`` is the kernel,
    the conv's dilation becomes the stride and its stride the kernel dilation.
    Groups become batch groups. The hi padding is trimmed so exactly k taps come out.
    """
    nd = geom.ndim
    spec = (1, 0) + tuple(range(2, nd + 2))  # swap the first two axes' roles
    dn = lax.ConvDimensionNumbers(lhs_spec=spec, rhs_spec=spec, out_spec=spec)
    w = lax.conv_general_dilated(
        x, y,
        window_strides=geom.dilation,
        padding=_forward_pads(geom),
        rhs_dilation=geom.stride,
        dimension_numbers=dn,
        batch_group_count=geom.groups,
        precision=_HIGHEST,
        preferred_element_type=_acc_type(x.dtype),
    )
    return w.astype(x.dtype)


# --------------------------------------------------------------------------
# custom_vjp wrappers: each backward rule uses the other two.
# --------------------------------------------------------------------------


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _conv(geom, x, w, b):
    return _add_bias(_b(geom, x, w), b)


def _conv_fwd(geom, x, w, b):
    # b (C_out values) only marks whether a bias cotangent is due: None is an
    # empty pytree, so the residuals stay arrays only.
    return _conv(geom, x, w, b), (x, w, b)


# y = B(x, w) + b is linear in x for fixed w: as a matrix, y = W x, so
# dx = W^T g = B_x^T(g; w), a transposed convolution of the cotangent.
# It is linear in w for fixed x: y = X w, so dw = X^T g = B_w^T(g; x), the
# correlation of x with g. b is broadcast over batch and positions, so db
# is g summed over those axes.
def _conv_bwd(geom, res, g):
    x, w, b = res
    dx = _conv_transpose(geom, g, w, None)
    dw = _conv_weight(geom, x, g)
    db = None if b is None else _channel_sum(g, b.dtype)
    return dx, dw, db


_conv.defvjp(_conv_fwd, _conv_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _conv_transpose(geom, y, w, b):
    return _add_bias(_bxt(geom, y, w), b)


def _conv_transpose_fwd(geom, y, w, b):
    return _conv_transpose(geom, y, w, b), (y, w, b)


# x = B_x^T(y; w) + b. Linear in y with matrix W^T, so dy = (W^T)^T h = W h =
# B(h, w): a convolution of the cotangent. For w, <B_x^T(y; w), h> = <y, B(h, w)>
# and B(h, w) is linear in w with matrix H, so dw = H^T y = B_w^T(y; h). db = sum h.
def _conv_transpose_bwd(geom, res, h):
    y, w, b = res
    dy = _conv(geom, h, w, None)
    dw = _conv_weight(geom, h, y)
    db = None if b is None else _channel_sum(h, b.dtype)
    return dy, dw, db


_conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _conv_weight(geom, x, y):
    return _bwt(geom, x, y)


def _conv_weight_fwd(geom, x, y):
    return _conv_weight(geom, x, y), (x, y)


# w = B_w^T(y; x), defined by <B_w^T(y; x), h> = <y, B(x, h)> for every
# w-shaped h. So d/dy = B(x, h), a convolution of x with the cotangent; and
# <y, B(x, h)> = <B_x^T(y; h), x>, so d/dx = B_x^T(y; h), a transposed convolution.
def _conv_weight_bwd(geom, res, h):
    x, y = res
    return _conv_transpose(geom, y, h, None), _conv(geom, x, h, None)


_conv_weight.defvjp(_conv_weight_fwd, _conv_weight_bwd)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _spatial_axes(a):
    return tuple(range(2, a.ndim))


def conv(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    padding_mode: str = "zeros",
) -> jax.Array:
    """N-d convolution (cross-correlation by default), PyTorch ``conv1d/2d/3d`` semantics.

    ``y[n, o, p] = b[o] + sum_{i, t} x_pad[n, g*C_in/G + i, p*stride + t*dilation] * w[o, i, t]``
    where ``g`` is the group of output channel ``o``. This is cross-correlation,
    the convention of every ML library (``torch.nn.functional.conv2d``,
    ``scipy.signal.correlate``); ``flip=True`` flips the kernel on every spatial
    axis and so computes true convolution (``scipy.signal.convolve``).

    Args:
      x: input ``(N, C_in, *D)`` with 1, 2 or 3 spatial dims, floating point.
      w: kernel ``(C_out, C_in // groups, *k)``, same dtype as ``x``.
      b: optional bias ``(C_out,)``.
      stride: int or one int per spatial dim, >= 1.
      padding: int, one int per dim, one ``(lo, hi)`` pair per dim, or
        ``"valid"`` (no padding), ``"same"`` (``ceil(D / stride)`` outputs; an
        odd total puts the extra element at the end, as PyTorch and XLA do) or
        ``"full"`` (``dilation*(k-1)`` on both sides: every partial overlap).
        Zero padding.
      dilation: int or one per dim, >= 1: spacing between kernel taps.
      groups: split channels into this many independent groups (``groups ==
        C_in`` is depthwise); must divide ``C_in`` and ``C_out``.
      flip: if True, compute true convolution (kernel flipped on every spatial axis).
      padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, as
        ``torch.nn.Conv2d(padding_mode=...)``: pad ``x`` with this mode by the resolved
        ``(lo, hi)`` pairs (a string padding is resolved first), then convolve with no
        padding (see :func:`jaxconv.pad`).

    Returns:
      ``(N, C_out, *O)`` with ``O = floor((D + lo + hi - dilation*(k-1) - 1) / stride) + 1``,
      in ``x``'s dtype (bf16/f16 accumulate in f32).

    Raises:
      ValueError, TypeError: on bad shapes or arguments; the message names the
        argument, what was expected and what was received.

    Gradients are hand-derived ``jax.custom_vjp`` rules (``dx`` is a transposed
    convolution, ``dw`` a correlation of ``x`` with the cotangent, ``db`` its
    sum); reverse-over-reverse (grad of grad) works and again uses these rules.
    Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available
    on ``custom_vjp`` functions; use ``jax.jacrev(jax.grad(f))`` for Hessians.
    """
    x = _args.as_array("conv", "x", x)
    w = _args.as_array("conv", "w", w)
    b = None if b is None else _args.as_array("conv", "b", b)
    geom = _args.conv_geometry(
        "conv", x.shape, w.shape, None if b is None else b.shape,
        stride=stride, padding=padding, dilation=dilation, groups=groups,
    )
    _args.check_floating("conv", x=x, w=w, b=b)
    x, geom = _padding.pad_for_conv("conv", x, geom, _padding.check_mode("conv", padding_mode))
    if not isinstance(flip, bool):
        raise TypeError(f"jaxconv.conv: flip must be a bool; got {flip!r}")
    if flip:
        w = jnp.flip(w, axis=_spatial_axes(w))
    x, w, b = match_varying(x, w, b)  # shard_map: see _linear.match_varying
    return _conv(geom, x, w, b)


def conv_transpose(
    x: Any,
    w: Any,
    b: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> jax.Array:
    """Transposed convolution, PyTorch ``conv_transpose1d/2d/3d`` semantics.

    The exact adjoint of :func:`conv` in ``x``: for the same kernel and
    arguments, ``<conv(z, w), x> == <z, conv_transpose(x, w)>``. As a matrix
    view, ``conv`` is ``y = W z``; this is ``W^T x``: every input value scatters
    a scaled copy of the kernel into the (stride-spaced) output. This is also
    the gradient of ``conv`` with respect to its input.

    Args:
      x: input ``(N, C_in, *D)`` with 1, 2 or 3 spatial dims, floating point.
      w: kernel ``(C_in, C_out // groups, *k)`` (PyTorch's transposed layout:
        the same array as the kernel of the forward ``conv`` it transposes).
      b: optional bias ``(C_out,)``.
      stride: int or one per dim, >= 1.
      padding: the padding of the forward convolution, removed from the output:
        int, one int per dim, one ``(lo, hi)`` pair per dim, ``"valid"`` (0),
        ``"full"`` (``dilation*(k-1)``), or ``"same"`` (output ``D*stride``,
        the adjoint of a "same" conv on that size, as TensorFlow defines it).
      output_padding: extra size added at the end of each dim to pick among the
        input sizes a strided conv maps to the same ``D``; int or one per dim,
        smaller than stride or dilation (PyTorch's rule).
      dilation: int or one per dim, >= 1.
      groups: must divide ``C_in`` (and ``C_out = w.shape[1] * groups``).

    Returns:
      ``(N, C_out, *O)`` with
      ``O = (D - 1)*stride - lo - hi + dilation*(k - 1) + output_padding + 1``.

    Raises:
      ValueError, TypeError: on bad shapes or arguments.

    Gradients are hand-derived ``jax.custom_vjp`` rules (``dx`` is a convolution
    of the cotangent with ``w``); reverse-over-reverse works. Forward mode
    (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
    ``custom_vjp`` functions.
    """
    x = _args.as_array("conv_transpose", "x", x)
    w = _args.as_array("conv_transpose", "w", w)
    b = None if b is None else _args.as_array("conv_transpose", "b", b)
    geom = _args.conv_transpose_geometry(
        "conv_transpose", x.shape, w.shape, None if b is None else b.shape,
        stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation, groups=groups,
    )
    _args.check_floating("conv_transpose", x=x, w=w, b=b)
    x, w, b = match_varying(x, w, b)  # shard_map: see _linear.match_varying
    return _conv_transpose(geom, x, w, b)
