"""Every algorithm, every map, against the lax reference (float64).

Each geometry is checked in ONE jitted function that runs the three maps of
every algorithm and the reference's forward and VJP, so a geometry costs one
compile. Geometries: the conv sweep of test_conv.py, its conv_transpose twins
(output_padding), and a small hypothesis-generated space.
"""

import math
import os
import subprocess
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads
from test_conv import SWEEP, _transpose_case

import jaxconv
from jaxconv._src import _args
from jaxconv._src import reference as ref
from jaxconv._src.algorithms import pads
from jaxconv._src.plan import ALGORITHMS, algorithm

NAMES = sorted(ALGORITHMS)


@partial(jax.jit, static_argnums=(0,))
def _all_maps(geom, x, w, g):
    """(reference, {name: (forward, input_grad, weight_grad)})."""
    y, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
    dx, dw = vjp(g)
    got = {}
    for name in NAMES:
        mod = algorithm(name)
        if mod.supports(geom, x.dtype) is not None:
            continue
        got[name] = (mod.forward(geom, x, w), mod.input_grad(geom, g, w),
                     mod.weight_grad(geom, x, g))
    return (y, dx, dw), got


def _arrays64(geom, n, c_in, c_out, seed):
    """x, w and a cotangent g for the geometry, float64 (call under enable_x64)."""
    kx, kw, kg = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(kx, (n, c_in, *geom.in_spatial), jnp.float64)
    w = jax.random.normal(kw, (c_out, c_in // geom.groups, *geom.kernel), jnp.float64)
    g = jax.random.normal(kg, (n, c_out, *geom.out_spatial), jnp.float64)
    return x, w, g


def _check_geometry(geom, n, c_in, c_out, seed=0):
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, n, c_in, c_out, seed)
        want, got = _all_maps(geom, x, w, g)
        assert set(got) == set(NAMES)
        for name, maps in got.items():
            for which, a, b in zip(("forward", "input_grad", "weight_grad"), maps, want):
                assert a.shape == b.shape and a.dtype == jnp.float64, (name, which)
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10,
                                           err_msg=f"{name} {which}")


