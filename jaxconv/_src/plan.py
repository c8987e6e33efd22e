"""Which algorithm computes each of a convolution's three maps: the plan.

A :class:`Plan` names one algorithm (``jaxconv/_src/algorithms/<name>.py``)
per map: ``forward`` (``B(x, w)``, :func:`jaxconv.conv`), ``input_grad``
(``B_x^T(g; w)``, :func:`jaxconv.conv_transpose` and the input gradient) and
``weight_grad`` (``B_w^T(g; x)``). It is static: chosen at trace time from the
geometry, the shapes, the dtype and the backend, and cached by ``jit`` with
the geometry.

``method="auto"`` asks a deterministic cost model (:func:`_auto`), calibrated
from measurements on each backend: on CPU it chooses per map among the
algorithms, on GPU and TPU it picks ``xla`` (the vendor libraries) unless a
measurement on that backend says otherwise. With measured autotuning switched
on (:func:`jaxconv.autotune` or ``JAXCONV_AUTOTUNE=1``), ``"auto"`` instead
times every candidate once and caches the winner (:mod:`jaxconv._src.autotune`).
"""

from __future__ import annotations

import importlib
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from .geometry import ConvGeometry

MAPS = ("forward", "input_grad", "weight_grad")
Map = Literal["forward", "input_grad", "weight_grad"]
Method = str | Mapping[str, str]
Shape = tuple[int, ...]

#: The algorithm modules, in order of preference among equals. A module that is
#: not there (``fft`` is built on another branch) is skipped: registering an
#: algorithm is adding its name here.
ALGORITHM_MODULES = ("xla", "im2col", "direct", "phase", "fft")


def _load() -> dict[str, types.ModuleType]:
    found = {}
    for name in ALGORITHM_MODULES:
        qual = f"{__package__}.algorithms.{name}"
        try:
            mod = importlib.import_module(qual)
        except ModuleNotFoundError as e:
            if e.name != qual:  # a real import error inside the module
                raise
            continue
        found[mod.NAME] = mod
    return found


ALGORITHMS: dict[str, types.ModuleType] = _load()


@dataclass(frozen=True)
class Plan:
    """The algorithm for each of the three maps of one convolution (static, hashable).

    Example:
      >>> Plan("im2col", "phase", "im2col").input_grad
      'phase'
    """

    forward: str
    input_grad: str
    weight_grad: str

    def __getitem__(self, which: str) -> str:
        return str(getattr(self, which))


def algorithm(name: str) -> types.ModuleType:
    """The module of algorithm ``name`` (``xla``, ``im2col``, ...)."""
    return ALGORITHMS[name]


def _shapes(geom: ConvGeometry, x_shape: Shape | None, w_shape: Shape | None
            ) -> tuple[int, int, int] | None:
    """(N, C_in, C_out) when both shapes are known."""
    if x_shape is None or w_shape is None:
        return None
    return x_shape[0], x_shape[1], w_shape[0]


