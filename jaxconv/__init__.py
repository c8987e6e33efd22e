"""jaxconv: functional JAX convolutions and pooling with hand-derived VJPs.

Channels-first (``(N, C, *spatial)``, PyTorch layout), keyword-only options,
every differentiable op a ``jax.custom_vjp`` with a hand-derived backward rule.
"""

from . import models as models
from . import nn as nn
from . import train as train
from ._src.autotune import autotune as autotune  # perf branch
from ._src.conv import conv as conv
from ._src.conv import conv_plan as conv_plan  # perf branch
from ._src.conv import conv_transpose as conv_transpose
from ._src.plan import Plan as Plan  # perf branch
from ._src.pool import adaptive_avg_pool as adaptive_avg_pool
from ._src.pool import adaptive_max_pool as adaptive_max_pool
from ._src.pool import avg_pool as avg_pool
from ._src.pool import gaussian_window as gaussian_window
from ._src.pool import lp_pool as lp_pool
from ._src.pool import max_pool as max_pool
from ._src.pool import max_unpool as max_unpool
from ._src.pool import upsample as upsample
from ._src.pool import weighted_pool as weighted_pool

__version__ = "0.1.0"

__all__ = [
    "Plan",  # perf branch
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "autotune",
    "avg_pool",
    "conv",
    "conv_plan",
    "conv_transpose",
    "gaussian_window",
    "lp_pool",
    "max_pool",
    "max_unpool",
    "upsample",
    "weighted_pool",
]
