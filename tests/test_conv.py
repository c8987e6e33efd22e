"""conv and conv_transpose: forward, hand-derived gradients, adjointness, errors.

Each sweep case is checked in ONE jitted function (forward of jaxconv and of
the lax reference, and the gradients of both), so a case costs one compile.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import torch_cases
from jax.test_util import check_grads

import jaxconv
from jaxconv._src import reference as ref


def C(nd, cin, cout, D, k, *, stride=1, padding=0, dilation=1, groups=1, n=2, flip=False):
    return dict(nd=nd, cin=cin, cout=cout, D=D, k=k, n=n,
                kw=dict(stride=stride, padding=padding, dilation=dilation, groups=groups), flip=flip)


# A purposeful sweep: every padding form, strides 1-3, dilation 1-2, groups
# 1 / 2 / depthwise, odd and even kernels, kernel as large as the padded input,
# batch 1, per-dim values, 1-3 spatial dims.
SWEEP = {
    "1d_plain": C(1, 3, 4, (9,), (3,)),
    "1d_even_stride2_asym": C(1, 2, 3, (10,), (4,), stride=2, padding=[(1, 2)]),
    "1d_same_stride3_dil2": C(1, 2, 2, (11,), (3,), stride=3, padding="same", dilation=2),
    "1d_full_even": C(1, 2, 3, (6,), (2,), padding="full"),
    "1d_valid_s2_d2": C(1, 3, 2, (12,), (3,), stride=2, padding="valid", dilation=2),
    "1d_groups2_same_even": C(1, 4, 6, (8,), (4,), padding="same", groups=2),
    "1d_depthwise_x2": C(1, 3, 6, (9,), (3,), padding=1, groups=3),
    "1d_kernel_fills_input": C(1, 2, 2, (5,), (7,), padding=1, n=1),
    "1d_flip": C(1, 2, 3, (8,), (3,), padding="full", flip=True),
    "2d_plain": C(2, 3, 4, (7, 6), (3, 3)),
    "2d_perdim": C(2, 2, 3, (9, 8), (3, 2), stride=(1, 2), padding=((0, 1), (2, 0)), dilation=(2, 1)),
    "2d_same_s2_even": C(2, 2, 2, (8, 7), (4, 2), stride=2, padding="same"),
    "2d_full_dil2": C(2, 2, 3, (5, 5), (3, 3), padding="full", dilation=2),
    "2d_groups2_s3": C(2, 4, 4, (10, 9), (3, 3), stride=3, padding=(1, 2), groups=2),
    "2d_depthwise": C(2, 4, 4, (6, 6), (3, 3), padding="same", groups=4, n=1),
    "2d_kernel_fills_input": C(2, 1, 2, (4, 5), (6, 5), padding=(1, 0), n=1),
    "2d_flip_s2": C(2, 2, 2, (7, 7), (3, 2), stride=2, flip=True),
    "3d_plain": C(3, 2, 3, (5, 4, 6), (3, 2, 3)),
    "3d_mixed": C(3, 2, 4, (6, 5, 7), (2, 3, 3), stride=(2, 1, 3), padding=((1, 0), 1, (1, 1)),
                  dilation=(1, 2, 1), groups=2),
    "3d_same_s2": C(3, 1, 2, (5, 6, 4), (3, 3, 2), stride=2, padding="same", n=1),
}


def _arrays(case, dtype=jnp.float32, seed=0):
    kx, kw, kb, kg = jax.random.split(jax.random.PRNGKey(seed), 4)
    g = case["kw"]["groups"]
    x = jax.random.normal(kx, (case["n"], case["cin"]) + case["D"], dtype)
    w = jax.random.normal(kw, (case["cout"], case["cin"] // g) + case["k"], dtype)
    b = jax.random.normal(kb, (case["cout"],), dtype)
    return x, w, b, kg


def _ours(case):
    return partial(jaxconv.conv, flip=case["flip"], **case["kw"])


def _theirs(case):
    return partial(ref.conv, flip=case["flip"], **case["kw"])


def _value_and_grads(f, ct_key):
    """One jittable function: y and the gradients of <f(x, w, b), ct> in x, w, b."""
    def run(x, w, b):
        y, vjp = jax.vjp(f, x, w, b)
        ct = jax.random.normal(ct_key, y.shape, jnp.float32).astype(y.dtype)
        return y, vjp(ct)
    return run


def _close(a, b, tol, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=what)


@pytest.mark.parametrize("name", list(SWEEP))
def test_conv_forward_and_grads_match_reference(name):
    case = SWEEP[name]
    x, w, b, kg = _arrays(case)

    @jax.jit
    def both(x, w, b):
        return (_value_and_grads(_ours(case), kg)(x, w, b),
                _value_and_grads(_theirs(case), kg)(x, w, b))

    (y, grads), (y_ref, grads_ref) = both(x, w, b)
    _close(y, y_ref, 1e-5, "forward")
    for arg, g, g_ref in zip("xwb", grads, grads_ref):
        _close(g, g_ref, 1e-4, f"d{arg}")


def _transpose_case(case, *, adjoint=False):
    """The conv_transpose twin of a conv case (w has the conv's layout, so the
    transposed conv maps conv outputs back).

    output_padding is the largest allowed, ``max(stride, dilation) - 1``; with
    ``adjoint=True`` it is ``stride - 1``, the range in which the transposed
    conv's output size is one the conv maps back to the same size (a larger
    output_padding, allowed by PyTorch when dilation > stride, appends outputs
    that no conv of these arguments reads).
    """
    kw = dict(case["kw"])
    nd = case["nd"]
    s = kw["stride"] if isinstance(kw["stride"], tuple) else (kw["stride"],) * nd
    d = kw["dilation"] if isinstance(kw["dilation"], tuple) else (kw["dilation"],) * nd
    if kw["padding"] != "same":
        kw["output_padding"] = tuple((a if adjoint else max(a, c)) - 1 for a, c in zip(s, d))
    return kw


@pytest.mark.parametrize("name", list(SWEEP))
def test_conv_transpose_matches_reference_and_is_adjoint(name):
    """Forward and gradients against the reference (the VJP of the lax conv),
    and the adjoint identity <conv(z, w), y> == <z, conv_transpose(y, w)>."""
    case = SWEEP[name]
    kw = _transpose_case(case)
    adj_kw = _transpose_case(case, adjoint=True)
    x, w, _, kg = _arrays(case)
    k1, k2, k3, k4 = jax.random.split(kg, 4)
    y = jax.random.normal(k1, jax.eval_shape(partial(jaxconv.conv, **case["kw"]), x, w).shape)
    bt = jax.random.normal(k3, (case["cin"],))  # conv_transpose's C_out is the conv's C_in
    z = jax.random.normal(k4, jax.eval_shape(partial(jaxconv.conv_transpose, **adj_kw), y, w).shape)

    @jax.jit
    def run(y, w, bt, z):
        ours = _value_and_grads(partial(jaxconv.conv_transpose, **kw), k2)(y, w, bt)
        theirs = _value_and_grads(partial(ref.conv_transpose, **kw), k2)(y, w, bt)
        lhs = jnp.vdot(jaxconv.conv(z, w, **case["kw"]), y)
        rhs = jnp.vdot(z, jaxconv.conv_transpose(y, w, **adj_kw))
        return ours, theirs, lhs, rhs

    (xt, grads), (xt_ref, grads_ref), lhs, rhs = run(y, w, bt, z)
    _close(xt, xt_ref, 1e-5, "forward")
    for arg, g, g_ref in zip("xwb", grads, grads_ref):
        _close(g, g_ref, 1e-4, f"d{arg}")
    np.testing.assert_allclose(float(lhs), float(rhs), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", ["1d_even_stride2_asym", "2d_perdim", "2d_groups2_s3", "3d_mixed"])
def test_check_grads_order2(name):
    """Finite differences at first and second order, in float64 so that
    check_grads' default (tight) tolerances apply."""
    case = SWEEP[name]
    with jax.enable_x64(True):
        x, w, b, _ = _arrays(case, jnp.float64)
        f = jax.jit(_ours(case))
        check_grads(f, (x, w, b), order=2, modes=["rev"])
        kw = _transpose_case(case)
        y = jax.random.normal(jax.random.PRNGKey(3), jax.eval_shape(f, x, w, b).shape, jnp.float64)
        bt = jnp.ones((case["cin"],), jnp.float64)
        check_grads(jax.jit(partial(jaxconv.conv_transpose, **kw)), (y, w, bt), order=2,
                    modes=["rev"])


