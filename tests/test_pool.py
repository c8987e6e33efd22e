"""Tests for jaxconv's pooling ops (jaxconv/_src/pool.py, adaptive.py, window.py).

1. PyTorch golden data (tests/data/torch_pool.npz, made by
   tests/make_torch_pool_fixtures.py): ceil_mode edges, count_include_pad,
   divisor_override, return_indices, ties, NaNs, max_unpool's output_size,
   adaptive pools with non-divisible sizes, lp_pool, upsample.
2. Forward and gradient against jax.lax.reduce_window references
   (jaxconv._src.reference) over a sweep; tie-free inputs for max.
3. Ties and NaN against the documented rule; check_grads order 2 (rev, float64,
   default tolerances); the adjoint identity of every linear pair of window.py /
   adaptive.py; jit, vmap; f32 / bf16 / f64; argument errors.

Compiles dominate the runtime: each sweep config is one jit that returns the
forward and both gradients together.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DATA, torch_cases
from jax.test_util import check_grads

import jaxconv as jc
from jaxconv._src import _args, adaptive, window
from jaxconv._src import reference as ref


def distinct(shape, seed=0, scale=4.0, dtype=jnp.float32):
    """Tie-free input: a shuffled ramp, neighbouring values ``scale / size`` apart
    (far more than check_grads' finite-difference step), none of them zero."""
    n = int(np.prod(shape))
    r = np.random.default_rng(seed).permutation(n).astype(np.float64)
    return jnp.asarray(((r - n / 2 + 0.5) * (scale / n)).reshape(shape), dtype)


def normal(shape, seed=0, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


# --------------------------------------------------------------------------
# 1. PyTorch golden data
# --------------------------------------------------------------------------

_CASES = torch_cases("torch_pool.npz")
_OPS = {
    "max_pool": jc.max_pool,
    "avg_pool": jc.avg_pool,
    "lp_pool": jc.lp_pool,
    "max_unpool": jc.max_unpool,
    "adaptive_avg_pool": jc.adaptive_avg_pool,
    "adaptive_max_pool": jc.adaptive_max_pool,
    "upsample": jc.upsample,
}


@pytest.mark.parametrize("case", _CASES, ids=str)
def test_matches_torch(case):
    op, kw = case.op, dict(case.kwargs)
    x = jnp.asarray(case["x"])
    want = case["y"]
    fn = _OPS[op]
    if op == "max_unpool":
        idx = jnp.asarray(case["indices"])
        got = jax.jit(lambda x, i: fn(x, i, kw["output_size"]))(x, idx)
    elif op in ("max_pool", "adaptive_max_pool"):
        got, idx = jax.jit(lambda x: fn(x, **kw, return_indices=True))(x)
        np.testing.assert_array_equal(np.asarray(idx), case["idx"])
        assert idx.dtype == jnp.int32
    elif op == "lp_pool":
        p = kw.pop("p")
        got = jax.jit(lambda x: fn(x, p, **kw))(x)
    elif op == "upsample":
        got = jax.jit(lambda x: fn(x, kw["factor"]))(x)
    else:
        got = jax.jit(lambda x: fn(x, **kw))(x)
    assert got.shape == want.shape and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)  # NaN == NaN


def test_torch_fixture_is_small_and_covers_every_op():
    assert (DATA / "torch_pool.npz").stat().st_size < 200_000
    assert {c.op for c in _CASES} == set(_OPS)


# --------------------------------------------------------------------------
# 2. Forward and gradients against the reduce_window references
# --------------------------------------------------------------------------

# (x shape, window, options): 1-3 D, overlapping / non-overlapping, stride,
# every padding form, dilation, ceil_mode (including the dropped last window).
MAX_SWEEP = [
    ((2, 3, 12), 2, {}),
    ((2, 3, 11), 3, dict(stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 10), 2, dict(stride=1, dilation=3, padding=1)),
    ((2, 3, 8, 8), 2, {}),
    ((2, 2, 7, 9), 2, {}),  # floor crops the last row / column
    ((2, 2, 9, 8), 3, dict(stride=2, padding=1)),
    ((1, 2, 5, 5), 2, dict(stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 9, 10), (3, 2), dict(stride=(1, 2), padding=((1, 0), (0, 1)), dilation=(2, 1))),
    ((1, 2, 7, 6), 3, dict(stride=2, padding="same")),
    ((1, 2, 6, 7), 3, dict(stride=2, padding="valid", ceil_mode=True)),
    ((1, 2, 4, 6, 6), 2, {}),
    ((1, 2, 5, 6, 5), (2, 3, 2), dict(stride=(1, 2, 2), padding=(1, 1, 0), ceil_mode=True)),
]


def _sweep_id(cfg):
    shape, w, kw = cfg
    return f"{len(shape) - 2}d-w{w}-" + "-".join(f"{k}{v}" for k, v in kw.items())


def _fwd_and_grads(ours, theirs, x, seed=1):
    """One jit: both forwards and both input gradients for a random cotangent."""
    y_shape = jax.eval_shape(ours, x).shape
    ct = normal(y_shape, seed)

    @jax.jit
    def run(x, ct):
        return (ours(x), theirs(x), jax.grad(lambda x: jnp.sum(ours(x) * ct))(x),
                jax.grad(lambda x: jnp.sum(theirs(x) * ct))(x))

    return run(x, ct)


@pytest.mark.parametrize("cfg", MAX_SWEEP, ids=[_sweep_id(c) for c in MAX_SWEEP])
def test_max_pool_vs_reference(cfg):
    shape, w, kw = cfg
    x = distinct(shape)
    y, yr, dx, dxr = _fwd_and_grads(lambda x: jc.max_pool(x, w, **kw),
                                    lambda x: ref.max_pool(x, w, **kw), x)
    assert y.shape == yr.shape
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_allclose(dx, dxr, rtol=1e-6, atol=1e-6)


AVG_SWEEP = [
    ((2, 3, 12), 3, dict(stride=2, padding=1, ceil_mode=True)),
    ((2, 3, 12), 3, dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((2, 2, 8, 8), 2, {}),
    ((2, 2, 7, 8), 3, dict(stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 7, 8), 3, dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ((2, 2, 7, 8), 3, dict(stride=1, padding=1, divisor=4)),  # overlapping
    ((1, 2, 5, 5), 2, dict(stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 9, 7), (3, 2), dict(stride=(2, 1), padding=((1, 0), (1, 1)),
                                count_include_pad=False)),
    ((1, 2, 5, 6, 5), (2, 3, 2), dict(stride=(2, 2, 1), padding=(1, 1, 0), ceil_mode=True)),
    ((1, 2, 4, 4, 4), 2, dict(divisor=3)),
]


@pytest.mark.parametrize("cfg", AVG_SWEEP, ids=[_sweep_id(c) for c in AVG_SWEEP])
def test_avg_pool_vs_reference(cfg):
    shape, w, kw = cfg
    x = normal(shape)
    y, yr, dx, dxr = _fwd_and_grads(lambda x: jc.avg_pool(x, w, **kw),
                                    lambda x: ref.avg_pool(x, w, **kw), x)
    assert y.shape == yr.shape
    np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dxr, rtol=1e-5, atol=1e-6)


LP_SWEEP = [
    ((2, 3, 12), 2.0, 3, dict(stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 8, 9), 3.0, 2, {}),
    ((2, 2, 8, 9), 1.0, 3, dict(stride=1)),
    ((2, 2, 7, 8), 1.5, (2, 3), dict(stride=(2, 1), padding=(1, 1))),
    ((1, 2, 4, 5, 6), 2.5, 2, dict(ceil_mode=True)),
]


@pytest.mark.parametrize("cfg", LP_SWEEP, ids=[f"{len(c[0]) - 2}d-p{c[1]}" for c in LP_SWEEP])
def test_lp_pool_vs_reference(cfg):
    shape, p, w, kw = cfg
    x = normal(shape)
    y, yr, dx, dxr = _fwd_and_grads(lambda x: jc.lp_pool(x, p, w, **kw),
                                    lambda x: ref.lp_pool(x, p, w, **kw), x)
    np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dxr, rtol=1e-4, atol=1e-5)


def test_lp_pool_is_norm_and_l1_is_sum_of_abs():
    x = normal((2, 3, 6, 6))
    y2 = jc.lp_pool(x, 2, 2)
    np.testing.assert_allclose(y2, jnp.sqrt(ref.avg_pool(x * x, 2) * 4), rtol=1e-5)
    y1 = jc.lp_pool(x, 1, 3, stride=3)
    np.testing.assert_allclose(y1, ref.avg_pool(jnp.abs(x), 3) * 9, rtol=1e-5)


def test_lp_pool_zero_window_and_zero_entries_have_zero_gradient():
    x = normal((1, 1, 4, 4)).at[:, :, :2, :2].set(0.0).at[0, 0, 3, 3].set(0.0)
    for p in (0.5, 1.0, 2.0, 3.0):
        dx = jax.grad(lambda x: jnp.sum(jc.lp_pool(x, p, 2)))(x)
        assert np.isfinite(dx).all(), p
        np.testing.assert_array_equal(dx[0, 0, :2, :2], 0.0)
        assert dx[0, 0, 3, 3] == 0.0
        # second order stays finite too
        h = jax.grad(lambda x: jnp.sum(jax.grad(lambda x: jnp.sum(jc.lp_pool(x, p, 2) ** 2))(x)))(x)
        assert np.isfinite(h).all(), p


def test_weighted_pool_vs_reference_in_x_and_weights():
    x = normal((2, 3, 9, 8))
    w = jc.gaussian_window((3, 3), 1.0) * 3.0  # not normalised: the op normalises
    ct = normal((2, 3, 5, 4), 2)

    @jax.jit
    def run(x, w):
        f = lambda x, w: jnp.sum(jc.weighted_pool(x, w, stride=2, padding=1) * ct)
        fr = lambda x, w: jnp.sum(ref.weighted_pool(x, w, stride=2, padding=1) * ct)
        return (jc.weighted_pool(x, w, stride=2, padding=1),
                ref.weighted_pool(x, w, stride=2, padding=1),
                jax.grad(f, (0, 1))(x, w), jax.grad(fr, (0, 1))(x, w))

    y, yr, (dx, dw), (dxr, dwr) = run(x, w)
    np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, dxr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, dwr, rtol=1e-4, atol=1e-5)


