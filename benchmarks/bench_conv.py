"""conv forward + backward: jaxconv's hand-derived VJP vs jax.lax with XLA autodiff.

Both sides call the same XLA convolution for the forward pass; the backward
passes differ (jaxconv: its own transposed-conv / weight-correlation ops;
lax: JAX's built-in transpose rules). Timings are interleaved in one run and
reported as medians and the ratio (this machine is shared: read the ratio).

    python benchmarks/bench_conv.py --repeats 30
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxconv
from jaxconv._src import reference as ref

# LeNet (tutorial variant) shapes at batch 128.
SHAPES = {
    "conv1 (128,1,28,28)*(20,1,5,5)": ((128, 1, 28, 28), (20, 1, 5, 5)),
    "conv2 (128,20,12,12)*(50,20,5,5)": ((128, 20, 12, 12), (50, 20, 5, 5)),
}


def _step(conv):
    def loss(x, w, b):
        return jnp.sum(jnp.tanh(conv(x, w, b)))
    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))


def _time(fn, args):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {args.repeats} interleaved repeats")
    print(f"{'shape':36s} {'jaxconv ms':>11s} {'lax ms':>9s} {'lax/jaxconv':>12s}")
    for name, (xs, ws) in SHAPES.items():
        kx, kw = jax.random.split(jax.random.PRNGKey(0))
        x, w = jax.random.normal(kx, xs), jax.random.normal(kw, ws) * 0.1
        b = jnp.zeros((ws[0],))
        ours, theirs = _step(jaxconv.conv), _step(ref.conv)
        for f in (ours, theirs):  # compile + warm up
            for _ in range(3):
                _time(f, (x, w, b))
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            t_ours.append(_time(ours, (x, w, b)))
            t_theirs.append(_time(theirs, (x, w, b)))
        mo, mt = np.median(t_ours) * 1e3, np.median(t_theirs) * 1e3
        print(f"{name:36s} {mo:11.2f} {mt:9.2f} {mt / mo:12.2f}")


if __name__ == "__main__":
    main()
