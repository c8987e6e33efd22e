"""unfold / fold (an adjoint pair) and conv_matrix: against PyTorch (golden values,
tests/make_torch_toolbox_fixtures.py) and lax.conv_general_dilated_patches, gradients,
the adjoint identity, order-2 check_grads, the Toeplitz / circulant structure, errors."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import torch_cases
from jax.test_util import check_grads

import jaxconv
from jaxconv._src import reference as ref

TORCH = [c for c in torch_cases("torch_toolbox.npz") if c.op in ("unfold", "fold")]


def _close(a, b, tol, what=""):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()),
                               err_msg=what)


@pytest.mark.parametrize("case", TORCH, ids=str)
def test_matches_torch(case):
    with jax.enable_x64(True):
        got = getattr(jaxconv, case.op)(jnp.asarray(case["x"]), **case.kwargs)
        _close(got, case["y"], 1e-12, case.op)


# (D, window, options): 1-3 spatial dims, every padding form, stride, dilation,
# window as large as the padded input.
SWEEP = {
    "1d_s2_d2_pairs": ((11,), (3,), dict(stride=2, dilation=2, padding=[(1, 2)])),
    "1d_full_even": ((5,), 2, dict(padding="full")),
    "2d_same_s2_even": ((6, 7), (2, 3), dict(stride=2, padding="same")),
    "2d_perdim": ((7, 6), (3, 2), dict(stride=(1, 3), dilation=(2, 1), padding=(1, 0))),
    "2d_window_fills": ((3, 4), (5, 4), dict(padding=((1, 1), 0))),
    "3d_mixed": ((4, 5, 3), (2, 3, 2), dict(stride=(2, 1, 1), padding="valid",
                                           dilation=(1, 2, 1))),
}


@pytest.mark.parametrize("name", list(SWEEP))
def test_unfold_fold_match_reference_and_are_adjoint(name):
    """One jitted function per case: unfold and fold values and gradients against the
    lax reference, and <unfold(x), c> == <x, fold(c)>."""
    D, window, kw = SWEEP[name]
    kx, kc, kg = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (2, 3, *D))
    cols_shape = jax.eval_shape(partial(jaxconv.unfold, window=window, **kw), x).shape
    c = jax.random.normal(kc, cols_shape)

    @jax.jit
    def run(x, c):
        u, u_vjp = jax.vjp(partial(jaxconv.unfold, window=window, **kw), x)
        ur, ur_vjp = jax.vjp(partial(ref.unfold, window=window, **kw), x)
        f, f_vjp = jax.vjp(partial(jaxconv.fold, output_size=D, window=window, **kw), c)
        fr, fr_vjp = jax.vjp(partial(ref.fold, output_size=D, window=window, **kw), c)
        gx = jax.random.normal(kg, x.shape)
        return (u, ur, u_vjp(c)[0], ur_vjp(c)[0], f, fr, f_vjp(gx)[0], fr_vjp(gx)[0],
                jnp.vdot(u, c), jnp.vdot(x, f))

    u, ur, du, dur, f, fr, df, dfr, lhs, rhs = run(x, c)
    _close(u, ur, 1e-6, "unfold")
    _close(du, dur, 1e-5, "d unfold")
    _close(f, fr, 1e-5, "fold")
    _close(df, dfr, 1e-6, "d fold")
    _close(lhs, rhs, 1e-4, "adjoint")


def test_check_grads_order2():
    D, window, kw = SWEEP["2d_perdim"]
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(1), (1, 2, *D), jnp.float64)
        u = jax.jit(partial(jaxconv.unfold, window=window, **kw))
        check_grads(u, (x,), order=2, modes=["rev"])
        c = jax.random.normal(jax.random.PRNGKey(2), u(x).shape, jnp.float64)
        check_grads(jax.jit(partial(jaxconv.fold, output_size=D, window=window, **kw)), (c,),
                    order=2, modes=["rev"])


def test_vmap_and_dtypes():
    x = jax.random.normal(jax.random.PRNGKey(3), (3, 2, 2, 5, 4))
    f = partial(jaxconv.unfold, window=(2, 2), stride=(1, 2), padding=1)
    got = jax.jit(jax.vmap(f))(x)
    _close(got, jnp.stack([ref.unfold(xi, (2, 2), stride=(1, 2), padding=1) for xi in x]), 1e-6)
    xb = x[0].astype(jnp.bfloat16)
    cols = f(xb)
    assert cols.dtype == jnp.bfloat16
    _close(cols, ref.unfold(xb, (2, 2), stride=(1, 2), padding=1), 1e-6, "bf16 unfold is a copy")
    back = jaxconv.fold(cols, (5, 4), (2, 2), stride=(1, 2), padding=1)
    assert back.dtype == jnp.bfloat16
    _close(back, ref.fold(cols.astype(jnp.float32), (5, 4), (2, 2), stride=(1, 2), padding=1),
           2e-2, "bf16 fold")


# --------------------------------------------------------------------------
# conv_matrix
# --------------------------------------------------------------------------

MATRIX = {
    "1d_s2_same": ((2, 7), (3, 2, 3), dict(stride=2, padding="same")),
    "2d_groups_dil": ((4, 5, 4), (2, 2, 2, 3), dict(groups=2, dilation=(2, 1), padding=(1, 2))),
    "2d_reflect": ((2, 4, 5), (2, 2, 3, 3), dict(padding=1, padding_mode="reflect")),
    "3d": ((1, 3, 4, 3), (2, 1, 2, 2, 2), dict(stride=(1, 2, 1), padding=((1, 0), 0, 1))),
}


@pytest.mark.parametrize("name", list(MATRIX))
def test_conv_matrix_is_conv_and_its_transpose(name):
    in_shape, w_shape, kw = MATRIX[name]
    kx, kw_, ky = jax.random.split(jax.random.PRNGKey(4), 3)
    w = jax.random.normal(kw_, w_shape)
    x = jax.random.normal(kx, (3, *in_shape))
    M = jaxconv.conv_matrix(w, in_shape, **kw)
    y = jaxconv.conv(x, w, **kw)
    assert M.shape == (y[0].size, x[0].size)
    _close(x.reshape(3, -1) @ M.T, y.reshape(3, -1), 1e-5, "conv")
    if kw.get("padding_mode", "zeros") == "zeros":
        g = jax.random.normal(ky, y.shape)
        # conv_transpose's "same" means another size (D * stride): give the pairs.
        tkw = dict(kw, padding=1) if kw.get("padding") == "same" else kw
        xt = jaxconv.conv_transpose(g, w, **tkw,
                                    output_padding=_output_padding(in_shape, w_shape, tkw))
        _close(g.reshape(3, -1) @ M, xt.reshape(3, -1), 1e-5, "conv_transpose")


def _output_padding(in_shape, w_shape, kw):
    """The output_padding that makes conv_transpose return the conv's input size."""
    nd = len(in_shape) - 1
    y = jax.eval_shape(partial(jaxconv.conv, **kw), jax.ShapeDtypeStruct((1, *in_shape),
                       jnp.float32), jax.ShapeDtypeStruct(w_shape, jnp.float32))
    t = jax.eval_shape(partial(jaxconv.conv_transpose, **kw), y,
                       jax.ShapeDtypeStruct(w_shape, jnp.float32))
    return tuple(a - b for a, b in zip(in_shape[1:], t.shape[2:])) if nd else 0


