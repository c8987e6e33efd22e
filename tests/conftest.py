"""Shared test helpers: the one PyTorch-fixture format, its writer and its loader.

A fixture file ``tests/data/torch_<family>.npz`` holds golden outputs recorded
from ``torch.nn.functional`` by ``tests/make_torch_<family>_fixtures.py``
(torch is not a test dependency). Layout:

* ``__cases__``: a JSON list of ``{"name", "op", "kwargs"}``, where ``op`` names
  the jaxconv function and ``kwargs`` are its keyword arguments in jaxconv's
  spelling (JSON lists; the loader turns them into tuples);
* ``__torch_version__``: the torch version that made it;
* ``<name>/<array>``: the case's arrays: ``x`` (input) and ``y`` (torch's
  output) always, plus what the op needs (``w``, ``b``; ``idx`` for returned
  indices; ``indices`` for an indices input).

Tests parametrize over :func:`torch_cases`::

    from conftest import torch_cases

    @pytest.mark.parametrize("case", torch_cases("torch_conv.npz"), ids=str)
    def test_matches_torch(case):
        got = getattr(jaxconv, case.op)(case["x"], case["w"], case["b"], **case.kwargs)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Compiling is most of this suite's time: hundreds of small jitted functions, each
# compiled once, most run once on a few dozen elements. LLVM's optimisation of the
# generated CPU code is most of a compile, so the suite turns it off (XLA's own HLO
# passes -- fusion, layout, the SPMD partitioner, what the HLO-inspecting tests
# check -- run as always). Measured: 627 -> 323 s for the whole suite with 2
# workers. It changes no operation's semantics, only the order of some float32
# sums (unvectorised reductions), which the tolerances allow. Set XLA_FLAGS with
# --xla_backend_optimization_level yourself (before pytest starts) to test
# another level; subprocesses (the sharding and example tests) inherit the flag.
# The benchmarks and the doctests run at XLA's default level.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=0").strip()

DATA = pathlib.Path(__file__).parent / "data"


def _tuples(v: Any) -> Any:
    return tuple(_tuples(u) for u in v) if isinstance(v, list) else v


@dataclasses.dataclass(frozen=True)
class TorchCase:
    """One recorded case: ``case["x"]`` is an array, ``case.kwargs`` the op's options."""

    name: str
    op: str
    kwargs: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def __str__(self) -> str:  # the pytest id
        return self.name


@functools.cache
def torch_cases(filename: str) -> tuple[TorchCase, ...]:
    """Every case of ``tests/data/<filename>``, arrays loaded (the files are small)."""
    with np.load(DATA / filename) as data:
        meta = json.loads(str(data["__cases__"]))
        arrays: dict[str, dict[str, np.ndarray]] = {c["name"]: {} for c in meta}
        for key in data.files:
            if not key.startswith("__"):
                name, array = key.rsplit("/", 1)
                arrays[name][array] = data[key]
    return tuple(
        TorchCase(c["name"], c["op"], {k: _tuples(v) for k, v in c["kwargs"].items()},
                  arrays[c["name"]])
        for c in meta
    )


def save_torch_cases(
    path: pathlib.Path | str,
    cases: Iterable[tuple[str, str, Mapping[str, Any], Mapping[str, np.ndarray]]],
    torch_version: str,
) -> int:
    """Writes ``(name, op, kwargs, arrays)`` cases in the format above; returns the count."""
    data: dict[str, np.ndarray] = {}
    meta = []
    for name, op, kwargs, arrays in cases:
        meta.append({"name": name, "op": op, "kwargs": dict(kwargs)})
        for key, a in arrays.items():
            data[f"{name}/{key}"] = np.asarray(a)
    data["__cases__"] = np.array(json.dumps(meta))
    data["__torch_version__"] = np.array(torch_version)
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    return len(meta)
