"""The ``fft`` conv algorithm: its three maps against jax.vjp of a lax reference.

One jitted function per case computes forward, input_grad and weight_grad with
the algorithm and with the reference, so a case costs one compile.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxconv._src import reference as ref
from jaxconv._src.algorithms import fft
from jaxconv._src.geometry import ConvGeometry


def geometry(D, k, *, stride=1, padding=0, dilation=1, groups=1, extra=0):
    """A ConvGeometry from per-dim values; ``extra`` input elements the strides skip
    (as conv_transpose's output_padding produces: the derived hi is then < given hi)."""
    nd = len(D)
    t = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)
    s, d, e = t(stride), t(dilation), t(extra)
    pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in
                 (padding if isinstance(padding, (list, tuple)) else [padding] * nd))
    ke = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
    out = tuple((n + lo + hi - kk) // ss + 1 for n, kk, ss, (lo, hi) in zip(D, ke, s, pads))
    D = tuple(n + ee for n, ee in zip(D, e))
    return ConvGeometry(in_spatial=D, kernel=tuple(k), out_spatial=out, stride=s, padding=pads,
                        dilation=d, groups=groups)


CASES = {
    "1d_plain": (geometry((9,), (3,)), 3, 4),
    "1d_big_kernel_full": (geometry((16,), (11,), padding=10), 2, 3),
    "1d_stride2_asym_even": (geometry((10,), (4,), stride=2, padding=[(1, 2)]), 2, 2),
    "1d_dil2_stride3": (geometry((13,), (3,), stride=3, dilation=2, padding=1), 2, 3),
    "1d_extra_input": (geometry((9,), (3,), stride=2, extra=1), 2, 2),
    "2d_groups2": (geometry((8, 7), (5, 4), padding=(2, 1), groups=2), 4, 6),
    "2d_depthwise_s2_d2": (geometry((9, 10), (3, 3), stride=2, dilation=(2, 1), padding=1,
                                    groups=3), 3, 3),
    "3d_mixed": (geometry((5, 6, 4), (3, 2, 3), stride=(1, 2, 1), padding=[(1, 0), 1, (0, 2)]),
                 2, 2),
}


@partial(jax.jit, static_argnums=0)
def _all_maps(geom, x, w, g):
    y_ref, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
    dx_ref, dw_ref = vjp(g)
    got = (fft.forward(geom, x, w), fft.input_grad(geom, g, w), fft.weight_grad(geom, x, g))
    return got, (y_ref, dx_ref, dw_ref)


def _arrays(geom, c_in, c_out, dtype, n=2):
    kx, kw, kg = jax.random.split(jax.random.PRNGKey(1), 3)
    x = jax.random.normal(kx, (n, c_in, *geom.in_spatial), dtype)
    w = jax.random.normal(kw, (c_out, c_in // geom.groups, *geom.kernel), dtype)
    g = jax.random.normal(kg, (n, c_out, *geom.out_spatial), dtype)
    return x, w, g


@pytest.mark.parametrize("name", list(CASES))
def test_three_maps_float64(name):
    geom, c_in, c_out = CASES[name]
    with jax.enable_x64(True):
        got, want = _all_maps(geom, *_arrays(geom, c_in, c_out, jnp.float64))
        for a, b in zip(got, want):
            assert a.shape == b.shape and a.dtype == jnp.float64
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 2e-4), (jnp.bfloat16, 5e-2)])
def test_three_maps_low_precision(dtype, tol):
    geom, c_in, c_out = CASES["2d_groups2"]
    got, want = _all_maps(geom, *_arrays(geom, c_in, c_out, dtype))
    for a, b in zip(got, want):
        assert a.dtype == dtype
        scale = float(jnp.max(jnp.abs(b.astype(jnp.float32))))
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                                   atol=tol * scale, rtol=0)


def test_adjoint_identities():
    # <B(x, w), g> == <x, B_x^T(g; w)> == <w, B_w^T(g; x)>: the three maps agree.
    geom, c_in, c_out = CASES["1d_dil2_stride3"]
    with jax.enable_x64(True):
        x, w, g = _arrays(geom, c_in, c_out, jnp.float64)
        a = jnp.vdot(fft.forward(geom, x, w), g)
        b = jnp.vdot(x, fft.input_grad(geom, g, w))
        c = jnp.vdot(w, fft.weight_grad(geom, x, g))
        np.testing.assert_allclose([b, c], [a, a], rtol=1e-12)


def test_supports_and_flops():
    geom = CASES["1d_plain"][0]
    assert fft.supports(geom, jnp.float32) is None
    assert fft.supports(geom, jnp.bfloat16) is None
    assert "real floating" in fft.supports(geom, jnp.int32)
    assert "real floating" in fft.supports(geom, jnp.complex64)
    small = geometry((64, 64), (3, 3))
    large = geometry((64, 64), (31, 31))
    direct = lambda gm: 2.0 * np.prod(gm.out_spatial) * np.prod(gm.kernel)
    assert fft.flops(small, 1, 1, 1) > direct(small)   # a small kernel: direct is cheaper
    assert fft.flops(large, 1, 1, 1) < direct(large)   # a large one: FFT is
    assert not fft.prefer_over_direct(small, 8, 16, 16)
    assert fft.prefer_over_direct(large, 8, 16, 16)
    # many channels: the flops say FFT (0.11 of direct), the kernel's spectrum (10 Mi
    # complex values) says no; with 16 channels the same kernel is the FFT's
    wide = geometry((28, 28), (9, 9), padding=4)
    assert fft.flops(wide, 4, 128, 128) < fft.CPU_CROSSOVER * 2.0 * 4 * 128 * 128 * 28 * 28 * 81
    assert fft.kernel_spectrum(wide, 128, 128) > fft.MAX_KERNEL_SPECTRUM
    assert not fft.prefer_over_direct(wide, 4, 128, 128)
    assert fft.prefer_over_direct(wide, 16, 16, 16)


@pytest.mark.parametrize("n", [1, 2, 7, 11, 13, 97, 121, 1000, 1025, 4097, 30031])
def test_next_fast_len(n):
    m = fft.next_fast_len(n)
    assert m >= n and _is_5_smooth(m)
    assert not any(_is_5_smooth(v) for v in range(n, m))


def _is_5_smooth(v):
    for p in (2, 3, 5):
        while v % p == 0:
            v //= p
    return v == 1
