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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from . import _args
from . import padding as _padding
from ._args import IntOrSeq, PaddingOption
from ._linear import backward_rule, channel_sum, match_varying
from .geometry import ConvGeometry
from .plan import Method, Plan, algorithm, plan_for

PrecisionLike = lax.Precision | str | None

@dataclass(frozen=True)
class _Config:
    """The static argument of the three custom_vjp maps: geometry, plan and precision.

    jit caches a compiled function per config, so the plan is fixed at trace time.
    """

    geom: ConvGeometry
    plan: Plan
    precision: lax.Precision | None


def _run(cfg: _Config, which: str, a: jax.Array, b: jax.Array) -> jax.Array:
    # An empty operand (no samples, say) gives an empty or all-zero result: XLA's own
    # convolution computes it for every geometry, where the other algorithms' chunks,
    # folds and FFT lengths assume at least one element.
    mod = algorithm("xla" if a.size == 0 or b.size == 0 else cfg.plan[which])
    out: jax.Array = getattr(mod, which)(cfg.geom, a, b, precision=cfg.precision)
    return out


def _add_bias(y, b):
    if b is None:
        return y
    return y + b.reshape((1, -1) + (1,) * (y.ndim - 2)).astype(y.dtype)


# --------------------------------------------------------------------------
# custom_vjp maps: each backward rule uses the other two (same config).
# --------------------------------------------------------------------------


def _biased_map(direction: str):
    """``cfg, a, w, b -> _run(cfg, direction, a, w) + b`` as a custom_vjp op."""

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def biased(cfg, a, w, b):
        return _add_bias(_run(cfg, direction, a, w), b)

    return biased


_conv_map = _biased_map("forward")  # y = B(x, w) + b
_conv_transpose_map = _biased_map("input_grad")  # x = B_x^T(y; w) + b


def _bias_grad(g, b):
    return None if b is None else channel_sum(g, b.dtype)


# y = B(x, w) + b is linear in x for fixed w: as a matrix, y = W x, so
# dx = W^T g = B_x^T(g; w), a transposed convolution of the cotangent.
# It is linear in w for fixed x: y = X w, so dw = X^T g = B_w^T(g; x), the
# correlation of x with g. b is broadcast over batch and positions, so db
# is g summed over those axes; an algorithm that can sum it in the same pass
# as dw (``weight_and_bias_grad``) does (_conv_weight_bias_map). (Under jit,
# an unused dx -- a first layer fed with data -- is dead code and XLA removes
# it.) The residuals are the inputs only (never an algorithm's patches or
# spectra); b (C_out values) only marks whether a bias cotangent is due.
@backward_rule(_conv_map)
def _conv_bwd(cfg, res, g):
    x, w, b = res
    dx = _conv_transpose_map(cfg, g, w, None)
    if b is not None and hasattr(algorithm(cfg.plan.weight_grad), "weight_and_bias_grad"):
        dw, db = _conv_weight_bias_map(cfg, x, g)
        return dx, dw, db.astype(b.dtype)
    return dx, _conv_weight_map(cfg, x, g), _bias_grad(g, b)


# x = B_x^T(y; w) + b. Linear in y with matrix W^T, so dy = (W^T)^T h = W h =
# B(h, w): a convolution of the cotangent. For w, <B_x^T(y; w), h> = <y, B(h, w)>
# and B(h, w) is linear in w with matrix H, so dw = H^T y = B_w^T(y; h). db = sum h.
@backward_rule(_conv_transpose_map)
def _conv_transpose_bwd(cfg, res, h):
    y, w, b = res
    return _conv_map(cfg, h, w, None), _conv_weight_map(cfg, h, y), _bias_grad(h, b)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _conv_weight_map(cfg, x, y):
    return _run(cfg, "weight_grad", x, y)


# w = B_w^T(y; x), defined by <B_w^T(y; x), h> = <y, B(x, h)> for every
# w-shaped h. So d/dy = B(x, h), a convolution of x with the cotangent; and
# <y, B(x, h)> = <B_x^T(y; h), x>, so d/dx = B_x^T(y; h), a transposed convolution.
@backward_rule(_conv_weight_map)
def _conv_weight_bwd(cfg, res, h):
    x, y = res
    return _conv_transpose_map(cfg, y, h, None), _conv_map(cfg, x, h, None)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _conv_weight_bias_map(cfg, x, y):
    mod = algorithm(cfg.plan.weight_grad)
    out: tuple[jax.Array, jax.Array] = mod.weight_and_bias_grad(cfg.geom, x, y,
                                                                precision=cfg.precision)
    return out