def test_weighted_pool_with_ones_is_avg_pool_1d_3d():
    for shape, k in (((2, 2, 11), (3,)), ((1, 2, 5, 6, 4), (2, 2, 2))):
        x = normal(shape)
        np.testing.assert_allclose(
            jc.weighted_pool(x, jnp.ones(k), stride=1, padding=1),
            jc.avg_pool(x, k, stride=1, padding=1), rtol=1e-5, atol=1e-6)


def test_gaussian_window():
    w = jc.gaussian_window((5, 3), (1.0, 2.0))
    assert w.shape == (5, 3) and w.dtype == jnp.float32
    np.testing.assert_allclose(jnp.sum(w), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w, w[::-1, ::-1], rtol=1e-6)
    assert jnp.argmax(w) == 2 * 3 + 1  # the centre (2, 1)
    assert w[2, 0] < w[2, 1] and w[0, 1] < w[1, 1]
    w1 = jc.gaussian_window(4, 0.5)
    assert w1.shape == (4,) and w1[1] == w1[2] and w1[0] < w1[1]


def test_max_unpool_round_trip_and_grad_vs_reference():
    x = distinct((2, 3, 7, 9))
    y, idx = jc.max_pool(x, 2, return_indices=True)
    u = jc.max_unpool(y, idx, (7, 9))
    np.testing.assert_array_equal(u, ref.max_unpool(y, idx, (7, 9)))
    # the maxima are back in place, everything else is zero
    np.testing.assert_array_equal(jnp.where(u != 0, x, 0), u)
    assert jc.max_unpool(y, idx, x.shape).shape == x.shape  # full-shape output_size
    ct = normal(x.shape, 3)
    g = jax.grad(lambda y: jnp.sum(jc.max_unpool(y, idx, (7, 9)) * ct))(y)
    gr = jax.grad(lambda y: jnp.sum(ref.max_unpool(y, idx, (7, 9)) * ct))(y)
    np.testing.assert_array_equal(g, gr)


