"""``benchmarks/harness.py``'s report of what the timings were measured under."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import harness


def test_machine_lines_name_the_timing_environment(monkeypatch):
    for k in harness.TIMING_ENV:
        monkeypatch.delenv(k, raising=False)
    assert not any("environment" in line for line in harness.machine_lines())
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_prefer_vector_width=512")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1073741824")
    monkeypatch.setenv("GLIBC_TUNABLES", "")  # set but empty: not reported
    assert harness.machine_lines()[-1] == (
        "environment: XLA_FLAGS=--xla_cpu_prefer_vector_width=512 "
        "MALLOC_MMAP_THRESHOLD_=1073741824")
