"""im2col in public: unfold / fold (an adjoint pair) and the dense convolution matrix.

:func:`unfold` copies every (dilated, strided) window of a zero-padded input
into a column, PyTorch's ``F.unfold`` layout ``(N, C * prod(window), L)``;
:func:`fold` is its exact adjoint, adding every column back onto the window it
came from (overlapping windows add). Both are linear, declared once as an
adjoint pair (:func:`jaxconv._src._linear.adjoint_pair`), so each one's
gradient is the other and a gradient of a gradient is the map again.

:func:`conv_matrix` writes a convolution of fixed geometry as the matrix ``M``
with ``conv(x).reshape(N, -1) == x.reshape(N, -1) @ M.T``.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is
not available on ``custom_vjp`` functions; reverse-over-reverse is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from . import _args
from ._args import IntOrSeq
from ._args import PaddingOption as Padding
from ._linear import acc_dtype, adjoint_pair
from .conv import conv
from .geometry import ConvGeometry


def window_geometry(fn: str, in_spatial: tuple[int, ...], window: IntOrSeq, *, stride: IntOrSeq,
                    padding: Padding, dilation: IntOrSeq) -> ConvGeometry:
    """The geometry of sliding ``window`` over ``in_spatial`` (zero padding; a
    string padding is resolved as :func:`jaxconv.conv` resolves it); ``groups=1``."""
    k = _args.int_tuple(fn, "window", window, len(in_spatial), minimum=1)
    return _args.sliding_geometry(fn, tuple(in_spatial), k, stride=stride, padding=padding,
                                  dilation=dilation, what="window")


def _tap_pads(geom: ConvGeometry) -> list[tuple[int, int, int]]:
    """(lo, hi, 0) per spatial dim: pads x to exactly the extent the windows read,
    ``(O-1)*stride + dilation*(k-1) + 1`` (a negative hi crops what no window reads)."""
    return [(lo, (o - 1) * s + ke - n - lo, 0) for n, o, s, ke, (lo, _) in zip(
        geom.in_spatial, geom.out_spatial, geom.stride, geom.k_eff, geom.padding)]


def _taps(geom: ConvGeometry) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(k) for k in geom.kernel)))


def _unfold_apply(geom: ConvGeometry, x: jax.Array) -> jax.Array:
    """cols = U x: (N, C, *D) -> (N, C*K, L), column l = window l, rows (c, tap) with c outer."""
    n, c = x.shape[:2]
    xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + _tap_pads(geom))
    cols = []
    for j in _taps(geom):
        start = [0, 0] + [jj * d for jj, d in zip(j, geom.dilation)]
        limit = [n, c] + [st + (o - 1) * s + 1
                          for st, o, s in zip(start[2:], geom.out_spatial, geom.stride)]
        cols.append(lax.slice(xp, start, limit, (1, 1, *geom.stride)))
    return jnp.stack(cols, axis=2).reshape(n, c * len(cols), -1)


def _fold_apply(geom: ConvGeometry, cols: jax.Array) -> jax.Array:
    """x = U^T cols: (N, C*K, L) -> (N, C, *D); each column is added onto its window."""
    taps = _taps(geom)
    n = cols.shape[0]
    c = cols.shape[1] // len(taps)
    blocks = cols.reshape(n, c, len(taps), *geom.out_spatial).astype(acc_dtype(cols.dtype))
    extent = [(o - 1) * s + ke for o, s, ke in zip(geom.out_spatial, geom.stride, geom.k_eff)]
    zero = jnp.zeros((), blocks.dtype)
    acc = jnp.zeros((n, c, *extent), blocks.dtype)
    for t, j in enumerate(taps):
        # place tap j's values at j*dilation + p*stride: interior padding spaces them.
        pads = [(0, 0, 0)] * 2 + [
            (jj * d, e - jj * d - (o - 1) * s - 1, s - 1)
            for jj, d, e, o, s in zip(j, geom.dilation, extent, geom.out_spatial, geom.stride)]
        acc = acc + lax.pad(blocks[:, :, t], zero, pads)
    crop = [(0, 0, 0)] * 2 + [(-lo, -hi, 0) for lo, hi, _ in _tap_pads(geom)]
    return lax.pad(acc, zero, crop).astype(cols.dtype)


# unfold is linear: cols = U x, U a 0/1 matrix copying x_pad[c, p*stride + j*dilation - lo]
# into row (c, j), column p (padding positions copy zeros). Its VJP is dx = U^T g: every
# entry of g is added back onto the element it copied, i.e. fold(g); fold's VJP is unfold.
_unfold, _fold = adjoint_pair(_unfold_apply, _fold_apply)


def unfold(x: ArrayLike, window: IntOrSeq, *, stride: IntOrSeq = 1, padding: Padding = 0,
           dilation: IntOrSeq = 1) -> jax.Array:
    """Extracts sliding windows into columns (im2col), ``torch.nn.functional.unfold``.

    ``cols[n, c*K + j, l] = x_pad[n, c, p_l*stride + j*dilation - lo]`` with ``j`` the
    tap index in row-major order over ``window`` (``K = prod(window)``) and ``p_l`` the
    ``l``-th output position in row-major order (``L = prod(O)``). PyTorch only has
    the 2-D case; this is the same layout for 1-3 spatial dims.

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims, floating point.
      window: int or one int per spatial dim (torch's ``kernel_size``).
      stride: int or one per dim, >= 1.
      padding: zero padding: an int, one int per dim, one ``(lo, hi)`` pair per dim,
        or ``"valid"``, ``"same"``, ``"full"`` (resolved as in :func:`jaxconv.conv`).
      dilation: int or one per dim, >= 1.

    Returns:
      ``(N, C * prod(window), L)`` with ``L = prod(O)``,
      ``O = floor((D + lo + hi - dilation*(window-1) - 1) / stride) + 1``.

    Raises:
      ValueError, TypeError: on a bad shape or argument.

    The gradient is :func:`fold` (the exact adjoint, a hand-written ``custom_vjp``).
    Differentiable in reverse mode only (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.arange(9.0).reshape(1, 1, 3, 3)
      >>> cols = unfold(x, 2)
      >>> cols.shape
      (1, 4, 4)
      >>> cols[0, :, 0].tolist()  # the first 2x2 window
      [0.0, 1.0, 3.0, 4.0]
    """
    x = _args.as_array("unfold", "x", x)
    _args.check_batched("unfold", "x", x.shape)
    _args.check_floating("unfold", x=x)
    geom = window_geometry("unfold", tuple(x.shape[2:]), window, stride=stride,
                           padding=padding, dilation=dilation)
    return _unfold(geom, x)


def fold(cols: ArrayLike, output_size: IntOrSeq, window: IntOrSeq, *, stride: IntOrSeq = 1,
         padding: Padding = 0, dilation: IntOrSeq = 1) -> jax.Array:
    """Adds columns back into an array (col2im), ``torch.nn.functional.fold``.

    The exact adjoint of :func:`unfold` with the same arguments:
    ``<unfold(x), cols> == <x, fold(cols)>``. Overlapping windows add, and the
    parts of windows that fall into the padding are dropped.

    Args:
      cols: ``(N, C * prod(window), L)``, floating point, ``L`` the number of windows.
      output_size: the spatial size ``D`` of the result: one int per spatial dim (its
        length sets the number of spatial dims, 1-3), or an int for every dim (then
        ``window``'s length sets the number of dims, 2 if it is an int, as in PyTorch).
      window: int or one int per spatial dim.
      stride: int or one per dim, >= 1.
      padding: as in :func:`unfold`.
      dilation: int or one per dim, >= 1.

    Returns:
      ``(N, C, *output_size)``.

    Raises:
      ValueError, TypeError: on a bad shape or argument (``cols.shape[1]`` must be a
        multiple of ``prod(window)``, ``L`` the number of windows that fit).

    The gradient is :func:`unfold` (hand-written ``custom_vjp``).
    Differentiable in reverse mode only (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> fold(jnp.ones((1, 4, 4)), (3, 3), 2)[0, 0].tolist()  # windows overlapping
      [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    cols = _args.as_array("fold", "cols", cols)
    if cols.ndim != 3:
        raise ValueError(
            f"jaxconv.fold: cols must be (N, C * prod(window), L) (rank 3); "
            f"got cols.shape={tuple(cols.shape)}"
        )
    _args.check_floating("fold", cols=cols)
    if isinstance(output_size, Sequence) and not isinstance(output_size, str):
        nd = len(output_size)
        if nd not in (1, 2, 3):
            raise ValueError(
                f"jaxconv.fold: output_size must have 1, 2 or 3 spatial sizes; "
                f"got output_size={output_size!r}"
            )
    else:  # an int: as many dims as window gives, else 2 (torch's F.fold is 2-D)
        nd = len(window) if isinstance(window, Sequence) and len(window) in (1, 2, 3) else 2
    size = _args.int_tuple("fold", "output_size", output_size, nd, minimum=1)
    geom = window_geometry("fold", size, window, stride=stride, padding=padding,
                           dilation=dilation)
    k = math.prod(geom.kernel)
    n_windows = math.prod(geom.out_spatial)
    if cols.shape[1] % k or cols.shape[1] == 0:
        raise ValueError(
            f"jaxconv.fold: cols.shape[1] must be a positive multiple of prod(window) = {k} "
            f"(C * prod(window)); got cols.shape={tuple(cols.shape)}"
        )
    if cols.shape[2] != n_windows:
        raise ValueError(
            f"jaxconv.fold: cols.shape[2] must be the number of windows L = {n_windows} "
            f"({' x '.join(map(str, geom.out_spatial))} for output_size={size}); "
            f"got cols.shape={tuple(cols.shape)}"
        )
    return _fold(geom, cols)


def conv_matrix(
    w: ArrayLike,
    input_shape: Sequence[int],
    *,
    stride: IntOrSeq = 1,
    padding: Padding = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> jax.Array:
    """The dense matrix of a convolution: ``conv(x, w, ...).reshape(N, -1) == x.reshape(N, -1) @ M.T``.

    Column ``i`` of ``M`` is the convolution of the ``i``-th unit input, so ``M``
    is built by applying :func:`jaxconv.conv` to the identity basis (one batched
    call). ``M.T`` is :func:`jaxconv.conv_transpose` with the same arguments (for
    ``padding_mode="zeros"``). For one channel, stride 1 and zero padding ``M`` is
    doubly (triply) block Toeplitz; with ``padding_mode="circular"`` and
    ``padding="same"`` (odd kernel) it is block circulant, and its singular values
    are the magnitudes of the DFT of the kernel zero-padded to the input size.

    Args:
      w: kernel ``(C_out, C_in // groups, *k)``, floating point.
      input_shape: ``(C_in, *D)``: the input ``x`` is ``(N, C_in, *D)``, without ``N``.
      stride: as in :func:`jaxconv.conv`.
      padding: as in :func:`jaxconv.conv`.
      dilation: as in :func:`jaxconv.conv`.
      groups: as in :func:`jaxconv.conv`.
      padding_mode: as in :func:`jaxconv.conv`.

    Returns:
      ``(C_out * prod(O), C_in * prod(D))`` in ``w``'s dtype: memory grows as the
      square of the input size, so this is for analysis and small inputs.

    Raises:
      ValueError, TypeError: on a bad ``input_shape`` or any conv argument.

    Differentiable in ``w`` (it is linear in ``w`` and uses :func:`jaxconv.conv`'s
    hand-written rules). Differentiable in reverse mode only (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> M = conv_matrix(jnp.array([[[1.0, 2.0]]]), (1, 3))
      >>> M.tolist()
      [[1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
    """
    w = _args.as_array("conv_matrix", "w", w)
    if (not isinstance(input_shape, Sequence) or isinstance(input_shape, str)
            or not all(_args.is_int(v) for v in input_shape)):
        raise TypeError(
            f"jaxconv.conv_matrix: input_shape must be a sequence of ints (C_in, *spatial); "
            f"got {input_shape!r}"
        )
    _args.check_floating("conv_matrix", w=w)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != w.ndim - 1 or any(v < 1 for v in shape):
        raise ValueError(
            f"jaxconv.conv_matrix: input_shape must be (C_in, *spatial) with positive sizes and "
            f"{w.ndim - 2} spatial dims to match w; got input_shape={shape}, w.shape={w.shape}"
        )
    _args.conv_geometry("conv_matrix", (1, *shape), w.shape, None, stride=stride,
                         padding=padding, dilation=dilation, groups=groups)
    _args.padding_mode("conv_matrix", padding_mode)
    n = math.prod(shape)
    basis = jnp.eye(n, dtype=w.dtype).reshape(n, *shape)
    y = conv(basis, w, stride=stride, padding=padding, dilation=dilation, groups=groups,
             padding_mode=padding_mode)
    return y.reshape(n, -1).T
