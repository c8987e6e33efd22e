"""jaxconv.nn (initialisers, layers, sequential) and jaxconv.models.lenet."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxconv
from jaxconv import nn
from jaxconv.models import lenet

KEY = jax.random.PRNGKey(0)


# --------------------------------------------------------------------------
# Initialisers
# --------------------------------------------------------------------------


def test_compute_fans_counts_receptive_field():
    assert nn.compute_fans((20, 1, 5, 5)) == (25, 500)
    assert nn.compute_fans((50, 20, 5, 5)) == (500, 1250)
    assert nn.compute_fans((500, 800)) == (800, 500)
    assert nn.compute_fans((7,)) == (7, 7)
    with pytest.raises(ValueError, match=r"compute_fans: shape must have at least 1 dim"):
        nn.compute_fans(())


@pytest.mark.parametrize("shape", [(50, 20, 5, 5), (500, 800)])
def test_glorot_uniform_bound_and_spread(shape):
    fan_in, fan_out = nn.compute_fans(shape)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    w = np.asarray(nn.glorot_uniform(KEY, shape))
    assert w.shape == shape and w.dtype == np.float32
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # fills the interval
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.02)  # U(-a, a) has std a/sqrt(3)
    w4 = np.asarray(nn.glorot_uniform_sigmoid(KEY, shape))
    np.testing.assert_allclose(w4, 4 * w, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("init,scale,mode", [
    (nn.glorot_uniform, 1.0, "fan_avg"), (nn.glorot_uniform_sigmoid, 16.0, "fan_avg"),
    (nn.he_normal, 2.0, "fan_in")])
@pytest.mark.parametrize("shape", [(8, 64, 3), (64, 8, 3), (16, 4, 3, 2, 2)])
def test_initializer_variance_uses_channels_first_fans(init, scale, mode, shape):
    """Each initialiser has variance scale / fan with the fans of compute_fans
    (C_in on axis 1, C_out on axis 0, the receptive field counted): swapping
    C_in and C_out changes fan_in, and a 3-d kernel counts all three taps."""
    fan_in, fan_out = nn.compute_fans(shape)
    fan = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2
    keys = jax.random.split(KEY, 40)
    big = np.asarray(jax.vmap(lambda k: init(k, shape))(keys), np.float64).ravel()
    np.testing.assert_allclose(big.std(), math.sqrt(scale / fan), rtol=0.03)
    if mode == "fan_avg":  # uniform: bounded by sqrt(3 * variance) and fills the interval
        bound = math.sqrt(3 * scale / fan)
        assert np.abs(big).max() <= bound and np.abs(big).max() > 0.99 * bound
    else:  # untruncated normal: tails beyond 3 std exist
        assert np.abs(big).max() > 3.5 * math.sqrt(scale / fan)


def test_he_normal_std_and_zeros():
    shape = (64, 32, 3, 3)
    w = np.asarray(nn.he_normal(KEY, shape))
    np.testing.assert_allclose(w.std(), math.sqrt(2 / (32 * 9)), rtol=0.03)
    assert abs(w.mean()) < 0.01
    z = nn.zeros(KEY, (3, 4), jnp.float16)
    assert z.dtype == jnp.float16 and not np.asarray(z).any()


def test_initializer_errors():
    with pytest.raises(TypeError, match=r"glorot_uniform: shape must be a tuple of ints; got 'ab'"):
        nn.glorot_uniform(KEY, "ab")
    with pytest.raises(ValueError, match=r"he_normal: shape must have non-negative dims"):
        nn.he_normal(KEY, (3, -1))
    with pytest.raises(TypeError, match=r"glorot_uniform: dtype must be floating point; got dtype=int32"):
        nn.glorot_uniform(KEY, (3, 3), jnp.int32)
    with pytest.raises(TypeError, match=r"he_normal: key must be a jax PRNG key .*got int"):
        nn.he_normal(0, (3, 3))
    with pytest.raises(ValueError, match=r"glorot_uniform: shape must have at least 2 dims"):
        nn.glorot_uniform(KEY, (7,))


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------


def test_conv_layer_matches_op():
    layer = nn.Conv(3, 4, (3, 3), stride=2, padding=1)
    p = layer.init(KEY)
    assert {k: v.shape for k, v in p.items()} == {"w": (4, 3, 3, 3), "b": (4,)}
    assert not np.asarray(p["b"]).any()
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 9, 9))
    y = layer.apply(p, x)
    np.testing.assert_allclose(y, jaxconv.conv(x, p["w"], p["b"], stride=2, padding=1), rtol=1e-6)
    assert layer.output_shape((2, 3, 9, 9)) == (2, 4, 5, 5)
    assert nn.Conv(1, 2, 3, bias=False).init(KEY).keys() == {"w"}
    assert nn.Conv(2, 4, (3,)).init(KEY)["w"].shape == (4, 2, 3)  # 1-d
    hash(layer)  # static configuration: usable as a jit static argument


def test_dense_layer():
    layer = nn.Dense(5, 3)
    p = layer.init(KEY)
    assert p["w"].shape == (3, 5) and p["b"].shape == (3,)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 5))
    np.testing.assert_allclose(layer.apply(p, x), x @ p["w"].T + p["b"], rtol=1e-6)


def test_parameter_free_layers():
    x = jnp.arange(2 * 3 * 4 * 4, dtype=jnp.float32).reshape(2, 3, 4, 4) / 10 - 4
    np.testing.assert_allclose(nn.MaxPool(2).apply({}, x), jaxconv.max_pool(x, 2))
    np.testing.assert_allclose(nn.AvgPool(2, stride=1).apply(None, x), jaxconv.avg_pool(x, 2, stride=1))
    assert nn.Flatten().apply({}, x).shape == (2, 48)
    np.testing.assert_allclose(nn.Tanh().apply({}, x), jnp.tanh(x))
    np.testing.assert_allclose(nn.Sigmoid().apply({}, x), jax.nn.sigmoid(x))
    np.testing.assert_allclose(nn.ReLU().apply({}, x), jnp.maximum(x, 0))
    for layer in (nn.MaxPool(2), nn.Flatten(), nn.Tanh()):
        assert layer.init(KEY) == {} and not layer.has_params


def test_layer_errors():
    with pytest.raises(ValueError, match=r"nn.Conv: out_features must be a positive int; got out_features=0"):
        nn.Conv(1, 0, 5)
    with pytest.raises(TypeError, match=r"nn.Conv: kernel must be an int or a tuple of 1-3 ints"):
        nn.Conv(1, 2, "5")
    with pytest.raises(ValueError, match=r"nn.Conv: stride must be >= 1"):
        nn.Conv(1, 2, 5, stride=0)
    with pytest.raises(ValueError, match=r"nn.Conv: groups must divide the input channels; got groups=2 and C_in=3; in_features=3, out_features=4"):
        nn.Conv(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match=r"nn.Dense: in_features must be a positive int; got 2.5"):
        nn.Dense(2.5, 3)
    with pytest.raises(ValueError, match=r"nn.MaxPool: window must be >= 1 in every dim"):
        nn.MaxPool(0)
    dense = nn.Dense(400, 10)
    p = dense.init(KEY)
    with pytest.raises(ValueError, match=r"Dense.apply: x must be \(\.\.\., in_features\) with "
                                         r"in_features=400; got x.shape=\(2, 16, 5, 5\) \(flatten"):
        dense.apply(p, jnp.zeros((2, 16, 5, 5)))
    with pytest.raises(ValueError, match=r"Dense.apply: params must have keys \['b', 'w'\]; got keys \['w'\]"):
        dense.apply({"w": p["w"]}, jnp.zeros((2, 400)))
    with pytest.raises(ValueError, match=r"Dense.apply: params\['w'\] must have shape \(10, 400\); got shape \(400, 10\)"):
        dense.apply({"w": p["w"].T, "b": p["b"]}, jnp.zeros((2, 400)))
    with pytest.raises(ValueError, match=r"Tanh.apply: this layer has no parameters"):
        nn.Tanh().apply(p, jnp.zeros(3))
    conv = nn.Conv(3, 4, 3)
    with pytest.raises(ValueError, match=r"jaxconv.conv: x has 1 channels but w expects 3"):
        conv.apply(conv.init(KEY), jnp.zeros((1, 1, 8, 8)))


# --------------------------------------------------------------------------
# sequential
# --------------------------------------------------------------------------


def test_sequential_params_names_and_grad():
    net = nn.sequential(("c", nn.Conv(1, 2, 3)), nn.ReLU(), nn.Flatten(), nn.Dense(2 * 6 * 6, 3),
                        nn.Dense(3, 2))
    assert net.names == ("c", "relu1", "flatten1", "dense1", "dense2")
    p = net.init(KEY)
    assert jax.tree.map(jnp.shape, p) == {
        "c": {"w": (2, 1, 3, 3), "b": (2,)},
        "dense1": {"w": (3, 72), "b": (3,)},
        "dense2": {"w": (2, 3), "b": (2,)},
    }
    assert nn.count_params(p) == 20 + 219 + 8
    assert nn.count_params(jax.eval_shape(net.init, KEY)) == 247
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 1, 8, 8))
    y = jax.jit(net.apply)(p, x)
    assert y.shape == net.output_shape(x.shape) == (4, 2)
    g = jax.grad(lambda q: jnp.sum(net.apply(q, x) ** 2))(p)
    assert jax.tree.structure(g) == jax.tree.structure(p)
    assert "total" in net.summary((1, 1, 8, 8)) and "247" in net.summary((1, 1, 8, 8))
    assert net["c"] == nn.Conv(1, 2, 3)


def test_sequential_errors():
    with pytest.raises(ValueError, match=r"sequential: expected at least one layer"):
        nn.sequential()
    with pytest.raises(ValueError, match=r"sequential: duplicate layer name 'a'"):
        nn.sequential(("a", nn.Tanh()), ("a", nn.ReLU()))
    with pytest.raises(TypeError, match=r"sequential: layer 1 must be a jaxconv.nn layer or a \(name, layer\) pair"):
        nn.sequential(nn.Tanh(), jnp.tanh)
    with pytest.raises(ValueError, match=r"layer names must be non-empty and contain no '/'"):
        nn.sequential(("a/b", nn.Tanh()))
    net = nn.sequential(("fc", nn.Dense(3, 2)))
    with pytest.raises(ValueError, match=r"Sequential.apply: params must have keys \['fc'\] .*got keys \['fc2'\]"):
        net.apply({"fc2": {}}, jnp.zeros((1, 3)))
    with pytest.raises(KeyError, match=r"no layer named 'x'"):
        net["x"]


# --------------------------------------------------------------------------
# LeNet
# --------------------------------------------------------------------------

LENET5_SHAPES = {
    "conv1": {"w": (6, 1, 5, 5), "b": (6,)},
    "conv2": {"w": (16, 6, 5, 5), "b": (16,)},
    "fc1": {"w": (120, 400), "b": (120,)},
    "fc2": {"w": (84, 120), "b": (84,)},
    "fc3": {"w": (10, 84), "b": (10,)},
}
TUTORIAL_SHAPES = {
    "conv1": {"w": (20, 1, 5, 5), "b": (20,)},
    "conv2": {"w": (50, 20, 5, 5), "b": (50,)},
    "fc1": {"w": (500, 800), "b": (500,)},
    "fc2": {"w": (10, 500), "b": (10,)},
}


@pytest.mark.parametrize("variant,count,shapes", [("lenet5", 61_706, LENET5_SHAPES),
                                                  ("tutorial", 431_080, TUTORIAL_SHAPES)])
def test_lenet_parameter_counts_and_shapes(variant, count, shapes):
    p = lenet.init(KEY, variant)
    assert nn.count_params(p) == count
    assert jax.tree.map(jnp.shape, p) == shapes
    assert lenet.infer_variant(p) == variant
    logits = jax.jit(lenet.apply)(p, jnp.zeros((3, 1, 28, 28)))
    assert logits.shape == (3, 10) and logits.dtype == jnp.float32


def test_lenet_intermediate_shapes():
    s = lenet.model("lenet5").summary((1, 1, 28, 28))
    for shape in ["(1, 6, 28, 28)", "(1, 6, 14, 14)", "(1, 16, 10, 10)", "(1, 16, 5, 5)", "(1, 400)", "61,706"]:
        assert shape in s
    s = lenet.model("tutorial").summary((1, 1, 28, 28))
    for shape in ["(1, 20, 24, 24)", "(1, 20, 12, 12)", "(1, 50, 8, 8)", "(1, 50, 4, 4)", "(1, 800)", "431,080"]:
        assert shape in s


def test_lenet_errors():
    with pytest.raises(ValueError, match=r"lenet.init: variant must be one of 'lenet5', 'tutorial'; got 'lenet7'"):
        lenet.init(KEY, "lenet7")
    p = lenet.init(KEY, "lenet5")
    with pytest.raises(ValueError, match=r"lenet.apply: x must be \(N, 1, 28, 28\) images; got x.shape=\(2, 28, 28\)"):
        lenet.apply(p, jnp.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match=r"lenet.apply: params match no LeNet variant"):
        lenet.apply({"conv1": p["conv1"]}, jnp.zeros((2, 1, 28, 28)))


# --------------------------------------------------------------------------
# Construction-time validation and the rank of a layer
# --------------------------------------------------------------------------

BAD_LAYERS = [
    (lambda: nn.MaxPool(3, padding=2), ValueError, r"nn.MaxPool: padding must be at most half the window"),
    (lambda: nn.MaxPool((2, 2), stride=(1, 1, 1)), ValueError, r"nn.MaxPool: the per-dim options must agree on the number of spatial dims"),
    (lambda: nn.MaxPool(2, ceil_mode=1), TypeError, r"nn.MaxPool: ceil_mode must be a bool"),
    (lambda: nn.AvgPool(2, count_include_pad="yes"), TypeError, r"nn.AvgPool: count_include_pad must be a bool"),
    (lambda: nn.AvgPool(2, divisor=0), ValueError, r"nn.AvgPool: divisor must be >= 1"),
    (lambda: nn.AvgPool(2, padding="full"), ValueError, r"nn.AvgPool: padding must be .* one of 'valid', 'same'; got 'full'"),
    (lambda: nn.LpPool(0, 2), ValueError, r"nn.LpPool: p must be a finite number > 0"),
    (lambda: nn.LpPool(2, 2, stride=0), ValueError, r"nn.LpPool: stride must be >= 1"),
    (lambda: nn.WeightedPool(3, padding=2), ValueError, r"nn.WeightedPool: padding must be at most half"),
    (lambda: nn.AdaptiveAvgPool(0), ValueError, r"nn.AdaptiveAvgPool: output_size cannot be produced"),
    (lambda: nn.AdaptiveMaxPool((2, 2.5)), TypeError, r"nn.AdaptiveMaxPool: output_size\[1\] must be an integer"),
    (lambda: nn.AdaptiveMaxPool((2, 2), ndim=3), ValueError, r"nn.AdaptiveMaxPool: the per-dim options must agree"),
    (lambda: nn.Upsample(0), ValueError, r"nn.Upsample: factor must be >= 1"),
    (lambda: nn.GlobalAvgPool(ndim=4), ValueError, r"nn.GlobalAvgPool: ndim must be 1, 2 or 3; got ndim=4"),
    (lambda: nn.Conv(1, 2, 3, padding_mode="mirror"), ValueError, r"nn.Conv: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular'; got 'mirror'"),
    (lambda: nn.Conv(1, 2, 3, method=3), TypeError, r"nn.Conv: method must be an algorithm name or a mapping"),
    (lambda: nn.Conv(1, 2, 3, method="bogus"), ValueError, r"nn\.Conv: method must be 'auto' or one of .*got 'bogus'"),
    (lambda: nn.Conv(1, 2, 3, precision="ultra"), ValueError, r"nn.Conv: precision must be None, a jax.lax.Precision or one of .*got 'ultra'"),
    (lambda: nn.ConvTranspose(1, 2, 3, precision=3), TypeError, r"nn.ConvTranspose: precision must be None, a jax.lax.Precision or a string"),
    (lambda: nn.Conv(1, 2, (3, 3), ndim=3), ValueError, r"nn.Conv: the per-dim options must agree .*ndim=3, kernel=\(3, 3\)"),
    (lambda: nn.Conv(1, 2, 3, padding="half"), ValueError, r"nn.Conv: padding must be"),
    (lambda: nn.Conv(1, 2, 3, w_init="glorot"), TypeError, r"nn.Conv: w_init must be an initialiser"),
    (lambda: nn.Conv(1, 2, 3, dtype=jnp.int32), TypeError, r"nn.Conv: dtype must be floating point"),
    (lambda: nn.ConvTranspose(2, 2, 3, stride=2, output_padding=2), ValueError, r"nn.ConvTranspose: output_padding must be smaller than stride or dilation"),
    (lambda: nn.ConvTranspose(3, 2, 3, groups=2), ValueError, r"nn.ConvTranspose: groups must divide the input channels"),
    (lambda: nn.ConvTranspose(2, 2, 3, bias=1), TypeError, r"nn.ConvTranspose: bias must be a bool"),
    (lambda: nn.Dense(2, 3, bias=None), TypeError, r"nn.Dense: bias must be a bool"),
]


@pytest.mark.parametrize("i", range(len(BAD_LAYERS)))
def test_layers_validate_every_option_at_construction(i):
    make, exc, match = BAD_LAYERS[i]
    with pytest.raises(exc, match=match):
        make()


def test_layer_and_op_raise_the_same_error_type():
    x = jnp.zeros((1, 1, 4, 4))
    for make_layer, call_op in [(lambda: nn.MaxPool(2.5), lambda: jaxconv.max_pool(x, 2.5)),
                                (lambda: nn.AvgPool(2, stride=0), lambda: jaxconv.avg_pool(x, 2, stride=0)),
                                (lambda: nn.Upsample("2"), lambda: jaxconv.upsample(x, "2"))]:
        with pytest.raises((TypeError, ValueError)) as layer_err:
            make_layer()
        with pytest.raises((TypeError, ValueError)) as op_err:
            call_op()
        assert layer_err.type is op_err.type
        # The same argument is named, with the same received value.
        layer_msg, op_msg = (str(e.value).split(": ", 1)[1] for e in (layer_err, op_err))
        assert layer_msg.split(" must ")[0] == op_msg.split(" must ")[0]
        assert layer_msg.split("; got ")[1] == op_msg.split("; got ")[1]


def test_int_options_broadcast_and_rank_comes_from_tuples_or_ndim():
    assert nn.Conv(1, 2, 3).param_shapes["w"] == (2, 1, 3, 3)  # every option an int: 2-d
    assert nn.Conv(1, 2, 3, ndim=1).param_shapes["w"] == (2, 1, 3)
    assert nn.Conv(1, 2, 3, ndim=3).param_shapes["w"] == (2, 1, 3, 3, 3)
    assert nn.Conv(1, 2, 3, stride=(1, 2, 1)).param_shapes["w"] == (2, 1, 3, 3, 3)
    assert nn.ConvTranspose(1, 2, (2,)).param_shapes["w"] == (1, 2, 2)
    conv = nn.Conv(1, 2, (3, 1), stride=2, padding=[1, 0])
    assert (conv.stride, conv.padding, conv.ndim) == ((2, 2), ((1, 1), (0, 0)), 2)
    hash(conv)  # lists were normalised to tuples
    # A parameter-free layer given only ints applies to any rank ...
    for shape in [(1, 2, 8), (1, 2, 8, 8), (1, 2, 4, 4, 4)]:
        x = jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape)
        np.testing.assert_array_equal(nn.MaxPool(2).apply({}, x), jaxconv.max_pool(x, 2))
    # ... and one whose rank is fixed says so when the input does not match.
    with pytest.raises(ValueError, match=r"nn.MaxPool.apply: x must have 2 spatial dims"):
        nn.MaxPool((2, 2)).apply({}, jnp.zeros((1, 2, 8)))
    with pytest.raises(ValueError, match=r"nn.Upsample.apply: x must have 1 spatial dims"):
        nn.Upsample(2, ndim=1).apply({}, jnp.zeros((1, 2, 8, 8)))


# --------------------------------------------------------------------------
# The toolbox layers against their ops
# --------------------------------------------------------------------------


def test_conv_transpose_layer_matches_op():
    layer = nn.ConvTranspose(4, 6, (3, 2), stride=2, padding=1, output_padding=1, groups=2)
    p = layer.init(KEY)
    assert jax.tree.map(jnp.shape, p) == {"w": (4, 3, 3, 2), "b": (6,)}
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 5, 4))
    want = jaxconv.conv_transpose(x, p["w"], p["b"], stride=2, padding=1, output_padding=1,
                                  groups=2)
    np.testing.assert_allclose(layer.apply(p, x), want, rtol=1e-6)
    assert want.shape == (2, 6, 10, 7)  # (D-1)*2 - 2 + k + 1


def test_pool_and_resampling_layers():
    """Each layer against a plain-numpy statement of what it computes (one jit for all)."""
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 3, 6, 6))
    wp = nn.WeightedPool(3, stride=1, padding=1)
    layers = {"lp": nn.LpPool(2, 2), "aavg": nn.AdaptiveAvgPool((2, 3)),
              "amax": nn.AdaptiveMaxPool((None, 2)), "gavg": nn.GlobalAvgPool(),
              "gmax": nn.GlobalMaxPool(), "up": nn.Upsample((2, 1))}
    p = wp.init(KEY)
    assert wp.has_params and p["w"].shape == (3, 3)

    @jax.jit
    def run(x, p):
        out = {k: layer.apply({}, x) for k, layer in layers.items()}
        out["wp"] = wp.apply(p, x)
        out["wp_grad"] = jax.grad(lambda q: jnp.sum(wp.apply(q, x) * x))(p)["w"]
        return out

    got = run(x, p)
    xn = np.asarray(x, np.float64)
    blocks = lambda a, bh, bw: a.reshape(2, 3, a.shape[2] // bh, bh, a.shape[3] // bw, bw)
    padded = np.pad(xn, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = {
        "lp": np.sqrt((blocks(xn, 2, 2) ** 2).sum((3, 5))),
        "aavg": blocks(xn, 3, 2).mean((3, 5)),
        "amax": blocks(xn, 1, 3).max((3, 5)),
        "gavg": xn.mean((2, 3)),
        "gmax": xn.max((2, 3)),
        "up": np.repeat(xn, 2, axis=2),
        # A uniform window is average pooling with the zero padding counted.
        "wp": sum(padded[:, :, i:i + 6, j:j + 6] for i in range(3) for j in range(3)) / 9,
    }
    for k, w in want.items():
        np.testing.assert_allclose(got[k], w, rtol=1e-5, atol=1e-5, err_msg=k)
    assert got["wp_grad"].shape == (3, 3) and np.isfinite(np.asarray(got["wp_grad"])).all()
    for layer in layers.values():
        assert not layer.has_params and layer.init(KEY) == {}


def test_conv_passes_non_default_options_to_the_op(monkeypatch):
    """padding_mode / method / precision reach jaxconv.conv only when not the default
    (so the op's own defaults apply otherwise)."""
    calls = []

    def record(x, w, b=None, **kwargs):
        calls.append(kwargs)
        return x

    from jaxconv.nn import conv as conv_module
    monkeypatch.setattr(conv_module, "_conv", record)
    monkeypatch.setattr(conv_module, "_conv_transpose", record)
    x = jnp.zeros((1, 1, 5, 5))
    for layer in (nn.Conv(1, 1, 3), nn.ConvTranspose(1, 1, 3)):
        layer.apply(layer.init(KEY), x)
    assert [sorted(set(c) - {"stride", "padding", "dilation", "groups", "output_padding"})
            for c in calls] == [[], []]
    calls.clear()
    hi = jax.lax.Precision.HIGHEST
    layer = nn.Conv(1, 1, 3, padding_mode="circular", method={"forward": "xla"}, precision="highest")
    layer.apply(layer.init(KEY), x)
    nn.ConvTranspose(1, 1, 3, method="xla").apply(layer.init(KEY), x)
    assert calls[0]["padding_mode"] == "circular" and calls[0]["precision"] is hi
    assert calls[0]["method"] == {"forward": "xla"}
    assert calls[1]["method"] == "xla" and "precision" not in calls[1]
    hash(layer)  # a mapping method is stored hashably


def test_unet_trains():
    """A small U-Net (conv, pool, transposed conv, skip concatenation) lowers the loss
    of a synthetic segmentation task (mask = where a smoothed image is positive)."""
    import optax

    enc = nn.sequential(nn.Conv(1, 4, 3, padding=1), nn.ReLU())
    down = nn.sequential(nn.MaxPool(2), nn.Conv(4, 8, 3, padding=1), nn.ReLU())
    up = nn.ConvTranspose(8, 4, 2, stride=2)
    head = nn.Conv(8, 1, 1)
    parts = {"enc": enc, "down": down, "up": up, "head": head}

    def unet(params, x):
        e = enc.apply(params["enc"], x)
        u = up.apply(params["up"], down.apply(params["down"], e))
        return head.apply(params["head"], jnp.concatenate([e, u], axis=1))

    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    x = jax.random.normal(k1, (8, 1, 16, 16))
    smooth = jaxconv.avg_pool(x, 3, stride=1, padding=1)
    y = (smooth > 0).astype(jnp.float32)
    params = {name: part.init(jax.random.fold_in(k2, i)) for i, (name, part) in enumerate(parts.items())}
    opt = optax.sgd(0.5)
    state = opt.init(params)

    def loss_fn(p):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(unet(p, x), y))

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(loss_fn)(p)
        updates, s = opt.update(g, s)
        return optax.apply_updates(p, updates), s, loss

    losses = []
    for _ in range(15):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert unet(params, x).shape == (8, 1, 16, 16)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses


