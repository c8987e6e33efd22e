"""Opt-in measured autotuning of ``method="auto"``.

Switched on by the :func:`autotune` context manager or the environment
variable ``JAXCONV_AUTOTUNE=1``. Then, for each map of a convolution, every
algorithm that supports it is compiled and timed once, at trace time, per
(jax version, backend, device kind, geometry, shapes, dtype); the fastest is
remembered in memory and in a JSON file, ``$XDG_CACHE_HOME/jaxconv/autotune.json``
(``~/.cache/jaxconv/autotune.json``; ``JAXCONV_CACHE_DIR`` overrides the
directory). The file is rewritten atomically under a lock, merged with what
other processes wrote meanwhile; a corrupt or foreign file is ignored with a
warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from ._files import atomic_file
from .geometry import ConvGeometry

FORMAT = "jaxconv-autotune"
VERSION = 1

_state = threading.local()
_memory: dict[str, str] = {}
_lock = threading.Lock()


def enabled() -> bool:
    """Whether measured autotuning is on (context manager, else ``JAXCONV_AUTOTUNE``)."""
    flag = getattr(_state, "on", None)
    if flag is not None:
        return bool(flag)
    return os.environ.get("JAXCONV_AUTOTUNE", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def autotune(enable: bool = True) -> Iterator[None]:
    """Context manager: inside it, ``method="auto"`` measures the algorithms instead of guessing.

    Each candidate is compiled and timed once per (jax version, backend, device
    kind, geometry, shapes, dtype) when a convolution is traced; the winner is
    cached in memory and in ``~/.cache/jaxconv/autotune.json`` (or under
    ``$XDG_CACHE_HOME``), so later processes skip the measurement. Functions
    already compiled keep their plan: call ``jax.clear_caches()`` or trace anew.

    Args:
      enable: False switches autotuning off inside the block (overriding
        ``JAXCONV_AUTOTUNE``).

    Example:
      >>> import jax.numpy as jnp, jaxconv
      >>> with jaxconv.autotune(False):
      ...     jaxconv.conv(jnp.ones((1, 1, 5, 5)), jnp.ones((1, 1, 3, 3))).shape
      (1, 1, 3, 3)
    """
    old = getattr(_state, "on", None)
    _state.on = enable
    try:
        yield
    finally:
        _state.on = old


def cache_path() -> Path:
    """The JSON cache file: ``$JAXCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxconv``,
    else ``~/.cache/jaxconv``, then ``autotune.json``."""
    base = os.environ.get("JAXCONV_CACHE_DIR")
    if base:
        return Path(base) / "autotune.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "jaxconv" / "autotune.json"


def _read(path: Path) -> dict[str, str]:
    """The entries of the cache file; {} (with a warning) if it is unreadable or not ours."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        warnings.warn(f"jaxconv: ignoring the autotune cache {path}: {e}", stacklevel=3)
        return {}
    try:
        data = json.loads(text)
        if (not isinstance(data, dict) or data.get("format") != FORMAT
                or data.get("version") != VERSION or not isinstance(data.get("entries"), dict)):
            raise ValueError("not a jaxconv autotune cache of this version")
        entries = data["entries"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
            raise ValueError("entries must map strings to strings")
    except ValueError as e:
        warnings.warn(f"jaxconv: ignoring the autotune cache {path}: {e}", stacklevel=3)
        return {}
    return dict(entries)


def _write(path: Path, new: dict[str, str]) -> None:
    """Merges ``new`` into the file under an exclusive lock and replaces it atomically."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a+") as lock:
            try:
                import fcntl

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - not POSIX: atomic replace only
                pass
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                entries = _read(path)
            entries.update(new)
            blob = json.dumps({"format": FORMAT, "version": VERSION, "entries": entries},
                              indent=1, sort_keys=True)
            with atomic_file(path) as f:
                f.write(blob.encode())
    except OSError as e:
        warnings.warn(f"jaxconv: could not write the autotune cache {path}: {e}", stacklevel=3)


def _key(which: str, geom: ConvGeometry, dtype: DTypeLike, backend: str,
         x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> str:
    dev = jax.devices(backend)[0]
    return "|".join([
        f"jax={jax.__version__}", f"backend={backend}", f"device={dev.device_kind}",
        f"map={which}", f"dtype={jnp.dtype(dtype).name}", f"x={x_shape}", f"w={w_shape}",
        f"geom={geom}",
    ])


def _time(fn: Any, args: tuple[jax.Array, ...], repeats: int = 3) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def _measure(which: str, geom: ConvGeometry, dtype: DTypeLike, backend: str,
             x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> str:
    """Times every supported algorithm on map ``which``; returns the fastest one's name."""
    from . import plan

    dev = jax.devices(backend)[0]
    y_shape = (x_shape[0], w_shape[0], *geom.out_spatial)
    rng = np.random.default_rng(0)

    def arr(shape: tuple[int, ...]) -> jax.Array:
        return jax.device_put(jnp.asarray(rng.standard_normal(shape), dtype), dev)

    best, best_t = "xla", float("inf")
    # measured eagerly even while an outer function is being traced
    with jax.ensure_compile_time_eval():
        x, w, g = arr(x_shape), arr(w_shape), arr(y_shape)
        args = {"forward": (x, w), "input_grad": (g, w), "weight_grad": (x, g)}[which]
        for name in plan.ALGORITHMS:
            t = _candidate(name, which, geom, dtype, backend, x_shape, w_shape, args)
            if t < best_t:
                best, best_t = name, t
    return best


def _candidate(name: str, which: str, geom: ConvGeometry, dtype: DTypeLike, backend: str,
               x_shape: tuple[int, ...], w_shape: tuple[int, ...],
               args: tuple[jax.Array, ...]) -> float:
    """Seconds one run of algorithm ``name`` takes on map ``which`` (inf: unsupported / failed)."""
    from . import plan

    if plan.unsupported(name, which, geom, dtype, x_shape, w_shape) is not None:
        return float("inf")
    mod = plan.algorithm(name)
    fn = jax.jit(lambda a, b: getattr(mod, which)(geom, a, b))
    try:
        return _time(fn, args)
    except Exception as e:
        warnings.warn(f"jaxconv.autotune: {name} failed on {which}: {e}", stacklevel=2)
        return float("inf")


def tuned_plan(geom: ConvGeometry, dtype: DTypeLike, backend: str,
               x_shape: tuple[int, ...] | None, w_shape: tuple[int, ...] | None) -> Any:
    """The measured :class:`~jaxconv._src.plan.Plan`, or None when autotuning is off
    (or the shapes are unknown)."""
    if not enabled() or x_shape is None or w_shape is None:
        return None
    from .plan import MAPS, Plan

    path = cache_path()
    names = []
    with _lock:
        keys = [_key(m, geom, dtype, backend, x_shape, w_shape) for m in MAPS]
        if any(k not in _memory for k in keys):
            _memory.update({k: v for k, v in _read(path).items() if k in keys})
        new = {}
        for m, k in zip(MAPS, keys):
            if k not in _memory:
                _memory[k] = new[k] = _measure(m, geom, dtype, backend, x_shape, w_shape)
            names.append(_memory[k])
        if new:
            _write(path, new)
    from .plan import ALGORITHMS

    if not all(n in ALGORITHMS for n in names):  # a cache written by a build with other algorithms
        return None
    return Plan(*names)


def clear_memory() -> None:
    """Forgets the in-memory cache (the file stays)."""
    with _lock:
        _memory.clear()