def unsupported(name: str, which: str, geom: ConvGeometry, dtype: DTypeLike,
                x_shape: Shape | None = None, w_shape: Shape | None = None) -> str | None:
    """Why algorithm ``name`` cannot compute map ``which`` here, or None."""
    mod = ALGORITHMS[name]
    why = mod.supports(geom, dtype)
    if why is None and name == "direct" and w_shape is not None:
        why = mod.check_terms(geom, w_shape[1], w_shape[0] // geom.groups)
    if why is None and name == "im2col" and x_shape is not None and w_shape is not None:
        elems = x_shape[0] * math.prod(geom.out_spatial) * math.prod(geom.kernel) * x_shape[1]
        if elems > mod.MAX_PATCH_ELEMENTS:
            why = (f"im2col's patch matrix would hold {elems} elements, more than "
                   f"{mod.MAX_PATCH_ELEMENTS}")
    return why


# --------------------------------------------------------------------------
# The cost model
# --------------------------------------------------------------------------


def _auto(geom: ConvGeometry, dtype: DTypeLike, backend: str,
          x_shape: Shape | None, w_shape: Shape | None) -> Plan:
    """The deterministic choice: rules calibrated from measurements (see the module docs)."""
    if backend != "cpu" or x_shape is None or w_shape is None:
        return Plan("xla", "xla", "xla")
    return _cpu_rules(geom, jnp.dtype(dtype), x_shape, w_shape)


def _cpu_rules(geom: ConvGeometry, dtype: jnp.dtype, x_shape: Shape, w_shape: Shape) -> Plan:
    """CPU: per map, among xla / im2col / direct / phase / fft.

    Calibrated on a 2-core AMD EPYC (XLA CPU, float32; per-map timings of the
    benchmark cases, see the perf notes): XLA's CPU convolution is slow when a
    channel count is tiny (LeNet's first layer, depthwise) and when it
    inserts zeros (strided input gradients), and fast otherwise; building
    patch matrices costs memory traffic that only pays for few channels.

    * tiny convolutions (fewer than :data:`MIN_OUTPUT` output elements): ``xla``.
    * small ungrouped convolutions (at most :data:`SMALL_OUTPUT` output
      positions, ``prod(k) * C_in <= SMALL_K``; LeNet's layers): ``im2col``
      for all three maps (which builds its patch matrices per chunk of
      samples, so a LeNet step's peak memory stays within 1.07x of lax's).
      Otherwise:
    * large ungrouped kernels, where :func:`algorithms.fft.prefer_over_direct`
      says the FFT costs less than 0.15x the direct flops: ``fft`` for all three maps.
    * forward: ``direct`` for grouped convolutions (depthwise) whose outputs
      each sum at most :data:`DIRECT_TERMS` products (``prod(k) * C_in/G``);
      else ``xla`` (for LeNet's conv1, ungrouped with one input channel,
      direct's forward alone is faster but the fwd+bwd step is not).
    * input_grad: ``direct`` for depthwise (one output channel per group);
      ``im2col`` for ungrouped, stride-1 maps onto at most
      :data:`FEW_CHANNELS` input channels; ``phase`` for ungrouped strided
      maps onto at least :data:`PHASE_MIN_CHANNELS` channels (no zero
      insertion); else ``xla``.
    * weight_grad: ``direct`` for depthwise; else ``xla``.

    Measured fwd+bwd (x and w gradients), interleaved A/B in one process,
    best of 10-20, ms: LeNet conv1 (128,1,28,28)*(20,1,5,5): im2col 9.0,
    xla 14.4 (batch 500: 34 vs 82); conv2 (128,20,12,12)*(50,20,5,5): im2col
    18.4, xla 21.6 (batch 500: 67 vs 129); 3x3 64->64 56x56: im2col 44,
    xla 31; depthwise 3x3
    C=128 56x56 N=8: direct everywhere 176, xla 495; conv_transpose 4x4
    stride 2 128->64 32x32 N=8: xla/phase/xla 52, xla 68.
    """
    c_in = x_shape[1]
    c_out = w_shape[0]
    if x_shape[0] * c_out * math.prod(geom.out_spatial) < MIN_OUTPUT:
        return Plan("xla", "xla", "xla")  # tiny: time is compile time, where XLA's one op wins
    G = geom.groups
    cin_g, cout_g = c_in // G, c_out // G
    taps = math.prod(geom.kernel)
    strided = any(s > 1 for s in geom.stride)
    depthwise = cin_g == 1 and cout_g == 1

    patch = x_shape[0] * math.prod(geom.out_spatial) * taps * c_in
    small = (G == 1 and math.prod(geom.out_spatial) <= SMALL_OUTPUT and taps * c_in <= SMALL_K
             and patch <= PATCH_BUDGET * 64)
    if small:  # LeNet-sized: im2col's patch matrices are cheap, its products fast
        return _checked(Plan("im2col", "im2col", "im2col"), geom, dtype, x_shape, w_shape)
    fft = ALGORITHMS.get("fft")
    if fft is not None and G == 1 and fft.prefer_over_direct(geom, x_shape[0], c_in, c_out):
        # large kernels: the FFT's O(n log n) beats every O(n k) algorithm (crossover
        # measured on XLA:CPU, see algorithms/fft.py; all three maps behave alike)
        return _checked(Plan("fft", "fft", "fft"), geom, dtype, x_shape, w_shape)
    forward = "direct" if G > 1 and taps * cin_g <= DIRECT_TERMS else "xla"
    if depthwise:
        input_grad = "direct"
    elif G == 1 and not strided and c_in <= FEW_CHANNELS:
        input_grad = "im2col"
    elif G == 1 and strided and c_in >= PHASE_MIN_CHANNELS:
        input_grad = "phase"
    else:
        input_grad = "xla"
    weight_grad = "direct" if depthwise else "xla"
    return _checked(Plan(forward, input_grad, weight_grad), geom, dtype, x_shape, w_shape)


def _checked(plan: Plan, geom: ConvGeometry, dtype: DTypeLike, x_shape: Shape,
             w_shape: Shape) -> Plan:
    """``plan`` with ``xla`` wherever its algorithm declines (e.g. a huge patch matrix)."""
    for which in MAPS:  # never a choice the algorithm declines (e.g. huge patch matrices)
        if unsupported(plan[which], which, geom, dtype, x_shape, w_shape) is not None:
            plan = Plan(**{**{m: plan[m] for m in MAPS}, which: "xla"})
    return plan


#: Below this many output elements (N * C_out * prod(O)) auto picks xla.
MIN_OUTPUT = 4096
#: im2col for every map (no groups) when prod(out_spatial) and prod(k) * C_in are at
#: most these (and the whole patch matrix at most 64 * PATCH_BUDGET elements).
SMALL_OUTPUT = 1024
SMALL_K = 512
PATCH_BUDGET = 1 << 20
#: direct's forward (grouped convolutions) when ``prod(k) * C_in/G`` is at most this.
DIRECT_TERMS = 32
#: im2col's input gradient (stride 1, no groups) onto at most this many channels.
FEW_CHANNELS = 4
#: phase's input gradient (strided, no groups) onto at least this many channels.
PHASE_MIN_CHANNELS = 16


# --------------------------------------------------------------------------
# plan_for
# --------------------------------------------------------------------------


def _check_name(caller: str, name: object, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"jaxconv.{caller}: {what} must be 'auto' or an algorithm name "
            f"({', '.join(sorted(ALGORITHMS))}); got {name!r} of type {type(name).__name__}"
        )
    if name != "auto" and name not in ALGORITHMS:
        raise ValueError(
            f"jaxconv.{caller}: {what} must be 'auto' or one of "
            f"{', '.join(repr(a) for a in sorted(ALGORITHMS))}; got {name!r}"
        )
    return name


def normalize_method(caller: str, method: object) -> tuple[str, str, str]:
    """``method=`` as one name per map (``"auto"`` where none is given); raises on bad input.

    Example:
      >>> normalize_method("conv", {"weight_grad": "im2col"})
      ('auto', 'auto', 'im2col')
    """
    if isinstance(method, str):
        _check_name(caller, method, "method")
        return (method, method, method)
    if isinstance(method, Mapping):
        bad = [k for k in method if k not in MAPS]
        if bad:
            raise ValueError(
                f"jaxconv.{caller}: method keys must be among 'forward', 'input_grad', "
                f"'weight_grad'; got {bad[0]!r}"
            )
        names = tuple(_check_name(caller, method.get(m, "auto"), f"method[{m!r}]") for m in MAPS)
        return names[0], names[1], names[2]
    raise TypeError(
        f"jaxconv.{caller}: method must be 'auto', an algorithm name or a mapping "
        f"{{'forward': ..., 'input_grad': ..., 'weight_grad': ...}}; got {method!r} of type "
        f"{type(method).__name__}"
    )


def plan_for(
    geom: ConvGeometry,
    dtype: DTypeLike,
    *,
    backend: str | None = None,
    method: Method = "auto",
    x_shape: Shape | None = None,
    w_shape: Shape | None = None,
    caller: str = "plan_for",
) -> Plan:
    """The algorithm that computes each map of the convolution ``geom``.

    Args:
      geom: the convolution's geometry (``jaxconv._src._args.conv_geometry``).
      dtype: the arrays' dtype.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; None = ``jax.default_backend()``.
      method: ``"auto"``, an algorithm name, or a mapping from map name
        (``"forward"``, ``"input_grad"``, ``"weight_grad"``) to one (missing
        maps are ``"auto"``).
      x_shape: the conv's input shape ``(N, C_in, *D)``; with ``w_shape`` it
        lets ``"auto"`` weigh the algorithms (without them it picks ``xla``).
      w_shape: the conv's kernel shape ``(C_out, C_in // groups, *k)``.
      caller: the public function named in error messages.

    Returns:
      A :class:`Plan`.

    Raises:
      ValueError, TypeError: an unknown algorithm, or one that does not support
        the geometry (the message gives its reason).

    Example:
      >>> from jaxconv._src import _args
      >>> g = _args.conv_geometry("conv", (8, 1, 28, 28), (20, 1, 5, 5), None, stride=1,
      ...                         padding=0, dilation=1, groups=1)
      >>> plan_for(g, "float32", backend="gpu")
      Plan(forward='xla', input_grad='xla', weight_grad='xla')
      >>> plan_for(g, "float32", method={"forward": "direct"}, backend="gpu").forward
      'direct'
    """
    names = normalize_method(caller, method)
    backend = jax.default_backend() if backend is None else backend
    auto = None
    if "auto" in names:
        from . import autotune

        auto = autotune.tuned_plan(geom, dtype, backend, x_shape, w_shape)
        if auto is None:
            auto = _auto(geom, dtype, backend, x_shape, w_shape)
    chosen = []
    for which, name in zip(MAPS, names):
        if name == "auto" and auto is not None:
            chosen.append(auto[which])
            continue
        why = unsupported(name, which, geom, dtype, x_shape, w_shape)
        if why is not None:
            raise ValueError(f"jaxconv.{caller}: method {name!r} cannot compute {which} here: {why}")
        chosen.append(name)
    return Plan(*chosen)
