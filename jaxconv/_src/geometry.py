"""Static geometry of convolutions and pools: frozen, hashable, and every size rule.

A geometry is normalised once from the user's arguments (by ``_args``) and is
then passed as a static argument through ``jit`` and ``custom_vjp``, so a
compiled function is cached per geometry. Everything here is pure size
arithmetic on Python ints (and the static NumPy tables pools derive from a
geometry); validation and error messages live in ``_args``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

Pair = tuple[int, int]


# --------------------------------------------------------------------------
# Size rules (one spatial dim at a time)
# --------------------------------------------------------------------------


def k_eff(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``dilation*(kernel-1) + 1``."""
    return dilation * (kernel - 1) + 1


def same_pads(size: int, k_eff: int, stride: int) -> Pair:
    """(lo, hi) padding that gives ``ceil(size / stride)`` outputs; odd extra goes to hi."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return (total // 2, total - total // 2)


def mode_pads(mode: str, size: int, k_eff: int, stride: int) -> Pair:
    """The (lo, hi) padding of a padding string: ``"valid"`` (none), ``"full"``
    (``k_eff - 1`` on both sides) or ``"same"`` (:func:`same_pads`)."""
    if mode == "valid":
        return (0, 0)
    if mode == "full":
        return (k_eff - 1, k_eff - 1)
    if mode == "same":
        return same_pads(size, k_eff, stride)
    raise ValueError(f"unknown padding mode {mode!r}")  # _args rejects it before this


def window_output_size(size: int, k_eff: int, stride: int, lo: int, hi: int) -> int:
    """``floor((size + lo + hi - k_eff) / stride) + 1`` (may be < 1: caller checks)."""
    return (size + lo + hi - k_eff) // stride + 1


def transpose_output_size(
    size: int, k_eff: int, stride: int, lo: int, hi: int, output_padding: int
) -> int:
    """Output size of a transposed convolution (the input size of the conv it is the
    adjoint of): ``(size-1)*stride - lo - hi + k_eff + output_padding`` (may be < 1)."""
    return (size - 1) * stride - lo - hi + k_eff + output_padding


def pool_output_size(
    size: int, k_eff: int, stride: int, lo: int, hi: int, ceil_mode: bool
) -> tuple[int, int]:
    """PyTorch's pool output size and the ceil-mode overhang past the hi padding.

    ``floor((size + lo + hi - k_eff + (stride-1 if ceil_mode)) / stride) + 1``,
    less one when ceil_mode makes the last window start past the input and its
    left padding. Requires ``k_eff <= size + lo + hi`` (the caller checks).

    Returns:
      ``(out, extra_hi)``.
    """
    span = size + lo + hi - k_eff
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + lo:
        out -= 1
    return out, max((out - 1) * stride + k_eff - (size + lo + hi), 0)


def adaptive_bounds(size: int, out: int) -> list[Pair]:
    """PyTorch's adaptive windows: ``[floor(i*D/out), ceil((i+1)*D/out))`` for each i."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


# --------------------------------------------------------------------------
# Geometries
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _SlidingWindow:
    """What every sliding-window geometry has: the input and output spatial sizes and
    the per-dim stride, (lo, hi) padding and dilation. The subclass adds the window's
    sizes under its own name (``kernel`` or ``window``, named by ``_sizes_field``).
    Fields are keyword-only: a 7-tuple of tuples is too easy to misorder."""

    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pair, ...]
    dilation: tuple[int, ...]
    _sizes_field: ClassVar[str]

    @property
    def ndim(self) -> int:
        """Number of spatial dims."""
        return len(getattr(self, self._sizes_field))

    @property
    def k_eff(self) -> tuple[int, ...]:
        """Dilated window (kernel) extent per dim: ``dilation*(size-1) + 1``."""
        return tuple(k_eff(k, d) for k, d in zip(getattr(self, self._sizes_field), self.dilation))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvGeometry(_SlidingWindow):
    """Static description of one convolution ``B(x, w)``: x-spatial -> y-spatial.

    The three bilinear maps of the convolution family share it: ``conv``
    (``B``), ``conv_transpose`` (``B_x^T``, y -> x) and the weight gradient
    (``B_w^T``). ``in_spatial`` is always the size of the *conv's* input and
    ``out_spatial`` of the conv's output, whichever direction is computed.
    """

    kernel: tuple[int, ...]
    groups: int

    _sizes_field: ClassVar[str] = "kernel"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolGeometry(_SlidingWindow):
    """Static description of a sliding-window pool over ``in_spatial``.

    ``padding`` holds the (lo, hi) padding the user asked for; with
    ``ceil_mode`` the last window may run past it, and ``extra_hi`` is the
    additional padding on the hi side that the windows then reach (never
    counted by ``count_include_pad``).
    """

    window: tuple[int, ...]
    ceil_mode: bool
    extra_hi: tuple[int, ...]

    _sizes_field: ClassVar[str] = "window"

    @property
    def full_padding(self) -> tuple[Pair, ...]:
        """Padding including the ceil-mode overhang: what the windows read."""
        return tuple((lo, hi + e) for (lo, hi), e in zip(self.padding, self.extra_hi))


# --------------------------------------------------------------------------
# Static tables of a pool geometry
# --------------------------------------------------------------------------


def _taps(geom: PoolGeometry) -> list[np.ndarray]:
    """Per dim, the input position read by tap ``j`` of window ``p``: ``(O_d, k_d)``."""
    return [
        (np.arange(O) * s - lo)[:, None] + d * np.arange(k)[None, :]
        for k, O, s, d, (lo, _) in zip(geom.window, geom.out_spatial, geom.stride,
                                       geom.dilation, geom.padding)
    ]


def pool_divisor(geom: PoolGeometry, count_include_pad: bool, divisor: int | None) -> np.ndarray:
    """The divisor of every average-pool output, shape ``out_spatial`` (float64, static).

    PyTorch's rule: with ``count_include_pad`` a window counts the positions it
    covers inside the padded input ``[-lo, D + hi)`` (the ceil-mode overhang
    beyond it is never counted); without it only real elements ``[0, D)``.
    ``divisor`` replaces both.
    """
    if divisor is not None:
        return np.full(geom.out_spatial, float(divisor))
    out = np.ones((), np.float64)
    for taps, D, (lo, hi) in zip(_taps(geom), geom.in_spatial, geom.padding):
        lo_b, hi_b = (-lo, D + hi) if count_include_pad else (0, D)
        cnt = ((taps >= lo_b) & (taps < hi_b)).sum(1)
        out = np.multiply.outer(out, cnt.astype(np.float64))
    return out


def pool_padding_taps(geom: PoolGeometry) -> np.ndarray:
    """Which taps of which window read padding (or the ceil-mode overhang), not
    the input: bool, shape ``out_spatial + (prod(window),)``, taps in window order."""
    masks = [(t < 0) | (t >= D) for t, D in zip(_taps(geom), geom.in_spatial)]  # (O_d, k_d)
    nd = len(masks)
    out = np.zeros(geom.out_spatial + geom.window, bool)
    for a, m in enumerate(masks):
        shape = [1] * (2 * nd)
        shape[a], shape[nd + a] = m.shape
        out = out | m.reshape(shape)
    return out.reshape(geom.out_spatial + (-1,))