def test_toeplitz_and_circulant_structure():
    """One channel, stride 1: zero padding gives a doubly block Toeplitz matrix; circular
    "same" padding a doubly block circulant one whose singular values are |DFT(kernel)|."""
    H, W = 5, 6
    w = jax.random.normal(jax.random.PRNGKey(5), (1, 1, 3, 3), jnp.float32)
    M = np.asarray(jaxconv.conv_matrix(w, (1, H, W), padding=1), np.float64)
    Ho, Wo = H, W
    blocks = M.reshape(Ho, Wo, H, W).transpose(0, 2, 1, 3)  # block (i, r) is Wo x W
    for i in range(Ho):
        for r in range(H):
            B = blocks[i, r]
            # Toeplitz blocks, each a function of r - i only
            if i and r:
                _close(B, blocks[i - 1, r - 1], 0, "block Toeplitz")
            for a in range(1, Wo):
                for b in range(1, W):
                    assert B[a, b] == B[a - 1, b - 1], "Toeplitz block"
    assert not np.allclose(M, 0)
    Mc = np.asarray(jaxconv.conv_matrix(w, (1, H, W), padding="same",
                                        padding_mode="circular"), np.float64)
    C = Mc.reshape(H, W, H, W)
    for i in range(H):
        for r in range(H):
            _close(C[i, :, r, :], C[(i + 1) % H, :, (r + 1) % H, :], 0, "block circulant")
            for a in range(W):
                _close(C[i, a, r, :], np.roll(C[i, (a + 1) % W, r, :], -1), 0, "circulant")
    # The circulant's eigenvalues are the DFT of the kernel placed around the origin;
    # the singular values of a normal matrix are their magnitudes.
    k = np.zeros((H, W))
    wn = np.asarray(w[0, 0], np.float64)
    for a in range(3):
        for b in range(3):
            k[(a - 1) % H, (b - 1) % W] += wn[a, b]
    want = np.sort(np.abs(np.fft.fft2(k)).ravel())
    got = np.sort(np.linalg.svd(Mc, compute_uv=False))
    _close(got, want, 1e-5, "singular values")