def test_max_unpool_output_size_range_is_torchs_rule():
    # PyTorch's _unpool_output_size: default - stride < size < default + stride,
    # default = (O - 1)*stride + window - 2*padding.
    x = distinct((1, 2, 11)).at[..., 10].set(-10.0)  # indices < 10: fit a size-10 output
    y, idx = jc.max_pool(x, 3, stride=2, padding=1, return_indices=True)  # O = 6, default 11
    kw = dict(window=3, stride=2, padding=1)
    np.testing.assert_array_equal(jc.max_unpool(y, idx, (11,), **kw), jc.max_unpool(y, idx, (11,)))
    assert jc.max_unpool(y, idx, **kw).shape == (1, 2, 11)  # the default size
    for size in (10, 12):
        assert jc.max_unpool(y, idx, (size,), **kw).shape == (1, 2, size)
    for size in (9, 13):
        with pytest.raises(ValueError, match=rf"max_unpool: output_size cannot be the input of a "
                           rf"max_pool .*expected 9 < output_size\[0\] < 13.*got output_size=\({size},\)"):
            jc.max_unpool(y, idx, (size,), **kw)
    # 2-D, stride defaults to the window; (N, C, *D) accepted as in torch
    y2, i2 = jc.max_pool(distinct((1, 2, 7, 9)), 2, return_indices=True)  # O = (3, 4)
    assert jc.max_unpool(y2, i2, (1, 2, 7, 9), window=2).shape == (1, 2, 7, 9)
    with pytest.raises(ValueError, match=r"expected 6 < output_size\[1\] < 10"):
        jc.max_unpool(y2, i2, (7, 10), window=2)