# --------------------------------------------------------------------------
# Locally connected, tiled and separable layers
# --------------------------------------------------------------------------


def test_unshared_layers_shapes_init_and_errors():
    lc = nn.LocallyConnected(3, 4, 3, input_size=(8, 7), stride=(1, 2), padding=1)
    assert lc.out_spatial == (8, 4)
    p = lc.init(KEY)
    assert jax.tree.map(jnp.shape, p) == {"w": (8, 4, 4, 3, 3, 3), "b": (4, 8, 4)}
    w = np.asarray(p["w"])
    # Each position's kernel is one glorot draw with the fans of a (4, 3, 3, 3) kernel.
    bound = math.sqrt(6 / ((3 + 4) * 9))
    assert np.abs(w).max() <= bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.05)
    assert not np.allclose(w[0, 0], w[0, 1])
    assert jax.tree.map(jnp.shape, nn.TiledConv(2, 5, (3,), tile=4).init(KEY)) == {
        "w": (4, 5, 2, 3), "b": (5,)}
    sep = nn.SeparableConv(3, 8, (3, 3, 3), depth_multiplier=2, bias=False)
    assert jax.tree.map(jnp.shape, sep.init(KEY)) == {
        "w_depthwise": (6, 1, 3, 3, 3), "w_pointwise": (8, 6, 1, 1, 1)}
    with pytest.raises(ValueError, match=r"nn.LocallyConnected: the \(dilated\) kernel is larger than the padded input"):
        nn.LocallyConnected(1, 1, 5, input_size=3)
    with pytest.raises(TypeError, match=r"input_size"):
        nn.LocallyConnected(1, 1, 3)
    with pytest.raises(ValueError, match=r"nn.TiledConv: tile must be >= 1"):
        nn.TiledConv(1, 1, 3, tile=0)
    with pytest.raises(ValueError, match=r"nn.SeparableConv: depth_multiplier must be a positive int"):
        nn.SeparableConv(1, 1, 3, depth_multiplier=0)