# (dw, db) = (B_w^T(y; x), S y) with S the sum over batch and positions per channel.
# For cotangents (h_w, h_b): <dw, h_w> + <db, h_b> = <y, B(x, h_w)> + <y, S^T h_b>,
# where S^T broadcasts h_b over batch and positions, so d/dy = B(x, h_w) + S^T h_b
# (the bias broadcast of _add_bias). db does not depend on x, so d/dx is the weight
# map's alone: <y, B(x, h_w)> = <B_x^T(y; h_w), x>, a transposed convolution.
@backward_rule(_conv_weight_bias_map)
def _conv_weight_bias_bwd(cfg, res, hs):
    x, y = res
    h_w, h_b = hs
    dy = _add_bias(_conv_map(cfg, x, h_w, None), h_b)
    return _conv_transpose_map(cfg, y, h_w, None), dy


# --------------------------------------------------------------------------
# The maps with their plan: what conv / conv_transpose / pools call.
# --------------------------------------------------------------------------


def _config(fn: str, geom: ConvGeometry, dtype: DTypeLike, x_shape: tuple[int, ...],
            w_shape: tuple[int, ...], method: Method, precision: Any) -> _Config:
    plan = plan_for(geom, dtype, method=method, x_shape=x_shape, w_shape=w_shape, caller=fn)
    return _Config(geom, plan, _args.precision_arg(fn, precision))


def _conv(geom: ConvGeometry, x: jax.Array, w: jax.Array, b: jax.Array | None, *,
          method: Method = "auto", precision: PrecisionLike = None) -> jax.Array:
    """y = B(x, w) + b with the plan for ``method`` (x: (N, C_in, *D), w: (C_out, C_in/G, *k))."""
    cfg = _config("conv", geom, x.dtype, tuple(x.shape), tuple(w.shape), method, precision)
    return _conv_map(cfg, x, w, b)


def _conv_transpose(geom: ConvGeometry, y: jax.Array, w: jax.Array, b: jax.Array | None, *,
                    method: Method = "auto", precision: PrecisionLike = None) -> jax.Array:
    """x = B_x^T(y; w) + b (y: (N, C_out, *O), w: (C_out, C_in/G, *k)) -> (N, C_in, *D)."""
    x_shape = (y.shape[0], w.shape[1] * geom.groups, *geom.in_spatial)
    cfg = _config("conv_transpose", geom, y.dtype, x_shape, tuple(w.shape), method, precision)
    return _conv_transpose_map(cfg, y, w, b)