def _conv_geom(case):
    x_shape = (case["n"], case["cin"], *case["D"])
    w_shape = (case["cout"], case["cin"] // case["kw"]["groups"], *case["k"])
    return _args.conv_geometry("conv", x_shape, w_shape, None, **case["kw"])


@pytest.mark.parametrize("name", list(SWEEP))
def test_every_algorithm_matches_reference_on_sweep(name):
    case = SWEEP[name]
    _check_geometry(_conv_geom(case), case["n"], case["cin"], case["cout"])


@pytest.mark.parametrize("name", ["1d_even_stride2_asym", "1d_same_stride3_dil2", "2d_perdim",
                                  "2d_groups2_s3", "3d_mixed"])
def test_every_algorithm_on_conv_transpose_geometries(name):
    """The geometry conv_transpose builds (output_padding: the conv never reads the end)."""
    case = SWEEP[name]
    kw = {"output_padding": 0, **_transpose_case(case)}
    c_out = case["cout"]
    y_shape = jax.eval_shape(partial(jaxconv.conv, **case["kw"]),
                             jnp.zeros((case["n"], case["cin"], *case["D"])),
                             jnp.zeros((c_out, case["cin"] // case["kw"]["groups"], *case["k"])))
    geom = _args.conv_transpose_geometry(
        "conv_transpose", y_shape.shape, (c_out, case["cin"] // case["kw"]["groups"], *case["k"]),
        None, **kw)
    _check_geometry(geom, case["n"], case["cin"], c_out)


@st.composite
def _geometries(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
    size = 5 if nd < 3 else 4
    D = tuple(draw(st.integers(max(1, d * (kk - 1) + 1 - lo - hi), size + 1))
              for d, kk, (lo, hi) in zip(dilation, k, padding))
    transpose = draw(st.booleans())
    if transpose:
        # conv_transpose of a y of size D: output_padding < max(stride, dilation)
        op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        try:
            geom = _args.conv_transpose_geometry(
                "conv_transpose", (1, cout, *D), (cout, cin // groups, *k), None, stride=stride,
                padding=padding, output_padding=op, dilation=dilation, groups=groups)
        except ValueError:
            geom = None
    else:
        geom = _args.conv_geometry("conv", (1, cin, *D), (cout, cin // groups, *k), None,
                                   stride=stride, padding=padding, dilation=dilation,
                                   groups=groups)
    return geom, cin, cout


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_geometries())
def test_every_algorithm_on_random_geometries(drawn):
    geom, cin, cout = drawn
    if geom is None:  # conv_transpose rejected the padding (it removes the whole output)
        return
    _check_geometry(geom, 2, cin, cout, seed=1)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_geometries())
def test_im2col_width_patches_on_random_geometries(drawn):
    """im2col's width-patch forward (forced on: the suite's few channels are below
    ROWS_MIN_K) on random geometries, conv_transpose's included, against the reference;
    so is the input gradient, which at stride 1 is then the transposed geometry's."""
    from jaxconv._src.algorithms import im2col

    geom, cin, cout = drawn
    if geom is None:
        return
    with pytest.MonkeyPatch.context() as mp, jax.enable_x64(True):
        mp.setattr(im2col, "ROWS_MIN_K", 0)
        mp.setattr(im2col, "ROWS_MAX_EXTENT", float("inf"))
        assert im2col.rows_forward(geom, cin // geom.groups)
        mp.setattr(im2col, "TRANSPOSED_MAX_ZEROS", 1.0)
        x, w, g = _arrays64(geom, 2, cin, cout, seed=4)
        y, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        got = jax.jit(lambda x, w, g: (im2col.forward(geom, x, w),
                                       im2col.input_grad(geom, g, w)))(x, w, g)
        for a, b in zip(got, (y, vjp(g)[0])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", NAMES)
def test_check_grads_order2_per_method(method):
    """Second-order finite differences through the custom_vjp maps, one method for all."""
    case = SWEEP["2d_groups2_s3"]
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (1, case["cin"], *case["D"]), jnp.float64)
        w = jax.random.normal(jax.random.PRNGKey(1), (case["cout"], 2, *case["k"]), jnp.float64)
        f = jax.jit(partial(jaxconv.conv, method=method, **case["kw"]))
        check_grads(f, (x, w), order=2, modes=["rev"])
        y = f(x, w)
        ft = jax.jit(partial(jaxconv.conv_transpose, method=method, stride=3, padding=(1, 2),
                             groups=2, output_padding=(1, 2)))
        check_grads(ft, (y, w), order=2, modes=["rev"])


@pytest.mark.parametrize("samples", [1, 2, 3])
def test_maps_in_batch_chunks(monkeypatch, samples):
    """Over budget, im2col's patch products and direct's weight gradient run over chunks
    of samples: the same values. 6 samples: 6 chunks in a loop, 3 iterations of 2; 3
    or 2 chunks each a computation of its own (FENCED_CHUNKS), no loop."""
    from jaxconv._src.algorithms import _loop_shape, chunk_size, direct, im2col

    case = SWEEP["2d_groups2_s3"]
    geom = _conv_geom({**case, "n": 6})
    monkeypatch.setattr(im2col, "CHUNK_ELEMENTS",
                        im2col._patch_elements(geom, samples, case["cin"]))
    monkeypatch.setattr(im2col, "INPUT_FACTOR", 0.0)  # the budget is CHUNK_ELEMENTS
    assert im2col._budget(geom, 6, case["cin"]) == im2col.CHUNK_ELEMENTS
    per = direct._per_sample(geom, case["cin"], case["cout"])
    monkeypatch.setattr(direct, "WEIGHT_GRAD_CHUNK_ELEMENTS", samples * per)
    assert chunk_size(6, im2col._patch_elements(geom, 1, case["cin"]),
                      im2col.CHUNK_ELEMENTS) == samples
    assert chunk_size(6, per, direct.WEIGHT_GRAD_CHUNK_ELEMENTS) == samples
    loop = {1: (3, 2), 2: (3, 1), 3: (1, 2)}[samples]
    assert _loop_shape(6, samples, per, direct.WEIGHT_GRAD_CHUNK_ELEMENTS) == loop
    _all_maps.clear_cache()  # the same geometry and shapes: recompile with this budget
    _check_geometry(geom, 6, case["cin"], case["cout"], seed=2)
    # direct's weight and bias gradients together (a tuple summed over the chunks)
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, 6, case["cin"], case["cout"], seed=5)
        dw, db = jax.jit(lambda x, g: direct.weight_and_bias_grad(geom, x, g))(x, g)
        _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        np.testing.assert_allclose(np.asarray(dw), np.asarray(vjp(g)[1]), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(np.asarray(db), np.asarray(g.sum(axis=(0, 2, 3))), rtol=1e-10)


@pytest.mark.parametrize("terms", [0, 1 << 30])
def test_direct_weight_grad_one_pass_and_per_tap(monkeypatch, terms):
    """direct's weight gradient sums every tap's products in one variadic reduction up to
    VARIADIC_TERMS, one reduction per tap beyond: both forms agree with the reference
    (grouped, strided, padded 2-D; and a 3-D geometry)."""
    from jaxconv._src.algorithms import direct

    monkeypatch.setattr(direct, "VARIADIC_TERMS", terms)
    for name in ("2d_groups2_s3", "3d_mixed"):
        case = SWEEP[name]
        geom = _conv_geom(case)
        with jax.enable_x64(True):
            x, w, g = _arrays64(geom, case["n"], case["cin"], case["cout"], seed=4)
            _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
            # traced here, after the monkeypatch (no cached compile of another test)
            got = jax.jit(lambda x, g, geom=geom: direct.weight_grad(geom, x, g))(x, g)
            np.testing.assert_allclose(np.asarray(got), np.asarray(vjp(g)[1]), rtol=1e-10,
                                       atol=1e-10)


@pytest.mark.parametrize("stride", [1, 2])
def test_direct_ungrouped_weight_grad_is_a_product_per_tap(monkeypatch, stride):
    """Ungrouped at stride 1, direct's weight gradient is one matrix product a tap of
    channel-major operands (dot_generals, no variadic reduction); strided it stays the
    one-pass variadic reduction. Both, whole and in chunks of samples, with the bias
    gradient from the same pass, against the reference in float64. The channel-major
    operands are transposed once, before the chunks are taken: no transposition in the
    chunks' functions (inside the loop it copied every chunk), two transpositions in all."""
    from jaxconv._src.algorithms import direct

    geom = _args.conv_geometry("conv", (6, 3, 7, 6), (4, 3, 3, 2), None, stride=stride,
                               padding=1, dilation=(1, 2), groups=1)
    assert direct._taps_form(geom) == (stride == 1)
    per = direct._per_sample(geom, 3, 4)
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, 6, 3, 4, seed=7)
        _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        want = np.asarray(vjp(g)[1])
        for samples in (6, 3, 1):  # whole; two chunks, fenced; six chunks (a loop)
            monkeypatch.setattr(direct, "TAPS_CHUNK_ELEMENTS", samples * per)
            monkeypatch.setattr(direct, "WEIGHT_GRAD_CHUNK_ELEMENTS", samples * per)
            lowered = jax.jit(lambda x, g: direct.weight_and_bias_grad(geom, x, g)).lower(x, g)
            text = lowered.as_text()
            dots = text.count("stablehlo.dot_general")
            if stride == 1:
                assert dots and dots % 6 == 0, dots  # 6 taps a chunk
                chunk_fns = text.split("func.func private")[1:]
                assert (" stablehlo.while" in text) == (samples == 1), samples
                assert ("stablehlo.case" in text) == (samples == 3), samples
                assert not any("stablehlo.transpose" in f for f in chunk_fns), samples
                assert text.count("stablehlo.transpose") == 2, samples
            else:
                assert dots == 0 and "stablehlo.reduce" in text
            dw, db = lowered.compile()(x, g)
            np.testing.assert_allclose(np.asarray(dw), want, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(np.asarray(db), np.asarray(g.sum(axis=(0, 2, 3))),
                                       rtol=1e-10)


@pytest.mark.parametrize("kw,x_shape,w_shape", [
    ({"stride": 1, "padding": 0, "dilation": 1}, (6, 1, 10, 9), (20, 1, 5, 5)),
    ({"stride": 2, "padding": 1, "dilation": (1, 2)}, (6, 3, 9, 11), (24, 3, 3, 3)),
    ({"stride": 1, "padding": 1, "dilation": 1}, (6, 2, 7), (20, 2, 3)),  # 1-D
], ids=str)
def test_im2col_weight_grad_per_sample_products(monkeypatch, kw, x_shape, w_shape):
    """Few patch rows onto many output channels: im2col's weight gradient sums one
    product per sample (a batched dot_general, no transposition of x or g), whole, in
    two chunks (fenced) and in six (one per loop iteration), against the reference in
    float64."""
    from jaxconv._src.algorithms import im2col

    geom = _args.conv_geometry("conv", x_shape, w_shape, None, groups=1, **kw)
    c_in, c_out = x_shape[1], w_shape[0]
    assert im2col.sample_products(geom, c_in, c_out)
    assert not im2col.sample_products(geom, c_in, im2col.SAMPLE_MIN_OUT - 1)
    per = (c_in * math.prod(geom.kernel) + c_out) * math.prod(geom.out_spatial)
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, x_shape[0], c_in, c_out, seed=26)
        _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        want = np.asarray(vjp(g)[1])
        for samples in (6, 3, 1):  # whole; two chunks, fenced; six chunks in a loop
            monkeypatch.setattr(im2col, "SAMPLE_CHUNK_ELEMENTS", samples * per)
            lowered = jax.jit(partial(im2col.weight_grad, geom)).lower(x, g)
            text = lowered.as_text()
            assert "stablehlo.transpose" not in text
            assert ("stablehlo.while" in text) == (samples == 1)
            assert ("stablehlo.case" in text) == (samples == 3)
            assert "batching_dims = [0] x [0]" in text
            np.testing.assert_allclose(np.asarray(lowered.compile()(x, g)), want, rtol=1e-10,
                                       atol=1e-10)


@pytest.mark.parametrize("kw", [
    {"stride": 1, "padding": 1, "dilation": 1},
    {"stride": 1, "padding": ((2, 0), (0, 3)), "dilation": (2, 1)},
    {"stride": 1, "padding": 0, "dilation": 1},
    {"stride": 2, "padding": 1, "dilation": 1},
], ids=str)
def test_tap_values_are_the_padded_inputs_slices(kw):
    """tap_values (each tap read from the unpadded input, shifted in with zeros) is
    tap_slice of the padded input, exactly; and depthwise input gradients, which read
    the cotangent so, match the reference in float64."""
    from jaxconv._src.algorithms import direct, pad_spatial, tap_slice, tap_values, taps

    geom = _args.conv_geometry("conv", (2, 4, 7, 6), (4, 1, 3, 3), None, groups=4, **kw)
    x = jnp.asarray(np.random.default_rng(27).standard_normal((2, 4, 7, 6)), jnp.float32)
    xp = pad_spatial(x, pads(geom), 2)
    for j in taps(geom):
        np.testing.assert_array_equal(np.asarray(tap_values(x, geom, j, 2)),
                                      np.asarray(tap_slice(xp, geom, j, 2)))
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, 2, 4, 4, seed=27)
        _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        np.testing.assert_allclose(np.asarray(jax.jit(partial(direct.input_grad, geom))(g, w)),
                                   np.asarray(vjp(g)[0]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 3, 15), (4, 3, 4), {"stride": 2, "padding": 1, "dilation": 1}),
    ((2, 3, 13, 11), (4, 3, 5, 3), {"stride": (2, 3), "padding": ((2, 1), (0, 2)),
                                     "dilation": (1, 2)}),
    ((1, 2, 6, 7, 5), (3, 2, 3, 2, 3), {"stride": (1, 2, 1), "padding": 1, "dilation": 1}),
], ids=["1d", "2d", "3d"])
def test_im2col_stacks_taps_dim_by_dim(x_shape, w_shape, kw):
    """The patch rows of every tap, of one row of taps, and of taps that are no product
    of per-dim indices are the taps' slices stacked one by one, exactly."""
    from jaxconv._src.algorithms import im2col, tap_slice, taps

    geom = _args.conv_geometry("conv", x_shape, w_shape, None, groups=1, **kw)
    x = jnp.asarray(np.random.default_rng(28).standard_normal(x_shape), jnp.float32)
    xp = im2col._padded(geom, x)
    every = list(taps(geom))
    k_last = geom.kernel[-1]
    for tap_list in (every, every[-k_last:], every[1:], every[::-1]):
        want = jnp.stack([tap_slice(xp, geom, j, 2) for j in tap_list])
        np.testing.assert_array_equal(np.asarray(im2col._stacked_taps(geom, xp, tap_list)),
                                      np.asarray(want))
        xs = jnp.swapaxes(xp, 0, 1)  # samples first, the taps stacked after the channels
        want = jnp.stack([tap_slice(xs, geom, j, 2) for j in tap_list], axis=2)
        np.testing.assert_array_equal(
            np.asarray(im2col._stacked_taps(geom, xs, tap_list, axis=2)), np.asarray(want))


@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 3, 17, 16), (4, 3, 7, 7), {"stride": 2, "padding": 3}),  # 16/12/12/9 taps a phase
    ((2, 2, 11, 10), (3, 2, 3, 2), {"stride": (3, 1), "padding": ((1, 0), (0, 1))}),
    ((2, 2, 9, 9), (3, 2, 1, 3), {"stride": 2, "padding": 0}),  # a phase without taps
    ((2, 2, 8, 8), (3, 2, 2, 2), {"stride": 2, "padding": 0}),  # one tap a phase
    ((1, 2, 7, 6, 9), (2, 2, 3, 2, 4), {"stride": (2, 2, 3), "padding": 1}),
], ids=["7x7s2", "s3x1", "empty-phase", "k=s", "3d"])
def test_im2col_strided_fold_by_phases(x_shape, w_shape, kw):
    """im2col's strided input gradient (its fold one stride-1 phase at a time, or the
    taps placed where each phase has one) against the reference in float64."""
    from jaxconv._src.algorithms import im2col

    geom = _args.conv_geometry("conv", x_shape, w_shape, None, groups=1, dilation=1, **kw)
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, x_shape[0], x_shape[1], w_shape[0], seed=29)
        _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        np.testing.assert_allclose(np.asarray(jax.jit(partial(im2col.input_grad, geom))(g, w)),
                                   np.asarray(vjp(g)[0]), rtol=1e-10, atol=1e-10)