def test_unshared_layers_apply_their_ops():
    """Each layer's apply is its functional op on the same params and options."""
    x = jax.random.normal(KEY, (2, 2, 6, 6))
    lc = nn.LocallyConnected(2, 3, 3, input_size=6, dilation=2, padding=1)
    p = lc.init(KEY)
    np.testing.assert_array_equal(
        lc.apply(p, x), jaxconv.local_conv(x, p["w"], p["b"], dilation=2, padding=1))
    tc = nn.TiledConv(2, 3, 3, tile=(2, 1), stride=2, padding="same")
    p = tc.init(KEY)
    np.testing.assert_array_equal(
        tc.apply(p, x), jaxconv.tiled_conv(x, p["w"], p["b"], tile=(2, 1), stride=2,
                                           padding="same"))
    sc = nn.SeparableConv(2, 3, 3, padding="same", depth_multiplier=2)
    p = sc.init(KEY)
    np.testing.assert_array_equal(
        sc.apply(p, x), jaxconv.depthwise_separable_conv(
            x, p["w_depthwise"], p["w_pointwise"], p["b"], padding="same"))


def test_tiled_conv_layer_with_tile_1_is_conv():
    x = jax.random.normal(KEY, (2, 2, 7, 6))
    tc = nn.TiledConv(2, 3, (3, 2), tile=1, stride=(2, 1), padding=1)
    conv = nn.Conv(2, 3, (3, 2), stride=(2, 1), padding=1)
    p = tc.init(KEY)
    assert p["w"].shape == (1, 1, 3, 2, 3, 2)
    np.testing.assert_allclose(tc.apply(p, x), conv.apply({"w": p["w"][0, 0], "b": p["b"]}, x),
                               rtol=1e-5, atol=1e-5)
