"""Padding modes (zeros, reflect, replicate, circular) as linear maps with exact adjoints.

Every padding mode is a *linear* map ``P`` from ``(N, C, *D)`` to
``(N, C, *(D + lo + hi))``: each padded element is either zero or a copy of one
input element. Along one spatial dim, ``P`` is a 0/1 matrix with one 1 per row
(none for a zero-padded row), so its adjoint ``P^T`` *adds* every padded copy
back onto the element it was copied from: the cotangent of a reflected border
folds back onto the rows it mirrors, a replicated border onto the edge element,
a circular border onto the opposite end. The pair is declared once with
:func:`jaxconv._src._linear.adjoint_pair`, so the gradient of :func:`pad` and
of every convolution with ``padding_mode`` is this hand-written fold, and a
gradient of a gradient is the padding again.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is
not available on ``custom_vjp`` functions; reverse-over-reverse is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, cast

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from . import _args
from ._linear import adjoint_pair
from .geometry import ConvGeometry, Pair

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def source_index(mode: str, size: int, lo: int, hi: int) -> np.ndarray:
    """For each position ``t`` of the padded dim (``size + lo + hi`` long), the input
    position it copies (``-1`` for a zero). PyTorch's ``F.pad`` rules.

    Example:
      >>> source_index("reflect", 3, 2, 2).tolist()
      [2, 1, 0, 1, 2, 1, 0]
      >>> source_index("circular", 3, 1, 2).tolist()
      [2, 0, 1, 2, 0, 1]
    """
    t = np.arange(-lo, size + hi)
    if mode == "zeros":
        return np.where((t >= 0) & (t < size), t, -1)
    if mode == "replicate":
        return np.clip(t, 0, size - 1)
    if mode == "circular":
        return np.mod(t, size)
    if size == 1:  # reflect needs pad < size, so here lo == hi == 0
        return np.zeros_like(t)
    period = 2 * (size - 1)
    r = np.mod(t, period)
    return np.where(r < size, r, period - r)


@dataclasses.dataclass(frozen=True)
class _PadConfig:
    mode: str
    in_spatial: tuple[int, ...]
    pads: tuple[Pair, ...]


def _pad_apply(cfg: _PadConfig, x: jax.Array) -> jax.Array:
    """y = P x: pad every spatial dim of ``(N, C, *D)``."""
    if cfg.mode == "zeros":
        return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0),) * 2 + tuple(
            (lo, hi, 0) for lo, hi in cfg.pads))
    for a, (n, (lo, hi)) in enumerate(zip(cfg.in_spatial, cfg.pads)):
        if lo or hi:
            x = jnp.take(x, jnp.asarray(source_index(cfg.mode, n, lo, hi)), axis=a + 2)
    return x


def _pad_apply_t(cfg: _PadConfig, g: jax.Array) -> jax.Array:
    """x = P^T g: every padded element's cotangent is added to the element it copies."""
    if cfg.mode == "zeros":
        return lax.pad(g, jnp.zeros((), g.dtype), ((0, 0, 0),) * 2 + tuple(
            (-lo, -hi, 0) for lo, hi in cfg.pads))
    for a in reversed(range(len(cfg.pads))):
        n, (lo, hi) = cfg.in_spatial[a], cfg.pads[a]
        if lo or hi:
            idx = source_index(cfg.mode, n, lo, hi)
            ga = jnp.moveaxis(g, a + 2, 0)
            out = jnp.zeros((n, *ga.shape[1:]), g.dtype).at[jnp.asarray(idx)].add(ga)
            g = jnp.moveaxis(out, 0, a + 2)
    return g


# Padding copies input elements: y = P x with P a 0/1 selection matrix per dim
# (one 1 per row of a copied element, none for a zero). So dx = P^T g: each
# cotangent entry is added back onto its source element (a scatter-add by the
# same index table), and the adjoint's own VJP is P again.
_pad, _pad_t = adjoint_pair(_pad_apply, _pad_apply_t)


