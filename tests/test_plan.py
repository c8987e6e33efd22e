"""The plan: method= / precision= arguments and errors, "auto", autotuning and its cache,
and no wasted work (dead input gradients, peak memory)."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxconv
from jaxconv._src import _args, autotune
from jaxconv._src.plan import ALGORITHMS, Plan, plan_for

X = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 9, 8)), jnp.float32)
W = jnp.asarray(np.random.default_rng(1).standard_normal((4, 3, 3, 3)), jnp.float32)



def _geom(x_shape, w_shape):
    return _args.conv_geometry("conv", x_shape, w_shape, None, stride=1, padding=0, dilation=1,
                               groups=1)


# ---------------------------------------------------------------- method= / precision=

def test_method_per_map_and_auto_equal_xla():
    """Every method (and a per-map mix) gives xla's values and gradients."""
    f = partial(jaxconv.conv, stride=2, padding=1)

    @jax.jit
    def run(x, w):
        out = {}
        for m in ("auto", *ALGORITHMS, {"forward": "direct", "weight_grad": "im2col"}):
            loss = lambda x, w, m=m: jnp.sum(jnp.sin(f(x, w, method=m, precision="highest")))
            out[str(m)] = (f(x, w, method=m, precision="highest"), jax.grad(loss, (0, 1))(x, w))
        return out

    out = run(X, W)
    y0, (dx0, dw0) = out["xla"]
    for m, (y, (dx, dw)) in out.items():
        for a, b in ((y, y0), (dx, dx0), (dw, dw0)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=m)


def test_conv_transpose_method():
    y = jaxconv.conv(X, W, stride=2)
    got = jaxconv.conv_transpose(y, W, stride=2, output_padding=1, method="phase",
                                 precision=lax.Precision.HIGHEST)
    want = jaxconv.conv_transpose(y, W, stride=2, output_padding=1, method="xla",
                                  precision=lax.Precision.HIGHEST)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


METHOD_ERRORS = [
    ("bogus", ValueError, r"jaxconv\.conv: method must be 'auto' or one of .*'xla'.*; got 'bogus'"),
    (3, TypeError, r"jaxconv\.conv: method must be 'auto', an algorithm name or a mapping.*got 3 of type int"),
    ({"backward": "xla"}, ValueError, r"method keys must be among 'forward', 'input_grad', 'weight_grad'; got 'backward'"),
    ({"forward": "nope"}, ValueError, r"method\['forward'\] must be 'auto' or one of .*got 'nope'"),
    ({"forward": None}, TypeError, r"method\['forward'\] must be 'auto' or an algorithm name"),
]


@pytest.mark.parametrize("method,exc,match", METHOD_ERRORS)
def test_method_errors(method, exc, match):
    with pytest.raises(exc, match=match):
        jaxconv.conv(X, W, method=method)


def test_unsupported_combination_is_a_clear_error():
    # direct unrolls prod(k) * C_in/G terms: a kernel that would unroll too many is refused
    x = jnp.zeros((1, 600, 9, 9))
    w = jnp.zeros((2, 600, 3, 3))
    with pytest.raises(ValueError, match=r"jaxconv\.conv: method 'direct' cannot compute forward here: direct unrolls"):
        jaxconv.conv(x, w, method="direct")
    with pytest.raises(ValueError, match=r"jaxconv\.conv_transpose: method 'direct' cannot compute"):
        jaxconv.conv_transpose(jnp.zeros((1, 2, 7, 7)), w, method={"input_grad": "direct"})


@pytest.mark.parametrize("precision,exc,match", [
    ("bogus", ValueError, r"jaxconv\.conv: precision must be None, a jax\.lax\.Precision or one of .*got 'bogus'"),
    (3, TypeError, r"jaxconv\.conv: precision must be None, a jax\.lax\.Precision or a string; got 3 of type int"),
])
def test_precision_errors(precision, exc, match):
    with pytest.raises(exc, match=match):
        jaxconv.conv(X, W, precision=precision)
    with pytest.raises(exc, match=match.replace("conv:", "conv_transpose:")):
        jaxconv.conv_transpose(jnp.zeros((2, 4, 7, 6)), W, precision=precision)


