"""Locally connected, tiled and separable convolutions.

:func:`local_conv` (unshared weights: one kernel per output position) and
:func:`tiled_conv` (output position ``o`` uses kernel ``o mod tile``; ``tile=1``
is an ordinary convolution, ``tile = out_spatial`` a locally connected one) are
one bilinear map, computed from patches: ``cols = unfold(x)``, then one batched
matrix product per kernel of the tile. Its VJP is hand-derived (below): the
input gradient folds ``W^T g`` back through :func:`jaxconv.fold`, the weight
gradient correlates ``g`` with the patches.

:func:`separable_conv` and :func:`depthwise_separable_conv` are compositions of
:func:`jaxconv.conv`, whose ``custom_vjp`` rules give their gradients.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is
not available on ``custom_vjp`` functions; reverse-over-reverse is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from . import _args
from ._linear import acc_dtype
from .conv import conv
from .geometry import ConvGeometry
from .unfold import IntOrSeq, Padding, _fold, _unfold

_HIGHEST = lax.Precision.HIGHEST

# --------------------------------------------------------------------------
# Tiled (and locally connected) convolution: one bilinear map
# --------------------------------------------------------------------------


def _blocks(out: tuple[int, ...], tile: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-o // t) for o, t in zip(out, tile))


def _to_blocks(a: jax.Array, out: tuple[int, ...], tile: tuple[int, ...]) -> jax.Array:
    """(N, R, *O) -> (N, B, T, R): zero-pad O to whole tiles, split each position
    p = b*tile + t into its block b and its place t in the tile."""
    n, r, nd = a.shape[0], a.shape[1], len(out)
    nb = _blocks(out, tile)
    a = jnp.pad(a, [(0, 0)] * 2 + [(0, b * t - o) for b, t, o in zip(nb, tile, out)])
    a = a.reshape(n, r, *(v for b, t in zip(nb, tile) for v in (b, t)))
    perm = (0, *(2 + 2 * i for i in range(nd)), *(3 + 2 * i for i in range(nd)), 1)
    return a.transpose(perm).reshape(n, math.prod(nb), math.prod(tile), r)


def _from_blocks(a: jax.Array, out: tuple[int, ...], tile: tuple[int, ...]) -> jax.Array:
    """(N, B, T, R) -> (N, R, *O): the adjoint of :func:`_to_blocks` (and its inverse
    on the positions that exist; the padded ones are dropped)."""
    n, r, nd = a.shape[0], a.shape[3], len(out)
    nb = _blocks(out, tile)
    a = a.reshape(n, *nb, *tile, r)
    perm = (0, 2 * nd + 1, *(v for i in range(nd) for v in (1 + i, 1 + nd + i)))
    a = a.transpose(perm).reshape(n, r, *(b * t for b, t in zip(nb, tile)))
    return a[(slice(None), slice(None), *(slice(0, o) for o in out))]


def _matmul(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.einsum(spec, a, b, precision=_HIGHEST,
                      preferred_element_type=acc_dtype(a.dtype)).astype(a.dtype)


def _tiled_forward(cfg: tuple[ConvGeometry, tuple[int, ...]], x: jax.Array, w: jax.Array,
                   b: jax.Array | None) -> jax.Array:
    geom, tile = cfg
    out = geom.out_spatial
    n, c_out = x.shape[0], w.shape[len(tile)]
    cols = _unfold(geom, x).reshape(n, -1, *out)                     # (N, R, *O)
    wm = w.reshape(math.prod(tile), c_out, -1)                      # (T, C_out, R)
    y = _matmul("nbtr,tor->nbto", _to_blocks(cols, out, tile), wm)  # (N, B, T, C_out)
    y = _from_blocks(y, out, tile)                                  # (N, C_out, *O)
    if b is not None:
        y = y + b.reshape(c_out, *(out if b.ndim > 1 else (1,) * len(out))).astype(y.dtype)
    return y


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _tiled(cfg: tuple[ConvGeometry, tuple[int, ...]], x: jax.Array, w: jax.Array,
           b: jax.Array | None) -> jax.Array:
    return _tiled_forward(cfg, x, w, b)


def _tiled_fwd(cfg: tuple[ConvGeometry, tuple[int, ...]], x: jax.Array, w: jax.Array,
               b: jax.Array | None) -> tuple[jax.Array, tuple[Any, ...]]:
    return _tiled(cfg, x, w, b), (x, w, b)


# With cols = U x (unfold) and blocks Xb = blocks(cols), output position (b, t)
# is y[n, b, t, o] = sum_r W[t, o, r] Xb[n, b, t, r] (+ bias): bilinear in (x, W).
# For fixed W it is y = Bl^T (W ⊙ blocks(U x)), so dx = U^T blocks^T (W^T g):
#   dXb[n, b, t, r] = sum_o W[t, o, r] Gb[n, b, t, o],   dx = fold(from_blocks(dXb))
# (from_blocks is blocks' adjoint: zero-padded tile positions are dropped).
# For fixed x it is linear in W with matrix Xb, so dW = Xb^T g:
#   dW[t, o, r] = sum_{n, b} Gb[n, b, t, o] Xb[n, b, t, r]
# where Gb = blocks(g) (padded positions get zero cotangent). The bias is
# broadcast over batch (and positions when shared), so db sums g over those axes.
# Every step is unfold / fold (an adjoint pair) or an einsum, so grad of grad works.
def _tiled_bwd(cfg: tuple[ConvGeometry, tuple[int, ...]], res: tuple[Any, ...],
               g: jax.Array) -> tuple[Any, ...]:
    geom, tile = cfg
    x, w, b = res
    out = geom.out_spatial
    n, c_out = x.shape[0], w.shape[len(tile)]
    wm = w.reshape(math.prod(tile), c_out, -1)
    gb = _to_blocks(g, out, tile)                                    # (N, B, T, C_out)
    dcols = _from_blocks(_matmul("nbto,tor->nbtr", gb, wm), out, tile)
    dx = _fold(geom, dcols.reshape(n, dcols.shape[1], -1))
    xb = _to_blocks(_unfold(geom, x).reshape(n, -1, *out), out, tile)
    dw = _matmul("nbto,nbtr->tor", gb, xb).reshape(w.shape)
    db = None
    if b is not None:
        axes = (0,) if b.ndim > 1 else (0, *range(2, g.ndim))
        db = jnp.sum(g, axis=axes, dtype=acc_dtype(b.dtype)).astype(b.dtype)
    return dx, dw, db


_tiled.defvjp(_tiled_fwd, _tiled_bwd)


def _unshared(fn: str, x: ArrayLike, w: ArrayLike, b: ArrayLike | None, *, stride: IntOrSeq,
              padding: Padding, dilation: IntOrSeq, tile: IntOrSeq | None) -> jax.Array:
    """local_conv (``tile=None``: one kernel per output position) and tiled_conv:
    validates x, w, b and applies the tiled map."""
    x = _args.as_array(fn, "x", x)
    w = _args.as_array(fn, "w", w)
    b = None if b is None else _args.as_array(fn, "b", b)
    nd = _args.check_batched(fn, "x", x.shape, "(N, C_in, *spatial)")
    want = f"({'*out_spatial' if tile is None else '*tile'}, C_out, C_in, *kernel)"
    if w.ndim != 2 * nd + 2 or any(d < 1 for d in w.shape):
        raise ValueError(
            f"jaxconv.{fn}: w must be {want} with {nd} spatial dims (rank {2 * nd + 2}, no empty "
            f"dims) to match x; got w.shape={tuple(w.shape)}, x.shape={tuple(x.shape)}"
        )
    if w.shape[nd + 1] != x.shape[1]:
        raise ValueError(
            f"jaxconv.{fn}: x has {x.shape[1]} channels but w expects {w.shape[nd + 1]} "
            f"(w is {want}); x.shape={tuple(x.shape)}, w.shape={tuple(w.shape)}"
        )
    geom = _args.sliding_geometry(fn, tuple(x.shape[2:]), tuple(w.shape[nd + 2:]),
                                  stride=stride, padding=padding, dilation=dilation)
    out = geom.out_spatial
    if tile is None:
        if tuple(w.shape[:nd]) != out:
            raise ValueError(
                f"jaxconv.{fn}: w must have one kernel per output position, w.shape[:{nd}] == "
                f"the output size {out}; got w.shape={tuple(w.shape)}"
            )
        tiles = out
    else:
        tiles = _args.int_tuple(fn, "tile", tile, nd, minimum=1)
        if tuple(w.shape[:nd]) != tiles:
            raise ValueError(
                f"jaxconv.{fn}: w must be (*tile, C_out, C_in, *kernel) with w.shape[:{nd}] == "
                f"tile = {tiles}; got w.shape={tuple(w.shape)}"
            )
    c_out = w.shape[nd]
    if b is not None and tuple(b.shape) not in ((c_out,), (c_out, *out)):
        raise ValueError(
            f"jaxconv.{fn}: b must have shape (C_out,) = ({c_out},) or (C_out, *out_spatial) = "
            f"{(c_out, *out)}; got b.shape={tuple(b.shape)}"
        )
    _args.check_floating(fn, x=x, w=w, b=b)
    return _tiled((geom, tiles), x, w, b)


def local_conv(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, stride: IntOrSeq = 1,
               padding: Padding = 0, dilation: IntOrSeq = 1) -> jax.Array:
    """Locally connected convolution: a different kernel at every output position.

    ``y[n, o, p] = b[o(, p)] + sum_{i, j} w[p, o, i, j] * x_pad[n, i, p*stride + j*dilation - lo]``
    (Keras' ``LocallyConnected1D/2D``; PyTorch has no built-in one). Weights are
    not shared between positions; everything else (stride, padding, dilation) is as
    in :func:`jaxconv.conv` with ``groups=1``.

    Args:
      x: ``(N, C_in, *D)`` with 1, 2 or 3 spatial dims, floating point.
      w: ``(*O, C_out, C_in, *k)``: one ``(C_out, C_in, *k)`` kernel per output
        position, ``O`` the output size the other arguments give.
      b: optional bias, ``(C_out,)`` (shared over positions) or ``(C_out, *O)``
        (one per output position, as Keras).
      stride: int or one per dim, as in :func:`jaxconv.conv`.
      padding: zero padding, any form :func:`jaxconv.conv` takes.
      dilation: int or one per dim, as in :func:`jaxconv.conv`.

    Returns:
      ``(N, C_out, *O)``.

    Raises:
      ValueError, TypeError: on bad shapes or arguments.

    Computed as patches (:func:`jaxconv.unfold`) times one matrix per position; the
    gradient is a hand-written ``custom_vjp`` (``dx`` folds ``w^T g``, ``dw``
    multiplies ``g`` by the patches). Differentiable in reverse mode only
    (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.arange(4.0).reshape(1, 1, 4)
      >>> w = jnp.array([1.0, 10.0, 100.0, 1000.0]).reshape(4, 1, 1, 1)  # 4 positions, k=1
      >>> local_conv(x, w)[0, 0].tolist()
      [0.0, 10.0, 200.0, 3000.0]
    """
    return _unshared("local_conv", x, w, b, stride=stride, padding=padding, dilation=dilation,
                     tile=None)


def tiled_conv(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, tile: IntOrSeq,
               stride: IntOrSeq = 1, padding: Padding = 0, dilation: IntOrSeq = 1) -> jax.Array:
    """Tiled convolution: output position ``p`` uses kernel ``p mod tile``.

    ``y[n, o, p] = b[o(, p)] + sum_{i, j} w[p mod tile, o, i, j] * x_pad[n, i, p*stride +
    j*dilation - lo]`` (Le et al., "Tiled convolutional neural networks", 2010).
    ``tile=1`` is :func:`jaxconv.conv`; ``tile`` equal to the output size is
    :func:`local_conv`. No PyTorch equivalent.

    Args:
      x: ``(N, C_in, *D)`` with 1, 2 or 3 spatial dims, floating point.
      w: ``(*tile, C_out, C_in, *k)``.
      b: optional bias, ``(C_out,)`` or ``(C_out, *O)``.
      tile: int or one int per spatial dim, >= 1 (may exceed the output size:
        the kernels no position uses get a zero gradient).
      stride, padding, dilation: as in :func:`local_conv`.

    Returns and raises as :func:`local_conv`.

    Gradients are a hand-written ``custom_vjp`` (shared with :func:`local_conv`).
    Differentiable in reverse mode only (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.ones((1, 1, 5))
      >>> w = jnp.array([1.0, -1.0]).reshape(2, 1, 1, 1)  # alternate two 1-tap kernels
      >>> tiled_conv(x, w, tile=2)[0, 0].tolist()
      [1.0, -1.0, 1.0, -1.0, 1.0]
    """
    return _unshared("tiled_conv", x, w, b, stride=stride, padding=padding, dilation=dilation,
                     tile=tile)


# --------------------------------------------------------------------------
# Separable convolutions (compositions of conv)
# --------------------------------------------------------------------------


def separable_conv(x: ArrayLike, kernels: Sequence[ArrayLike], *, stride: IntOrSeq = 1,
                   padding: Padding = 0) -> jax.Array:
    """Convolves every channel with a rank-1 (separable) kernel, one 1-D pass per axis.

    The kernel is the outer product ``K[c] = k_1[c] ⊗ k_2[c] ⊗ ...`` of one 1-D
    kernel per spatial axis; the result equals the depthwise convolution
    ``conv(x, K[:, None], stride=stride, padding=padding, groups=C)`` but costs
    ``sum(k_i)`` instead of ``prod(k_i)`` multiplies per output (cross-correlation,
    like :func:`jaxconv.conv`; ``scipy.ndimage.correlate1d`` applied per axis).

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      kernels: one 1-D kernel per spatial axis, first axis first. Each is either
        ``(k_i,)``, shared by every channel, or ``(C, k_i)``, one per channel;
        the two forms may be mixed.
      stride: int or one per dim, >= 1 (applied in the pass along that axis).
      padding: zero padding as in :func:`jaxconv.conv` (``"same"`` / ``"full"`` are
        resolved for the outer-product kernel, then applied per axis).

    Returns:
      ``(N, C, *O)``, as the depthwise convolution with the outer-product kernel.

    Raises:
      ValueError, TypeError: on bad shapes or arguments.

    Gradients (in ``x`` and every kernel) come from :func:`jaxconv.conv`'s
    hand-written ``custom_vjp`` rules, which this composes. Differentiable in
    reverse mode only (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.ones((1, 1, 4, 4))
      >>> separable_conv(x, [jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0, 1.0])]).shape
      (1, 1, 3, 2)
    """
    x = _args.as_array("separable_conv", "x", x)
    nd = _args.check_batched("separable_conv", "x", x.shape, "(N, C, *spatial)")
    c = x.shape[1]
    if isinstance(kernels, str) or not isinstance(kernels, Sequence) or len(kernels) != nd:
        got = f"{len(kernels)} kernels" if isinstance(kernels, Sequence) else repr(type(kernels))
        raise TypeError(
            f"jaxconv.separable_conv: kernels must be a sequence of {nd} 1-D kernels (one per "
            f"spatial axis of x, x.shape={tuple(x.shape)}); got {got}"
        )
    ks = [_args.as_array("separable_conv", f"kernels[{i}]", k) for i, k in enumerate(kernels)]
    for i, k in enumerate(ks):
        if not (k.ndim == 1 or (k.ndim == 2 and k.shape[0] == c)) or k.shape[-1] < 1:
            raise ValueError(
                f"jaxconv.separable_conv: kernels[{i}] must be (k,) (shared) or (C, k) = "
                f"({c}, k) (one per channel); got kernels[{i}].shape={tuple(k.shape)}"
            )
    _args.check_floating("separable_conv", x=x, **{f"kernels[{i}]": k for i, k in enumerate(ks)})
    sizes = tuple(k.shape[-1] for k in ks)
    geom = _args.conv_geometry("separable_conv", x.shape, (c, 1, *sizes), None, stride=stride,
                               padding=padding, dilation=1, groups=c)
    y = x
    for a, k in enumerate(ks):
        k2 = jnp.broadcast_to(k, (c, sizes[a])) if k.ndim == 1 else k
        shape = [c, 1] + [1] * nd
        shape[2 + a] = sizes[a]
        strides = [1] * nd
        strides[a] = geom.stride[a]
        pads = [(0, 0)] * nd
        pads[a] = geom.padding[a]
        y = conv(y, k2.reshape(shape), stride=strides, padding=pads, groups=c)
    return y


def depthwise_separable_conv(x: ArrayLike, w_depthwise: ArrayLike, w_pointwise: ArrayLike,
                             b: ArrayLike | None = None, *, stride: IntOrSeq = 1,
                             padding: Padding = 0, dilation: IntOrSeq = 1) -> jax.Array:
    """Depthwise convolution followed by a 1x1 (pointwise) convolution, as in MobileNet.

    ``conv(conv(x, w_depthwise, groups=C_in, stride, padding, dilation), w_pointwise, b)``:
    ``torch.nn.Conv2d(C_in, C_in*m, k, groups=C_in)`` then ``Conv2d(C_in*m, C_out, 1)``
    (no nonlinearity or normalisation in between).

    Args:
      x: ``(N, C_in, *D)`` with 1, 2 or 3 spatial dims, floating point.
      w_depthwise: ``(C_in * m, 1, *k)``, ``m >= 1`` the depth multiplier.
      w_pointwise: ``(C_out, C_in * m, 1, ..., 1)`` (torch's 1x1 kernel layout).
      b: optional bias ``(C_out,)`` of the pointwise convolution.
      stride: of the depthwise convolution, as in :func:`jaxconv.conv`.
      padding: of the depthwise convolution (zero padding), as in :func:`jaxconv.conv`.
      dilation: of the depthwise convolution, as in :func:`jaxconv.conv`.

    Returns:
      ``(N, C_out, *O)``.

    Raises:
      ValueError, TypeError: on bad shapes or arguments.

    Gradients come from :func:`jaxconv.conv`'s hand-written ``custom_vjp`` rules,
    which this composes. Differentiable in reverse mode only (custom_vjp: no ``jax.jvp``); see the
    module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.ones((2, 3, 8, 8))
      >>> wd, wp = jnp.ones((3, 1, 3, 3)), jnp.ones((4, 3, 1, 1))
      >>> depthwise_separable_conv(x, wd, wp, padding=1).shape
      (2, 4, 8, 8)
    """
    fn = "depthwise_separable_conv"
    x = _args.as_array(fn, "x", x)
    wd = _args.as_array(fn, "w_depthwise", w_depthwise)
    wp = _args.as_array(fn, "w_pointwise", w_pointwise)
    nd = _args.check_batched(fn, "x", x.shape, "(N, C_in, *spatial)")
    c = x.shape[1]
    if wd.ndim != nd + 2 or wd.shape[1] != 1 or wd.shape[0] % c or wd.shape[0] == 0:
        raise ValueError(
            f"jaxconv.{fn}: w_depthwise must be (C_in * m, 1, *kernel) with C_in = {c} and "
            f"{nd} kernel dims; got w_depthwise.shape={tuple(wd.shape)}"
        )
    if wp.ndim != nd + 2 or wp.shape[1] != wd.shape[0] or any(v != 1 for v in wp.shape[2:]):
        raise ValueError(
            f"jaxconv.{fn}: w_pointwise must be (C_out, {wd.shape[0]}, {', '.join(['1'] * nd)}) "
            f"(a 1x1 kernel over the depthwise output's channels); "
            f"got w_pointwise.shape={tuple(wp.shape)}"
        )
    bb = None if b is None else _args.as_array(fn, "b", b)
    geom = _args.conv_geometry(fn, x.shape, wd.shape, None, stride=stride, padding=padding,
                               dilation=dilation, groups=c)
    _args.conv_geometry(fn, (1, wd.shape[0], *geom.out_spatial), wp.shape,
                        None if bb is None else bb.shape, stride=1, padding=0, dilation=1,
                        groups=1)
    _args.check_floating(fn, x=x, w_depthwise=wd, w_pointwise=wp, b=bb)
    y = conv(x, wd, stride=stride, padding=padding, dilation=dilation, groups=c)
    return conv(y, wp, bb)