def test_fenced_is_fn_in_a_conditional_xla_keeps(monkeypatch):
    """``fenced(fn, *args)`` is ``fn(*args)``; on CPU its compiled form keeps a
    conditional (the predicate behind an optimization barrier is not folded), also under
    ``vmap`` (the predicate is not batched: no select of both branches) and ``grad``;
    elsewhere it is ``fn`` itself."""
    from jaxconv._src.algorithms import fenced

    def fn(a, b):
        return jnp.tanh(a) * b, jnp.sum(a)

    a, b = jnp.linspace(-2.0, 2.0, 12).reshape(3, 4), jnp.float32(3)
    want = fn(a, b)
    got = jax.jit(lambda a, b: fenced(fn, a, b))(a, b)
    for u, v in zip(got, want):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6)
    batched = jax.vmap(lambda r: fenced(fn, r, b))
    jaxpr = str(jax.make_jaxpr(batched)(a))
    assert "cond[" in jaxpr and "select_n" not in jaxpr
    np.testing.assert_allclose(np.asarray(batched(a)[0]), np.asarray(want[0]), rtol=1e-6)
    text = jax.jit(batched).lower(a).compile().as_text()
    assert ("conditional(" in text) == (jax.default_backend() == "cpu")
    da = jax.grad(lambda a: fenced(fn, a, b)[1] + jnp.sum(fenced(fn, a, b)[0]))(a)
    np.testing.assert_allclose(np.asarray(da), np.asarray(1 + 3 / jnp.cosh(a) ** 2), rtol=1e-5)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert "cond[" not in str(jax.make_jaxpr(lambda a: fenced(fn, a, b))(a))