def test_precision_is_passed_through():
    """precision reaches the XLA op (default: none requested, so jax's default applies)."""
    def hlo(**kw):
        return jax.jit(partial(jaxconv.conv, method="xla", **kw)).lower(X, W).as_text()
    assert "HIGHEST" in hlo(precision="highest")
    assert "HIGHEST" not in hlo()


# Shapes large enough that "auto" leaves xla on CPU: the algorithm each should get, and
# (below) the values and gradients auto computes with it, against xla's.
AUTO_CASES = [
    ((4, 1, 28, 28), (20, 1, 5, 5), {}, Plan("direct", "im2col", "xla")),
    # F(4x4, 3x3) for the forward and input gradient of 3x3 from 64 channels when the
    # batch has enough tiles (not 512->512 at 7x7, N=8: 32 tiles); XLA's dilated weight
    # gradient beyond first layers: a 5x5 kernel, and 3x3 between 128 channels at small
    # outputs, from 8 samples; not 3x3 64->64
    ((8, 512, 7, 7), (512, 512, 3, 3), {"padding": 1}, Plan("xla", "xla", "xla")),
    ((8, 20, 12, 12), (50, 20, 5, 5), {}, Plan("im2col", "im2col", "xla")),
    # F(4x4, 5x5) from 128 tiles: LeNet's conv2 from 32 samples (its input gradient,
    # 'valid', reads 75% zeros: the fold), 'same' 5x5 with all three maps up to 64
    # channels; beyond, not the weight gradient
    ((32, 20, 12, 12), (50, 20, 5, 5), {}, Plan("winograd", "im2col", "winograd")),
    ((4, 32, 28, 28), (32, 32, 5, 5), {"padding": 2}, Plan("winograd", "winograd", "winograd")),
    ((8, 64, 28, 28), (96, 64, 5, 5), {"padding": 2}, Plan("winograd", "winograd", "xla")),
    ((8, 128, 12, 12), (128, 128, 3, 3), {"padding": 1}, Plan("winograd", "winograd", "xla")),
    ((8, 64, 16, 16), (64, 64, 3, 3), {"padding": 1}, Plan("winograd", "winograd", "winograd")),
    ((2, 16, 16, 16), (16, 16, 3, 3), {"padding": 1}, Plan("xla", "xla", "im2col")),
    ((2, 16, 16, 16), (32, 16, 3, 3), {"padding": 1}, Plan("xla", "im2col", "im2col")),
    ((4, 8, 14, 14), (8, 8, 3, 3), {}, Plan("xla", "xla", "im2col")),
    ((2, 4, 28, 28), (32, 4, 3, 3), {}, Plan("xla", "im2col", "xla")),
    ((2, 3, 32, 32), (16, 3, 3, 3), {"padding": 1}, Plan("direct", "im2col", "im2col")),
    ((2, 3, 32, 32), (16, 3, 3, 3), {"stride": 2, "padding": 1},
     Plan("im2col", "im2col", "im2col")),
    ((2, 8, 32, 32), (8, 8, 3, 3), {"padding": 1}, Plan("xla", "xla", "xla")),
    ((2, 48, 16, 16), (48, 48, 1, 1), {}, Plan("im2col", "im2col", "im2col")),
    ((2, 16, 28, 28), (32, 16, 5, 5), {"padding": 2}, Plan("xla", "xla", "im2col")),
    ((2, 32, 28, 28), (32, 32, 5, 5), {"padding": 2}, Plan("xla", "xla", "im2col")),
    ((2, 8, 32, 32), (16, 8, 5, 5), {"padding": 2}, Plan("xla", "xla", "xla")),
    ((2, 64, 12, 12), (64, 64, 3, 3), {"padding": 1}, Plan("im2col", "im2col", "im2col")),
    # strided input gradients: im2col's phase-wise fold up to 9 taps, phase beyond
    ((2, 64, 12, 12), (64, 64, 3, 3), {"stride": 2, "padding": 1},
     Plan("im2col", "im2col", "im2col")),
    ((2, 64, 12, 12), (64, 64, 4, 4), {"stride": 2, "padding": 1},
     Plan("im2col", "phase", "xla")),
    ((2, 128, 12, 12), (128, 128, 3, 3), {"padding": 1}, Plan("xla", "im2col", "im2col")),
    ((4, 64, 12, 12), (64, 64, 1, 1), {}, Plan("im2col", "im2col", "im2col")),
    ((2, 16, 24, 24), (16, 16, 3, 3), {}, Plan("xla", "xla", "im2col")),
    ((4, 20, 12, 12), (50, 20, 5, 5), {}, Plan("im2col", "im2col", "im2col")),
    ((2, 8, 6, 8, 8), (16, 8, 3, 3, 3), {"padding": 1}, Plan("im2col", "im2col", "im2col")),
    ((2, 16, 512), (16, 16, 9), {}, Plan("xla", "xla", "xla")),
    # depthwise: direct, but the FFT's weight gradient from 81 taps and all from 169
    ((2, 8, 20, 20), (8, 1, 7, 7), {"padding": 3, "groups": 8},
     Plan("direct", "direct", "direct")),
    ((2, 8, 20, 20), (8, 1, 9, 9), {"padding": 4, "groups": 8},
     Plan("direct", "direct", "fft")),
    ((2, 8, 20, 20), (8, 1, 13, 13), {"padding": 6, "groups": 8}, Plan("fft", "fft", "fft")),
    ((8, 8, 20, 20), (8, 1, 13, 13), {"padding": 6, "groups": 8, "stride": 2},
     Plan("direct", "direct", "direct")),
    # from 3 channels (odd) XLA's forward is slow but onto 64; from 2 (even) it is fast
    ((2, 3, 32, 32), (16, 3, 7, 7), {"stride": 2, "padding": 3},
     Plan("im2col", "im2col", "im2col")),
    ((2, 3, 32, 32), (64, 3, 7, 7), {"stride": 2, "padding": 3}, Plan("xla", "im2col", "im2col")),
    ((2, 3, 32, 32), (32, 3, 5, 5), {"padding": 2}, Plan("im2col", "im2col", "xla")),
    ((2, 2, 32, 32), (32, 2, 5, 5), {"padding": 2}, Plan("xla", "im2col", "xla")),
    ((4, 8, 16, 16), (16, 8, 7, 7), {"stride": 2, "padding": 3}, Plan("xla", "xla", "im2col")),
    ((2, 48, 8, 8), (128, 48, 5, 5), {"padding": 2}, Plan("xla", "xla", "im2col")),
    ((2, 64, 14, 14), (128, 64, 5, 5), {"padding": 2}, Plan("xla", "xla", "xla")),
    ((2, 64, 28, 28), (128, 64, 5, 5), {"padding": 2}, Plan("xla", "xla", "im2col")),
    ((2, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}, Plan("winograd", "winograd", "winograd")),
    # a first layer's weight gradient from a large batch: one product per sample
    ((500, 1, 28, 28), (20, 1, 5, 5), {}, Plan("direct", "im2col", "im2col")),
    ((64, 3, 32, 32), (16, 3, 3, 3), {"padding": 1}, Plan("direct", "im2col", "xla")),
    ((2, 32, 56, 56), (32, 32, 3, 3), {}, Plan("xla", "xla", "im2col")),
    ((2, 24, 28, 28), (24, 24, 3, 3), {"padding": 1}, Plan("im2col", "im2col", "im2col")),
    ((2, 64, 28, 28), (64, 64, 3, 3), {}, Plan("winograd", "winograd", "winograd")),
    ((2, 64, 14, 14), (128, 64, 5, 5), {"stride": 2, "padding": 2}, Plan("xla", "phase", "xla")),
    ((2, 128, 8, 8), (256, 128, 1, 1), {"stride": 2}, Plan("im2col", "im2col", "im2col")),
    ((4, 3, 512), (16, 3, 7), {"stride": 2, "padding": 3}, Plan("xla", "im2col", "xla")),
    ((2, 8, 16, 16), (8, 1, 3, 3), {"groups": 8, "padding": 1}, Plan("direct", "direct", "direct")),
    ((2, 16, 16, 16), (16, 8, 3, 3), {"groups": 2, "padding": 1}, Plan("xla", "im2col", "xla")),
    ((2, 16, 16, 16), (16, 4, 3, 3), {"groups": 4, "padding": 1}, Plan("direct", "direct", "xla")),
    ((2, 256, 8, 8), (256, 8, 3, 3), {"groups": 32, "padding": 1},
     Plan("direct", "direct", "xla")),
    ((2, 256, 8, 8), (256, 8, 3, 3), {"groups": 32, "stride": 2, "padding": 1},
     Plan("im2col", "im2col", "xla")),
    ((2, 64, 8, 8), (64, 2, 3, 3), {"groups": 32, "padding": 1}, Plan("direct", "direct", "direct")),
    ((2, 32, 8, 8), (64, 1, 3, 3), {"groups": 32, "padding": 1}, Plan("direct", "im2col", "direct")),
    ((2, 64, 16, 16), (64, 4, 3, 3), {"groups": 16, "stride": 2, "padding": 1},
     Plan("direct", "xla", "xla")),
    ((2, 64, 16, 16), (64, 16, 3, 3), {"groups": 4, "padding": 1}, Plan("xla", "xla", "xla")),
    ((2, 64, 8, 8), (256, 16, 3, 3), {"groups": 4, "padding": 1}, Plan("xla", "xla", "im2col")),
    ((2, 4, 48, 48), (4, 4, 15, 15), {"padding": 7}, Plan("fft", "fft", "fft")),
    ((2, 48, 32, 32), (16, 48, 4, 4), {"stride": 2, "padding": 1},
     Plan("im2col", "phase", "im2col")),
    # strided from 1024 patch rows: XLA's weight gradient (below, im2col's above)
    ((2, 64, 16, 16), (64, 64, 4, 4), {"stride": 2, "padding": 1},
     Plan("im2col", "phase", "xla")),
]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU cost model's choices")
@pytest.mark.parametrize("x_shape,w_shape,kw,plan", AUTO_CASES, ids=lambda v: str(v))
def test_auto_chooses_by_shape_and_equals_xla(x_shape, w_shape, kw, plan):
    assert jaxconv.conv_plan(x_shape, w_shape, **kw) == plan
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
    # scaled by 1/sqrt(fan-in), as initialisers do, so that y is O(1): sin's gradient
    # cos(y) turns an error e in y into one of about e, where with |y| ~ 100 (unit
    # weights onto 64 channels of 5x5) Winograd's float32 error of ~5e-6 of max |y|
    # (about 1e-3) came back through cos(y) at the tolerance
    w = jnp.asarray(rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:])), jnp.float32)

    @jax.jit
    def run(x, w):
        out = []
        for m in ("auto", "xla"):
            f = partial(jaxconv.conv, method=m, precision="highest", **kw)
            loss = lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w)))
            out.append((f(x, w), *jax.grad(loss, (0, 1))(x, w)))
        return out

    got, want = run(x, w)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU cost model's choices")