@pytest.mark.parametrize("name,terms", [("2d_groups2_s3", None), ("2d_plain", 0)])
def test_direct_bias_gradient_in_the_weight_gradient_pass(monkeypatch, name, terms):
    """With a bias, direct returns dw and db from one pass (weight_and_bias_grad, its own
    custom_vjp map); values, gradients and second order against the reference in float64.
    terms=0: direct's per-tap form (VARIADIC_TERMS exceeded), db summed beside it."""
    from jaxconv._src.algorithms import direct

    if terms is not None:
        monkeypatch.setattr(direct, "VARIADIC_TERMS", terms)
    calls = []
    joint = direct.weight_and_bias_grad
    monkeypatch.setattr(direct, "weight_and_bias_grad",
                        lambda *a, **k: calls.append(1) or joint(*a, **k))
    case = SWEEP[name]
    with jax.enable_x64(True):
        x, w, b, kg = _arrays(case, jnp.float64)
        f = partial(jaxconv.conv, flip=case["flip"], method="direct", **case["kw"])
        y, grads = jax.jit(_value_and_grads(f, kg))(x, w, b)
        assert calls, "the bias gradient did not come from direct's joint pass"
        y_ref, grads_ref = _value_and_grads(_theirs(case), kg)(x, w, b)
        _close(y, y_ref, 1e-12, "forward")
        for arg, g, g_ref in zip("xwb", grads, grads_ref):
            _close(g, g_ref, 1e-12, f"d{arg}")
        check_grads(jax.jit(f), (x, w, b), order=2, modes=["rev"])


