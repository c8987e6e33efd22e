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
    big = np.concatenate([np.asarray(init(jax.random.PRNGKey(i), shape), np.float64).ravel()
                          for i in range(40)])
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
    logits = lenet.apply(p, jnp.zeros((3, 1, 28, 28)))
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
