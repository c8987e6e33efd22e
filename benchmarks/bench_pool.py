"""Max-pool forward + backward: jaxconv.max_pool vs lax.reduce_window + XLA autodiff.

XLA differentiates ``reduce_window(max)`` into ``select_and_scatter``, which runs
as a single-threaded loop on CPU; jaxconv's hand-derived backward scatters the
cotangent to the stored argmax with fused pads instead. Both versions are
jit-compiled, warmed up, and timed interleaved in one run (so machine noise hits
both alike); the table gives median times and the ratio.

    python benchmarks/bench_pool.py --repeats 50
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxconv

# LeNet's two pooling layers at batch 128 (window 2), plus an overlapping case.
CASES = [
    ("lenet pool1", (128, 20, 24, 24), 2, None, 0),
    ("lenet pool2", (128, 50, 8, 8), 2, None, 0),
    ("overlap 3/2 pad1", (128, 20, 24, 24), 3, 2, 1),
]


def lax_pool(x, window, stride, padding):
    k = (1, 1, window, window)
    s = (1, 1) + ((window, window) if stride is None else (stride, stride))
    return lax.reduce_window(x, -jnp.inf, lax.max, k, s,
                             [(0, 0), (0, 0), (padding, padding), (padding, padding)])


def make_step(pool):
    @jax.jit
    def step(x, ct):
        y, vjp = jax.vjp(lambda x: pool(x), x)
        (dx,) = vjp(ct)
        return y, dx

    return step


def bench(repeats: int) -> None:
    rng = np.random.default_rng(0)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
          f"{jax.device_count()} device(s); {repeats} repeats, median times")
    print(f"{'case':<18} {'x shape':<20} {'jaxconv ms':>11} {'lax+autodiff ms':>16} {'speedup':>8}")
    for name, shape, w, s, p in CASES:
        x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        ours = make_step(lambda x: jaxconv.max_pool(x, w, stride=s, padding=p))
        theirs = make_step(lambda x: lax_pool(x, w, s, p))
        y = jax.eval_shape(lambda x: jaxconv.max_pool(x, w, stride=s, padding=p), x)
        ct = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
        ya, dxa = ours(x, ct)
        yb, dxb = theirs(x, ct)
        np.testing.assert_allclose(ya, yb)
        np.testing.assert_allclose(dxa, dxb, atol=1e-6)
        for _ in range(3):  # warm up
            jax.block_until_ready(ours(x, ct))
            jax.block_until_ready(theirs(x, ct))
        ta, tb = [], []
        for _ in range(repeats):  # interleaved
            t0 = time.perf_counter()
            jax.block_until_ready(ours(x, ct))
            t1 = time.perf_counter()
            jax.block_until_ready(theirs(x, ct))
            t2 = time.perf_counter()
            ta.append(t1 - t0)
            tb.append(t2 - t1)
        ma, mb = np.median(ta) * 1e3, np.median(tb) * 1e3
        print(f"{name:<18} {shape!s:<20} {ma:>11.3f} {mb:>16.3f} {mb / ma:>7.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed runs per version")
    bench(ap.parse_args().repeats)


if __name__ == "__main__":
    main()
