"""Ready-made networks built from :mod:`jaxconv.nn` layers.

``jaxconv.models.lenet``: LeNet-5 (61,706 parameters) and the classic
tutorial LeNet (431,080 parameters) for 28x28 MNIST images;
``lenet.init(key, variant)``, ``lenet.apply(params, x)``.
"""

from . import lenet as lenet

__all__ = ["lenet"]