ADAPTIVE = [((2, 3, 10), 4), ((2, 2, 7, 9), (3, 4)), ((1, 2, 5, 3), (3, 7)),
            ((2, 2, 6, 6), (None, 4)), ((1, 2, 5, 7, 6), (2, 3, 4)), ((2, 3, 5, 6), 1)]


@pytest.mark.parametrize("cfg", ADAPTIVE, ids=[str(c[1]) for c in ADAPTIVE])
def test_adaptive_pools_vs_reference(cfg):
    shape, out = cfg
    x = distinct(shape)
    for ours, theirs in ((jc.adaptive_avg_pool, ref.adaptive_avg_pool),
                         (jc.adaptive_max_pool, ref.adaptive_max_pool)):
        y, yr, dx, dxr = _fwd_and_grads(lambda x: ours(x, out), lambda x: theirs(x, out), x)
        np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dx, dxr, rtol=1e-5, atol=1e-6)


def test_global_pooling_is_mean_and_max():
    x = normal((2, 3, 5, 6))
    np.testing.assert_allclose(jc.adaptive_avg_pool(x, 1)[..., 0, 0], x.mean((2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(jc.adaptive_max_pool(x, 1)[..., 0, 0], x.max((2, 3)))


def test_upsample_vs_reference_and_grad_is_block_sum():
    for shape, f in (((2, 2, 5), 3), ((2, 2, 3, 4), (2, 3)), ((1, 2, 2, 3, 2), (2, 1, 3))):
        x = normal(shape)
        np.testing.assert_array_equal(jc.upsample(x, f), ref.upsample(x, f))
        ct = normal(jc.upsample(x, f).shape, 1)
        g = jax.grad(lambda x: jnp.sum(jc.upsample(x, f) * ct))(x)
        gr = jax.grad(lambda x: jnp.sum(ref.upsample(x, f) * ct))(x)
        np.testing.assert_allclose(g, gr, rtol=1e-5, atol=1e-6)
    # upsample / prod(factor) is the gradient of mean pooling
    x = normal((2, 2, 6, 8))
    g = normal((2, 2, 3, 4), 5)
    _, vjp = jax.vjp(lambda x: jc.avg_pool(x, 2), x)
    np.testing.assert_allclose(vjp(g)[0], jc.upsample(g, 2) / 4, rtol=1e-6)


# --------------------------------------------------------------------------
# 3. Ties, NaN, second order, transformations, dtypes, errors
# --------------------------------------------------------------------------


def _scatter(shape, idx, v):
    """Numpy: add v at the flat plane indices idx (the documented gradient)."""
    out = np.zeros((shape[0] * shape[1], int(np.prod(shape[2:]))), np.float32)
    i2 = np.asarray(idx).reshape(out.shape[0], -1)
    v2 = np.asarray(v, np.float32).reshape(out.shape[0], -1)
    for r in range(out.shape[0]):
        np.add.at(out[r], i2[r], v2[r])
    return out.reshape(shape)


def test_max_pool_tie_rule_small():
    x = jnp.array([[[1.0, 3.0, 3.0, 0.0, 2.0, 2.0]]])
    _, i = jc.max_pool(x, 3, return_indices=True)
    np.testing.assert_array_equal(i, [[[1, 4]]])
    dx = jax.grad(lambda x: jnp.sum(jc.max_pool(x, 3)))(x)
    np.testing.assert_array_equal(dx, [[[0, 1, 0, 0, 1, 0]]])


def test_max_pool_nan_rule_small():
    nan = np.nan
    x = jnp.array([[[1.0, nan, 3.0, nan, 2.0, 5.0]]])
    y, i = jc.max_pool(x, 3, return_indices=True)
    assert np.isnan(y[0, 0, 0]) and np.isnan(y[0, 0, 1])  # NaN propagates
    np.testing.assert_array_equal(i, [[[1, 3]]])  # the last NaN, as torch's CPU kernel
    dx = jax.grad(lambda x: jnp.sum(jc.max_pool(x, 3) * jnp.array([2.0, 7.0])))(x)
    np.testing.assert_array_equal(dx, [[[0, 2, 0, 7, 0, 0]]])


@pytest.mark.parametrize("kw", [dict(window=2), dict(window=(3, 2)),
                                dict(window=3, stride=1, padding=1),
                                dict(window=3, stride=2, padding=1, ceil_mode=True)],
                         ids=["nonoverlap", "tiles_rect", "overlap", "ceil"])
def test_max_pool_gradient_goes_to_the_reported_argmax(kw):
    # ties and NaNs: the gradient is the cotangent scattered (added) at the indices;
    # windows that tile the input (stride = window) take window._scatter_tiles
    x = jnp.asarray(np.random.default_rng(0).integers(-2, 3, (2, 2, 7, 7)), jnp.float32)
    geom = _args.pool_geometry("max_pool", x.shape, kw["window"], stride=kw.get("stride"),
                               padding=kw.get("padding", 0), ceil_mode=kw.get("ceil_mode", False))
    assert window._tiles(geom) == (kw.get("stride") is None)
    x = x.at[0, 0, 1, 1].set(jnp.nan).at[1, 1, 4, 5].set(jnp.nan)
    y, idx = jc.max_pool(x, **kw, return_indices=True)
    ct = normal(y.shape, 1)
    dx = jax.jit(jax.grad(lambda x: jnp.sum(jc.max_pool(x, **kw, return_indices=True)[0] * ct)))(x)
    np.testing.assert_allclose(dx, _scatter(x.shape, idx, ct), rtol=1e-6, atol=1e-6)


def test_adaptive_max_gradient_goes_to_the_reported_argmax():
    x = jnp.asarray(np.random.default_rng(1).integers(-2, 3, (2, 2, 7, 9)), jnp.float32)
    x = x.at[0, 1, 3, 3].set(jnp.nan)
    y, idx = jc.adaptive_max_pool(x, (3, 4), return_indices=True)
    ct = normal(y.shape, 1)
    dx = jax.grad(lambda x: jnp.sum(jc.adaptive_max_pool(x, (3, 4)) * ct))(x)
    np.testing.assert_allclose(dx, _scatter(x.shape, idx, ct), rtol=1e-6, atol=1e-6)


def test_max_pool_all_neg_inf_window_reports_first_real_element():
    x = jnp.full((1, 1, 3, 3), -jnp.inf)
    y, i = jc.max_pool(x, 3, stride=2, padding=1, return_indices=True)
    assert (y == -jnp.inf).all()
    np.testing.assert_array_equal(i[0, 0], [[0, 1], [3, 4]])


SECOND_ORDER = {
    "max_nonoverlap": (lambda x: jc.max_pool(x, 2), (1, 2, 6, 6)),
    "max_overlap_ceil": (lambda x: jc.max_pool(x, 3, stride=2, padding=1, ceil_mode=True),
                         (1, 2, 6, 7)),
    "max_1d_dilated": (lambda x: jc.max_pool(x, 2, stride=1, dilation=2), (2, 2, 7)),
    "avg_ceil_nocip": (lambda x: jc.avg_pool(x, 3, stride=2, padding=1, ceil_mode=True,
                                             count_include_pad=False), (1, 2, 6, 7)),
    "lp_p3": (lambda x: jc.lp_pool(x, 3, 2, stride=1), (1, 2, 5, 5)),
    "lp_p2_3d": (lambda x: jc.lp_pool(x, 2, 2), (1, 1, 4, 4, 4)),
    "adaptive_avg": (lambda x: jc.adaptive_avg_pool(x, (3, 4)), (1, 2, 7, 9)),
    "adaptive_max": (lambda x: jc.adaptive_max_pool(x, (3, 4)), (1, 2, 7, 9)),
    "upsample": (lambda x: jc.upsample(x, (2, 3)), (1, 2, 3, 3)),
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_check_grads_order2(name):
    f, shape = SECOND_ORDER[name]
    with jax.enable_x64(True):
        check_grads(f, (distinct(shape, dtype=jnp.float64),), order=2, modes=["rev"])


def test_check_grads_order2_weighted_and_unpool():
    with jax.enable_x64(True):
        x = distinct((1, 2, 6, 6), dtype=jnp.float64)
        w = jnp.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.5]], jnp.float64)
        check_grads(lambda x, w: jc.weighted_pool(x, w, stride=2, padding=1), (x, w), order=2,
                    modes=["rev"])
        y, idx = jc.max_pool(x, 2, return_indices=True)
        check_grads(lambda y: jc.max_unpool(y, idx, (6, 6)), (y,), order=2, modes=["rev"])


def _pool_geom(shape, window, stride=None, padding=0, **kw):
    return _args.pool_geometry("t", shape, window, stride=stride, padding=padding, **kw)


# Every linear pair A / A^T of window.py and adaptive.py, as
# (A, A^T, static cfg, aux arrays, x shape, y shape): <A x, y> == <x, A^T y>.
def _pairs():
    rng = np.random.default_rng(7)
    out = []
    for shape, w, kw in [((2, 3, 9, 8), 3, dict(stride=2, padding=1, ceil_mode=True)),
                         ((1, 2, 10), 2, dict(stride=1, dilation=3, padding=1)),
                         ((1, 2, 5, 6, 5), (2, 3, 2), dict(stride=(1, 2, 2), padding=(1, 1, 0))),
                         ((2, 2, 7, 9), 2, {})]:
        g = _pool_geom(shape, w, **kw)
        y_shape = shape[:2] + g.out_spatial
        K = int(np.prod(g.window))
        scale = jnp.asarray(rng.uniform(0.5, 2.0, g.out_spatial))
        idx = jnp.asarray(rng.integers(0, K, y_shape), jnp.int8)
        name = _sweep_id((shape, w, kw))
        out.append((f"window-{name}", window.window_sum, window.window_spread, g, (scale,),
                    shape, y_shape))
        out.append((f"argmax-{name}", window.gather_argmax, window.scatter_argmax, g, (idx,),
                    shape, y_shape))
    flat = jnp.asarray(rng.integers(0, 20, (2, 3, 6)), jnp.int32)  # repeats: adds up
    out.append(("flat", window.gather_flat, window.scatter_add_flat, (4, 5), (flat,),
                (2, 3, 4, 5), (2, 3, 6)))
    out.append(("adaptive", adaptive.adaptive_avg, adaptive.adaptive_avg_t,
                ((7, 5), (3, 4)), (), (2, 2, 7, 5), (2, 2, 3, 4)))
    out.append(("upsample", adaptive.upsample_map, adaptive.block_sum, (2, 3), (),
                (1, 2, 3, 2), (1, 2, 6, 6)))
    return out


PAIRS = _pairs()


@pytest.mark.parametrize("i", range(len(PAIRS)), ids=[p[0] for p in PAIRS])
def test_linear_pair_is_adjoint(i):
    _, a, a_t, cfg, aux, x_shape, y_shape = PAIRS[i]
    with jax.enable_x64(True):
        x = normal(x_shape, 1, jnp.float64)
        y = normal(y_shape, 2, jnp.float64)
        ax = a(cfg, *aux, x)
        aty = a_t(cfg, *aux, y)
        assert ax.shape == y_shape and aty.shape == x_shape
        np.testing.assert_allclose(jnp.vdot(ax, y), jnp.vdot(x, aty), rtol=1e-12)
        # each map's VJP is the other
        np.testing.assert_allclose(jax.vjp(lambda x: a(cfg, *aux, x), x)[1](y)[0], aty,
                                   rtol=1e-12)
        np.testing.assert_allclose(jax.vjp(lambda y: a_t(cfg, *aux, y), y)[1](x)[0],
                                   a(cfg, *aux, x), rtol=1e-12)


def test_forward_mode_is_unavailable():
    x = normal((1, 1, 4, 4))
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda x: jc.max_pool(x, 2), (x,), (x,))