@pytest.mark.parametrize("groups", [1, 4])
def test_direct_and_xla_run_fenced(groups):
    """direct's forward and input gradient, and the transposition of the cotangent
    before xla's weight-gradient convolution, are conditionals of their own on CPU
    (``fenced``), not loops: XLA fused them with their producers and consumers, where
    they ran unvectorised, and ran a loop body's fusions on one thread. Values: the
    sweep above."""
    from jaxconv._src.algorithms import direct, xla

    geom = _conv_geom(dict(n=4, cin=8, cout=8, D=(6, 6), k=(3, 3),
                           kw=dict(stride=1, padding=1, dilation=1, groups=groups)))
    x, w = jnp.ones((4, 8, 6, 6)), jnp.ones((8, 8 // groups, 3, 3))
    cpu = jax.default_backend() == "cpu"
    for fn, a, b in ((direct.forward, x, w), (direct.input_grad, x, w), (xla.weight_grad, x, x)):
        text = jax.jit(lambda a, b, fn=fn: jnp.tanh(fn(geom, 2 * a, b))).lower(a, b)
        text = text.compile().as_text()
        assert ("conditional(" in text) == cpu and " while(" not in text, fn


@pytest.mark.parametrize("limit", [1, 128])
def test_xla_weight_grad_whole_and_per_group(monkeypatch, limit):
    """xla's grouped weight gradient: one batch-grouped correlation (limit 1: the form
    GPU and TPU run) or, on CPU, one correlation per group; both agree with the
    reference (1-D, 2-D strided, 3-D dilated; a channel multiplier)."""
    from jaxconv._src.algorithms import xla

    monkeypatch.setattr(xla, "SPLIT_WEIGHT_GROUPS", limit)
    for name in ("1d_groups2_same_even", "1d_depthwise_x2", "2d_groups2_s3", "3d_mixed"):
        case = SWEEP[name]
        geom = _conv_geom(case)
        split = xla.split_weight_grad(geom.groups, case["cin"], case["cout"])
        assert split == (limit > 1 and jax.default_backend() == "cpu"), name
        with jax.enable_x64(True):
            x, w, g = _arrays64(geom, case["n"], case["cin"], case["cout"], seed=5)
            _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
            # traced here, after the monkeypatch (no cached compile of another test)
            hlo = jax.jit(lambda x, g, geom=geom: xla.weight_grad(geom, x, g)).lower(x, g)
            n_conv = hlo.as_text().count("convolution")
            assert n_conv == (geom.groups if split else 1), (name, n_conv)
            got = hlo.compile()(x, g)
            np.testing.assert_allclose(np.asarray(got), np.asarray(vjp(g)[1]), rtol=1e-10,
                                       atol=1e-10)


def test_xla_split_weight_grad_conditions():
    from jaxconv._src.algorithms import xla

    assert xla.split_weight_grad(32, 256, 256, backend="cpu")
    assert xla.split_weight_grad(2, 4, 8, backend="cpu")
    assert xla.split_weight_grad(3, 3, 6, backend="cpu")  # channel multiplier 2
    assert not xla.split_weight_grad(1, 64, 64, backend="cpu")  # ungrouped
    assert not xla.split_weight_grad(8, 8, 8, backend="cpu")  # depthwise
    assert not xla.split_weight_grad(256, 512, 512, backend="cpu")  # too many programs
    assert not xla.split_weight_grad(32, 256, 256, backend="gpu")
    assert not xla.split_weight_grad(32, 256, 256, backend="tpu")


def test_xla_widened_conditions():
    from jaxconv._src.algorithms import xla

    def wide(x, w, stride=(1, 1), pad=((1, 1), (1, 1)), dil=(1, 1), ldil=(1, 1), groups=1,
             dtype=jnp.float32, backend="cpu"):
        return xla.widened(x, w, stride, pad, dil, ldil, groups, dtype, backend)

    assert wide((8, 64, 56, 56), (64, 64, 3, 3)) == (0, 1)  # 'same': one more output row
    assert wide((8, 64, 40, 56), (64, 64, 3, 3)) == (1, 1)  # the longer dim costs less
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), pad=((0, 0), (0, 0))) == (0, 3)  # 'valid'
    assert wide((2, 20, 12, 12), (50, 20, 5, 5), pad=((0, 0), (0, 0))) == (0, 5)  # 63% more
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), stride=(2, 1)) == (1, 1)  # the stride-1 dim
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), stride=(2, 2)) is None  # strided: 2x work
    assert wide((2, 64, 12, 12), (64, 64, 9, 9), pad=((0, 0), (0, 0))) is None  # 2.25x work
    assert wide((8, 16, 56, 56), (16, 16, 3, 3)) is None  # XLA's own convolution already
    assert wide((8, 16, 56, 56), (32, 16, 3, 3)) == (0, 1)  # 32 output channels
    assert wide((8, 3, 56, 56), (64, 3, 3, 3)) is None  # 3 input channels: YNNPACK's faster
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), pad=((2, 2), (1, 1))) is None  # 58 > 56
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), ldil=(2, 2)) is None  # an input gradient
    assert wide((8, 64, 56, 56), (64, 1, 3, 3), groups=64) is None  # depthwise
    assert wide((8, 64, 56, 56), (64, 8, 3, 3), groups=8) == (0, 1)
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), dtype=jnp.bfloat16) is None
    assert wide((8, 64, 56, 56), (64, 64, 3, 3), backend="gpu") is None
    assert wide((8, 64, 56), (64, 64, 3), pad=((1, 1),)) is None  # 1-D


