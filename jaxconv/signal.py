"""``scipy.signal``-compatible convolution and correlation, differentiable (custom_vjp).

N-d arrays without batch or channel axes, real or complex, with scipy's modes
(``"full"``, ``"same"``, ``"valid"``), boundaries and output shapes. Every
function has hand-derived reverse-mode gradients in both inputs; forward mode
(``jax.jvp``) is not available on ``custom_vjp`` functions. See
:mod:`jaxconv._src.signal` for the conventions.
"""

from ._src.signal import choose_conv_method as choose_conv_method
from ._src.signal import convolve as convolve
from ._src.signal import convolve2d as convolve2d
from ._src.signal import correlate as correlate
from ._src.signal import correlate2d as correlate2d
from ._src.signal import fftconvolve as fftconvolve
from ._src.signal import oaconvolve as oaconvolve

__all__ = [
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
]
