"""The one timing harness of jaxconv's benchmarks (``benchmarks/run.py`` uses it).

Method, the same for every table:

* **Agreement first.** Every contender's result is compared with the
  reference (``jax.lax`` + XLA autodiff, or scipy for signal ops) before
  anything is timed; a contender that disagrees is reported and not timed.
* **Compile and warm-up excluded.** Each contender runs twice untimed (the
  first call compiles), then a third, timed call sets how many calls make one
  timed block (at least ``min_block_s`` seconds, at least one call).
* **Interleaved rounds.** Each round times one block of every contender of a
  case, in an order rotated from round to round, so drift in the load of a
  shared machine falls on all contenders alike. Every call is waited for
  (``jax.block_until_ready``; ``torch.cuda.synchronize`` on a GPU) before the
  next starts.
* **Min and median** of the per-call time over the rounds are reported.
* **One ratio direction**: ``a / b`` of *times* (medians), so a ratio below 1
  means ``a`` -- always jaxconv -- is faster.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "AgreementError",
    "Timing",
    "agreement",
    "check_agreement",
    "fmt_ms",
    "fmt_ratio",
    "machine_lines",
    "markdown_table",
    "measure",
    "ratio",
]


class AgreementError(AssertionError):
    """A contender's result differs from the reference beyond the tolerance."""


@dataclasses.dataclass(frozen=True)
class Timing:
    """Per-call times (seconds) of one contender over the interleaved rounds."""

    samples: tuple[float, ...]
    calls_per_round: int

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "calls_per_round": self.calls_per_round,
            "samples_s": list(self.samples),
        }


def _leaves(tree: Any) -> list[np.ndarray]:
    out = []
    for leaf in jax.tree.leaves(tree):
        if hasattr(leaf, "detach"):  # a torch tensor
            leaf = leaf.detach().cpu().numpy()
        out.append(np.asarray(leaf, dtype=np.float64))
    return out


def agreement(got: Any, want: Any) -> float:
    """Largest difference between two pytrees of arrays, relative per leaf.

    For each pair of leaves, ``max|got - want| / max|want|`` (the scale of the
    reference leaf, so a tolerance means the same for every shape); returns the
    largest over the leaves. Torch tensors are accepted on either side.
    """
    a, b = _leaves(got), _leaves(want)
    if len(a) != len(b):
        raise AgreementError(f"{len(a)} result arrays against {len(b)} in the reference")
    worst = 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        if x.shape != y.shape:
            raise AgreementError(f"result {i}: shape {x.shape} against {y.shape} in the reference")
        scale = float(np.max(np.abs(y))) if y.size else 0.0
        diff = float(np.max(np.abs(x - y))) if y.size else 0.0
        if not math.isfinite(diff):
            return math.inf
        worst = max(worst, diff / max(scale, 1e-30))
    return worst


def check_agreement(what: str, got: Any, want: Any, tol: float) -> float:
    """:func:`agreement`, raising :class:`AgreementError` above ``tol``."""
    err = agreement(got, want)
    if not err <= tol:
        raise AgreementError(f"{what}: relative difference {err:.2e} > tolerance {tol:.0e}")
    return err


def check_all(case: str, contenders: Mapping[str, Callable[[], Any]], want: Any, tol: float,
              reference: str) -> dict[str, float]:
    """:func:`check_agreement` of every contender's result with ``want`` (name -> error)."""
    return {name: check_agreement(f"{case}: {name} vs {reference}", fn(), want, tol)
            for name, fn in contenders.items()}


def _wait(result: Any) -> None:
    jax.block_until_ready(result)
    for leaf in jax.tree.leaves(result):
        if hasattr(leaf, "is_cuda") and leaf.is_cuda:  # torch on a GPU runs asynchronously
            import torch

            torch.cuda.synchronize()
            break


def measure(
    contenders: Mapping[str, Callable[[], Any]],
    *,
    rounds: int,
    min_block_s: float,
) -> dict[str, Timing]:
    """Times zero-argument callables in interleaved rounds.

    Args:
      contenders: name -> callable doing one complete unit of work (for JAX: a
        call of a jitted function; its result is waited for).
      rounds: number of interleaved rounds (one sample per contender each).
      min_block_s: a timed block repeats the call until it lasts about this long.

    Returns:
      name -> :class:`Timing` (per-call seconds, one sample per round).
    """
    names = list(contenders)
    calls = {}
    for name in names:  # compile + warm up (untimed), then size the timed block
        fn = contenders[name]
        _wait(fn())
        _wait(fn())
        t0 = time.perf_counter()
        _wait(fn())
        once = time.perf_counter() - t0
        calls[name] = max(1, math.ceil(min_block_s / max(once, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            fn, n = contenders[name], calls[name]
            t0 = time.perf_counter()
            for _ in range(n):
                _wait(fn())
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: Timing(tuple(samples[name]), calls[name]) for name in names}


def ratio(a: Timing | None, b: Timing | None) -> float | None:
    """Time ratio ``a / b`` of medians (< 1: ``a`` is faster); None if either is missing."""
    if a is None or b is None:
        return None
    return a.median / b.median


def fmt_ms(t: Timing | None) -> str:
    """``"median (min)"`` in milliseconds, or ``"-"``."""
    if t is None:
        return "-"
    return f"{_num(t.median * 1e3)} ({_num(t.min * 1e3)})"


def _num(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A GitHub-flavoured Markdown table (the first ``left`` columns left-aligned, the rest right)."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join([":---"] * left + ["---:"] * (len(headers) - left)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_lines() -> list[str]:
    """What the numbers were measured on: versions, backend, device, cores."""
    dev = jax.devices()[0]
    lines = [
        f"jax {jax.__version__} ({jax.default_backend()}, {jax.device_count()} device(s): "
        f"{getattr(dev, 'device_kind', dev.platform)}), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})",
    ]
    tuning = [f"{k}={os.environ[k]}" for k in TIMING_ENV if os.environ.get(k)]
    if tuning:
        lines.append("environment: " + " ".join(tuning))
    return lines


#: Environment variables that change the timings (the README's "Performance" part has
#: measurements of each): XLA's flags (vector width, YNNPACK's convolutions) and glibc's
#: allocator settings. :func:`machine_lines` reports those that are set.
TIMING_ENV = ("XLA_FLAGS", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
