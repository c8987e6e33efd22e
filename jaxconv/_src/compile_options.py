"""XLA compile options that speed up jaxconv's programs, for ``jax.jit(..., compiler_options=)``."""

from __future__ import annotations

import functools
import platform
from typing import Any

import jax

#: The CPU option: XLA compiles its loops for 256-bit vectors unless told otherwise.
CPU_VECTOR_WIDTH = {"xla_cpu_prefer_vector_width": 512}
#: Where Linux lists the CPU's features (its ``flags`` lines).
CPUINFO = "/proc/cpuinfo"


@functools.cache
def host_has_avx512() -> bool:
    """Whether this host's CPU has AVX-512 (``avx512f`` in Linux's :data:`CPUINFO`).

    False where that cannot be read (other systems, other architectures).
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open(CPUINFO, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


def compiler_options(backend: str | None = None) -> dict[str, Any]:
    """XLA compile options that make jaxconv's programs faster on ``backend``.

    Pass them to the ``jax.jit`` that compiles your step:
    ``jax.jit(step, compiler_options=jaxconv.compiler_options())``.
    :class:`jaxconv.train.Trainer` does this by default. They apply to that one
    compiled program, unlike ``XLA_FLAGS``, which set them for the whole process.

    On a CPU with AVX-512 (x86-64, read from Linux's ``/proc/cpuinfo``), the
    option is ``{"xla_cpu_prefer_vector_width": 512}``. XLA otherwise compiles
    its elementwise loops for 256-bit vectors. The wider vectors speed up the
    loops of the ``direct`` algorithm, which runs the depthwise, grouped and
    few-channel convolutions.

    Forward + backward, A/B in one process (``python benchmarks/run.py --options``
    and an earlier run of the same comparison, 2026-12-07, a 2-core AVX-512 Xeon),
    time with the option as a fraction of the time without:

    * grouped 3x3 256->256 14x14 N=8 G=32: 0.63-0.74;
    * depthwise 3x3 C=128 56x56 N=8: 0.88-0.89.

    The other convolutions and the LeNet training step were 0.93-1.06. The pools
    were 0.62-1.34 across runs, the 3-stride-2 max-pool 0.83-1.34 over six: noise
    on this machine, not a measured gain.

    Everywhere else (no AVX-512, another architecture, GPU, TPU) the result is
    ``{}``. Vector width changes the order in which some float sums are
    vectorised, so results can differ in the last bits, not more.

    Args:
      backend: the platform the program is compiled for (``"cpu"``, ``"gpu"``,
        ``"cuda"``, ``"rocm"``, ``"tpu"``, ...). Default: ``jax.default_backend()``.

    Returns:
      A new dict of option names to values, possibly empty.

    Raises:
      TypeError: ``backend`` is neither a str nor None.

    Example:
      >>> import jax, jaxconv
      >>> opts = jaxconv.compiler_options("gpu")
      >>> opts
      {}
      >>> f = jax.jit(lambda x: jaxconv.max_pool(x, 2), compiler_options=opts)
      >>> f(jax.numpy.ones((1, 1, 4, 4))).shape
      (1, 1, 2, 2)
    """
    if backend is None:
        backend = jax.default_backend()
    if not isinstance(backend, str):
        raise TypeError("jaxconv.compiler_options: backend must be a platform name (str) or "
                        f"None; got {backend!r}")
    if backend.lower() == "cpu" and host_has_avx512():
        return dict(CPU_VECTOR_WIDTH)
    return {}
