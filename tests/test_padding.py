"""pad (zeros / reflect / replicate / circular) and conv(padding_mode=...):
values and gradients against PyTorch (golden, tests/make_torch_toolbox_fixtures.py) and
jnp.pad, the adjoint identity, order-2 check_grads, jit / vmap / dtypes, errors."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import torch_cases
from jax.test_util import check_grads

import jaxconv
from jaxconv._src import reference as ref
from jaxconv._src.padding import _pad_t, _PadConfig, source_index

TORCH = torch_cases("torch_toolbox.npz")
MODES = ["zeros", "reflect", "replicate", "circular"]


def _close(a, b, tol=1e-10, what=""):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("case", [c for c in TORCH if c.op == "pad"], ids=str)
def test_pad_matches_torch(case):
    """Values and the input gradient (the folded-back cotangent) match F.pad."""
    with jax.enable_x64(True):
        y, vjp = jax.vjp(lambda x: jaxconv.pad(x, **case.kwargs), jnp.asarray(case["x"]))
        _close(y, case["y"], what="pad")
        _close(vjp(jnp.asarray(case["ct"]))[0], case["dx"], what="d pad")


@pytest.mark.parametrize("case", [c for c in TORCH if c.op == "conv"], ids=str)
def test_conv_padding_mode_matches_torch(case):
    """nn.Conv{1,2,3}d(padding_mode=...): output and gradients in x, w and b."""
    with jax.enable_x64(True):
        a = {k: jnp.asarray(v) for k, v in case.arrays.items()}
        y, vjp = jax.vjp(partial(jaxconv.conv, **case.kwargs), a["x"], a["w"], a["b"])
        _close(y, a["y"], 1e-9, "conv")
        for name, got in zip(("dx", "dw", "db"), vjp(a["ct"])):
            _close(got, a[name], 1e-9, name)


# (in_spatial, pads) per rank: wide pads (== D for circular, D-1 for reflect), asymmetric.
SHAPES = {
    1: ((5,), ((4, 2),)),
    2: ((4, 3), ((3, 0), (2, 2))),
    3: ((3, 4, 2), ((1, 2), (0, 3), (1, 1))),
}


def _wide(mode, D, pads):
    """Pads capped at each mode's limit (reflect: < D; circular: <= D)."""
    cap = {"reflect": lambda n: n - 1, "circular": lambda n: n}.get(mode, lambda n: 99)
    return tuple((min(lo, cap(n)), min(hi, cap(n))) for n, (lo, hi) in zip(D, pads))


@pytest.mark.parametrize("mode", MODES)
def test_pad_matches_jnp_pad_and_adjoint(mode):
    """Every rank in one jitted function: values and gradients against jnp.pad, and
    <pad(x), y> == <x, pad^T(y)> for the adjoint map itself."""
    cases = []
    for nd, (D, pads) in SHAPES.items():
        pads = _wide(mode, D, pads)
        kx, ky = jax.random.split(jax.random.PRNGKey(nd))
        x = jax.random.normal(kx, (2, 3, *D))
        ct = jax.random.normal(ky, ref.pad(x, pads, mode).shape)
        cases.append((pads, x, ct))

    @jax.jit
    def run(xs, cts):
        out = []
        for (pads, _, _), x, ct in zip(cases, xs, cts):
            y, vjp = jax.vjp(lambda x: jaxconv.pad(x, pads, mode=mode), x)
            y_ref, vjp_ref = jax.vjp(lambda x: ref.pad(x, pads, mode), x)
            cfg = _PadConfig(mode, tuple(x.shape[2:]), pads)
            adj = (jnp.vdot(y, ct), jnp.vdot(x, _pad_t(cfg, ct)))
            out.append((y, y_ref, vjp(ct)[0], vjp_ref(ct)[0], adj))
        return out

    for y, y_ref, dx, dx_ref, (lhs, rhs) in run([c[1] for c in cases], [c[2] for c in cases]):
        _close(y, y_ref, 1e-6, "pad")
        _close(dx, dx_ref, 1e-5, "d pad")
        _close(lhs, rhs, 1e-4, "adjoint")


def test_check_grads_order2():
    """pad in every non-zero mode and conv(padding_mode="reflect") at first and second
    order, float64 (1-D pads: the per-dim maps are the same code for every rank)."""
    with jax.enable_x64(True):
        k1, k2, k3 = jax.random.split(jax.random.PRNGKey(5), 3)
        x1 = jax.random.normal(k1, (1, 2, 5), jnp.float64)
        for mode in ("reflect", "replicate", "circular"):
            pads = _wide(mode, (5,), ((4, 5),))
            check_grads(jax.jit(lambda x, p=pads, m=mode: jaxconv.pad(x, p, mode=m)), (x1,),
                        order=2, modes=["rev"])
        D, pads = SHAPES[2]
        x = jax.random.normal(k1, (1, 2, *D), jnp.float64)
        w = jax.random.normal(k2, (2, 2, 2, 3), jnp.float64)
        b = jax.random.normal(k3, (2,), jnp.float64)
        f = jax.jit(partial(jaxconv.conv, padding=((1, 2), (1, 1)), stride=(1, 2),
                            padding_mode="reflect"))
        check_grads(f, (x, w, b), order=2, modes=["rev"])