def check_pads(fn: str, mode: str, in_spatial: Sequence[int], pads: Sequence[Pair]) -> None:
    """PyTorch's limits: reflect needs pad < size, circular pad <= size, per side."""
    for i, (n, (lo, hi)) in enumerate(zip(in_spatial, pads)):
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(
                f"jaxconv.{fn}: padding with padding_mode='reflect' must be smaller than the "
                f"input in every dim (pad < size, as in PyTorch); got padding ({lo}, {hi}) for "
                f"size {n} (spatial dim {i})"
            )
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(
                f"jaxconv.{fn}: padding with padding_mode='circular' must be at most the input "
                f"size in every dim (it may wrap around once, as in PyTorch); got padding "
                f"({lo}, {hi}) for size {n} (spatial dim {i})"
            )


def pad(x: ArrayLike, padding: int | Sequence[int] | Sequence[tuple[int, int]], *,
        mode: PaddingMode = "zeros") -> jax.Array:
    """Pads the spatial dims of ``(N, C, *spatial)`` with zeros or by reflecting,
    replicating or wrapping the input, as ``torch.nn.functional.pad`` does.

    ``mode`` names follow ``torch.nn.Conv2d(padding_mode=...)``: ``"zeros"``
    (``F.pad(mode="constant")``), ``"reflect"`` (mirror without repeating the
    edge: ``[a b c] -> b [a b c] b``), ``"replicate"`` (repeat the edge) and
    ``"circular"`` (wrap around). Unlike ``F.pad``'s reversed flat tuple, the
    padding is given in jaxconv's form, first spatial dim first.

    Args:
      x: ``(N, C, *D)`` with 1, 2 or 3 spatial dims.
      padding: an int (both sides of every dim), one int per dim, or one
        ``(lo, hi)`` pair per dim; non-negative. ``"reflect"`` needs
        ``pad < D`` and ``"circular"`` ``pad <= D`` on each side (PyTorch's limits).
      mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.

    Returns:
      ``(N, C, *(D + lo + hi))`` in ``x``'s dtype.

    Raises:
      ValueError, TypeError: on a bad shape, padding or mode.

    The gradient is the padding's exact adjoint (a hand-written ``custom_vjp``
    that adds every copy's cotangent back onto its source). Differentiable in
    reverse mode only (custom_vjp: no ``jax.jvp``); see the module docs.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.arange(3.0).reshape(1, 1, 3)
      >>> pad(x, [(2, 1)], mode="reflect")[0, 0].tolist()
      [2.0, 1.0, 0.0, 1.0, 2.0, 1.0]
      >>> pad(x, 1, mode="circular")[0, 0].tolist()
      [2.0, 0.0, 1.0, 2.0, 0.0]
    """
    x = _args.as_array("pad", "x", x)
    nd = _args.check_batched("pad", "x", x.shape)
    checked = _args.padding_mode("pad", mode)
    pads = cast(tuple[Pair, ...], _args.padding_pairs("pad", padding, nd, allow_strings=()))
    in_spatial = tuple(x.shape[2:])
    check_pads("pad", checked, in_spatial, pads)
    return _pad(_PadConfig(checked, in_spatial, pads), x)


def pad_for_conv(fn: str, x: jax.Array, geom: ConvGeometry, mode: str) -> tuple[
        jax.Array, ConvGeometry]:
    """Pads ``x`` by ``geom.padding`` with ``mode`` and returns it with the geometry of
    the zero-padding-0 convolution that follows (what PyTorch's Conv modules do for
    ``padding_mode != "zeros"``). ``mode == "zeros"`` returns both unchanged."""
    if mode == "zeros":
        return x, geom
    check_pads(fn, mode, geom.in_spatial, geom.padding)
    xp = _pad(_PadConfig(mode, geom.in_spatial, geom.padding), x)
    zero = ((0, 0),) * geom.ndim
    return xp, dataclasses.replace(geom, in_spatial=tuple(xp.shape[2:]), padding=zero)
