"""Slow, obviously-correct reference implementations on plain ``jax.lax``.

Used by the tests (forward values, and ``jax.grad`` of these is what the
hand-derived VJPs are checked against) and by the docs. Never used by the ops.
Padding strings are resolved here independently of ``_args`` (by XLA's own
``"SAME"`` / ``"VALID"``), so the tests check ``_args`` too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _tuple(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def _pads(padding, nd, k, dilation):
    if isinstance(padding, str):
        if padding == "full":
            return [(d * (kk - 1),) * 2 for kk, d in zip(k, dilation)]
        return padding.upper()
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def conv(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """Reference for :func:`jaxconv.conv` (same arguments), via ``lax.conv_general_dilated``."""
    nd = x.ndim - 2
    dilation = _tuple(dilation, nd)
    if flip:
        w = jnp.flip(w, axis=tuple(range(2, w.ndim)))
    y = lax.conv_general_dilated(
        x, w, _tuple(stride, nd), _pads(padding, nd, w.shape[2:], dilation),
        rhs_dilation=dilation, feature_group_count=groups,
        precision=lax.Precision.HIGHEST,
    )
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y


def conv_transpose(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Reference for :func:`jaxconv.conv_transpose`: by definition, the VJP of
    the reference :func:`conv` with respect to its input, evaluated at ``x``.

    The forward conv's input size follows PyTorch's formula
    ``(D - 1)*stride - lo - hi + dilation*(k-1) + output_padding + 1``
    (``"same"``: ``D * stride``). Its hi padding is reduced by output_padding
    (negative padding crops) so that it maps that size back to ``D`` outputs.
    """
    nd = x.ndim - 2
    s, d, op = _tuple(stride, nd), _tuple(dilation, nd), _tuple(output_padding, nd)
    k = w.shape[2:]
    if padding == "same":
        size = tuple(n * si for n, si in zip(x.shape[2:], s))
        fwd_pad = "same"
    else:
        pads = _pads("full" if padding == "full" else (0 if padding == "valid" else padding),
                     nd, k, d)
        size = tuple((n - 1) * si - lo - hi + di * (kk - 1) + o + 1
                     for n, si, (lo, hi), di, kk, o in zip(x.shape[2:], s, pads, d, k, op))
        fwd_pad = [(lo, hi - o) for (lo, hi), o in zip(pads, op)]
    c_in = w.shape[1] * groups
    z = jnp.zeros((x.shape[0], c_in) + size, x.dtype)
    _, vjp = jax.vjp(
        lambda z: conv(z, w, stride=s, padding=fwd_pad, dilation=d, groups=groups), z
    )
    (out,) = vjp(x)
    if b is not None:
        out = out + b.reshape((1, -1) + (1,) * nd)
    return out
