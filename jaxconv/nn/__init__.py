"""Parameter initialisers and layers as pure ``init`` / ``apply`` pairs.

A layer is a frozen dataclass of static configuration, validated when it is
constructed; ``layer.init(key)`` returns its parameters (a dict of arrays),
``layer.apply(params, x)`` is a pure function. :func:`sequential` chains named
layers into nested-dict parameters (``{"conv1": {"w": ..., "b": ...}, ...}``).
No object holds state. Modules: ``base`` (the protocol), ``conv``, ``pool``,
``dense`` (dense, flatten, activations), ``local`` (locally connected, tiled,
separable), ``sequential``, ``initializers``.

    >>> import jax, jaxconv.nn as nn
    >>> net = nn.sequential(("conv1", nn.Conv(1, 6, 5, padding=2)), ("act1", nn.Tanh()),
    ...                     ("pool1", nn.AvgPool(2)), ("flat", nn.Flatten()),
    ...                     ("fc", nn.Dense(6 * 14 * 14, 10)))
    >>> params = net.init(jax.random.PRNGKey(0))
    >>> nn.count_params(params)
    11926
"""

from .base import Layer as Layer
from .base import count_params as count_params
from .conv import Conv as Conv
from .conv import ConvTranspose as ConvTranspose
from .dense import Dense as Dense
from .dense import Flatten as Flatten
from .dense import ReLU as ReLU
from .dense import Sigmoid as Sigmoid
from .dense import Tanh as Tanh
from .initializers import Initializer as Initializer
from .initializers import compute_fans as compute_fans
from .initializers import glorot_uniform as glorot_uniform
from .initializers import glorot_uniform_sigmoid as glorot_uniform_sigmoid
from .initializers import he_normal as he_normal
from .initializers import zeros as zeros
from .local import LocallyConnected as LocallyConnected
from .local import SeparableConv as SeparableConv
from .local import TiledConv as TiledConv
from .pool import AdaptiveAvgPool as AdaptiveAvgPool
from .pool import AdaptiveMaxPool as AdaptiveMaxPool
from .pool import AvgPool as AvgPool
from .pool import GlobalAvgPool as GlobalAvgPool
from .pool import GlobalMaxPool as GlobalMaxPool
from .pool import LpPool as LpPool
from .pool import MaxPool as MaxPool
from .pool import Upsample as Upsample
from .pool import WeightedPool as WeightedPool
from .sequential import Sequential as Sequential
from .sequential import sequential as sequential

__all__ = [
    "AdaptiveAvgPool",
    "AdaptiveMaxPool",
    "AvgPool",
    "Conv",
    "ConvTranspose",
    "Dense",
    "Flatten",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "Initializer",
    "Layer",
    "LocallyConnected",
    "LpPool",
    "MaxPool",
    "ReLU",
    "SeparableConv",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "TiledConv",
    "Upsample",
    "WeightedPool",
    "compute_fans",
    "count_params",
    "glorot_uniform",
    "glorot_uniform_sigmoid",
    "he_normal",
    "sequential",
    "zeros",
]
