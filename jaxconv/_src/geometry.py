"""Static geometry of convolutions and pools: frozen, hashable, and every size rule.

A geometry is normalised once from the user's arguments (by ``_args``) and is
then passed as a static argument through ``jit`` and ``custom_vjp``, so a
compiled function is cached per geometry.
"""

from __future__ import annotations

import dataclasses

Pair = tuple[int, int]


def k_eff(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel: ``dilation*(kernel-1) + 1``."""
    return dilation * (kernel - 1) + 1


def same_pads(size: int, k_eff: int, stride: int) -> Pair:
    """(lo, hi) padding that gives ``ceil(size / stride)`` outputs; odd extra goes to hi."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return (total // 2, total - total // 2)


def window_output_size(size: int, k_eff: int, stride: int, lo: int, hi: int) -> int:
    """``floor((size + lo + hi - k_eff) / stride) + 1`` (may be < 1: caller checks)."""
    return (size + lo + hi - k_eff) // stride + 1


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """Static description of one convolution ``B(x, w)``: x-spatial -> y-spatial.

    The three bilinear maps of the convolution family share it: ``conv``
    (``B``), ``conv_transpose`` (``B_x^T``, y -> x) and the weight gradient
    (``B_w^T``). ``in_spatial`` is always the size of the *conv's* input and
    ``out_spatial`` of the conv's output, whichever direction is computed.
    """

    in_spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    out_spatial: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pair, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @property
    def k_eff(self) -> tuple[int, ...]:
        """Dilated kernel extent per dim: ``dilation*(k-1) + 1``."""
        return tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel))


@dataclasses.dataclass(frozen=True)
class PoolGeometry:
    """Static description of a sliding-window pool over ``in_spatial``.

    ``padding`` holds the (lo, hi) padding the user asked for; with
    ``ceil_mode`` the last window may run past it, and ``extra_hi`` is the
    additional padding on the hi side that the windows then reach (never
    counted by ``count_include_pad``).
    """

    in_spatial: tuple[int, ...]
    window: tuple[int, ...]
    out_spatial: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pair, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    extra_hi: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.window)

    @property
    def full_padding(self) -> tuple[Pair, ...]:
        """Padding including the ceil-mode overhang: what the windows read."""
        return tuple((lo, hi + e) for (lo, hi), e in zip(self.padding, self.extra_hi))