@pytest.mark.parametrize("kw", [
    {"padding": 1}, {"padding": 0}, {"padding": 2, "dilation": 2}, {"stride": (2, 1)},
    {"padding": 1, "groups": 2, "cin": 48, "cout": 48}, {"padding": 1, "stride": (1, 2), "cin": 16},
], ids=str)
def test_xla_widened_convolution_matches_reference(kw):
    """The widened forward and input gradient (more than 16 channels, 2-D) against the
    reference, float64, with the convolution XLA compiles having the widened shape; in
    float32 it is XLA's own convolution, not YNNPACK's, where the probe says so (on
    CPU; elsewhere nothing is widened and the probe is False)."""
    from jaxconv._src.algorithms import xla

    kw = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **kw}
    c_in, c_out = kw.pop("cin", 24), kw.pop("cout", 24)
    x_shape, w_shape = (2, c_in, 7, 9), (c_out, c_in // kw["groups"], 3, 3)
    geom = _args.conv_geometry("conv", x_shape, w_shape, None, **kw)
    probe = xla.ynn_takes_convolutions()
    G = geom.groups  # two groups: one convolution each (xla.SPLIT_GROUPS)
    wide = xla.widened((2, c_in // G, 7, 9), (c_out // G, *w_shape[1:]), geom.stride,
                       pads(geom), geom.dilation, (1, 1), 1, jnp.float64, backend="cpu")
    assert wide is not None
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, 2, c_in, c_out, seed=7)
        y, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        dx, dw = vjp(g)
        fwd = jax.jit(partial(xla.forward, geom)).lower(x, w)
        out = [2, c_out // G, *y.shape[2:]]
        out[2 + wide[0]] += wide[1]
        widened_type = "tensor<" + "x".join(map(str, out)) + "xf64>"
        assert (widened_type in fwd.as_text()) == probe, widened_type
        np.testing.assert_allclose(np.asarray(fwd.compile()(x, w)), np.asarray(y), rtol=1e-10,
                                   atol=1e-10)
        got = (xla.input_grad(geom, g, w), xla.weight_grad(geom, x, g))
        for a, b in zip(got, (dx, dw)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)
    if probe:
        f32 = [jnp.asarray(a, jnp.float32) for a in (x, w)]
        hlo = jax.jit(partial(xla.forward, geom)).lower(*f32).compile().as_text()
        assert "__ynn_fusion" not in hlo and "convolution(" in hlo


def test_xla_dilated_weight_grad_conditions():
    from jaxconv._src.algorithms import xla

    assert xla.dilates_weight_grad(2, 1, 128, 50, jnp.float32, backend="cpu")
    assert xla.dilates_weight_grad(2, 1, 8, 64, jnp.float64, backend="cpu")
    assert xla.dilates_weight_grad(2, 1, 128, 4, jnp.float32, backend="cpu")  # 128 samples
    assert not xla.dilates_weight_grad(2, 1, 8, 16, jnp.float32, backend="cpu")
    assert not xla.dilates_weight_grad(2, 4, 128, 64, jnp.float32, backend="cpu")  # groups
    assert not xla.dilates_weight_grad(1, 1, 128, 64, jnp.float32, backend="cpu")
    assert not xla.dilates_weight_grad(3, 1, 128, 64, jnp.float32, backend="cpu")
    assert not xla.dilates_weight_grad(2, 1, 128, 64, jnp.bfloat16, backend="cpu")
    assert not xla.dilates_weight_grad(2, 1, 128, 64, jnp.float32, backend="gpu")


@pytest.mark.parametrize("kw", [
    {}, {"padding": 2}, {"stride": 2, "padding": 1}, {"stride": (3, 1)}, {"dilation": 2},
    {"padding": 1, "cin": 1},
], ids=str)
def test_xla_dilated_weight_grad_matches_reference(kw):
    """The weight gradient's correlation with its input dilated along the first spatial
    dim (17 samples: YNNPACK would take it) against the reference, float64; the
    dilation is in the lowered program where the probe says so, and in float32 the
    compiled correlation is XLA's own, not YNNPACK's."""
    from jaxconv._src.algorithms import xla

    kw = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **kw}
    c_in = kw.pop("cin", 3)
    x_shape, w_shape = (17, c_in, 11, 9), (5, c_in, 3, 3)
    geom = _args.conv_geometry("conv", x_shape, w_shape, None, **kw)
    probe = xla.ynn_takes_convolutions()
    assert xla.dilates_weight_grad(2, 1, 17, 5, jnp.float64, backend="cpu")
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, 17, c_in, 5, seed=11)
        _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        lowered = jax.jit(partial(xla.weight_grad, geom)).lower(x, g)
        assert ("lhs_dilate = [2, 1]" in lowered.as_text()) == probe
        np.testing.assert_allclose(np.asarray(lowered.compile()(x, g)), np.asarray(vjp(g)[1]),
                                   rtol=1e-10, atol=1e-10)
    if probe:
        f32 = [jnp.asarray(a, jnp.float32) for a in (x, g)]
        hlo = jax.jit(partial(xla.weight_grad, geom)).lower(*f32).compile().as_text()
        assert "__ynn_fusion" not in hlo and "convolution(" in hlo


@pytest.mark.parametrize("k,kw,x_shape", [
    (3, {"padding": 1}, (2, 3, 11, 9)),          # 'same', outputs not a multiple of 4
    (3, {"padding": 0}, (2, 4, 13, 6)),          # 'valid'
    (3, {"padding": ((2, 0), (1, 2))}, (1, 2, 7, 7)),
    (3, {"padding": 2}, (1, 2, 1, 2)),           # 'full' of a tiny input
    (3, {"padding": 1}, (3, 5, 16, 16)),         # whole tiles
    (5, {"padding": 0}, (2, 3, 12, 12)),         # LeNet's conv2: 2x2 whole tiles
    (5, {"padding": 2}, (2, 4, 13, 7)),          # 'same', partial tiles
    (5, {"padding": ((4, 0), (1, 3))}, (1, 2, 6, 9)),
    (5, {"padding": 4}, (1, 2, 2, 3)),           # 'full' of a tiny input
], ids=str)
def test_winograd_core_matches_reference(k, kw, x_shape):
    """F(4x4, 3x3) and F(4x4, 5x5) for stride-1 geometries (where ``applies``): all
    three maps against the reference in float64; in float32 within 1e-5 of the
    largest value."""
    from jaxconv._src.algorithms import winograd

    kw = {"stride": 1, "dilation": 1, "groups": 1, **kw}
    c_in, c_out = x_shape[1], 4
    geom = _args.conv_geometry("conv", x_shape, (c_out, c_in, k, k), None, **kw)
    assert winograd.applies(geom)
    maps = jax.jit(lambda x, w, g: (winograd.forward(geom, x, w),
                                    winograd.input_grad(geom, g, w),
                                    winograd.weight_grad(geom, x, g)))
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, x_shape[0], c_in, c_out, seed=21)
        y, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        want = (y, *vjp(g))
        for a, b in zip(maps(x, w, g), want):
            assert a.shape == b.shape and a.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)
    got32 = maps(*(jnp.asarray(a, jnp.float32) for a in (x, w, g)))
    for a, b in zip(got32, want):
        assert a.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0,
                                   atol=1e-5 * float(np.max(np.abs(np.asarray(b)))))


