"""``jaxconv.compiler_options``: per-program XLA options, and the Trainer's use of them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxconv
from jaxconv import train
from jaxconv._src import compile_options as co
from jaxconv.models import lenet


def test_options_by_backend_and_host(monkeypatch):
    for backend in ("gpu", "cuda", "rocm", "tpu", "METAL"):
        assert jaxconv.compiler_options(backend) == {}
    monkeypatch.setattr(co, "host_has_avx512", lambda: True)
    assert jaxconv.compiler_options("cpu") == {"xla_cpu_prefer_vector_width": 512}
    assert jaxconv.compiler_options("CPU") == {"xla_cpu_prefer_vector_width": 512}
    opts = jaxconv.compiler_options("cpu")
    opts["xla_cpu_prefer_vector_width"] = 128  # a new dict each call
    assert co.CPU_VECTOR_WIDTH == {"xla_cpu_prefer_vector_width": 512}
    default = {"xla_cpu_prefer_vector_width": 512} if jax.default_backend() == "cpu" else {}
    assert jaxconv.compiler_options() == default
    monkeypatch.setattr(co, "host_has_avx512", lambda: False)
    assert jaxconv.compiler_options("cpu") == {}


def test_avx512_detection(monkeypatch, tmp_path):
    assert isinstance(co.host_has_avx512(), bool)
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    monkeypatch.setattr(co, "CPUINFO", str(info))
    co.host_has_avx512.cache_clear()
    try:
        monkeypatch.setattr(co.platform, "machine", lambda: "x86_64")
        assert co.host_has_avx512() is True
        co.host_has_avx512.cache_clear()
        info.write_text("processor : 0\nflags\t\t: fpu sse avx2 avx512_vnni\n")
        assert co.host_has_avx512() is False  # avx512f itself is required
        co.host_has_avx512.cache_clear()
        monkeypatch.setattr(co, "CPUINFO", str(tmp_path / "missing"))
        assert co.host_has_avx512() is False
        co.host_has_avx512.cache_clear()
        info.write_text("flags\t\t: avx512f\n")
        monkeypatch.setattr(co, "CPUINFO", str(info))
        monkeypatch.setattr(co.platform, "machine", lambda: "arm64")
        assert co.host_has_avx512() is False  # x86-64 only
    finally:
        co.host_has_avx512.cache_clear()


def test_bad_backend_is_a_clear_error():
    with pytest.raises(TypeError, match=r"jaxconv.compiler_options: backend must be a platform "
                                        r"name \(str\) or None; got 3"):
        jaxconv.compiler_options(3)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU compile option")
def test_xla_takes_the_cpu_option_and_results_agree():
    """XLA accepts the option (an unknown name is an error) and only the float
    summation order may change: a grouped convolution's value and gradients."""
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (2, 8, 9, 9))
    w = jax.random.normal(kw, (8, 2, 3, 3))

    def f(x, w):
        return jnp.sum(jnp.tanh(jaxconv.conv(x, w, padding=1, groups=4)) ** 2)

    vg = jax.value_and_grad(f, argnums=(0, 1))
    plain = vg(x, w)
    wide = jax.jit(vg, compiler_options=dict(co.CPU_VECTOR_WIDTH))(x, w)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(wide)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def _trainer(**kw):
    return train.Trainer(lambda p, x: lenet.apply(p, x, "lenet5"), optax.sgd(0.1), batch_size=4,
                         devices=1, **kw)


def test_trainer_compiles_with_the_options():
    platform = jax.local_devices()[0].platform
    assert _trainer().compiler_options == jaxconv.compiler_options(platform)
    assert _trainer(compiler_options={}).compiler_options == {}
    # the options reach XLA: an unknown one fails the compile
    tr = _trainer(compiler_options={"xla_no_such_option": 1})
    state = tr.init_state(lenet.init(jax.random.PRNGKey(0), "lenet5"), seed=0)
    x, y = jnp.zeros((4, 1, 28, 28)), jnp.zeros(4, "int32")
    with pytest.raises(Exception, match="xla_no_such_option"):
        tr.train_epoch(state, x, y)
    for bad in ([("a", 1)], {1: 2}, "xla_cpu_prefer_vector_width"):
        with pytest.raises(TypeError, match=r"Trainer: compiler_options must be a mapping of XLA "
                                            r"option names \(str\) to values, or None; got"):
            _trainer(compiler_options=bad)