def test_vmap_matches_loop():
    xs = distinct((3, 2, 2, 6, 6))
    fns = {
        "max": lambda x: jc.max_pool(x, 3, stride=2, padding=1, return_indices=True),
        "avg": lambda x: jc.avg_pool(x, 3, stride=2, padding=1, count_include_pad=False),
        "lp": lambda x: jc.lp_pool(x, 2, 2),
        "amax": lambda x: jc.adaptive_max_pool(x, (4, 3), return_indices=True),
        "aavg": lambda x: jc.adaptive_avg_pool(x, (4, 3)),
        "up": lambda x: jc.upsample(x, 2),
        "unpool": lambda x: jc.max_unpool(*jc.max_pool(x, 2, return_indices=True), (6, 6)),
        "weighted": lambda x: jc.weighted_pool(x, jnp.ones((2, 2))),
    }
    for name, f in fns.items():
        batched = jax.jit(jax.vmap(f))(xs)
        looped = [f(xs[i]) for i in range(xs.shape[0])]
        for b, l in zip(jax.tree.leaves(batched), zip(*map(jax.tree.leaves, looped))):
            np.testing.assert_allclose(b, np.stack(l), rtol=1e-6, err_msg=name)
    # per-example gradients under vmap
    g = jax.vmap(jax.grad(lambda x: jnp.sum(jc.max_pool(x, 2) ** 2)))(xs)
    gl = np.stack([jax.grad(lambda x: jnp.sum(ref.max_pool(x, 2) ** 2))(x) for x in xs])
    np.testing.assert_allclose(g, gl, rtol=1e-6)