def _conv_weight(geom: ConvGeometry, x: jax.Array, y: jax.Array, *,
                 method: Method = "auto", precision: PrecisionLike = None) -> jax.Array:
    """dw = B_w^T(y; x) (x: (N, C_in, *D), y: (N, C_out, *O)) -> (C_out, C_in/G, *k)."""
    w_shape = (y.shape[1], x.shape[1] // geom.groups, *geom.kernel)
    cfg = _config("conv", geom, x.dtype, tuple(x.shape), w_shape, method, precision)
    return _conv_weight_map(cfg, x, y)


def _b(geom: ConvGeometry, x: jax.Array, w: jax.Array) -> jax.Array:
    """B(x, w) without custom rules (a building block for ops with their own VJP, e.g. pools)."""
    cfg = _config("conv", geom, x.dtype, tuple(x.shape), tuple(w.shape), "auto", None)
    return _run(cfg, "forward", x, w)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _spatial_axes(a):
    return tuple(range(2, a.ndim))


def conv(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, stride: IntOrSeq = 1,
         padding: PaddingOption = 0, dilation: IntOrSeq = 1, groups: int = 1, flip: bool = False,
         padding_mode: str = "zeros", method: Method = "auto",
         precision: PrecisionLike = None) -> jax.Array:
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
      method: which algorithm computes each map: ``"auto"`` (a cost model per
        backend, or measurements under :func:`jaxconv.autotune`), one of
        ``"xla"``, ``"im2col"``, ``"direct"``, ``"phase"``, ``"winograd"`` (and
        ``"fft"`` where built), or a mapping ``{"forward": ..., "input_grad": ...,
        "weight_grad": ...}`` (missing maps are ``"auto"``). See
        :func:`jaxconv.conv_plan` for the choice.
      precision: ``None`` (JAX's default, governed by
        ``jax.default_matmul_precision``), a ``jax.lax.Precision`` or its name
        (``"highest"``...), passed to every matrix multiplication and XLA convolution.

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

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> x, w = jnp.ones((2, 1, 28, 28)), jnp.ones((20, 1, 5, 5))
      >>> jaxconv.conv(x, w).shape
      (2, 20, 24, 24)
      >>> float(jaxconv.conv(x, w, padding="same", method="direct")[0, 0, 0, 0])
      9.0
    """
    xa = _args.as_array("conv", "x", x)
    wa = _args.as_array("conv", "w", w)
    ba = None if b is None else _args.as_array("conv", "b", b)
    geom = _args.conv_geometry(
        "conv", xa.shape, wa.shape, None if ba is None else ba.shape,
        stride=stride, padding=padding, dilation=dilation, groups=groups,
    )
    _args.check_floating("conv", x=xa, w=wa, b=ba)
    xa, geom = _padding.pad_for_conv("conv", xa, geom, _args.padding_mode("conv", padding_mode))
    if not isinstance(flip, bool):
        raise TypeError(f"jaxconv.conv: flip must be a bool; got {flip!r}")
    if flip:
        wa = jnp.flip(wa, axis=_spatial_axes(wa))
    # shard_map: see _linear.match_varying (None stays None; arrays stay arrays)
    xa, wa, ba = cast(tuple[jax.Array, jax.Array, jax.Array | None], match_varying(xa, wa, ba))
    return _conv(geom, xa, wa, ba, method=method, precision=precision)


def conv_transpose(x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *, stride: IntOrSeq = 1,
                   padding: PaddingOption = 0, output_padding: IntOrSeq = 0,
                   dilation: IntOrSeq = 1, groups: int = 1, method: Method = "auto",
                   precision: PrecisionLike = None) -> jax.Array:
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
      method: as in :func:`conv`; here ``"forward"`` names the algorithm of
        this op's *backward* (the conv), and ``"input_grad"`` this op itself.
      precision: as in :func:`conv`.

    Returns:
      ``(N, C_out, *O)`` with
      ``O = (D - 1)*stride - lo - hi + dilation*(k - 1) + output_padding + 1``.

    Raises:
      ValueError, TypeError: on bad shapes or arguments.

    Gradients are hand-derived ``jax.custom_vjp`` rules (``dx`` is a convolution
    of the cotangent with ``w``); reverse-over-reverse works. Forward mode
    (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is not available on
    ``custom_vjp`` functions.

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> y, w = jnp.ones((2, 8, 16, 16)), jnp.ones((8, 4, 4, 4))
      >>> jaxconv.conv_transpose(y, w, stride=2, padding=1, method="phase").shape
      (2, 4, 32, 32)
    """
    xa = _args.as_array("conv_transpose", "x", x)
    wa = _args.as_array("conv_transpose", "w", w)
    ba = None if b is None else _args.as_array("conv_transpose", "b", b)
    geom = _args.conv_transpose_geometry(
        "conv_transpose", xa.shape, wa.shape, None if ba is None else ba.shape,
        stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation, groups=groups,
    )
    _args.check_floating("conv_transpose", x=xa, w=wa, b=ba)
    # shard_map: see _linear.match_varying (None stays None; arrays stay arrays)
    xa, wa, ba = cast(tuple[jax.Array, jax.Array, jax.Array | None], match_varying(xa, wa, ba))
    return _conv_transpose(geom, xa, wa, ba, method=method, precision=precision)


def conv_plan(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: PaddingOption = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    output_padding: int | Sequence[int] = 0,
    transpose: bool = False,
    dtype: DTypeLike = jnp.float32,
    backend: str | None = None,
    method: Method = "auto",
) -> Plan:
    """The algorithm each map of a :func:`conv` (or :func:`conv_transpose`) would run.

    Shows what ``method="auto"`` (or the given ``method``) chooses for these
    shapes and arguments, on ``backend`` (default: JAX's default backend). Under
    :func:`jaxconv.autotune` the choice is measured (and cached).

    Args:
      x_shape: the op's input shape ``(N, C_in, *D)``.
      w_shape: its kernel shape (``conv``: ``(C_out, C_in // groups, *k)``;
        ``conv_transpose``: ``(C_in, C_out // groups, *k)``).
      stride, padding, dilation, groups, output_padding: as for the op
        (``output_padding`` only with ``transpose=True``).
      transpose: plan :func:`conv_transpose` instead of :func:`conv`.
      dtype: the arrays' dtype.
      backend: ``"cpu"``, ``"gpu"`` or ``"tpu"``; None = ``jax.default_backend()``.
      method: as for the op.

    Returns:
      A ``Plan`` with fields ``forward`` (the conv ``B(x, w)``),
      ``input_grad`` (``B_x^T``: conv_transpose, the input gradient) and
      ``weight_grad`` (``B_w^T``): algorithm names.

    Example:
      >>> import jaxconv
      >>> jaxconv.conv_plan((8, 1, 28, 28), (20, 1, 5, 5), backend="gpu")
      Plan(forward='xla', input_grad='xla', weight_grad='xla')
    """
    fn = "conv_transpose" if transpose else "conv"
    xs, ws = tuple(int(s) for s in x_shape), tuple(int(s) for s in w_shape)
    if transpose:
        geom = _args.conv_transpose_geometry(
            fn, xs, ws, None, stride=stride, padding=padding, output_padding=output_padding,
            dilation=dilation, groups=groups)
        xs = (xs[0], ws[1] * geom.groups, *geom.in_spatial)
    else:
        geom = _args.conv_geometry(fn, xs, ws, None, stride=stride, padding=padding,
                                   dilation=dilation, groups=groups)
    return plan_for(geom, dtype, backend=backend, method=method, x_shape=xs, w_shape=ws,
                    caller=fn)