def test_winograd_applies_only_to_3x3_5x5_stride1_ungrouped_2d():
    """Elsewhere winograd runs im2col's maps: the same values, bit for bit."""
    from jaxconv._src.algorithms import im2col, winograd

    def geom(x_shape, w_shape, **kw):
        kw = {"stride": 1, "padding": 1, "dilation": 1, "groups": 1, **kw}
        return _args.conv_geometry("conv", x_shape, w_shape, None, **kw)

    assert winograd.applies(geom((1, 2, 8, 8), (2, 2, 3, 3)))
    assert winograd.applies(geom((1, 2, 8, 8), (2, 2, 5, 5)))
    others = [geom((1, 2, 8, 8), (2, 2, 3, 3), stride=2), geom((1, 2, 8, 8), (2, 2, 3, 3), dilation=2),
              geom((1, 2, 8, 8), (2, 1, 3, 3), groups=2), geom((1, 2, 8, 8), (2, 2, 7, 7)),
              geom((1, 2, 8, 8), (2, 2, 3, 5)), geom((1, 2, 8, 8), (2, 2, 1, 1)),
              geom((1, 2, 8), (2, 2, 3)), geom((1, 2, 6, 6, 6), (2, 2, 3, 3, 3))]
    for g in others:
        assert not winograd.applies(g)
    g = others[0]
    r = np.random.default_rng(3)
    x, w = (jnp.asarray(r.standard_normal(s), jnp.float32) for s in ((1, 2, 8, 8), (2, 2, 3, 3)))
    ct = jnp.asarray(r.standard_normal((1, 2, *g.out_spatial)), jnp.float32)
    for which, a, b in (("forward", x, w), ("input_grad", ct, w), ("weight_grad", x, ct)):
        ours = jax.jit(partial(getattr(winograd, which), g))(a, b)
        theirs = jax.jit(partial(getattr(im2col, which), g))(a, b)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=which)


