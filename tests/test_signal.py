"""jaxconv.signal against scipy.signal (values, shapes) and its gradients against
jax.vjp of the lax / jnp references in jaxconv._src.reference (float64)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal as ss
from jax.test_util import check_grads

from jaxconv import signal as js
from jaxconv._src import reference as ref

MODES = ("full", "same", "valid")


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def rand(shape, cplx=False, seed=0):
    rng = np.random.default_rng(abs(hash((shape, cplx, seed))) % 2**32)
    v = rng.normal(size=shape)
    return v + 1j * rng.normal(size=shape) if cplx else v


def close(got, want, rtol=1e-9, atol=1e-9):
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------
# Worked examples
# --------------------------------------------------------------------------

F = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
G = [[1, 2], [3, 4]]


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
def test_worked_examples(method):
    close(js.convolve([1, 2, 3, 4, 5], [1, 2, 3], method=method), [1, 4, 10, 16, 22, 22, 15])
    close(js.convolve([1, 2, 3, 4, 5], [1, 2, 3], "valid", method), [10, 16, 22])
    close(js.convolve(F, G, method=method),
          [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]])
    close(js.correlate(F, G, method=method),
          [[4, 11, 18, 9], [18, 37, 47, 21], [36, 67, 77, 33], [14, 23, 26, 9]])
    close(js.correlate(F, G, "valid", method), [[37, 47], [67, 77]])
    close(js.convolve2d(F, G), [[1, 4, 7, 6], [7, 23, 33, 24], [19, 53, 63, 42], [21, 52, 59, 36]])
    close(js.correlate2d(F, G, "valid"), [[37, 47], [67, 77]])
    with jax.enable_x64(False):
        assert js.convolve([1, 2, 3], [1, 2]).dtype == jnp.float32


# --------------------------------------------------------------------------
# N-d correlate / convolve / fftconvolve / oaconvolve against scipy
# --------------------------------------------------------------------------

# sizes 1, odd/even, second input larger, 1-3 D, one larger-than-other in some dims only
PAIRS = [
    ((1,), (1,)), ((5,), (3,)), ((6,), (4,)), ((4,), (7,)), ((3,), (6,)), ((1,), (4,)),
    ((4, 5), (2, 3)), ((3, 4), (5, 6)), ((4, 3), (3, 4)), ((3, 4, 2), (2, 3, 2)),
]


def _contains(s1, s2):
    return all(p >= q for p, q in zip(s1, s2)) or all(q >= p for p, q in zip(s1, s2))


@partial(jax.jit, static_argnames="modes")
def _nd_all(a, b, modes):
    """Every N-d function, mode and method in one compiled function."""
    out = {}
    for mode in modes:
        for method in ("direct", "fft"):
            out["convolve", mode, method] = js.convolve(a, b, mode, method)
            out["correlate", mode, method] = js.correlate(a, b, mode, method)
        out["fftconvolve", mode, ""] = js.fftconvolve(a, b, mode)
        out["oaconvolve", mode, ""] = js.oaconvolve(a, b, mode)
    return out


@pytest.mark.parametrize("s1,s2", PAIRS)
@pytest.mark.parametrize("cplx", [False, True])
def test_nd_against_scipy(s1, s2, cplx):
    a, b = rand(s1, cplx, 1), rand(s2, cplx, 2)
    modes = MODES if _contains(s1, s2) else ("full", "same")
    for (name, mode, _), got in _nd_all(a, b, modes).items():
        close(got, getattr(ss, name.replace("oaconvolve", "convolve"))(a, b, mode))
    if not _contains(s1, s2):
        for fn in (js.convolve, js.correlate, js.fftconvolve, js.oaconvolve):
            with pytest.raises(ValueError, match="at least as large as the other"):
                fn(a, b, "valid")


def test_scalars_and_mixed_dtypes():
    close(js.correlate(2.0 + 1j, 3.0j), ss.correlate(2.0 + 1j, 3.0j))
    a, b = rand((5,)), rand((3,), True)
    close(js.correlate(a, b, "same"), ss.correlate(a, b, "same"))
    assert js.convolve(np.float32([1, 2]), np.float64([1])).dtype == jnp.float64
    assert js.convolve(np.int32([1, 2]), np.int32([1])).dtype == jnp.float64


def test_same_centring_every_parity():
    # "same" takes n1 values of the full output from (n2-1)//2 (n2//2 for correlate2d).
    for n1 in (3, 4):
        for n2 in range(1, 8):
            a, b = rand((1, n1), seed=n1), rand((1, n2), seed=n2)
            close(js.convolve(a, b, "same"), ss.convolve(a, b, "same"))
            close(js.correlate(a, b, "same"), ss.correlate(a, b, "same"))
            close(js.correlate2d(a, b, "same"), ss.correlate2d(a, b, "same"))
            close(js.convolve2d(a, b, "same"), ss.convolve2d(a, b, "same"))


def test_long_inputs_overlap_add_blocks():
    # the larger input >= 2x the smaller: oaconvolve really cuts it into blocks
    for s1, s2 in [((2000,), (5,)), ((9,), (250,)), ((3, 2), (200, 150))]:
        a, b = rand(s1, seed=3), rand(s2, seed=4)
        for mode in MODES:
            close(js.oaconvolve(a, b, mode), ss.oaconvolve(a, b, mode))
            close(js.convolve(a, b, mode), ss.convolve(a, b, mode))  # auto


@pytest.mark.parametrize("fn", ["fftconvolve", "oaconvolve"])
def test_axes_and_broadcasting(fn):
    a, b = rand((3, 1, 40), seed=5), rand((1, 4, 6), seed=6)
    for mode in MODES:
        for axes in (None, 2, -1, [0, 2], (2, 0)):
            close(getattr(js, fn)(a, b, mode, axes=axes), getattr(ss, fn)(a, b, mode, axes=axes))
    a, b = rand((4, 30), True, 7), rand((4, 5), True, 8)  # equal broadcast axis, complex
    close(getattr(js, fn)(a, b, "same", axes=1), getattr(ss, fn)(a, b, "same", axes=1))
    with pytest.raises(ValueError, match=r"jaxconv\.\w+: in1 and in2 must be equal or 1"):
        getattr(js, fn)(a, rand((3, 5)), axes=1)
    with pytest.raises(ValueError, match=r"axes must not be empty; got \[\]"):
        getattr(js, fn)(a, b, axes=[])
    for bad in ([0, 0], [2], 1.5):
        with pytest.raises(ValueError, match="axes must be distinct ints"):
            getattr(js, fn)(a, b, axes=bad)


# --------------------------------------------------------------------------
# correlate2d / convolve2d: every boundary and fill value
# --------------------------------------------------------------------------

PAIRS_2D = [((3, 4), (2, 3)), ((4, 4), (3, 3)), ((3, 4), (5, 7)), ((1, 1), (2, 2)),
            ((2, 5), (4, 2))]
BOUNDARIES = [("fill", 0), ("fill", 2.5), ("wrap", 0), ("symm", 0), ("circular", 0),
              ("symmetric", 0)]


def _2d_keys(bounds):
    return [(name, mode, boundary, fill) for name in ("convolve2d", "correlate2d")
            for boundary, fill in bounds for mode in ("full", "same")]


@partial(jax.jit, static_argnames="bounds")
def _2d_all(a, b, bounds):
    return [getattr(js, name)(a, b, mode, boundary, fill)
            for name, mode, boundary, fill in _2d_keys(bounds)]


@pytest.mark.parametrize("s1,s2", PAIRS_2D)
@pytest.mark.parametrize("cplx", [False, True])
def test_2d_against_scipy(s1, s2, cplx):
    a, b = rand(s1, cplx, 9), rand(s2, cplx, 10)
    bounds = tuple(BOUNDARIES + ([("fill", 1 - 2j)] if cplx else []))
    for (name, mode, boundary, fill), got in zip(_2d_keys(bounds), _2d_all(a, b, bounds)):
        close(got, getattr(ss, name)(a, b, mode, boundary=boundary, fillvalue=fill))
    for name in ("convolve2d", "correlate2d"):
        if not _contains(s1, s2):
            with pytest.raises(ValueError, match="at least as large as the other"):
                getattr(js, name)(a, b, "valid")
            continue
        want = getattr(ss, name)(a, b, "valid", boundary="wrap")
        if name == "correlate2d" and s2[0] > s1[0]:
            # scipy.signal.correlate2d omits its conjugation when it swaps the
            # inputs; jaxconv follows scipy.signal.correlate, consistently.
            want = ss.correlate(a, b, "valid")
        close(getattr(js, name)(a, b, "valid", "wrap"), want)


# --------------------------------------------------------------------------
# Gradients: jax.vjp of the references, real and complex cotangents
# --------------------------------------------------------------------------


def _vjps(pairs, args, g_seed=11):
    """jax.vjp of every (function, reference) pair at args, one compile for all."""
    @jax.jit
    def run(*args):
        outs = []
        for f, r in pairs:
            y, vjp = jax.vjp(f, *args)
            y_ref, vjp_ref = jax.vjp(r, *args)
            g = jax.random.normal(jax.random.PRNGKey(g_seed), y.shape, y.dtype)
            outs.append(((y, *vjp(g)), (y_ref, *vjp_ref(g))))
        return outs
    for got, want in run(*args):
        for u, arg in zip(got[1:], args):
            assert u.dtype == arg.dtype
        for u, v in zip(got, want):
            close(u, v)


# (shape1, shape2, complex, methods): both orders of size, 1-3 D, real and complex
GRAD_CASES = [((5,), (3,), True, ("direct", "fft")), ((4,), (7,), False, ("direct", "fft")),
              ((4,), (7,), True, ("direct", "fft")), ((3, 4), (2, 2), False, ("direct",)),
              ((2, 3, 4), (2, 2, 3), True, ("fft",))]


@pytest.mark.parametrize("s1,s2,cplx,methods", GRAD_CASES)
def test_gradients_nd(s1, s2, cplx, methods):
    a, b = jnp.asarray(rand(s1, cplx, 12)), jnp.asarray(rand(s2, cplx, 13))
    pairs = []
    for mode in MODES:
        for method in methods:
            pairs.append((partial(js.convolve, mode=mode, method=method),
                          partial(ref.signal_convolve, mode=mode)))
            pairs.append((partial(js.correlate, mode=mode, method=method),
                          partial(ref.signal_correlate, mode=mode)))
        pairs.append((partial(js.oaconvolve, mode=mode), partial(ref.signal_convolve, mode=mode)))
    _vjps(pairs, (a, b))


def test_gradients_mixed_real_complex():
    a, b = jnp.asarray(rand((6,))), jnp.asarray(rand((3,), True))
    _vjps([(partial(js.correlate, mode="same"), partial(ref.signal_correlate, mode="same"))],
          (a, b))


def test_gradients_axes_broadcast():
    a, b = jnp.asarray(rand((3, 1, 30))), jnp.asarray(rand((1, 4, 5)))
    _vjps([(partial(fn, mode=mode, axes=[0, 2]),
            partial(ref.signal_fftconvolve, mode=mode, axes=[0, 2]))
           for fn in (js.fftconvolve, js.oaconvolve) for mode in MODES], (a, b))


@pytest.mark.parametrize("cplx", [False, True])
def test_gradients_2d_boundaries(cplx):
    # a kernel larger than the input: wrap / symm repeat the input several times
    a, b = jnp.asarray(rand((3, 4), cplx, 14)), jnp.asarray(rand((5, 7), cplx, 15))
    _vjps([(partial(fn, mode=mode, boundary=boundary, fillvalue=fill),
            partial(ref.signal_conv2d, mode=mode, boundary=boundary, fillvalue=fill,
                    correlate=corr))
           for boundary, fill in [("fill", 2.5), ("wrap", 0), ("symm", 0)]
           for mode in ("full", "same")
           for corr, fn in ((False, js.convolve2d), (True, js.correlate2d))], (a, b))


def test_check_grads_order2():
    kw = dict(order=2, modes=["rev"])
    c = lambda s, seed: jnp.asarray(rand(s, True, seed))
    r = lambda s, seed: jnp.asarray(rand(s, False, seed))
    check_grads(lambda a, b: js.correlate(a, b, "same", "fft"), (c((6,), 1), c((3,), 2)), **kw)
    check_grads(lambda a, b: js.convolve(a, b, "valid", "direct"), (r((4, 3), 3), r((2, 2), 4)),
                **kw)
    check_grads(lambda a, b: js.correlate2d(a, b, "same", "symm"), (r((4, 3), 5), r((2, 2), 6)),
                **kw)
    check_grads(lambda a, b: js.oaconvolve(a, b), (r((20,), 7), r((3,), 8)), **kw)


def test_jit_and_vmap():
    a, b = jnp.asarray(rand((4, 20))), jnp.asarray(rand((4, 5)))
    f = jax.jit(lambda a, b: js.correlate(a, b, "same"))
    close(f(a[0], b[0]), ss.correlate(a[0], b[0], "same"))
    got = jax.vmap(lambda a, b: js.convolve(a, b, "full", "fft"))(a, b)
    close(got, np.stack([ss.convolve(x, y) for x, y in zip(np.asarray(a), np.asarray(b))]))
    got = jax.jit(jax.vmap(jax.grad(lambda a, b: js.convolve2d(a[None], b[None], "same",
                                                              "wrap").sum())))(a, b)
    want = jax.vmap(jax.grad(lambda a, b: ref.signal_conv2d(a[None], b[None], "same",
                                                             "wrap").sum()))(a, b)
    close(got, want)


def test_low_precision_dtypes():
    with jax.enable_x64(False):
        a, b = rand((30,)), rand((5,))
        for dt, tol in ((jnp.float32, 1e-5), (jnp.bfloat16, 3e-2)):
            for method in ("direct", "fft"):
                y = js.convolve(jnp.asarray(a, dt), jnp.asarray(b, dt), "same", method)
                assert y.dtype == dt
                want = ss.convolve(np.asarray(jnp.asarray(a, dt), np.float64),
                                   np.asarray(jnp.asarray(b, dt), np.float64), "same")
                np.testing.assert_allclose(np.asarray(y, np.float64), want,
                                           atol=tol * np.abs(want).max())


# --------------------------------------------------------------------------
# Method choice
# --------------------------------------------------------------------------


def test_choose_conv_method():
    assert js.choose_conv_method(np.ones(100), np.ones(3)) == "direct"
    assert js.choose_conv_method(np.ones((300, 300)), np.ones((300, 300)), "same") == "fft"
    assert js.choose_conv_method(np.ones(5000), np.ones(1000), "valid") == "fft"
    assert js.choose_conv_method(np.ones((64, 64)), np.ones((3, 3)), "same") == "direct"
    a, b = rand((80, 70)), rand((40, 30))
    close(js.convolve(a, b, "same"), ss.convolve(a, b, "same"), rtol=1e-8, atol=1e-8)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_errors():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"jaxconv\.convolve: mode must be one of 'full', "
                                         r"'same', 'valid'; got 'bogus'"):
        js.convolve(a, a, "bogus")
    with pytest.raises(ValueError, match=r"jaxconv\.correlate: method must be one of .*; "
                                         r"got 'fast'"):
        js.correlate(a, a, method="fast")
    with pytest.raises(ValueError, match=r"jaxconv\.convolve: in2 must have as many dimensions "
                                         r"as in1 \(2\); got"):
        js.convolve(a, np.ones(3))
    with pytest.raises(ValueError, match=r"jaxconv\.convolve: for mode='valid' one input must "
                                         r"be at least as large .*got shapes \(3, 4\) and "
                                         r"\(4, 3\)"):
        js.convolve(a, np.ones((4, 3)), "valid")
    with pytest.raises(ValueError, match=r"jaxconv\.fftconvolve: in1 must not be empty"):
        js.fftconvolve(np.ones(0), np.ones(2))
    with pytest.raises(TypeError, match=r"jaxconv\.convolve: in1 must be numeric; got dtype <U1"):
        js.convolve(np.array(["a", "b"]), np.ones(2))
    with pytest.raises(ValueError, match=r"jaxconv\.convolve2d: in1 and in2 must be 2-D; "
                                         r"got in1\.shape=\(3,\)"):
        js.convolve2d(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"jaxconv\.correlate2d: boundary must be one of .*"
                                         r"got 'reflect'"):
        js.correlate2d(a, a, boundary="reflect")
    with pytest.raises(TypeError, match=r"jaxconv\.convolve2d: fillvalue must be real for real "
                                        r"inputs; got 1j"):
        js.convolve2d(a, a, fillvalue=1j)
    with pytest.raises(TypeError, match=r"jaxconv\.convolve2d: fillvalue must be a scalar "
                                        r"number; got \[1, 2\]"):
        js.convolve2d(a, a, fillvalue=[1, 2])
    with pytest.raises(ValueError, match=r"jaxconv\.choose_conv_method: mode must be one of"):
        js.choose_conv_method(a, a, "Full")
