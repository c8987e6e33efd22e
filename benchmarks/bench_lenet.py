"""LeNet train-step throughput: jaxconv ops (hand-derived VJPs) vs plain jax.lax + autodiff.

Both sides run the same network (the tutorial LeNet by default: 20@5x5,
max-pool 2, tanh, 50@5x5, max-pool 2, tanh, 500 tanh, 10) with the same
parameters, the same optax SGD-with-momentum update and the same batch, each
as one jitted step. The jaxconv side is ``jaxconv.models.lenet.apply``
(``jaxconv.conv`` / ``jaxconv.max_pool`` / ``avg_pool`` with custom_vjp rules);
the reference side is the same network written with
``lax.conv_general_dilated`` / ``lax.reduce_window`` and differentiated by JAX.

Timing: after a warm-up (compile) and a check that both give the same loss
and gradients, ``--rounds`` rounds each time ``--steps`` consecutive steps
of one side, then of the other (interleaved, so drift in machine load hits
both), and the median per-step time of each side is reported with the ratio.

    python benchmarks/bench_lenet.py [--batch-size 128] [--rounds 9] [--steps 10] [--variant tutorial]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxconv import nn, train
from jaxconv.models import lenet

_HI = lax.Precision.HIGHEST


def _lax_conv(x, w, b, padding):
    y = lax.conv_general_dilated(x, w, (1, 1), [(padding, padding)] * 2, precision=_HI)
    return y + b[None, :, None, None]


def _lax_max_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def _lax_avg_pool(x):
    return lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4.0


def _dense(p, x):
    return jnp.matmul(x, p["w"].T, precision=_HI) + p["b"]


def lax_apply(variant):
    """The same LeNet written with jax.lax ops (differentiated by JAX autodiff)."""
    if variant == "tutorial":
        def apply(p, x):
            x = jnp.tanh(_lax_max_pool(_lax_conv(x, p["conv1"]["w"], p["conv1"]["b"], 0)))
            x = jnp.tanh(_lax_max_pool(_lax_conv(x, p["conv2"]["w"], p["conv2"]["b"], 0)))
            x = jnp.tanh(_dense(p["fc1"], x.reshape(x.shape[0], -1)))
            return _dense(p["fc2"], x)
    else:
        def apply(p, x):
            x = _lax_avg_pool(jnp.tanh(_lax_conv(x, p["conv1"]["w"], p["conv1"]["b"], 2)))
            x = _lax_avg_pool(jnp.tanh(_lax_conv(x, p["conv2"]["w"], p["conv2"]["b"], 0)))
            x = jnp.tanh(_dense(p["fc1"], x.reshape(x.shape[0], -1)))
            x = jnp.tanh(_dense(p["fc2"], x))
            return _dense(p["fc3"], x)
    return apply


def make_step(apply_fn, opt):
    def loss_fn(p, x, y):
        return train.cross_entropy(apply_fn(p, x), y)

    @jax.jit
    def step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    return step, jax.jit(jax.grad(loss_fn))


def time_steps(step, p, s, x, y, n):
    t0 = time.perf_counter()
    for _ in range(n):
        p, s, loss = step(p, s, x, y)
    jax.block_until_ready((p, s, loss))
    return (time.perf_counter() - t0) / n, p, s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--variant", choices=lenet.VARIANTS, default="tutorial")
    args = ap.parse_args(argv)
    if args.batch_size < 1 or args.rounds < 1 or args.steps < 1:
        ap.error("--batch-size, --rounds and --steps must be >= 1")

    key = jax.random.PRNGKey(0)
    params = lenet.init(key, args.variant)
    x = jax.random.uniform(jax.random.PRNGKey(1), (args.batch_size, 1, 28, 28), jnp.float32)
    y = jax.random.randint(jax.random.PRNGKey(2), (args.batch_size,), 0, 10)
    opt = optax.sgd(0.01, momentum=0.9)
    sides = {
        "jaxconv": make_step(lambda p, xb: lenet.apply(p, xb, args.variant), opt),
        "jax.lax + autodiff": make_step(lax_apply(args.variant), opt),
    }

    print(f"LeNet {args.variant!r} ({nn.count_params(params):,} parameters), train step "
          f"(forward + backward + SGD momentum), batch {args.batch_size}, float32")
    print(f"jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}")

    # Same loss and gradients on both sides (a benchmark of different maths is worthless).
    grads = {name: g(params, x, y) for name, (_, g) in sides.items()}
    ga, gb = grads.values()
    err = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-12))
              for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)))
    print(f"gradients agree: max relative difference {err:.2e}")
    if err > 1e-4:
        print("ERROR: the two implementations disagree", file=sys.stderr)
        return 1

    state = {}
    for name, (step, _) in sides.items():
        t0 = time.perf_counter()
        p, s, loss = step(params, opt.init(params), x, y)
        jax.block_until_ready(loss)
        state[name] = (p, s)
        print(f"  compile + first step, {name:<20s} {time.perf_counter() - t0:6.2f} s")

    times = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, (step, _) in sides.items():
            p, s = state[name]
            t, p, s = time_steps(step, p, s, x, y, args.steps)
            state[name] = (p, s)
            times[name].append(t)

    print(f"median over {args.rounds} interleaved rounds of {args.steps} steps:")
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, m in med.items():
        lo, hi = min(times[name]), max(times[name])
        print(f"  {name:<20s} {1e3 * m:8.2f} ms/step  {args.batch_size / m:9,.0f} images/s  "
              f"(range {1e3 * lo:.2f}-{1e3 * hi:.2f} ms)")
    a, b = med.values()
    print(f"  ratio jaxconv / lax = {a / b:.3f} (time; < 1 means jaxconv is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