def test_bfloat16():
    # distinct multiples of 1/64 below 4 in magnitude: exact in bf16, so no ties for max
    x32 = jnp.asarray(np.random.default_rng(0).permutation(384).reshape(2, 3, 8, 8) - 192,
                      jnp.float32) / 64
    x = x32.astype(jnp.bfloat16)
    cases = {
        "max": lambda x: jc.max_pool(x, 3, stride=2, padding=1),
        "avg": lambda x: jc.avg_pool(x, 3, stride=1, padding=1),
        "lp": lambda x: jc.lp_pool(x, 2, 2),
        "weighted": lambda x: jc.weighted_pool(x, jnp.ones((3, 3), x.dtype), stride=2),
        "aavg": lambda x: jc.adaptive_avg_pool(x, 3),
        "amax": lambda x: jc.adaptive_max_pool(x, 3),
        "up": lambda x: jc.upsample(x, 2),
    }
    for name, f in cases.items():
        y, dx = jax.jit(lambda x: (f(x), jax.grad(lambda x: jnp.sum(f(x).astype(jnp.float32)))(x)))(x)
        # The f32 run on the bf16-rounded input: same argmaxes, same windows.
        xr = x.astype(jnp.float32)
        y32 = f(xr)
        dx32 = jax.grad(lambda x: jnp.sum(f(x)))(xr)
        assert y.dtype == jnp.bfloat16 and dx.dtype == jnp.bfloat16, name
        np.testing.assert_allclose(y.astype(jnp.float32), y32, rtol=2e-2, atol=2e-2, err_msg=name)
        np.testing.assert_allclose(dx.astype(jnp.float32), dx32, rtol=2e-2, atol=2e-2,
                                   err_msg=f"{name} dx")