def test_grouped_plan_bounds():
    """Plans only (no compile): the per-group weight gradient stops at
    GROUPED_XLA_DW_GROUPS groups (compile time) and at 2 channels per group; strided,
    many groups of 2 channels keep direct's forward."""
    from jaxconv._src import cpu_plan as P

    def plan(c, cg, g, **kw):
        return jaxconv.conv_plan((8, c, 14, 14), (c, cg, 3, 3), padding=1, groups=g, **kw)

    assert plan(256, 4, 64).weight_grad == "xla"
    assert P.GROUPED_XLA_DW_GROUPS == 64 and plan(512, 4, 128).weight_grad == "direct"
    assert plan(64, 2, 32).weight_grad == "direct"
    assert plan(64, 2, 32, stride=2).forward == "direct"
    assert plan(256, 8, 32, stride=2).forward == "im2col"
    assert jaxconv.conv_plan((8, 64, 28, 28), (64, 8, 5, 5), padding=2, stride=2,
                             groups=8).weight_grad != "xla"  # 5x5 strided: split lost


def test_winograd_3x3_weight_grad_only_where_im2col_would_run():
    """Plans only (no compile; values: the AUTO_CASES above): a 3x3 weight gradient is
    Winograd's where the other rules would take im2col's and Winograd's forward applies,
    never where they take xla's, and not from fewer than WINOGRAD_CHANNELS channels."""
    def plan(n, c, hw, **kw):
        return jaxconv.conv_plan((n, c, hw, hw), (c, c, 3, 3), **kw)

    assert plan(8, 64, 56, padding=1).weight_grad == "winograd"
    assert plan(8, 128, 28, padding=1).weight_grad == "winograd"
    assert plan(8, 256, 14, padding=1) == Plan("winograd", "winograd", "xla")
    assert plan(8, 32, 56, padding=1).weight_grad == "im2col"  # 32 channels
    assert plan(8, 64, 56, padding=1, stride=2).weight_grad != "winograd"  # strided