def test_winograd_transforms_are_exact():
    """The Toom-Cook construction gives Lavin & Gray's F(4, 3) matrices, and every
    F(4, r) computes the correlation of 1-D data exactly (float64, random data)."""
    from jaxconv._src.algorithms import winograd

    f3 = winograd.TRANSFORMS[3]
    np.testing.assert_array_equal(f3.bt, [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
                                          [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                                          [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
    np.testing.assert_allclose(f3.g, [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6],
                                      [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                                      [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], rtol=1e-15)
    np.testing.assert_array_equal(f3.at, [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0],
                                          [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])
    r = np.random.default_rng(25)
    for k, f in winograd.TRANSFORMS.items():
        assert f.bt.shape == (f.tile, f.tile) and f.g.shape == (f.tile, k)
        d, w = r.standard_normal(f.tile), r.standard_normal(k)
        want = [d[i:i + k] @ w for i in range(winograd.M_OUT)]
        np.testing.assert_allclose(f.at @ ((f.g @ w) * (f.bt @ d)), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="takes 7 finite points"):
        winograd._toom_cook(4, 5, [0, 1])


def test_winograd_in_chunks_and_order2_grads(monkeypatch):
    """Over its budget winograd maps chunks of samples (the same values): six of the
    forward in a loop, two of the weight gradient fenced (FENCED_CHUNKS); its
    custom_vjp maps pass order-2 finite differences in float64."""
    from jaxconv._src.algorithms import winograd

    geom = _args.conv_geometry("conv", (6, 3, 9, 10), (4, 3, 3, 3), None, stride=1, padding=1,
                               dilation=1, groups=1)
    per = winograd._per_sample(geom, 3, 4)
    assert winograd._budget(6, per) == 6 * per  # small: whole
    monkeypatch.setattr(winograd, "CHUNK_ELEMENTS", per)
    monkeypatch.setattr(winograd, "WHOLE_ELEMENTS", 5 * per)
    assert winograd._budget(6, per) == per  # over WHOLE_ELEMENTS: chunks of 1
    # the weight gradient's own budget: two chunks of 3
    monkeypatch.setattr(winograd, "WEIGHT_GRAD_WHOLE", 5 * per)
    monkeypatch.setattr(winograd, "WEIGHT_GRAD_CHUNK", 3 * per)
    with jax.enable_x64(True):
        x, w, g = _arrays64(geom, 6, 3, 4, seed=22)
        y, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
        maps = jax.jit(lambda x, w, g: (winograd.forward(geom, x, w),
                                        winograd.weight_grad(geom, x, g)))
        text = maps.lower(x, w, g).as_text()
        assert text.count("stablehlo.while") == 1 and text.count("stablehlo.case") == 2
        for a, b in zip(maps(x, w, g), (y, vjp(g)[1])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)
        f = jax.jit(partial(jaxconv.conv, padding=1, method="winograd"))
        check_grads(f, (x[:1, :, :5, :6], w), order=2, modes=["rev"])


@pytest.mark.parametrize("method", NAMES)
def test_every_method_on_an_empty_batch(method):
    """A batch of no samples: every method gives the empty output and zero weight and
    bias gradients, grouped or not, for conv and conv_transpose (XLA's own convolution
    computes the maps of empty operands: the other algorithms' chunks and FFT
    lengths assume a sample)."""
    x = jnp.ones((0, 4, 8, 8))
    for groups in (1, 4):
        w, b = jnp.ones((4, 4 // groups, 3, 3)), jnp.ones((4,))
        for op, shape in ((partial(jaxconv.conv, padding=1), (0, 4, 8, 8)),
                          (partial(jaxconv.conv_transpose, stride=2, padding=1), (0, 4, 15, 15))):
            def loss(x, w, b, op=op, groups=groups):
                return op(x, w, b, groups=groups, method=method).sum()

            assert op(x, w, b, groups=groups, method=method).shape == shape
            dx, dw, db = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(x, w, b)
            assert dx.shape == x.shape
            np.testing.assert_array_equal(np.asarray(dw), np.zeros(w.shape))
            np.testing.assert_array_equal(np.asarray(db), np.zeros(b.shape))


@pytest.mark.parametrize("method", NAMES)
def test_every_method_keeps_bfloat16(method):
    """Output and both gradients come back in bfloat16 from every algorithm (they
    accumulate in float32), close to the float32 reference."""
    r = np.random.default_rng(24)
    x = jnp.asarray(r.standard_normal((2, 4, 9, 8)), jnp.float32)
    w = jnp.asarray(r.standard_normal((6, 4, 3, 3)), jnp.float32)
    f = partial(jaxconv.conv, padding=1, method=method)

    def loss(f, x, w):
        return jnp.sum(f(x, w).astype(jnp.float32) ** 2)

    want = [ref.conv(x, w, padding=1),
            *jax.grad(partial(loss, partial(ref.conv, padding=1)), argnums=(0, 1))(x, w)]
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    got = [jax.jit(f)(xb, wb), *jax.jit(jax.grad(partial(loss, f), argnums=(0, 1)))(xb, wb)]
    for a, b in zip(got, want):
        assert a.dtype == jnp.bfloat16 and a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b),
                                   atol=5e-2 * float(jnp.max(jnp.abs(b))))


@pytest.mark.parametrize("k", [3, 5])
def test_winograd_under_vmap_and_in_bfloat16(k):
    """method="winograd" through jaxconv.conv, F(4x4, 3x3) and F(4x4, 5x5): under
    vmap (a batch of batches) the same values as one at a time; in bfloat16
    (computed in float32) close to the float32 reference, gradients included."""
    r = np.random.default_rng(23)
    xs = jnp.asarray(r.standard_normal((3, 2, 4, 9, 7)), jnp.float32)
    w = jnp.asarray(r.standard_normal((5, 4, k, k)), jnp.float32)
    pad = k // 2
    f = partial(jaxconv.conv, padding=pad, method="winograd", precision="highest")
    got = jax.jit(jax.vmap(f, in_axes=(0, None)))(xs, w)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(got[i]), np.asarray(f(xs[i], w)), rtol=1e-6,
                                   atol=1e-5)

    def loss(f, x, w):
        return jnp.sum(f(x, w).astype(jnp.float32) ** 2)

    want = ref.conv(xs[0], w, padding=pad)
    dwant = jax.grad(partial(loss, partial(ref.conv, padding=pad)), argnums=(0, 1))(xs[0], w)
    xb, wb = xs[0].astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    yb = jax.jit(f)(xb, wb)
    assert yb.dtype == jnp.bfloat16
    scale = float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(np.asarray(yb, np.float32), np.asarray(want), atol=5e-2 * scale)
    for gb, g in zip(jax.jit(jax.grad(partial(loss, f), argnums=(0, 1)))(xb, wb), dwant):
        assert gb.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(gb, np.float32), np.asarray(g),
                                   atol=5e-2 * float(jnp.max(jnp.abs(g))))


def test_xla_after_cotangent_is_exactly_x():
    """The dilated weight gradient's tie of x to the cotangent changes no bit of x,
    whatever either holds (signed zeros, NaN, infinities; a NaN cotangent)."""
    from jaxconv._src.algorithms import xla

    x = jnp.asarray([[-0.0, 0.0, jnp.nan, jnp.inf, -jnp.inf, 1e-45, -3.5]] * 3, jnp.float32)
    x = x.reshape(3, 7, 1)
    for fill in (0.0, jnp.nan, jnp.inf):
        g = jnp.full((3, 2, 4), fill, jnp.float32)
        out = jax.jit(xla.after_cotangent)(x, g)
        assert out.dtype == x.dtype and out.shape == x.shape
        np.testing.assert_array_equal(np.asarray(out).view(np.uint32),
                                      np.asarray(x).view(np.uint32))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA's CPU compiler")
def test_xla_widens_nothing_where_convolutions_stay_off_ynnpack():
    """With XLA's flag that keeps convolutions off YNNPACK the probe says so, the
    forward convolution keeps its shape and the weight gradient's input is not dilated
    (a fresh process: XLA reads its flags once)."""
    code = (
        "import jax, jax.numpy as jnp\n"
        "from jaxconv._src.algorithms import xla\n"
        "from jaxconv._src import _args\n"
        "assert not xla.ynn_takes_convolutions()\n"
        "geom = _args.conv_geometry('conv', (2, 24, 7, 9), (24, 24, 3, 3), None, stride=1,\n"
        "                           padding=1, dilation=1, groups=1)\n"
        "x, w = jnp.ones((2, 24, 7, 9)), jnp.ones((24, 24, 3, 3))\n"
        "text = jax.jit(lambda x, w: xla.forward(geom, x, w)).lower(x, w).as_text()\n"
        "assert 'tensor<2x24x8x9xf32>' not in text, text\n"
        "g = jnp.ones((2, 24, 7, 9))\n"
        "text = jax.jit(lambda x, g: xla.weight_grad(geom, x, g)).lower(x, g).as_text()\n"
        "assert 'lhs_dilate = [2' not in text, text\n"
    )
    flag = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
    env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


@pytest.mark.parametrize("groups", [1, 2])
def test_im2col_weight_grad_with_padded_width(groups):
    """im2col pads its weight-gradient product to a multiple of 16 output channels
    (20 -> 32 ungrouped, 10 -> 16 per group): the padding never reaches the result."""
    from jaxconv._src.algorithms import im2col

    assert im2col._padded_width(20 // groups) > 20 // groups
    geom = _conv_geom(dict(n=2, cin=4, cout=20, D=(7, 6), k=(3, 2),
                           kw=dict(stride=1, padding=1, dilation=1, groups=groups)))
    _check_geometry(geom, 2, 4, 20, seed=3)


@pytest.mark.parametrize("split_k", [1, 1 << 30])
def test_im2col_products_per_row_of_taps(monkeypatch, split_k):
    """im2col's forward and weight gradient run one product per row of taps when a row
    reads ROW_SPLIT_K patch rows or more, one product otherwise: both forms agree with the
    reference (per-dim stride and dilation; groups; 3-D, whose rows are k0*k1)."""
    from jaxconv._src.algorithms import im2col

    monkeypatch.setattr(im2col, "ROW_SPLIT_K", split_k)
    for name, rows in (("2d_perdim", 3), ("2d_groups2_s3", 3), ("3d_mixed", 6)):
        case = SWEEP[name]
        geom = _conv_geom(case)
        cin_g = case["cin"] // case["kw"]["groups"]
        assert len(im2col._tap_rows(geom, cin_g)) == (rows if split_k == 1 else 1)
        with jax.enable_x64(True):
            x, w, g = _arrays64(geom, case["n"], case["cin"], case["cout"], seed=5)
            y, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
            # traced here, after the monkeypatch (no cached compile of another test)
            got_y, got_dw = jax.jit(lambda x, w, g, geom=geom: (
                im2col.forward(geom, x, w), im2col.weight_grad(geom, x, g)))(x, w, g)
            for a, b in ((got_y, y), (got_dw, vjp(g)[1])):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("max_extent", [0.0, float("inf")])
def test_im2col_forward_from_width_patches(monkeypatch, max_extent):
    """im2col's forward multiplies width patches (the last dim's taps; leading taps as
    rows of the kernel matrix, per phase of a strided leading dim, summed shifted) where
    rows_forward says so, else the full patch matrix: both agree with the reference
    (1-D; per-dim stride and dilation; 'full' padding; groups; strided 2-D and 3-D;
    leading dilation sharing a phase with the stride), in chunks of samples too."""
    from jaxconv._src.algorithms import im2col

    monkeypatch.setattr(im2col, "ROWS_MAX_EXTENT", max_extent)
    monkeypatch.setattr(im2col, "ROWS_MIN_K", 0)
    monkeypatch.setattr(im2col, "CHUNK_ELEMENTS", 1)  # one sample per chunk
    monkeypatch.setattr(im2col, "INPUT_FACTOR", 0.0)
    cases = [SWEEP[name] for name in (
        "1d_same_stride3_dil2", "2d_perdim", "2d_full_dil2", "1d_groups2_same_even",
        "2d_same_s2_even", "2d_groups2_s3", "3d_mixed", "3d_same_s2")]
    cases.append(dict(n=2, cin=2, cout=3, D=(13, 7), k=(5, 2), flip=False,
                      kw=dict(stride=(3, 1), padding=(2, 1), dilation=(2, 1), groups=1)))
    for case in cases:
        geom = _conv_geom(case)
        cin_g = case["cin"] // case["kw"]["groups"]
        assert im2col.rows_forward(geom, cin_g) == (max_extent > 0)
        with jax.enable_x64(True):
            x, w, _ = _arrays64(geom, case["n"], case["cin"], case["cout"], seed=7)
            x = jnp.concatenate([x, 2 * x])  # at least two chunks
            # traced here, after the monkeypatch (no cached compile of another test)
            got = jax.jit(lambda x, w, geom=geom: im2col.forward(geom, x, w))(x, w)
            want = ref.conv_geometry_map(geom, x, w)
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10,
                                       atol=1e-10, err_msg=str(case))


@pytest.mark.parametrize("max_zeros", [-1.0, 1.0])
def test_im2col_input_grad_as_transposed_forward(monkeypatch, max_zeros):
    """At stride 1 im2col's input gradient is the width-patch forward of the transposed
    geometry where transposed_forward says so, else dP^T and the fold: both agree with
    the reference (1-D, per-dim dilation, 'full' and asymmetric padding, groups, 3-D)."""
    from jaxconv._src.algorithms import im2col

    monkeypatch.setattr(im2col, "TRANSPOSED_MAX_ZEROS", max_zeros)
    monkeypatch.setattr(im2col, "ROWS_MIN_K", 0)
    monkeypatch.setattr(im2col, "ROWS_MAX_EXTENT", float("inf"))
    cases = [SWEEP[name] for name in ("1d_plain", "1d_groups2_same_even", "2d_full_dil2",
                                      "2d_kernel_fills_input", "3d_plain")]
    cases.append(dict(n=2, cin=4, cout=6, D=(7, 6), k=(3, 2), flip=False,
                      kw=dict(stride=1, padding=((2, 0), (1, 1)), dilation=(1, 2), groups=2)))
    for case in cases:
        geom = _conv_geom(case)
        cout_g = case["cout"] // case["kw"]["groups"]
        assert im2col.transposed_forward(geom, cout_g) == (max_zeros > 0)
        with jax.enable_x64(True):
            x, w, g = _arrays64(geom, case["n"], case["cin"], case["cout"], seed=8)
            _, vjp = jax.vjp(partial(ref.conv_geometry_map, geom), x, w)
            # traced here, after the monkeypatch (no cached compile of another test)
            got = jax.jit(lambda g, w, geom=geom: im2col.input_grad(geom, g, w))(g, w)
            np.testing.assert_allclose(np.asarray(got), np.asarray(vjp(g)[0]), rtol=1e-10,
                                       atol=1e-10, err_msg=str(case))


def test_im2col_transposed_forward_conditions():
    """Only at stride 1, with width patches for the transposed forward, and at most
    TRANSPOSED_MAX_ZEROS of its padded input padding ('same' 3x3 on 56x56: 7%; LeNet's
    conv2, 'valid' 5x5 on 12x12: 75%)."""
    from jaxconv._src.algorithms import im2col

    def geom(D, k, padding, stride=1):
        return _args.conv_geometry("conv", (1, 64, D, D), (64, 64, k, k), None,
                                   stride=stride, padding=padding, dilation=1, groups=1)

    assert im2col.transposed_forward(geom(56, 3, 1), 64)
    assert not im2col.transposed_forward(geom(56, 3, 1, stride=2), 64)
    assert not im2col.transposed_forward(geom(12, 5, 0), 50)
    assert not im2col.transposed_forward(geom(56, 3, 1), 8)  # 24 width-patch rows
    assert im2col.transposed_zeros(geom(56, 3, 1)) == pytest.approx(1 - 56**2 / 58**2)
    assert im2col.transposed_zeros(geom(12, 5, 0)) == pytest.approx(0.75)  # 8x8 in 16x16
    assert im2col.transposed_zeros(geom(14, 3, 0)) == pytest.approx(1 - 12**2 / 16**2)


def test_im2col_width_patch_conditions():
    """Width patches need ROWS_MIN_K patch rows per group and at most ROWS_MAX_EXTENT
    times the output's rows per phase (a kernel that fills its input has more); the
    phases of a strided leading dim hold every leading tap once, at offset q with
    i * d = q * s + r."""
    from jaxconv._src.algorithms import im2col

    geom = _conv_geom(SWEEP["2d_same_s2_even"])  # k (4, 2), stride 2
    assert im2col.rows_forward(geom, 16) and not im2col.rows_forward(geom, 15)
    assert im2col._phases(geom) == {(0,): [(0, (0,)), (2, (1,))], (1,): [(1, (0,)), (3, (1,))]}
    fills = _conv_geom(SWEEP["2d_kernel_fills_input"])  # 6 rows for 1 output row
    assert im2col._phase_rows(fills) == (6,) and not im2col.rows_forward(fills, 1 << 10)
    dil = _conv_geom(dict(n=1, cin=1, cout=1, D=(13, 7), k=(5, 2), flip=False,
                          kw=dict(stride=(3, 1), padding=(2, 1), dilation=(2, 1), groups=1)))
    # taps i = 0..4 at dilation 2, stride 3: i * d = 0, 2, 4, 6, 8 = 3q + r
    assert im2col._phases(dil) == {(0,): [(0, (0,)), (3, (2,))], (2,): [(1, (0,)), (4, (2,))],
                                   (1,): [(2, (1,))]}


def test_im2col_splits_rows_with_many_channels():
    """At the default ROW_SPLIT_K a 3x3 kernel over 64 channels (192 patch rows a row of
    taps) runs per row, and agrees with the reference."""
    from jaxconv._src.algorithms import im2col

    geom = _conv_geom(dict(n=1, cin=64, cout=4, D=(5, 4), k=(3, 3),
                           kw=dict(stride=1, padding=1, dilation=1, groups=1)))
    assert len(im2col._tap_rows(geom, 64)) == 3
    assert len(im2col._tap_rows(geom, 16)) == 1
    _check_geometry(geom, 1, 64, 4, seed=6)