def test_conv_matrix_gradient():
    """conv_matrix is linear in w: its gradient agrees with building M from the reference conv."""
    in_shape, w_shape, kw = MATRIX["1d_s2_same"]
    w = jax.random.normal(jax.random.PRNGKey(6), w_shape)
    P = jax.random.normal(jax.random.PRNGKey(7), (12, 14))

    def ref_matrix(w):
        n = int(np.prod(in_shape))
        return ref.conv(jnp.eye(n).reshape(n, *in_shape), w, **kw).reshape(n, -1).T

    g = jax.grad(lambda w: jnp.sum(jaxconv.conv_matrix(w, in_shape, **kw) * P))(w)
    g_ref = jax.grad(lambda w: jnp.sum(ref_matrix(w) * P))(w)
    _close(g, g_ref, 1e-5, "d conv_matrix")


def test_errors():
    x = jnp.ones((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"jaxconv.unfold: the \(dilated\) window is larger than the padded input.*"
                                         r"window \(5, 1\)"):
        jaxconv.unfold(x, (5, 1))
    with pytest.raises(ValueError, match=r"jaxconv.unfold: x must be \(N, C, \*spatial\)"):
        jaxconv.unfold(jnp.ones((4, 4)), 2)
    with pytest.raises(ValueError, match=r"jaxconv.unfold: stride must be >= 1"):
        jaxconv.unfold(x, 2, stride=0)
    with pytest.raises(TypeError, match=r"jaxconv.unfold: x must have a floating-point dtype"):
        jaxconv.unfold(jnp.ones((1, 1, 3), jnp.int32), 2)
    with pytest.raises(ValueError, match=r"jaxconv.fold: cols.shape\[2\] must be the number of "
                                         r"windows L = 9.*got cols.shape=\(1, 8, 8\)"):
        jaxconv.fold(jnp.ones((1, 8, 8)), (4, 4), 2)
    with pytest.raises(ValueError, match=r"jaxconv.fold: cols.shape\[1\] must be a positive "
                                         r"multiple of prod\(window\) = 4"):
        jaxconv.fold(jnp.ones((1, 6, 9)), (4, 4), 2)
    with pytest.raises(ValueError, match=r"jaxconv.fold: cols must be \(N, C \* prod\(window\), "
                                         r"L\) \(rank 3\)"):
        jaxconv.fold(jnp.ones((8, 9)), (4, 4), 2)
    w = jnp.ones((3, 2, 2, 2))
    with pytest.raises(ValueError, match=r"jaxconv.conv_matrix: input_shape must be \(C_in, "
                                         r"\*spatial\).*2 spatial dims.*got input_shape=\(2, 4\)"):
        jaxconv.conv_matrix(w, (2, 4))
    with pytest.raises(TypeError, match=r"jaxconv.conv_matrix: input_shape must be a sequence"):
        jaxconv.conv_matrix(w, 4)
    with pytest.raises(ValueError, match=r"jaxconv.conv_matrix: x has 3 channels but w expects 2"):
        jaxconv.conv_matrix(w, (3, 4, 4))
