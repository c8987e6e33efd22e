"""Parameter initialisers and layers as pure ``init`` / ``apply`` pairs.

A layer is a frozen dataclass of static configuration; ``layer.init(key)``
returns its parameters (a dict of arrays), ``layer.apply(params, x)`` is a
pure function. :func:`sequential` chains named layers into nested-dict
parameters (``{"conv1": {"w": ..., "b": ...}, ...}``). No object holds state.

    >>> import jax, jaxconv.nn as nn
    >>> net = nn.sequential(("conv1", nn.Conv(1, 6, 5, padding=2)), ("act1", nn.Tanh()),
    ...                     ("pool1", nn.AvgPool(2)), ("flat", nn.Flatten()),
    ...                     ("fc", nn.Dense(6 * 14 * 14, 10)))
    >>> params = net.init(jax.random.PRNGKey(0))
    >>> nn.count_params(params)
    11926
"""

from .initializers import Initializer as Initializer
from .initializers import compute_fans as compute_fans
from .initializers import glorot_uniform as glorot_uniform
from .initializers import glorot_uniform_sigmoid as glorot_uniform_sigmoid
from .initializers import he_normal as he_normal
from .initializers import zeros as zeros
from .layers import AvgPool as AvgPool
from .layers import Conv as Conv
from .layers import Dense as Dense
from .layers import Flatten as Flatten
from .layers import Layer as Layer
from .layers import MaxPool as MaxPool
from .layers import ReLU as ReLU
from .layers import Sequential as Sequential
from .layers import Sigmoid as Sigmoid
from .layers import Tanh as Tanh
from .layers import count_params as count_params
from .layers import sequential as sequential

__all__ = [
    "AvgPool",
    "Conv",
    "Dense",
    "Flatten",
    "Initializer",
    "Layer",
    "MaxPool",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "compute_fans",
    "count_params",
    "glorot_uniform",
    "glorot_uniform_sigmoid",
    "he_normal",
    "sequential",
    "zeros",
]
