"""jaxconv: functional JAX convolutions and pooling with hand-derived VJPs.

Channels-first (``(N, C, *spatial)``, PyTorch layout), keyword-only options,
every differentiable op a ``jax.custom_vjp`` with a hand-derived backward rule.
"""

from ._src.conv import conv as conv
from ._src.conv import conv_transpose as conv_transpose

__version__ = "0.1.0"

__all__ = [
    "conv",
    "conv_transpose",
]