def test_second_order_runs_hand_derived_rules():
    """grad of grad equals the reference's grad of grad (reverse over reverse)."""
    case = SWEEP["2d_perdim"]
    x, w, b, _ = _arrays(case)

    def loss(f):
        def inner(x, w):
            gx = jax.grad(lambda x: jnp.sum(jnp.tanh(f(x, w, b))))(x)
            return jnp.sum(gx ** 2)
        return jax.jit(jax.grad(inner, argnums=(0, 1)))

    for a, r in zip(loss(_ours(case))(x, w), loss(_theirs(case))(x, w)):
        _close(a, r, 1e-4, "grad of grad")


@pytest.mark.parametrize("name", ["1d_groups2_same_even", "2d_perdim", "3d_mixed"])
def test_vmap(name):
    case = SWEEP[name]
    x, w, b, _ = _arrays(case)
    xs = jnp.stack([x, 2 * x, -x])
    ws = jnp.stack([w, w + 1, -w])
    f = _ours(case)
    got = jax.jit(jax.vmap(f, in_axes=(0, 0, None)))(xs, ws, b)
    want = jnp.stack([_theirs(case)(xi, wi, b) for xi, wi in zip(xs, ws)])
    _close(got, want, 1e-5, "vmap conv")
    kw = _transpose_case(case)
    ys = jnp.stack([f(xi, w, b) for xi in xs])
    got = jax.jit(jax.vmap(partial(jaxconv.conv_transpose, **kw), in_axes=(0, None)))(ys, w)
    want = jnp.stack([ref.conv_transpose(yi, w, **kw) for yi in ys])
    _close(got, want, 1e-5, "vmap conv_transpose")
    # gradient through vmap
    gv = jax.jit(jax.grad(lambda xs: jnp.sum(jax.vmap(f, in_axes=(0, None, None))(xs, w, b) ** 2)))(xs)
    gr = jax.grad(lambda xs: jnp.sum(jax.vmap(_theirs(case), in_axes=(0, None, None))(xs, w, b) ** 2))(xs)
    _close(gv, gr, 1e-4, "grad through vmap")