def test_float64():
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 2, 7, 8)))
        assert x.dtype == jnp.float64
        kw = dict(stride=2, padding=1, ceil_mode=True)
        pairs = [
            (jc.max_pool(x, 3, **kw), ref.max_pool(x, 3, **kw)),
            (jc.avg_pool(x, 3, count_include_pad=False, **kw),
             ref.avg_pool(x, 3, count_include_pad=False, **kw)),
            (jc.lp_pool(x, 3, 3, **kw), ref.lp_pool(x, 3, 3, **kw)),
            (jc.adaptive_avg_pool(x, (3, 5)), ref.adaptive_avg_pool(x, (3, 5))),
        ]
        for y, yr in pairs:
            assert y.dtype == jnp.float64
            np.testing.assert_allclose(y, yr, rtol=1e-12, atol=1e-12)
        dx = jax.grad(lambda x: jnp.sum(jc.avg_pool(x, 3, **kw) ** 2))(x)
        dxr = jax.grad(lambda x: jnp.sum(ref.avg_pool(x, 3, **kw) ** 2))(x)
        assert dx.dtype == jnp.float64
        np.testing.assert_allclose(dx, dxr, rtol=1e-12)


def test_pool_geometry_output_sizes():
    # PyTorch's rule, including the ceil_mode window that would start in the padding
    g = _args.pool_geometry("t", (1, 1, 5, 5), 2, stride=2, padding=1, ceil_mode=True)
    assert g.out_spatial == (3, 3) and g.extra_hi == (0, 0)
    g = _args.pool_geometry("t", (1, 1, 6, 7), 3, stride=2, padding=0, ceil_mode=True)
    assert g.out_spatial == (3, 3) and g.extra_hi == (1, 0)
    g = _args.pool_geometry("t", (1, 1, 7), 2, stride=None, padding=0)
    assert g.out_spatial == (3,) and g.stride == (2,)


