"""Convolution algorithms: one module per algorithm, each implementing the three maps of a geometry.

Every algorithm module defines ``NAME``, ``supports(geom, dtype)`` (None, or
the reason it cannot run the geometry), and the three maps of the bilinear
convolution ``y = B(x, w)`` on channels-first arrays:

* ``forward(geom, x, w, *, precision=None)``      -- ``B(x, w)``
* ``input_grad(geom, g, w, *, precision=None)``   -- ``B_x^T(g; w)``
* ``weight_grad(geom, x, g, *, precision=None)``  -- ``B_w^T(g; x)``

An algorithm may also define ``weight_and_bias_grad(geom, x, g, *,
precision=None)`` -> ``(B_w^T(g; x), g summed per channel)`` when it sums the
bias gradient in the same pass (``direct``): a convolution with a bias then
takes both from it. They are plain JAX (no custom rules): ``conv.py`` wraps
them in custom_vjp maps. All three are defined by one index relation: input
position ``t = p*stride + j*dilation - lo`` for output position ``p < O`` and
tap ``j < k``; the ``hi`` padding follows from ``D`` and ``O`` (:func:`pads`).

This package module holds the small helpers the algorithms share.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from ..geometry import ConvGeometry

Pair = tuple[int, int]


def pads(geom: ConvGeometry) -> tuple[Pair, ...]:
    """(lo, hi) per spatial dim, hi derived so that exactly ``out_spatial`` outputs come out.

    ``hi`` may be negative (the conv never reads the last input elements, e.g.
    a strided conv, or conv_transpose's output_padding): it then crops.
    """
    return tuple(
        (lo, (O - 1) * s + d * (k - 1) + 1 - D - lo)
        for D, O, k, s, d, (lo, _) in zip(
            geom.in_spatial, geom.out_spatial, geom.kernel, geom.stride, geom.dilation,
            geom.padding,
        )
    )


def pad_spatial(a: jax.Array, pairs: Sequence[Pair], first: int,
                interior: Sequence[int] | None = None) -> jax.Array:
    """``lax.pad`` of the spatial axes ``first, first+1, ...`` (negative pads crop)."""
    cfg = [(0, 0, 0)] * a.ndim
    for i, (lo, hi) in enumerate(pairs):
        cfg[first + i] = (lo, hi, 0 if interior is None else interior[i])
    if all(c == (0, 0, 0) for c in cfg):
        return a
    return lax.pad(a, jnp.zeros((), a.dtype), cfg)


def crop_spatial(a: jax.Array, pairs: Sequence[Pair], first: int) -> jax.Array:
    """The adjoint of :func:`pad_spatial` without interior padding: removes ``pairs`` again."""
    return pad_spatial(a, [(-lo, -hi) for lo, hi in pairs], first)


def taps(geom: ConvGeometry) -> Iterator[tuple[int, ...]]:
    """Every tap index ``j`` of the kernel, in C (row-major) order."""
    return itertools.product(*(range(k) for k in geom.kernel))


def tap_slice(a: jax.Array, geom: ConvGeometry, j: Sequence[int], first: int) -> jax.Array:
    """The input values tap ``j`` reads for every output: ``a[..., j*d : j*d + (O-1)*s + 1 : s]``.

    ``a`` is the padded input (spatial axes from ``first``); the result has
    the output's spatial size.
    """
    start = [0] * a.ndim
    limit = list(a.shape)
    strides = [1] * a.ndim
    for i, (jj, O, s, d) in enumerate(zip(j, geom.out_spatial, geom.stride, geom.dilation)):
        start[first + i] = jj * d
        limit[first + i] = jj * d + (O - 1) * s + 1
        strides[first + i] = s
    return lax.slice(a, start, limit, strides)


def tap_values(x: jax.Array, geom: ConvGeometry, j: Sequence[int], first: int) -> jax.Array:
    """What tap ``j`` reads for every output, from the *unpadded* input ``x`` (spatial
    axes from ``first``): :func:`tap_slice` of ``x`` padded by ``geom``'s padding.

    At stride 1 this is ``x`` shifted by ``j*d - lo`` along each spatial axis, zeros
    shifted in: one ``lax.pad`` (negative amounts crop) to the output's size, which
    XLA fuses into its consumer as a bounds-checked read of ``x``. A slice of the
    padded input fused the same way was several times slower: XLA's loop over the
    output then indexes a padded array it never materialises (depthwise 3x3 C=128
    56x56 N=8 forward, ms: 1.0 against 3.2; with a ReLU after it 1.1 against 3.0).
    Strided, the padded input's strided slice.
    """
    if any(s != 1 for s in geom.stride):
        return tap_slice(pad_spatial(x, pads(geom), first), geom, j, first)
    cfg = [(0, 0, 0)] * x.ndim
    for i, (jj, O, d, D, (lo, _)) in enumerate(zip(j, geom.out_spatial, geom.dilation,
                                                 geom.in_spatial, pads(geom))):
        low = lo - jj * d
        cfg[first + i] = (low, O - D - low, 0)
    return lax.pad(x, jnp.zeros((), x.dtype), cfg)


def place_tap(c: jax.Array, geom: ConvGeometry, j: Sequence[int], first: int) -> jax.Array:
    """Adjoint of :func:`tap_slice`: puts ``c`` (output-sized) where tap ``j`` reads, zeros elsewhere.

    Returns an array of the padded input's spatial size (``D + lo + hi``).
    """
    cfg = []
    for jj, O, s, d, D, (lo, hi) in zip(j, geom.out_spatial, geom.stride, geom.dilation,
                                        geom.in_spatial, pads(geom)):
        start = jj * d
        cfg.append((start, D + lo + hi - start - (O - 1) * s - 1))
    return pad_spatial(c, cfg, first, interior=[s - 1 for s in geom.stride])


def transpose_kernel(w: jax.Array, groups: int) -> jax.Array:
    """``(C_out, C_in/G, *k)`` -> ``(C_in, C_out/G, *k)``: in/out channels swapped within each group."""
    c_out, cin_g = w.shape[:2]
    k = w.shape[2:]
    wg = w.reshape((groups, c_out // groups, cin_g, *k)).swapaxes(1, 2)
    return wg.reshape((groups * cin_g, c_out // groups, *k))


def transposed_geometry(geom: ConvGeometry) -> ConvGeometry:
    """The stride-1 geometry of ``B_x^T`` (see :func:`transposed`)."""
    tpads = tuple((d * (k - 1) - lo, d * (k - 1) - hi)
                  for (lo, hi), k, d in zip(pads(geom), geom.kernel, geom.dilation))
    return dataclasses.replace(
        geom, in_spatial=tuple((o - 1) * s + 1 for o, s in zip(geom.out_spatial, geom.stride)),
        out_spatial=geom.in_spatial, stride=(1,) * geom.ndim, padding=tpads)


def transposed(geom: ConvGeometry, w: jax.Array) -> tuple[ConvGeometry, jax.Array]:
    """``B_x^T(g; w)`` as a stride-1 correlation: its geometry and kernel.

    The transpose of a strided, padded correlation correlates the cotangent,
    dilated by the stride (``(O-1)*s + 1`` long), with the spatially flipped
    kernel whose in/out channels are swapped within each group
    (:func:`transpose_kernel`), padded by ``dilation*(k-1) - lo`` in front and
    ``dilation*(k-1) - hi`` behind (``hi`` from :func:`pads`; negative padding
    crops), which makes the output exactly ``D`` long.
    """
    geom_t = transposed_geometry(geom)
    return geom_t, jnp.flip(transpose_kernel(w, geom.groups), axis=tuple(range(2, w.ndim)))


def needs_floating(name: str, dtype: Any) -> str | None:
    """The reason algorithm ``name`` declines a non-floating ``dtype``, or None.

    Example:
      >>> needs_floating("fft", "int32")
      'fft: needs a real floating dtype; got int32'
    """
    d = jnp.dtype(dtype)
    if not jnp.issubdtype(d, jnp.floating):
        return f"{name}: needs a real floating dtype; got {d}"
    return None


def channels_last(a: jax.Array) -> jax.Array:
    """``(N, C, *S)`` -> ``(N, *S, C)``."""
    return jnp.moveaxis(a, 1, -1)


def channels_first(a: jax.Array) -> jax.Array:
    """``(N, *S, C)`` -> ``(N, C, *S)``."""
    return jnp.moveaxis(a, -1, 1)


def fenced(fn: Callable[..., Any], *args: jax.Array) -> Any:
    """``fn(*args)`` as a computation of its own: on CPU, XLA fuses no producer of ``args``
    into it and none of it into a consumer of its result.

    ``fn`` runs as the taken branch of a ``lax.cond`` whose predicate is ``False``
    behind a ``lax.optimization_barrier``, so XLA cannot fold it (the other branch,
    never taken, returns zeros of the same types, shardings and ``shard_map``
    variance). A conditional's operands and results are buffers, and XLA's CPU
    backend still spreads each fusion inside the branch over its threads. The
    predicate is a constant, so under ``vmap`` the conditional stays one, and under a
    sharded ``jit`` it needs no collective. On other backends (whose conditionals
    read their predicate on the host) this is plain ``fn(*args)``.

    Why: XLA's CPU backend fuses elementwise producers and consumers into the
    multiply-add loops of :mod:`.direct` and into the transposition that feeds its own
    weight-gradient convolution, where they run unvectorised; and it runs a loop
    body's fusions on one thread, so a few chunks of samples (:func:`map_chunks`,
    :data:`FENCED_CHUNKS`) run fenced rather than in a loop. Measured (fwd+bwd of an
    activation of the convolution, the cotangent an argument, ms, before / after,
    2026-12-07): depthwise 3x3 C=128 56x56 N=8 with ``tanh`` 22.1 / 10.0, ``relu``
    9.1 / 8.0; 32 groups of 8 at 14x14 N=8 with ``relu`` 6.6 / 5.0; 'same' 5x5 1 -> 20
    28x28 N=128 with ``relu`` (the xla weight gradient's transposed cotangent) 30.5 /
    18.7. (A loop over two halves of the batch, :mod:`.direct`'s barrier before this,
    ran each half on one thread: 32 groups of 8 forward alone 2.9 against 1.9 ms.)

    Args:
      fn: a function of arrays returning a pytree of arrays.
      *args: its arguments.

    Returns:
      ``fn(*args)``.

    Example:
      >>> fenced(lambda a, b: a * b + 1, jnp.arange(3.0), jnp.float32(2))
      Array([1., 3., 5.], dtype=float32)
    """
    if jax.default_backend() != "cpu":
        return fn(*args)
    never = lax.optimization_barrier(jnp.zeros((), bool))
    out = jax.eval_shape(fn, *args)
    return lax.cond(never, lambda *_: jax.tree.map(_zeros_typed, out), fn, *args)


def _zeros_typed(s: jax.ShapeDtypeStruct) -> jax.Array:
    """Zeros of ``s``'s full type: its sharding where the mesh's axes are explicit, and
    varying over the ``shard_map`` axes ``s`` varies over (a ``lax.cond``'s branches
    must agree on both)."""
    sharding = s.sharding
    explicit = (isinstance(sharding, jax.sharding.NamedSharding)
                and any(t == jax.sharding.AxisType.Explicit for t in sharding.mesh.axis_types))
    z = jnp.zeros(s.shape, s.dtype, out_sharding=sharding if explicit else None)
    axes = getattr(s, "manual_axis_type", None)
    varying = tuple(sorted(axes.varying)) if axes is not None else ()
    return lax.pcast(z, varying, to="varying") if varying else z


def chunk_size(n: int, per_sample: int, budget: int) -> int:
    """Samples per chunk: the largest divisor of ``n`` with ``size * per_sample <= budget`` (>= 1)."""
    return max((d for d in range(1, n + 1) if n % d == 0 and d * per_sample <= budget), default=1)


def _chunked(a: jax.Array, nc: int) -> jax.Array:
    """``a`` (batch first, ``n`` samples) as ``(nc, n // nc, ...)``: chunk ``i`` is ``[:, i]``.

    The loop runs over the second axis, so that a batch sharded over devices
    in contiguous blocks (data parallelism) stays sharded along the first:
    each chunk takes ``nc / devices`` samples from every device, and XLA's
    partitioner gathers nothing. (Chunks of consecutive samples, the loop
    over the first axis, made it all-gather the batch.)
    """
    return a.reshape((nc, a.shape[0] // nc, *a.shape[1:]))


def _zeros_varying_like(shape: tuple[int, ...], dtype: Any, ref: jax.Array) -> jax.Array:
    """Zeros for a loop's carry, varying over the same ``shard_map`` axes as ``ref``
    (inside ``shard_map`` the loop body's results vary with the data; outside, no axes)."""
    zeros = jnp.zeros(shape, dtype)
    varying = tuple(sorted(jax.typeof(ref).manual_axis_type.varying))
    return lax.pcast(zeros, varying, to="varying") if varying else zeros


#: Chunks computed per loop iteration. They are independent, so XLA's CPU
#: runtime runs them at once (both cores of the 2-core benchmark machine); the
#: memory in flight is that many chunks. LeNet step against one chunk per
#: iteration: 23.5 against 26.6 ms at batch 128, 111 against 117 at 500, peak
#: memory 1.11x lax's (4 per iteration: 22.2 ms but 1.65x; every chunk at once,
#: no loop: 19.1 ms but 2.0x; 2 chunks of half the size: no gain).
CHUNKS_AT_ONCE = 2


#: A batch of at most this many chunks runs them as that many computations of their own
#: (:func:`fenced`), unrolled, instead of a loop: XLA's CPU backend runs a loop body's
#: fusions on one thread, a conditional's on all. Fwd+bwd, ms, loop -> fenced (A/B in
#: one process, 2026-12-07): 3x3 64->64 56x56 N=8 (winograd / im2col) 28.7 -> 26.1, 7x7
#: stride 2 3->64 224x224 25.7 -> 24.4, LeNet's conv1 at batch 500 20.1 -> 18.7, conv2
#: at batch 128 9.2 -> 8.8 (conv2 at batch 500, more chunks, a loop: 33.0 / 32.8); the
#: temporary memory of the 3x3 one 17.3 -> 13.8 MiB. Eight chunks unrolled gained no
#: more, and took 1.5x the compile time (four: 1.05x). Ten (LeNet's conv2 at batch 500
#: fenced too): the step 0.975x its time at batch 500, 1.02x at 128 (A/B, 2026-12-07).
FENCED_CHUNKS = 4


def _loop_shape(n: int, nc: int, per_sample: int, budget: int,
                at_once: int | None = None) -> tuple[int, int]:
    """``(iterations, chunks per iteration)`` for ``n // nc`` chunks: ``at_once``
    (default :data:`CHUNKS_AT_ONCE`) when a chunk fits the budget (one sample over
    it runs alone: 7x7 stride 2 onto 224x224, 7.4 MiB of patches a sample,
    measured 12% slower in pairs)."""
    m = n // nc
    at_once = CHUNKS_AT_ONCE if at_once is None else at_once
    at_once = at_once if nc * per_sample <= budget else 1
    k = max(d for d in range(1, at_once + 1) if m % d == 0)
    return m // k, k


#: How :func:`sum_chunks` hands its function each chunk of an operand ``(n, C, *S)``:
#: ``"batch"``: ``(nc, C, *S)``, as given; ``"channels"``: channel-major ``(C, nc,
#: *S)``, the operand transposed once, before the loop (every chunk then
#: contiguous), where XLA fuses that transposition into whatever produced the
#: operand (in a training step, an elementwise backward). Transposed inside the
#: loop, every chunk was a copy at a scalar loop's speed (LeNet's conv1 backward,
#: batch 128: 7.4 -> 5.1 ms of instruction time). For im2col's loops (LeNet's conv2)
#: the same measured no faster, with 1.13x the step's temporary memory at batch 500.
Layout = Literal["batch", "channels"]


def _to_layout(a: jax.Array, layout: Layout) -> jax.Array:
    """``(n, C, *S)`` -> ``layout`` (see :data:`Layout`), no chunks."""
    return jnp.swapaxes(a, 0, 1) if layout == "channels" else a


def _chunks(a: jax.Array, nc: int, layout: Layout) -> tuple[jax.Array, int]:
    """``a``'s chunks of ``nc`` samples (:func:`_chunked`'s) in ``layout``, and the axis
    that indexes them: 1 for ``"batch"`` (``(nc, m, C, *S)``, no copy), 0 for
    ``"channels"`` (``(m, C, nc, *S)``, ``a`` transposed once)."""
    c = _chunked(a, nc)  # (nc, m, C, *S)
    if layout == "batch":
        return c, 1
    return jnp.moveaxis(c, 0, 2), 0  # (m, C, nc, *S)


def _take(chunks: jax.Array, axis: int, i: Any) -> jax.Array:
    """Chunk ``i`` (a Python int or a traced index)."""
    if isinstance(i, int):
        return lax.index_in_dim(chunks, i, axis, keepdims=False)
    return lax.dynamic_index_in_dim(chunks, i, axis, keepdims=False)


def map_chunks(fn: Callable[[jax.Array], jax.Array], a: jax.Array, *, per_sample: int,
               budget: int, at_least: int = 1, at_once: int | None = None) -> jax.Array:
    """``fn(a)`` for a batch-wise ``fn``, run over chunks of samples whose size times
    ``per_sample`` fits ``budget`` (:func:`chunk_size`), and at least ``at_least`` chunks
    when the batch has that many samples. Up to :data:`FENCED_CHUNKS` chunks, each is a
    computation of its own (:func:`fenced`); more run in a loop, ``at_once`` chunks an
    iteration (default :data:`CHUNKS_AT_ONCE`; no loop when that is all of them)."""
    n = a.shape[0]
    per_sample = max(per_sample, 1)
    nc = chunk_size(n, per_sample, min(budget, per_sample * (n // max(at_least, 1))))
    if nc >= n:  # the whole batch (an empty one included)
        return fn(a)
    if n // nc <= FENCED_CHUNKS:
        outs = [fenced(lambda a, i=i: fn(_chunked(a, nc)[:, i]), a) for i in range(n // nc)]
        return jnp.stack(outs, axis=1).reshape((n, *outs[0].shape[1:]))
    chunks = _chunked(a, nc)
    iters, k = _loop_shape(n, nc, per_sample, budget, at_once)
    if iters == 1:
        outs = [fn(chunks[:, i]) for i in range(k)]
        return jnp.stack(outs, axis=1).reshape((n, *outs[0].shape[1:]))
    out = jax.eval_shape(fn, a[:nc])

    def body(i: jax.Array, buf: jax.Array) -> jax.Array:
        for j in range(k):
            c = i * k + j
            buf = lax.dynamic_update_index_in_dim(buf, fn(_take(chunks, 1, c)), c, axis=1)
        return buf

    buf = _zeros_varying_like((nc, n // nc, *out.shape[1:]), out.dtype, a)
    return lax.fori_loop(0, iters, body, buf).reshape((n, *out.shape[1:]))


def sum_chunks(fn: Callable[[jax.Array, jax.Array], Any], a: jax.Array, b: jax.Array, *,
               per_sample: int, budget: int, acc: Any, at_once: int | None = None,
               layouts: tuple[Layout, Layout] = ("batch", "batch")) -> Any:
    """``fn(a, b)`` for an ``fn`` that sums over the batch, as a sum over chunks of samples
    (sized, fenced and looped as in :func:`map_chunks`, ``at_once`` chunks an iteration,
    default :data:`CHUNKS_AT_ONCE`) accumulated in dtype ``acc``; the result has ``a``'s dtype.
    ``fn`` takes its chunks of ``a`` and ``b`` in ``layouts`` (:data:`Layout`) and may
    return a tuple of arrays (each is summed)."""
    n = a.shape[0]
    per_sample = max(per_sample, 1)
    nc = chunk_size(n, per_sample, budget)

    def cast(tree: Any, dtype: Any) -> Any:
        return jax.tree.map(lambda v: v.astype(dtype), tree)

    def add(s: Any, t: Any) -> Any:
        return jax.tree.map(operator.add, s, t)

    if nc >= n:  # the whole batch (an empty one included)
        return fn(_to_layout(a, layouts[0]), _to_layout(b, layouts[1]))
    (ca, xa), (cb, xb) = _chunks(a, nc, layouts[0]), _chunks(b, nc, layouts[1])
    iters, k = _loop_shape(n, nc, per_sample, budget, at_once)

    def part_of(ca: jax.Array, cb: jax.Array, i: Any) -> Any:
        return cast(fn(_take(ca, xa, i), _take(cb, xb, i)), acc)

    if n // nc <= FENCED_CHUNKS:
        parts = [fenced(functools.partial(part_of, i=i), ca, cb) for i in range(n // nc)]
        return cast(functools.reduce(add, parts), a.dtype)

    def part(i: Any) -> Any:
        return part_of(ca, cb, i)

    if iters == 1:
        return cast(functools.reduce(add, [part(i) for i in range(k)]), a.dtype)

    def body(i: jax.Array, total: Any) -> Any:
        return functools.reduce(add, [part(i * k + j) for j in range(k)], total)

    shapes = jax.eval_shape(fn, _take(ca, xa, 0), _take(cb, xb, 0))
    total = jax.tree.map(lambda sd: _zeros_varying_like(sd.shape, acc, a), shapes)
    return cast(lax.fori_loop(0, iters, body, total), a.dtype)