@pytest.mark.parametrize("name", ["1d_even_stride2_asym", "2d_groups2_s3", "3d_same_s2"])
def test_bfloat16(name):
    case = SWEEP[name]
    x, w, b, kg = _arrays(case)
    xb, wb, bb = (a.astype(jnp.bfloat16) for a in (x, w, b))
    y, grads = jax.jit(_value_and_grads(_ours(case), kg))(xb, wb, bb)
    y_ref, grads_ref = jax.jit(_value_and_grads(_theirs(case), kg))(x, w, b)
    assert y.dtype == jnp.bfloat16
    _close(y, y_ref, 5e-2, "bf16 forward")
    for arg, g, g_ref, a in zip("xwb", grads, grads_ref, (xb, wb, bb)):
        assert g.dtype == jnp.bfloat16 and g.shape == a.shape
        _close(g, g_ref, 5e-2, f"bf16 d{arg}")
    kw = _transpose_case(case)
    yt = jax.jit(partial(jaxconv.conv_transpose, **kw))(y, wb)
    assert yt.dtype == jnp.bfloat16
    _close(yt, ref.conv_transpose(y.astype(jnp.float32), w, **kw), 5e-2, "bf16 conv_transpose")


@pytest.mark.parametrize("name", ["1d_same_stride3_dil2", "2d_perdim"])
def test_float64(name):
    case = SWEEP[name]
    with jax.enable_x64(True):
        x, w, b, kg = _arrays(case, jnp.float64)
        y, grads = jax.jit(_value_and_grads(_ours(case), kg))(x, w, b)
        y_ref, grads_ref = _value_and_grads(_theirs(case), kg)(x, w, b)
        assert y.dtype == jnp.float64
        _close(y, y_ref, 1e-12, "f64 forward")
        for arg, g, g_ref in zip("xwb", grads, grads_ref):
            assert g.dtype == jnp.float64
            _close(g, g_ref, 1e-12, f"f64 d{arg}")
        check_grads(jax.jit(_ours(case)), (x, w, b), order=2, modes=["rev"])


def test_flip_is_true_convolution():
    """flip=True is scipy.signal.convolve's convolution, no flip its correlate."""
    scipy_signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((9, 8)), rng.standard_normal((3, 4))

    def scipy_window(fn, mode):
        if mode != "same":
            return fn(x, k, mode=mode)
        # An even kernel's extra padding goes at the end (PyTorch, XLA), so "same" is
        # the window full[k//2 : k//2 + D] per axis; scipy starts at (k-1)//2.
        full = fn(x, k, mode="full")
        return full[k.shape[0] // 2:k.shape[0] // 2 + x.shape[0],
                    k.shape[1] // 2:k.shape[1] // 2 + x.shape[1]]

    for mode in ("valid", "full", "same"):
        got = jaxconv.conv(x[None, None], k[None, None], padding=mode, flip=True)[0, 0]
        _close(got, scipy_window(scipy_signal.convolve, mode), 1e-5, f"convolve {mode}")
        got = jaxconv.conv(x[None, None], k[None, None], padding=mode)[0, 0]
        _close(got, scipy_window(scipy_signal.correlate, mode), 1e-5, f"correlate {mode}")


@pytest.mark.parametrize("case", torch_cases("torch_conv.npz"), ids=str)
def test_matches_torch(case):
    """Against outputs recorded from torch.nn.functional (tests/make_torch_conv_fixtures.py)."""
    x, w, b, y = (case[k] for k in "xwby")
    fn = getattr(jaxconv, case.op)
    with jax.enable_x64(True):
        got = fn(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), **case.kwargs)
        assert got.shape == y.shape
        np.testing.assert_allclose(np.asarray(got), y, rtol=1e-10, atol=1e-10)


def test_output_shapes():
    x = jnp.zeros((2, 3, 28, 28))
    assert jaxconv.conv(x, jnp.zeros((20, 3, 5, 5))).shape == (2, 20, 24, 24)
    assert jaxconv.conv(x, jnp.zeros((20, 3, 5, 5)), padding="same", stride=3).shape == (2, 20, 10, 10)
    assert jaxconv.conv(x, jnp.zeros((20, 3, 5, 5)), padding="full").shape == (2, 20, 32, 32)
    assert jaxconv.conv(x, jnp.zeros((20, 3, 4, 4)), padding="same").shape == (2, 20, 28, 28)
    assert jaxconv.conv_transpose(x, jnp.zeros((3, 5, 4, 4)), stride=2, padding=1).shape == (2, 5, 56, 56)
    assert jaxconv.conv_transpose(x, jnp.zeros((3, 5, 3, 3)), stride=2, padding="same").shape == (2, 5, 56, 56)
    y = jaxconv.conv_transpose(x, jnp.zeros((3, 4, 3, 3)), stride=2, padding=1, output_padding=1, groups=1)
    assert y.shape == (2, 4, 56, 56)