def test_conv_plan_public():
    plan = jaxconv.conv_plan((8, 1, 28, 28), (20, 1, 5, 5))
    assert isinstance(plan, Plan)
    assert all(getattr(plan, m) in ALGORITHMS for m in ("forward", "input_grad", "weight_grad"))
    assert jaxconv.conv_plan((8, 1, 28, 28), (20, 1, 5, 5), backend="gpu") == Plan("xla", "xla", "xla")
    tr = jaxconv.conv_plan((8, 128, 32, 32), (128, 64, 4, 4), stride=2, padding=1, transpose=True)
    assert isinstance(tr, Plan)


def test_plan_is_deterministic_and_hashable():
    geom = _geom((8, 1, 28, 28), (20, 1, 5, 5))
    a = plan_for(geom, jnp.float32, x_shape=(8, 1, 28, 28), w_shape=(20, 1, 5, 5))
    b = plan_for(geom, jnp.float32, x_shape=(8, 1, 28, 28), w_shape=(20, 1, 5, 5))
    assert a == b and hash(a) == hash(b)


# ---------------------------------------------------------------- no wasted work

def test_no_input_grad_for_data_input():
    """grad wrt w only: XLA removes the dead input gradient (2 convolutions, not 3)."""
    x = jnp.zeros((4, 3, 12, 12))
    w = jnp.zeros((5, 3, 3, 3))

    def count(argnums):
        f = jax.grad(lambda x, w: jnp.sum(jaxconv.conv(x, w, method="xla") ** 2), argnums)
        return jax.jit(f).lower(x, w).compile().as_text().count("convolution(")

    assert count(1) == 2  # forward + weight gradient
    assert count((0, 1)) == 3  # + input gradient


