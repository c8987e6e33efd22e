"""local_conv / tiled_conv (hand-derived VJP) and separable / depthwise-separable conv:
against conv and an explicit dense-matrix reference, gradients, order-2 check_grads,
jit / vmap / dtypes, errors."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxconv
from jaxconv._src import reference as ref


def _close(a, b, tol, what=""):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()),
                               err_msg=what)


def _grads(f, args, key):
    """y and the gradients of <f(*args), ct> in every argument."""
    y, vjp = jax.vjp(f, *args)
    return y, vjp(jax.random.normal(key, y.shape, y.dtype))


# (D, k, tile, C_in, C_out, options, bias per position?): tiles that do and do not
# divide the output, tile larger than the output, 1-3 spatial dims.
TILED = {
    "1d_tile3_s2": ((11,), (3,), (3,), 2, 3, dict(stride=2, padding=1), False),
    "2d_tile2x3_dil": ((6, 7), (2, 3), (2, 3), 2, 2,
                       dict(dilation=(2, 1), padding=((1, 0), (0, 2))), True),
    "2d_tile_gt_out": ((4, 4), (3, 3), (3, 5), 1, 2, dict(), False),
    "3d_tile_121": ((4, 3, 4), (2, 2, 2), (1, 2, 1), 2, 2, dict(stride=(1, 1, 2)), False),
}


@pytest.mark.parametrize("name", list(TILED))
def test_tiled_conv_matches_dense_matrix(name):
    """Values and gradients in x, w, b against the dense-matrix reference, in one jit."""
    D, k, tile, cin, cout, kw, bias_per_pos = TILED[name]
    kx, kw_, kb, kg = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(kx, (2, cin, *D))
    w = jax.random.normal(kw_, (*tile, cout, cin, *k))
    O = jax.eval_shape(partial(jaxconv.tiled_conv, tile=tile, **kw), x, w).shape[2:]
    b = jax.random.normal(kb, (cout, *O) if bias_per_pos else (cout,))

    @jax.jit
    def run(x, w, b):
        return (_grads(partial(jaxconv.tiled_conv, tile=tile, **kw), (x, w, b), kg),
                _grads(partial(ref.tiled_conv, tile=tile, **kw), (x, w, b), kg))

    (y, gs), (y_ref, gs_ref) = run(x, w, b)
    _close(y, y_ref, 1e-5, "tiled_conv")
    for a, g, g_ref in zip("xwb", gs, gs_ref):
        _close(g, g_ref, 1e-5, f"d{a}")


def test_tile_1_is_conv_and_tile_out_is_local_conv():
    """tile=1 is conv (with a "same" string padding, stride), tile=out_spatial is
    local_conv; values and gradients."""
    kx, kw_, kb, kg, kl = jax.random.split(jax.random.PRNGKey(1), 5)
    x = jax.random.normal(kx, (2, 3, 7, 6))
    w = jax.random.normal(kw_, (4, 3, 3, 2))
    b = jax.random.normal(kb, (4,))
    kw = dict(stride=(2, 1), padding="same", dilation=(1, 2))
    wl = jax.random.normal(kl, (4, 6, 4, 3, 3, 2))  # (*O, C_out, C_in, *k), O = (4, 6)

    @jax.jit
    def run(x, w, b, wl):
        tiled = _grads(lambda x, w, b: jaxconv.tiled_conv(x, w[None, None], b, tile=1, **kw),
                       (x, w, b), kg)
        plain = _grads(partial(ref.conv, **kw), (x, w, b), kg)
        local = _grads(partial(jaxconv.local_conv, **kw), (x, wl, b), kg)
        as_tiled = _grads(partial(jaxconv.tiled_conv, tile=(4, 6), **kw), (x, wl, b), kg)
        return tiled, plain, local, as_tiled

    (yt, gt), (yc, gc), (yl, gl), (ya, ga) = run(x, w, b, wl)
    _close(yt, yc, 1e-5, "tile=1 vs conv")
    for a, g1, g2 in zip("xwb", gt, gc):
        _close(g1, g2, 1e-5, f"d{a} tile=1")
    _close(yl, ya, 1e-6, "local vs tile=out")
    for a, g1, g2 in zip("xwb", gl, ga):
        _close(g1, g2, 1e-6, f"d{a} local")
    # and local_conv itself against the dense matrix (pairs padding)
    pads = ((1, 1), (1, 1))
    _close(yl, ref.tiled_conv(x, wl, b, tile=(4, 6), stride=(2, 1), padding=pads,
                              dilation=(1, 2)), 1e-5, "local vs dense")


def test_check_grads_order2():
    D, k, tile, cin, cout, kw, _ = TILED["2d_tile2x3_dil"]
    with jax.enable_x64(True):
        kx, kw_, kb = jax.random.split(jax.random.PRNGKey(2), 3)
        x = jax.random.normal(kx, (1, cin, *D), jnp.float64)
        w = jax.random.normal(kw_, (*tile, cout, cin, *k), jnp.float64)
        b = jax.random.normal(kb, (cout,), jnp.float64)
        check_grads(jax.jit(partial(jaxconv.tiled_conv, tile=tile, **kw)), (x, w, b), order=2,
                    modes=["rev"])


def test_vmap_and_dtypes():
    D, k, tile, cin, cout, kw, _ = TILED["1d_tile3_s2"]
    x = jax.random.normal(jax.random.PRNGKey(3), (3, 2, cin, *D))
    w = jax.random.normal(jax.random.PRNGKey(4), (*tile, cout, cin, *k))
    f = partial(jaxconv.tiled_conv, tile=tile, **kw)
    got = jax.jit(jax.vmap(f, in_axes=(0, None)))(x, w)
    _close(got, jnp.stack([ref.tiled_conv(xi, w, tile=tile, **kw) for xi in x]), 1e-5, "vmap")
    gv = jax.jit(jax.grad(lambda w: jnp.sum(jax.vmap(f, in_axes=(0, None))(x, w) ** 2)))(w)
    gr = jax.grad(lambda w: sum(jnp.sum(ref.tiled_conv(xi, w, tile=tile, **kw) ** 2)
                                for xi in x))(w)
    _close(gv, gr, 1e-4, "grad through vmap")
    xb, wb = x[0].astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    y, (dx, dw) = _grads(f, (xb, wb), jax.random.PRNGKey(5))
    assert y.dtype == dx.dtype == dw.dtype == jnp.bfloat16
    _close(y, ref.tiled_conv(xb.astype(jnp.float32), wb.astype(jnp.float32), tile=tile, **kw),
           3e-2, "bf16")


# --------------------------------------------------------------------------
# separable convolutions
# --------------------------------------------------------------------------


def _outer(kernels, c):
    """The (C, 1, *k) depthwise kernel: outer product of the per-axis kernels."""
    ks = [jnp.broadcast_to(k, (c, k.shape[-1])) for k in kernels]
    out = ks[0]
    for k in ks[1:]:
        out = out[..., None] * k.reshape(c, *(1,) * (out.ndim - 1), -1)
    return out[:, None]


SEPARABLE = {
    "1d_shared_s2": ((9,), ((3,),), dict(stride=2, padding=1)),
    "2d_mixed_same": ((7, 6), ((4,), (3, 2)), dict(padding="same", stride=(2, 1))),
    "3d_per_channel_full": ((4, 5, 3), ((3, 2), (3, 3), (3, 2)), dict(padding="full")),
}


@pytest.mark.parametrize("name", list(SEPARABLE))
def test_separable_conv_is_depthwise_conv_with_outer_kernel(name):
    D, kshapes, kw = SEPARABLE[name]
    keys = jax.random.split(jax.random.PRNGKey(6), len(kshapes) + 2)
    x = jax.random.normal(keys[0], (2, 3, *D))
    ks = [jax.random.normal(kk, s) for kk, s in zip(keys[2:], kshapes)]

    @jax.jit
    def run(x, ks):
        ours = _grads(lambda x, *ks: jaxconv.separable_conv(x, ks, **kw), (x, *ks), keys[1])
        theirs = _grads(lambda x, *ks: ref.conv(x, _outer(ks, 3), groups=3, **kw), (x, *ks),
                        keys[1])
        return ours, theirs

    (y, gs), (y_ref, gs_ref) = run(x, ks)
    _close(y, y_ref, 1e-5, "separable")
    for i, (g, g_ref) in enumerate(zip(gs, gs_ref)):
        _close(g, g_ref, 1e-5, f"grad {i}")


def test_depthwise_separable_conv():
    kx, kd, kp, kb, kg = jax.random.split(jax.random.PRNGKey(7), 5)
    x = jax.random.normal(kx, (2, 3, 7, 6))
    wd = jax.random.normal(kd, (6, 1, 3, 3))  # depth multiplier 2
    wp = jax.random.normal(kp, (4, 6, 1, 1))
    b = jax.random.normal(kb, (4,))
    kw = dict(stride=2, padding=1, dilation=(1, 2))

    @jax.jit
    def run(x, wd, wp, b):
        ours = _grads(partial(jaxconv.depthwise_separable_conv, **kw), (x, wd, wp, b), kg)
        theirs = _grads(lambda x, wd, wp, b: ref.conv(ref.conv(x, wd, groups=3, **kw), wp, b),
                        (x, wd, wp, b), kg)
        return ours, theirs

    (y, gs), (y_ref, gs_ref) = run(x, wd, wp, b)
    _close(y, y_ref, 1e-5, "depthwise separable")
    for a, g, g_ref in zip(("x", "wd", "wp", "b"), gs, gs_ref):
        _close(g, g_ref, 1e-5, f"d{a}")


def test_errors():
    x = jnp.ones((1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"jaxconv.local_conv: w must have one kernel per output "
                                         r"position.*\(3, 3\); got w.shape=\(2, 3, 1, 2, 3, 3\)"):
        jaxconv.local_conv(x, jnp.ones((2, 3, 1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"jaxconv.local_conv: w must be \(\*out_spatial, C_out, "
                                         r"C_in, \*kernel\).*rank 6"):
        jaxconv.local_conv(x, jnp.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"jaxconv.tiled_conv: x has 2 channels but w expects 3"):
        jaxconv.tiled_conv(x, jnp.ones((1, 1, 1, 3, 3, 3)), tile=1)
    with pytest.raises(ValueError, match=r"jaxconv.tiled_conv: w must be \(\*tile, C_out, C_in, "
                                         r"\*kernel\) with w.shape\[:2\] == tile = \(2, 2\)"):
        jaxconv.tiled_conv(x, jnp.ones((1, 1, 1, 2, 3, 3)), tile=2)
    with pytest.raises(ValueError, match=r"jaxconv.tiled_conv: tile must be >= 1"):
        jaxconv.tiled_conv(x, jnp.ones((1, 1, 1, 2, 3, 3)), tile=0)
    with pytest.raises(ValueError, match=r"jaxconv.tiled_conv: b must have shape \(C_out,\) = "
                                         r"\(1,\) or \(C_out, \*out_spatial\)"):
        jaxconv.tiled_conv(x, jnp.ones((1, 1, 1, 2, 3, 3)), jnp.ones((2,)), tile=1)
    with pytest.raises(ValueError, match=r"jaxconv.local_conv: the \(dilated\) kernel is larger than the padded input"):
        jaxconv.local_conv(x, jnp.ones((1, 1, 1, 2, 6, 6)))
    with pytest.raises(TypeError, match=r"jaxconv.separable_conv: kernels must be a sequence of 2 "
                                        r"1-D kernels.*got 1 kernels"):
        jaxconv.separable_conv(x, [jnp.ones(3)])
    with pytest.raises(ValueError, match=r"jaxconv.separable_conv: kernels\[1\] must be \(k,\) "
                                         r"\(shared\) or \(C, k\) = \(2, k\).*\(3, 3\)"):
        jaxconv.separable_conv(x, [jnp.ones(3), jnp.ones((3, 3))])
    with pytest.raises(ValueError, match=r"jaxconv.depthwise_separable_conv: w_depthwise must be "
                                         r"\(C_in \* m, 1, \*kernel\)"):
        jaxconv.depthwise_separable_conv(x, jnp.ones((3, 1, 3, 3)), jnp.ones((4, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"jaxconv.depthwise_separable_conv: w_pointwise must be "
                                         r"\(C_out, 4, 1, 1\)"):
        jaxconv.depthwise_separable_conv(x, jnp.ones((4, 1, 3, 3)), jnp.ones((4, 4, 3, 1)))
    with pytest.raises(ValueError, match=r"jaxconv.depthwise_separable_conv: b must have shape"):
        jaxconv.depthwise_separable_conv(x, jnp.ones((4, 1, 3, 3)), jnp.ones((5, 4, 1, 1)),
                                         jnp.ones((4,)))
