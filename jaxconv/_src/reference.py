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


def conv_geometry_map(geom, x, w):
    """``B(x, w)`` of a normalised ``ConvGeometry``, as one ``lax.conv_general_dilated``.

    The ``hi`` padding is derived from the index relation ``t = p*stride +
    j*dilation - lo`` (exactly ``out_spatial`` outputs), which is how a
    conv_transpose geometry with ``output_padding`` reads; what the algorithms'
    three maps are checked against (their VJPs give ``B_x^T`` and ``B_w^T``).
    """
    pads = [(lo, (o - 1) * s + d * (k - 1) + 1 - n - lo)
            for n, o, k, s, d, (lo, _) in zip(geom.in_spatial, geom.out_spatial, geom.kernel,
                                              geom.stride, geom.dilation, geom.padding)]
    return lax.conv_general_dilated(x, w, geom.stride, pads, rhs_dilation=geom.dilation,
                                    feature_group_count=geom.groups,
                                    precision=lax.Precision.HIGHEST)


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


# --------------------------------------------------------------------------
# Pooling references
# --------------------------------------------------------------------------
# Sliding-window pools on ``lax.reduce_window``; the output size and the
# ceil-mode overhang are computed here from PyTorch's formula, independently of
# ``_args.pool_geometry``. Padding: an int, one int per dim or (lo, hi) pairs.

import itertools  # noqa: E402  (pooling section's own imports)

import numpy as np  # noqa: E402