X4 = np.zeros((1, 2, 6, 6), np.float32)
ERRORS = [
    (lambda: jc.max_pool(X4, 7), ValueError, r"jaxconv\.max_pool: the \(dilated\) window is larger than the padded input"),
    (lambda: jc.max_pool(X4, 4, dilation=3), ValueError, r"max_pool: the \(dilated\) window is larger"),
    (lambda: jc.max_pool(X4, 0), ValueError, r"max_pool: window must be >= 1"),
    (lambda: jc.max_pool(X4, 3, padding=2), ValueError, r"max_pool: padding must be at most half the window"),
    (lambda: jc.avg_pool(X4, 2, padding=((0, 0), (0, 2))), ValueError, r"avg_pool: padding must be at most half"),
    (lambda: jc.avg_pool(X4, 2, stride=0), ValueError, r"avg_pool: stride must be >= 1"),
    (lambda: jc.max_pool(X4, 2, stride=(1, 1, 1)), ValueError, r"max_pool: stride must be an int or a sequence of 2"),
    (lambda: jc.max_pool(X4, 2.5), TypeError, r"max_pool: window must be an int"),
    (lambda: jc.max_pool(X4, 2, padding="full"), ValueError, r"max_pool: padding must be .*'valid', 'same'"),
    (lambda: jc.max_pool(X4, 2, ceil_mode=1), TypeError, r"max_pool: ceil_mode must be a bool"),
    (lambda: jc.max_pool(X4, 2, return_indices="yes"), TypeError, r"max_pool: return_indices must be a bool"),
    (lambda: jc.max_pool(X4[0, 0], 2), ValueError, r"max_pool: x must be \(N, C, \*spatial\) with 1, 2 or 3 spatial dims"),
    (lambda: jc.max_pool(X4.astype(np.int32), 2), TypeError, r"max_pool: x must have a floating-point dtype"),
    (lambda: jc.avg_pool(X4, 2, divisor=0), ValueError, r"avg_pool: divisor must be >= 1"),
    (lambda: jc.avg_pool(X4, 2, count_include_pad=None), TypeError, r"avg_pool: count_include_pad must be a bool"),
    (lambda: jc.lp_pool(X4, 0, 2), ValueError, r"lp_pool: p must be a finite number > 0; got p=0"),
    (lambda: jc.lp_pool(X4, -1.5, 2), ValueError, r"lp_pool: p must be a finite number > 0"),
    (lambda: jc.lp_pool(X4, float("inf"), 2), ValueError, r"lp_pool: p must be a finite number > 0"),
    (lambda: jc.lp_pool(X4, "2", 2), TypeError, r"lp_pool: p must be a real number"),
    (lambda: jc.weighted_pool(X4, np.ones((3,), np.float32)), ValueError, r"weighted_pool: weights must have the window's shape"),
    (lambda: jc.weighted_pool(X4, np.ones((7, 7), np.float32)), ValueError, r"weighted_pool: the \(dilated\) window is larger"),
    (lambda: jc.weighted_pool(X4, np.array([[1, -1], [0, 0]], np.float32)), ValueError, r"weighted_pool: weights must have a finite, nonzero sum .*got sum\(weights\)=0"),
    (lambda: jc.weighted_pool(X4, np.array([[1, np.inf], [0, 0]], np.float32)), ValueError, r"weighted_pool: weights must have a finite, nonzero sum .*got sum\(weights\)=inf"),
    (lambda: jc.weighted_pool(X4, jnp.ones((3, 3), jnp.bfloat16)), TypeError, r"weighted_pool: x, weights must share one dtype"),
    (lambda: jc.gaussian_window((3, 3), 0.0), ValueError, r"gaussian_window: sigma must be a positive number"),
    (lambda: jc.gaussian_window((3, 0), 1.0), ValueError, r"gaussian_window: window must be >= 1"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 2), np.int32), (6, 6)), ValueError, r"max_unpool: indices must have the shape of x"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 3), np.float32), (6, 6)), TypeError, r"max_unpool: indices must have an integer dtype"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.full((1, 2, 3, 3), 36, np.int32), (6, 6)), ValueError, r"max_unpool: indices must lie in \[0, 36\)"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 3), np.int32), (6,)), TypeError, r"max_unpool: output_size must be a sequence of 2"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 3), np.int32), (0, 6)), ValueError, r"max_unpool: output_size cannot be produced"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 3), np.int32), (2, 3, 6, 6)), ValueError, r"max_unpool: output_size \(N, C\) must match"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 3), np.int32), (4, 6), window=2), ValueError, r"max_unpool: output_size cannot be the input of a max_pool with window=\(2, 2\), stride=\(2, 2\).*expected 4 < output_size\[0\] < 8"),
    (lambda: jc.max_unpool(X4[:, :, :3, :3], np.zeros((1, 2, 3, 3), np.int32)), TypeError, r"max_unpool: output_size must be given when window is not"),
    (lambda: jc.adaptive_avg_pool(X4, 0), ValueError, r"adaptive_avg_pool: output_size cannot be produced"),
    (lambda: jc.adaptive_max_pool(X4, (3, -1)), ValueError, r"adaptive_max_pool: output_size cannot be produced"),
    (lambda: jc.adaptive_max_pool(X4, (3, 3, 3)), ValueError, r"adaptive_max_pool: output_size must be an int or a sequence of 2"),
    (lambda: jc.adaptive_avg_pool(X4, 2.0), TypeError, r"adaptive_avg_pool: output_size must be an int"),
    (lambda: jc.upsample(X4, 0), ValueError, r"upsample: factor must be >= 1"),
    (lambda: jc.upsample(None, 2), TypeError, r"upsample: x must be an array; got None"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)), ids=[e[2][:40] for e in ERRORS])
def test_errors(i):
    fn, exc, match = ERRORS[i]
    with pytest.raises(exc, match=match):
        fn()