def _lenet_loss(conv):
    def pool(a):  # 2x2 max pool by reshape (the same in both)
        n, c, h, w = a.shape
        return a.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    def loss(p, x, y):
        a = pool(jax.nn.relu(conv(x, p["w1"]) + p["b1"][:, None, None]))
        a = pool(jax.nn.relu(conv(a, p["w2"]) + p["b2"][:, None, None]))
        logits = a.reshape(a.shape[0], -1) @ p["w3"]
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * y, -1))
    return loss


def test_lenet_step_peak_memory_close_to_lax():
    """A LeNet SGD step's peak memory is at most 1.2x that of plain lax + autodiff."""
    r = np.random.default_rng(0)
    p = {"w1": r.standard_normal((20, 1, 5, 5)), "b1": np.zeros(20),
         "w2": r.standard_normal((50, 20, 5, 5)), "b2": np.zeros(50),
         "w3": r.standard_normal((800, 10))}
    p = {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}
    x = jnp.zeros((128, 1, 28, 28))
    y = jnp.zeros((128, 10))

    def lax_conv(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "VALID")

    def peak(conv):
        loss = _lenet_loss(conv)

        def step(p, x, y):
            g = jax.grad(loss)(p, x, y)
            return jax.tree.map(lambda a, b: a - 0.1 * b, p, g)
        m = jax.jit(step).lower(p, x, y).compile().memory_analysis()
        return m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes

    ours, theirs = peak(jaxconv.conv), peak(lax_conv)
    assert ours <= 1.2 * theirs, (ours, theirs)


