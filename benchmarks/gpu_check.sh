#!/usr/bin/env bash
# The whole test suite and the benchmark table on whatever accelerator JAX finds.
#
#   bash benchmarks/gpu_check.sh [run.py options, e.g. --quick]
#
# Prints the device first. Where JAX finds no GPU or TPU, it says so and exits 0
# without running anything (the CPU numbers come from `python benchmarks/run.py`).
# GPU_CHECK_WORKERS sets pytest-xdist's worker count (default 4; the workers share
# the accelerator, so JAX's memory preallocation is turned off).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=$(python -c 'import jax; print(jax.default_backend())')
if [ "$backend" = "cpu" ]; then
    echo "gpu_check: skipped: JAX finds no accelerator here (backend cpu: $(python -c 'import jax; print(jax.devices())'))."
    exit 0
fi
python -c 'import jax; d = jax.devices(); print(f"gpu_check: JAX {jax.__version__}, backend {jax.default_backend()}, {len(d)} device(s): {d[0].device_kind} ({d})")'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

export XLA_PYTHON_CLIENT_PREALLOCATE=false
status=0
echo "== tests on $backend"
python -m pytest -q -n "${GPU_CHECK_WORKERS:-4}" || status=$?
echo "== benchmarks on $backend"
python benchmarks/run.py "$@" || status=$?
exit "$status"