def _pool_pads(x, window, stride, padding, dilation, ceil_mode):
    """(lo, hi) per dim, hi including the ceil-mode overhang, and the user's hi."""
    nd = x.ndim - 2
    k, d = _tuple(window, nd), _tuple(dilation, nd)
    s = k if stride is None else _tuple(stride, nd)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":  # XLA's own resolution
        pads = lax.padtype_to_pads(x.shape[2:], [dd * (kk - 1) + 1 for kk, dd in zip(k, d)], s,
                                   "SAME")
    else:
        pads = _pads(padding, nd, k, d)
    full = []
    for n, kk, ss, dd, (lo, hi) in zip(x.shape[2:], k, s, d, pads):
        ke = dd * (kk - 1) + 1
        num = n + lo + hi - ke
        out = (-(-num // ss) if ceil_mode else num // ss) + 1
        if ceil_mode and (out - 1) * ss >= n + lo:  # last window must start in input/left pad
            out -= 1
        full.append((lo, max(hi, (out - 1) * ss + ke - n - lo)))
    return k, s, d, pads, full


def _reduce(x, init, op, k, s, d, full):
    return lax.reduce_window(x, init, op, (1, 1) + k, (1, 1) + s,
                             [(0, 0), (0, 0)] + full, window_dilation=(1, 1) + d)


def _crop_to(y, x, k, s, d, pads, full, ceil_mode):
    # reduce_window over `full` may produce one window too many when the
    # overhang was added for ceil_mode; crop to PyTorch's size.
    nd = x.ndim - 2
    sizes = []
    for n, kk, ss, dd, (lo, hi) in zip(x.shape[2:], k, s, d, pads):
        ke = dd * (kk - 1) + 1
        num = n + lo + hi - ke
        out = (-(-num // ss) if ceil_mode else num // ss) + 1
        if ceil_mode and (out - 1) * ss >= n + lo:
            out -= 1
        sizes.append(out)
    return y[(slice(None),) * 2 + tuple(slice(0, o) for o in sizes[:nd])]


def max_pool(x, window, *, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Reference for :func:`jaxconv.max_pool` values: ``reduce_window(max)``, -inf padding."""
    k, s, d, pads, full = _pool_pads(x, window, stride, padding, dilation, ceil_mode)
    if any(dd > 1 for dd in d):
        # JAX cannot differentiate a dilated reduce_window(max): take the max
        # over the stacked taps instead (jnp.max; its gradient is fine off ties).
        xp = jnp.pad(x, [(0, 0), (0, 0)] + full, constant_values=-jnp.inf)
        y = _reduce(x, np.array(-np.inf, x.dtype), lax.max, k, s, d, full)
        taps = [
            xp[(slice(None), slice(None)) + tuple(
                slice(j * dd, j * dd + (o - 1) * ss + 1, ss)
                for j, dd, o, ss in zip(jj, d, y.shape[2:], s))]
            for jj in itertools.product(*(range(kk) for kk in k))
        ]
        y = jnp.max(jnp.stack(taps), axis=0)
    else:
        y = _reduce(x, np.array(-np.inf, x.dtype), lax.max, k, s, d, full)
    return _crop_to(y, x, k, s, d, pads, full, ceil_mode)


def avg_pool(x, window, *, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor=None):
    """Reference for :func:`jaxconv.avg_pool`: window sums of x over window sums of
    a 0/1 mask (the padded input for count_include_pad, else the real input)."""
    k, s, d, pads, full = _pool_pads(x, window, stride, padding, 1, ceil_mode)
    zero = np.array(0, x.dtype)
    total = _crop_to(_reduce(x, zero, lax.add, k, s, d, full), x, k, s, d, pads, full, ceil_mode)
    if divisor is not None:
        return total / divisor
    if count_include_pad:
        # ones over the whole padded input; the ceil-mode overhang is zeros
        mask = jnp.ones(tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads)), x.dtype)
        mfull = [(0, fh - h) for (_, h), (_, fh) in zip(pads, full)]
    else:
        mask = jnp.ones(x.shape[2:], x.dtype)
        mfull = full
    cnt = lax.reduce_window(mask, zero, lax.add, k, s, mfull)
    cnt = cnt[tuple(slice(0, o) for o in total.shape[2:])]
    return total / cnt


def lp_pool(x, p, window, *, stride=None, padding=0, ceil_mode=False):
    """Reference for :func:`jaxconv.lp_pool`, by PyTorch's definition
    ``(avg_pool(|x|^p, count_include_pad=True) * prod(window))^(1/p)`` (which
    rescales windows clipped by ceil_mode), with ``|x|`` where PyTorch has ``x``."""
    k = _tuple(window, x.ndim - 2)
    a = avg_pool(jnp.abs(x) ** p, window, stride=stride, padding=padding, ceil_mode=ceil_mode,
                 count_include_pad=True)
    return (a * float(np.prod(k))) ** (1.0 / p)


def weighted_pool(x, weights, *, stride=None, padding=0):
    """Reference for :func:`jaxconv.weighted_pool`: a depthwise :func:`conv` with
    the normalised weights repeated per channel."""
    c = x.shape[1]
    wn = weights / jnp.sum(weights)
    kern = jnp.broadcast_to(wn, (c, 1) + weights.shape)
    return conv(x, kern, stride=weights.shape if stride is None else stride, padding=padding,
                groups=c)


def _adaptive(x, output_size, reduce):
    nd = x.ndim - 2
    out = _tuple(output_size, nd)
    out = tuple(n if o is None else o for n, o in zip(x.shape[2:], out))
    bounds = [[((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]
              for n, o in zip(x.shape[2:], out)]
    vals = []
    for pos in itertools.product(*(range(o) for o in out)):
        sl = tuple(slice(*bounds[a][i]) for a, i in enumerate(pos))
        vals.append(reduce(x[(slice(None), slice(None)) + sl], axis=tuple(range(2, nd + 2))))
    return jnp.stack(vals, axis=-1).reshape(x.shape[:2] + out)


def adaptive_avg_pool(x, output_size):
    """Reference for :func:`jaxconv.adaptive_avg_pool`: a mean per window, by slicing."""
    return _adaptive(x, output_size, jnp.mean)


def adaptive_max_pool(x, output_size):
    """Reference for :func:`jaxconv.adaptive_max_pool` values: a max per window, by slicing."""
    return _adaptive(x, output_size, jnp.max)


def max_unpool(x, indices, output_size):
    """Reference for :func:`jaxconv.max_unpool`: write x at the flat plane indices."""
    n, c = x.shape[:2]
    size = tuple(output_size)[-(x.ndim - 2):]
    flat = jnp.zeros((n, c, int(np.prod(size))), x.dtype)
    nn_, cc = jnp.meshgrid(jnp.arange(n), jnp.arange(c), indexing="ij")
    flat = flat.at[nn_[..., None], cc[..., None], indices.reshape(n, c, -1)].set(
        x.reshape(n, c, -1))
    return flat.reshape((n, c) + size)


def upsample(x, factor):
    """Reference for :func:`jaxconv.upsample`: ``kron(x, ones)`` on the spatial dims."""
    nd = x.ndim - 2
    return jnp.kron(x, jnp.ones((1, 1) + _tuple(factor, nd), x.dtype))


# --------------------------------------------------------------------------
# Toolbox references (unfold / fold, padding modes, tiled / local conv)
# --------------------------------------------------------------------------


def unfold(x, window, *, stride=1, padding=0, dilation=1):
    """Reference for :func:`jaxconv.unfold`: ``lax.conv_general_dilated_patches``
    (its feature axis is (channel, tap) with channel outer, as torch's)."""
    nd = x.ndim - 2
    k, d = _tuple(window, nd), _tuple(dilation, nd)
    p = lax.conv_general_dilated_patches(
        x, k, _tuple(stride, nd), _pads(padding, nd, k, d), rhs_dilation=d,
        precision=lax.Precision.HIGHEST)
    return p.reshape(p.shape[0], p.shape[1], -1)


def fold(cols, output_size, window, *, stride=1, padding=0, dilation=1):
    """Reference for :func:`jaxconv.fold`: by definition the VJP of the reference
    :func:`unfold` at ``cols``."""
    nd = len(output_size)
    k = _tuple(window, nd)
    c = cols.shape[1] // int(np.prod(k))
    z = jnp.zeros((cols.shape[0], c, *output_size), cols.dtype)
    _, vjp = jax.vjp(lambda z: unfold(z, k, stride=stride, padding=padding, dilation=dilation), z)
    return vjp(cols)[0]


_NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(x, pads, mode):
    """Reference for :func:`jaxconv.pad` with ``(lo, hi)`` pairs: ``jnp.pad``."""
    return jnp.pad(x, [(0, 0), (0, 0), *[tuple(p) for p in pads]], mode=_NP_MODES[mode])


def tiled_conv(x, w, b=None, *, tile, stride=1, padding=0, dilation=1):
    """Reference for :func:`jaxconv.tiled_conv` (integer or pair padding): builds
    the dense matrix ``M`` entry by entry, ``M[(o, p), (i, q)] += w[p mod tile, o, i, j]``
    for ``q = p*stride + j*dilation - lo`` inside the input, and returns ``M x + b``."""
    nd = x.ndim - 2
    n, c_in, D = x.shape[0], x.shape[1], x.shape[2:]
    c_out, k = w.shape[nd], w.shape[nd + 2:]
    s, d, t = _tuple(stride, nd), _tuple(dilation, nd), _tuple(tile, nd)
    pads = _pads(padding, nd, k, d)
    O = tuple((Di + lo + hi - di * (ki - 1) - 1) // si + 1
              for Di, (lo, hi), di, ki, si in zip(D, pads, d, k, s))
    rows, cols, widx = [], [], []
    for p in itertools.product(*(range(o) for o in O)):
        tp = tuple(pi % ti for pi, ti in zip(p, t))
        for j in itertools.product(*(range(ki) for ki in k)):
            q = tuple(pi * si + ji * di - lo for pi, si, ji, di, (lo, _) in zip(p, s, j, d, pads))
            if not all(0 <= qi < Di for qi, Di in zip(q, D)):
                continue
            for o in range(c_out):
                for i in range(c_in):
                    rows.append(np.ravel_multi_index((o, *p), (c_out, *O)))
                    cols.append(np.ravel_multi_index((i, *q), (c_in, *D)))
                    widx.append(np.ravel_multi_index((*tp, o, i, *j), w.shape))
    M = jnp.zeros((c_out * int(np.prod(O)), c_in * int(np.prod(D))), w.dtype)
    M = M.at[np.array(rows), np.array(cols)].add(w.reshape(-1)[np.array(widx)])
    y = (x.reshape(n, -1) @ M.T).reshape(n, c_out, *O)
    if b is not None:
        y = y + (b.reshape(1, c_out, *(1,) * nd) if b.ndim == 1 else b[None])
    return y

# Signal references (jaxconv.signal), on plain lax / jnp
# --------------------------------------------------------------------------
# The full convolution by lax.conv_general_dilated with n2 - 1 zeros on each
# side and the reversed kernel, then scipy's window for the mode; correlation
# by the reversed, conjugated kernel; boundaries by jnp.pad.


def _signal_window(full, n1, n2, mode, same_start):
    if mode == "full":
        return full
    if mode == "same":
        sl = [slice(same_start(q), same_start(q) + p) for p, q in zip(n1, n2)]
    else:
        sl = [slice(min(p, q) - 1, max(p, q)) for p, q in zip(n1, n2)]
    return full[tuple(sl)]


def _signal_full(in1, in2):
    nd = in1.ndim
    dt = jnp.result_type(in1, in2)
    in1, in2 = in1.astype(dt), in2.astype(dt)
    return lax.conv_general_dilated(
        in1[None, None], jnp.flip(in2)[None, None], (1,) * nd,
        [(q - 1, q - 1) for q in in2.shape], precision=lax.Precision.HIGHEST)[0, 0]


def signal_convolve(in1, in2, mode="full"):
    """Reference for :func:`jaxconv.signal.convolve` (and fftconvolve / oaconvolve over all axes)."""
    full = _signal_full(in1, in2)
    return _signal_window(full, in1.shape, in2.shape, mode, lambda q: (q - 1) // 2)


def signal_correlate(in1, in2, mode="full"):
    """Reference for :func:`jaxconv.signal.correlate`: convolution with ``rev(conj(in2))``."""
    return signal_convolve(in1, jnp.flip(jnp.conj(in2)), mode)


def signal_conv2d(in1, in2, mode="full", boundary="fill", fillvalue=0, correlate=False):
    """Reference for :func:`jaxconv.signal.convolve2d` / ``correlate2d``: ``in1`` padded by
    ``n2 - 1`` per side with ``jnp.pad`` (constant / wrap / symmetric), a "valid"
    convolution, then the window (``correlate2d``'s "same" starts at ``n2 // 2``)."""
    k = jnp.flip(jnp.conj(in2)) if correlate else in2
    if mode == "valid":
        return signal_convolve(in1, k, "valid")
    pads = [(q - 1, q - 1) for q in in2.shape]
    if boundary == "fill":
        ext = jnp.pad(in1, pads, constant_values=fillvalue)
    else:
        ext = jnp.pad(in1, pads, mode={"wrap": "wrap", "symm": "symmetric"}[boundary])
    full = signal_convolve(ext, k, "valid")
    start = (lambda q: q // 2) if correlate else (lambda q: (q - 1) // 2)
    return _signal_window(full, in1.shape, in2.shape, mode, start)


def signal_fftconvolve(in1, in2, mode="full", axes=None):
    """Reference for :func:`jaxconv.signal.fftconvolve` / ``oaconvolve`` with ``axes``: complex
    FFTs of the full length (no fast lengths), other axes broadcast; "same" is centred on
    ``in1``'s shape on every axis, as scipy does."""
    nd = in1.ndim
    axes = tuple(range(nd)) if axes is None else tuple(
        a % nd for a in ((axes,) if isinstance(axes, int) else axes))
    axes = tuple(a for a in axes if in1.shape[a] != 1 and in2.shape[a] != 1)
    full_n = [in1.shape[a] + in2.shape[a] - 1 for a in axes]
    y = jnp.fft.ifftn(jnp.fft.fftn(in1, s=full_n, axes=axes) * jnp.fft.fftn(in2, s=full_n, axes=axes),
                      axes=axes)
    if not (jnp.iscomplexobj(in1) or jnp.iscomplexobj(in2)):
        y = y.real
    sl = []
    for i in range(nd):
        n = y.shape[i]
        if mode == "full":
            sl.append(slice(None))
        elif mode == "same" or i not in axes:
            m = in1.shape[i] if mode == "same" else n
            sl.append(slice((n - m) // 2, (n - m) // 2 + m))
        else:
            m = abs(in1.shape[i] - in2.shape[i]) + 1
            sl.append(slice((n - m) // 2, (n - m) // 2 + m))
    return y[tuple(sl)]