def test_accepts_numpy_arguments():
    x = np.ones((1, 1, 5, 5), np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    y = jaxconv.conv(x, w, stride=np.array([1, 2]), padding=np.int64(1), dilation=(np.int32(1), 1))
    assert y.shape == (1, 2, 5, 3)
    y = jaxconv.conv(x, w, padding=np.array([[0, 1], [2, 0]]))
    assert y.shape == (1, 2, 4, 5)
    assert jaxconv.adaptive_avg_pool(x, np.array([2, 3])).shape == (1, 1, 2, 3)


def test_accepts_numpy_and_bias_applies():
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    y = jaxconv.conv(x, w, np.array([0.0, 1.0], np.float32))
    np.testing.assert_array_equal(np.asarray(y).ravel(), [9.0, 10.0])


# ---------------------------------------------------------------- errors

X = jnp.zeros((8, 3, 28, 28))
W = jnp.zeros((20, 3, 5, 5))

CONV_ERRORS = [
    (dict(x=jnp.zeros((28, 28))), ValueError, r"jaxconv\.conv: x must be \(N, C_in, \*spatial\).*got x\.shape=\(28, 28\) \(rank 2\)"),
    (dict(x=jnp.zeros((3, 28, 28))), ValueError, r"jaxconv\.conv: w must be \(C_out, C_in // groups, \*kernel\) with 1 kernel dims to match x"),
    (dict(x=jnp.zeros((1, 1, 2, 2, 2, 2))), ValueError, r"rank 3, 4 or 5.*rank 6"),
    (dict(w=jnp.zeros((20, 3, 5))), ValueError, r"jaxconv\.conv: w must be \(C_out, C_in // groups, \*kernel\).*w\.shape=\(20, 3, 5\)"),
    (dict(w=jnp.zeros((20, 4, 5, 5))), ValueError, r"jaxconv\.conv: x has 3 channels but w expects 4 \(C_in // groups = 4, groups = 1\); x\.shape=\(8, 3, 28, 28\), w\.shape=\(20, 4, 5, 5\)"),
    (dict(groups=2), ValueError, r"groups must divide the input channels; got groups=2 and C_in=3"),
    (dict(x=jnp.zeros((1, 4, 9, 9)), w=jnp.zeros((3, 2, 3, 3)), groups=2), ValueError, r"groups must divide the output channels; got groups=2 and C_out=3"),
    (dict(groups=0), ValueError, r"groups must be >= 1; got groups=0"),
    (dict(groups=1.0), TypeError, r"groups must be an integer; got 1\.0"),
    (dict(w=jnp.zeros((2, 3, 30, 5))), ValueError, r"kernel is larger than the padded input.*kernel \(30, 5\)"),
    (dict(padding=1, dilation=10), ValueError, r"kernel is larger than the padded input"),
    (dict(stride=0), ValueError, r"jaxconv\.conv: stride must be >= 1 in every dim; got stride=0"),
    (dict(stride=(1, -1)), ValueError, r"stride must be >= 1 in every dim; got stride=\(1, -1\) \(dim 1 is -1\)"),
    (dict(dilation=0), ValueError, r"dilation must be >= 1"),
    (dict(stride=(1, 2, 3)), ValueError, r"stride must be an int or a sequence of 2 ints.*length 3"),
    (dict(stride=1.5), TypeError, r"stride must be an int or a sequence of 2 ints; got 1\.5 of type float"),
    (dict(stride=(1, 2.0)), TypeError, r"stride\[1\] must be an integer; got 2\.0"),
    (dict(stride=True), TypeError, r"stride must be an int"),
    (dict(padding=-1), ValueError, r"padding must be non-negative; got padding=-1"),
    (dict(padding=((0, -2), 1)), ValueError, r"padding must be non-negative.*dim 0 is \(0, -2\)"),
    (dict(padding="sam"), ValueError, r"padding must be an int, a sequence of ints or \(lo, hi\) pairs, or one of 'valid', 'same', 'full'; got 'sam'"),
    (dict(padding=(1, 2, 3)), ValueError, r"padding must give one entry per spatial dim \(2\); got \(1, 2, 3\)"),
    (dict(padding=((1, 2, 3), 1)), TypeError, r"padding\[0\] must be an int or a \(lo, hi\) pair of ints"),
    (dict(padding=0.5), TypeError, r"padding must be an int.*got 0\.5 of type float"),
    (dict(b=jnp.zeros((3,))), ValueError, r"jaxconv\.conv: b must have shape \(C_out,\) = \(20,\); got b\.shape=\(3,\)"),
    (dict(x=jnp.zeros((8, 3, 28, 28), jnp.int32), w=jnp.zeros((20, 3, 5, 5), jnp.int32)), TypeError, r"x must have a floating-point dtype; got x\.dtype=int32"),
    (dict(w=jnp.zeros((20, 3, 5, 5), jnp.bfloat16)), TypeError, r"x, w must share one dtype; got x\.dtype=float32, w\.dtype=bfloat16"),
    (dict(x="not an array"), TypeError, r"jaxconv\.conv: x must be an array"),
    (dict(flip=1), TypeError, r"flip must be a bool; got 1"),
]


@pytest.mark.parametrize("kwargs,exc,match", CONV_ERRORS)
def test_conv_errors(kwargs, exc, match):
    kwargs = dict(kwargs)
    x, w = kwargs.pop("x", X), kwargs.pop("w", W)
    with pytest.raises(exc, match=match):
        jaxconv.conv(x, w, **kwargs)


Y = jnp.zeros((8, 3, 10, 10))
WT = jnp.zeros((3, 4, 3, 3))

CONV_TRANSPOSE_ERRORS = [
    (dict(w=jnp.zeros((4, 3, 3, 3))), ValueError, r"jaxconv\.conv_transpose: x has 3 channels but w expects 4 \(w is \(C_in, C_out // groups, \*k\)\)"),
    (dict(w=jnp.zeros((3, 4, 3))), ValueError, r"jaxconv\.conv_transpose: w must be \(C_in, C_out // groups, \*kernel\)"),
    (dict(stride=2, output_padding=2), ValueError, r"output_padding must be smaller than stride or dilation in every dim; got output_padding=\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"),
    (dict(output_padding=1), ValueError, r"output_padding must be smaller than stride or dilation"),
    (dict(output_padding=-1), ValueError, r"output_padding must be >= 0"),
    (dict(groups=2), ValueError, r"jaxconv\.conv_transpose: groups must divide the input channels; got groups=2 and C_in=3"),
    (dict(b=jnp.zeros((3,))), ValueError, r"jaxconv\.conv_transpose: b must have shape \(C_out,\) = \(4,\); got b\.shape=\(3,\)"),
    (dict(padding=7), ValueError, r"the padding removes the whole output"),
    (dict(padding="same", stride=2, output_padding=1), ValueError, r"padding='same' fixes the output size.*output_padding must be 0"),
    (dict(padding="bogus"), ValueError, r"jaxconv\.conv_transpose: padding must be .*got 'bogus'"),
    (dict(stride=0), ValueError, r"jaxconv\.conv_transpose: stride must be >= 1"),
]


@pytest.mark.parametrize("kwargs,exc,match", CONV_TRANSPOSE_ERRORS)
def test_conv_transpose_errors(kwargs, exc, match):
    kwargs = dict(kwargs)
    y, w = kwargs.pop("x", Y), kwargs.pop("w", WT)
    with pytest.raises(exc, match=match):
        jaxconv.conv_transpose(y, w, **kwargs)


def test_errors_raised_under_jit_and_vmap():
    """Shape errors surface as our errors while tracing, not as XLA errors."""
    with pytest.raises(ValueError, match=r"jaxconv\.conv: x has 3 channels but w expects 4"):
        jax.jit(lambda x, w: jaxconv.conv(x, w))(X, jnp.zeros((20, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"jaxconv\.conv: w must be .* with 1 kernel dims to match x"):
        jax.vmap(lambda x: jaxconv.conv(x, W))(X)  # under vmap x is (3, 28, 28): 1-d


def test_forward_mode_is_unavailable():
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda x: jaxconv.conv(x, W), (X,), (X,))