# ---------------------------------------------------------------- autotuning

@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCONV_CACHE_DIR", str(tmp_path))
    autotune.clear_memory()
    yield tmp_path
    autotune.clear_memory()


SMALL = ((2, 2, 6, 6), (3, 2, 3, 3))


def _small_plan():
    geom = _geom(*SMALL)
    return plan_for(geom, jnp.float32, x_shape=SMALL[0], w_shape=SMALL[1])


def test_autotune_round_trip(cache_dir):
    with jaxconv.autotune():
        plan = _small_plan()
    data = json.loads((cache_dir / "autotune.json").read_text())
    assert data["format"] == "jaxconv-autotune" and len(data["entries"]) == 3
    assert sorted(data["entries"].values()) == sorted(
        [plan.forward, plan.input_grad, plan.weight_grad])
    # a fresh process (memory cleared) reads the file instead of measuring
    autotune.clear_memory()
    entries = {k: "direct" for k in data["entries"]}
    (cache_dir / "autotune.json").write_text(json.dumps({**data, "entries": entries}))
    with jaxconv.autotune():
        assert _small_plan() == Plan("direct", "direct", "direct")
    # autotuning off: the cost model, not the cache
    autotune.clear_memory()
    assert _small_plan() == plan_for(_geom(*SMALL), jnp.float32,
                                     x_shape=SMALL[0], w_shape=SMALL[1])


def test_autotune_under_jit_and_env(cache_dir, monkeypatch):
    monkeypatch.setenv("JAXCONV_AUTOTUNE", "1")
    x = jnp.ones(SMALL[0])
    w = jnp.ones(SMALL[1])
    y = jax.jit(jaxconv.conv)(x, w)
    np.testing.assert_allclose(y, jaxconv.conv(x, w, method="xla"), rtol=1e-5)
    assert (cache_dir / "autotune.json").exists()


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "other", "entries": {}}),
                                     json.dumps([1, 2]), "\x00\x01"])
def test_autotune_corrupt_or_foreign_cache_is_ignored(cache_dir, content):
    (cache_dir / "autotune.json").write_text(content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with jaxconv.autotune():
            plan = _small_plan()
    assert any("ignoring the autotune cache" in str(c.message) for c in caught)
    assert isinstance(plan, Plan)
    data = json.loads((cache_dir / "autotune.json").read_text())  # rewritten, valid
    assert data["format"] == "jaxconv-autotune"


def test_autotune_two_processes_writing_at_once(cache_dir):
    """Concurrent writers: the file stays valid JSON and holds both processes' entries."""
    script = textwrap.dedent("""
        import sys
        from jaxconv._src import autotune
        from pathlib import Path
        tag = sys.argv[1]
        for i in range(200):
            autotune._write(autotune.cache_path(), {f"{tag}-{i}": "xla"})
    """)
    env = {**os.environ, "JAXCONV_CACHE_DIR": str(cache_dir), "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], env=env, cwd=os.getcwd())
             for tag in ("a", "b")]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    entries = json.loads((cache_dir / "autotune.json").read_text())["entries"]
    assert {f"{t}-{i}" for t in "ab" for i in range(200)} <= set(entries)