def test_conv_string_padding_resolves_then_pads():
    """A string padding with a mode is resolved to (lo, hi) pairs first ("same" with an
    even kernel puts the extra element at the end), then padded with the mode; "valid"
    is no padding whatever the mode."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 2, 7, 6))
    w = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 4, 3))

    @jax.jit
    def run(x, w):
        same = jaxconv.conv(x, w, padding="same", padding_mode="circular")
        same_ref = ref.conv(ref.pad(x, ((1, 2), (1, 1)), "circular"), w)
        full = jaxconv.conv(x, w, padding="full", stride=2, padding_mode="replicate")
        full_ref = ref.conv(ref.pad(x, ((3, 3), (2, 2)), "replicate"), w, stride=2)
        valid = jaxconv.conv(x, w, padding="valid", padding_mode="reflect")
        return same, same_ref, full, full_ref, valid, ref.conv(x, w)

    same, same_ref, full, full_ref, valid, valid_ref = run(x, w)
    assert same.shape == (2, 3, 7, 6)
    _close(same, same_ref, 1e-5, "same")
    _close(full, full_ref, 1e-5, "full")
    _close(valid, valid_ref, 1e-5, "valid")


def test_vmap_and_dtypes():
    """vmap over a batch of inputs; bf16 / f32 keep their dtype and match the reference."""
    x = jax.random.normal(jax.random.PRNGKey(2), (3, 1, 2, 5, 4))
    w = jax.random.normal(jax.random.PRNGKey(3), (2, 2, 3, 3))
    f = partial(jaxconv.conv, padding=1, padding_mode="reflect")
    got = jax.jit(jax.vmap(f, in_axes=(0, None)))(x, w)
    want = jnp.stack([ref.conv(ref.pad(xi, ((1, 1), (1, 1)), "reflect"), w) for xi in x])
    _close(got, want, 1e-5, "vmap")
    gv = jax.jit(jax.grad(lambda x: jnp.sum(jax.vmap(f, in_axes=(0, None))(x, w) ** 2)))(x)
    gr = jax.grad(lambda x: jnp.sum(jnp.stack(
        [ref.conv(ref.pad(xi, ((1, 1), (1, 1)), "reflect"), w) for xi in x]) ** 2))(x)
    _close(gv, gr, 1e-4, "grad through vmap")
    for dt, tol in ((jnp.bfloat16, 5e-2), (jnp.float32, 1e-5)):
        y = jaxconv.pad(x[0].astype(dt), 2, mode="circular")
        assert y.dtype == dt
        _close(y, ref.pad(x[0].astype(dt), ((2, 2), (2, 2)), "circular"), tol, str(dt))


def test_source_index_wraps_and_mirrors():
    assert source_index("reflect", 4, 3, 3).tolist() == [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    assert source_index("replicate", 2, 2, 1).tolist() == [0, 0, 0, 1, 1]
    assert source_index("circular", 3, 3, 3).tolist() == [0, 1, 2] * 3
    assert source_index("zeros", 2, 1, 1).tolist() == [-1, 0, 1, -1]
    assert source_index("reflect", 1, 0, 0).tolist() == [0]


def test_errors():
    x = jnp.ones((1, 1, 3, 4))
    w = jnp.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"jaxconv.pad: padding with padding_mode='reflect' "
                                         r"must be smaller than the input.*\(3, 0\) for size 3"):
        jaxconv.pad(x, ((3, 0), (0, 0)), mode="reflect")
    with pytest.raises(ValueError, match=r"jaxconv.pad: padding with padding_mode='circular' "
                                         r"must be at most the input size.*\(0, 5\) for size 4"):
        jaxconv.pad(x, ((0, 0), (0, 5)), mode="circular")
    with pytest.raises(ValueError, match=r"jaxconv.pad: padding_mode must be one of 'zeros', "
                                         r"'reflect', 'replicate', 'circular'; got 'edge'"):
        jaxconv.pad(x, 1, mode="edge")
    with pytest.raises(ValueError, match=r"jaxconv.pad: padding must be an int.*got 'same'"):
        jaxconv.pad(x, "same", mode="reflect")
    with pytest.raises(ValueError, match=r"jaxconv.pad: padding must be non-negative"):
        jaxconv.pad(x, -1, mode="replicate")
    with pytest.raises(ValueError, match=r"jaxconv.pad: x must be \(N, C, \*spatial\).*rank 2"):
        jaxconv.pad(jnp.ones((3, 4)), 1)
    with pytest.raises(ValueError, match=r"jaxconv.conv: padding_mode must be one of.*got 'wrap'"):
        jaxconv.conv(x, w, padding=1, padding_mode="wrap")
    # "full" asks for k-1 = 2 per side, as wide as... fine for 3 and 4 with replicate,
    # but reflect of a 3-long dim by 3 is not.
    with pytest.raises(ValueError, match=r"jaxconv.conv: padding with padding_mode='reflect' "
                                         r"must be smaller.*\(3, 3\) for size 3"):
        jaxconv.conv(x, w, padding=3, padding_mode="reflect")
