"""jaxconv: functional JAX convolutions and pooling with hand-derived VJPs.

Channels-first (``(N, C, *spatial)``, PyTorch layout), keyword-only options,
every differentiable op a ``jax.custom_vjp`` with a hand-derived backward rule.
Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is
therefore not available; reverse mode, including grad-of-grad, is.

Submodules: :mod:`jaxconv.nn` (layers), :mod:`jaxconv.signal` (scipy.signal's
convolution family), :mod:`jaxconv.train`, :mod:`jaxconv.models`,
:mod:`jaxconv.datasets`.
"""

from . import models as models
from . import nn as nn
from . import signal as signal
from . import train as train
from ._src.adaptive import adaptive_avg_pool as adaptive_avg_pool
from ._src.adaptive import adaptive_max_pool as adaptive_max_pool
from ._src.adaptive import max_unpool as max_unpool
from ._src.adaptive import upsample as upsample
from ._src.autotune import autotune as autotune
from ._src.compile_options import compiler_options as compiler_options
from ._src.conv import conv as conv
from ._src.conv import conv_plan as conv_plan
from ._src.conv import conv_transpose as conv_transpose
from ._src.local import depthwise_separable_conv as depthwise_separable_conv
from ._src.local import local_conv as local_conv
from ._src.local import separable_conv as separable_conv
from ._src.local import tiled_conv as tiled_conv
from ._src.padding import pad as pad
from ._src.plan import Plan as Plan
from ._src.pool import avg_pool as avg_pool
from ._src.pool import gaussian_window as gaussian_window
from ._src.pool import lp_pool as lp_pool
from ._src.pool import max_pool as max_pool
from ._src.pool import weighted_pool as weighted_pool
from ._src.unfold import conv_matrix as conv_matrix
from ._src.unfold import fold as fold
from ._src.unfold import unfold as unfold

__version__ = "0.2.0"

__all__ = [
    "Plan",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "autotune",
    "avg_pool",
    "compiler_options",
    "conv",
    "conv_matrix",
    "conv_plan",
    "conv_transpose",
    "depthwise_separable_conv",
    "fold",
    "gaussian_window",
    "local_conv",
    "lp_pool",
    "max_pool",
    "max_unpool",
    "pad",
    "separable_conv",
    "tiled_conv",
    "unfold",
    "upsample",
    "weighted_pool",
]
