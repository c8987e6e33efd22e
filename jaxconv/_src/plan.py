"""Which algorithm computes each of a convolution's three maps: the plan.

A :class:`Plan` names one algorithm (``jaxconv/_src/algorithms/<name>.py``)
per map: ``forward`` (``B(x, w)``, :func:`jaxconv.conv`), ``input_grad``
(``B_x^T(g; w)``, :func:`jaxconv.conv_transpose` and the input gradient) and
``weight_grad`` (``B_w^T(g; x)``). It is static: chosen at trace time from the
geometry, the shapes, the dtype and the backend, and cached by ``jit`` with
the geometry.

``method="auto"`` asks a deterministic cost model (:func:`_auto`), calibrated
from measurements on each backend: on CPU it chooses per map among the
algorithms (:mod:`jaxconv._src.cpu_plan`, its rules and their measurements),
on GPU and TPU it picks ``xla`` (the vendor libraries) unless a measurement on
that backend says otherwise. With measured autotuning switched
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
ALGORITHM_MODULES = ("xla", "im2col", "direct", "phase", "fft", "winograd")


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
    from . import cpu_plan  # the CPU cost model (imports this module)

    return cpu_plan.rules(geom, jnp.dtype(dtype), x_shape, w_shape)


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
