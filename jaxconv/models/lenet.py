"""LeNet on 28x28 single-channel images (MNIST): two variants.

``"lenet5"`` -- LeNet-5 (LeCun et al. 1998) on 28x28 input, 61,706 parameters::

    conv1  6@5x5, padding 2   (N, 1, 28, 28) -> (N, 6, 28, 28)     156
    tanh, avg-pool 2          -> (N, 6, 14, 14)
    conv2  16@5x5             -> (N, 16, 10, 10)                  2,416
    tanh, avg-pool 2          -> (N, 16, 5, 5)
    flatten                   -> (N, 400)
    fc1    120, tanh                                              48,120
    fc2    84, tanh                                               10,164
    fc3    10 (logits)                                               850

  Subsampling is plain 2x2 average pooling after tanh (the classic
  "subsampling" layer, but without the original's trainable per-map
  coefficient and bias, which is what makes the count 61,706), the first conv
  is padded by 2 so 28x28 input plays the role of the paper's 32x32, conv2 is
  fully connected to conv1's maps (no sparse connection table), and the
  output layer is a plain dense layer over softmax (not RBF units).

``"tutorial"`` -- the classic deeplearning.net ``LeNetConvPoolLayer`` network,
431,080 parameters::

    conv1  20@5x5             (N, 1, 28, 28) -> (N, 20, 24, 24)     520
    max-pool 2, tanh          -> (N, 20, 12, 12)
    conv2  50@5x5             -> (N, 50, 8, 8)                   25,050
    max-pool 2, tanh          -> (N, 50, 4, 4)
    flatten                   -> (N, 800)
    fc1    500, tanh                                            400,500
    fc2    10 (logits)                                            5,010

  Pooling before tanh equals the tutorial's ``tanh(pool(conv) + b)``: the
  bias is per channel and tanh is increasing, so both commute with max.

All weights use Glorot uniform (:func:`jaxconv.nn.glorot_uniform`), biases zero.
The networks output logits ``(N, 10)``; apply softmax cross-entropy to train.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .. import nn

__all__ = ["VARIANTS", "apply", "infer_variant", "init", "model"]

#: Names of the available variants.
VARIANTS: tuple[str, ...] = ("lenet5", "tutorial")


def _lenet5() -> nn.Sequential:
    return nn.sequential(
        ("conv1", nn.Conv(1, 6, 5, padding=2)),
        ("tanh1", nn.Tanh()),
        ("pool1", nn.AvgPool(2)),
        ("conv2", nn.Conv(6, 16, 5)),
        ("tanh2", nn.Tanh()),
        ("pool2", nn.AvgPool(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Dense(400, 120)),
        ("tanh3", nn.Tanh()),
        ("fc2", nn.Dense(120, 84)),
        ("tanh4", nn.Tanh()),
        ("fc3", nn.Dense(84, 10)),
    )


def _tutorial() -> nn.Sequential:
    return nn.sequential(
        ("conv1", nn.Conv(1, 20, 5)),
        ("pool1", nn.MaxPool(2)),
        ("tanh1", nn.Tanh()),
        ("conv2", nn.Conv(20, 50, 5)),
        ("pool2", nn.MaxPool(2)),
        ("tanh2", nn.Tanh()),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Dense(800, 500)),
        ("tanh3", nn.Tanh()),
        ("fc2", nn.Dense(500, 10)),
    )


_BUILDERS = {"lenet5": _lenet5, "tutorial": _tutorial}
_MODELS: dict[str, nn.Sequential] = {}
_SHAPES: dict[str, Any] = {}


def _check_variant(fn: str, variant: Any) -> str:
    if not isinstance(variant, str) or variant not in _BUILDERS:
        raise ValueError(
            f"jaxconv.models.lenet.{fn}: variant must be one of {', '.join(map(repr, VARIANTS))}; "
            f"got {variant!r}"
        )
    return variant


def model(variant: str = "lenet5") -> nn.Sequential:
    """The network of a variant as a :class:`jaxconv.nn.Sequential` (immutable, shared).

    Args:
      variant: ``"lenet5"`` or ``"tutorial"``.

    Returns:
      The layers; ``model(v).init(key)`` and ``model(v).apply(params, x)``
      are what :func:`init` and :func:`apply` call.

    Example:
      >>> model("lenet5").names[:3]
      ('conv1', 'tanh1', 'pool1')
    """
    variant = _check_variant("model", variant)
    if variant not in _MODELS:
        _MODELS[variant] = _BUILDERS[variant]()
    return _MODELS[variant]


def init(key: jax.Array, variant: str = "lenet5") -> dict[str, dict[str, jax.Array]]:
    """Fresh LeNet parameters.

    Args:
      key: a JAX PRNG key.
      variant: ``"lenet5"`` (61,706 parameters) or ``"tutorial"`` (431,080).

    Returns:
      Nested dict ``{"conv1": {"w", "b"}, "conv2": ..., "fc1": ..., ...}``.

    Example:
      >>> import jax
      >>> from jaxconv import nn
      >>> nn.count_params(init(jax.random.key(0), "tutorial"))
      431080
    """
    return model(_check_variant("init", variant)).init(key)


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: tuple(a.shape), tree)


def infer_variant(params: Mapping[str, Any]) -> str:
    """Which variant a parameter tree belongs to, from its structure and shapes.

    Args:
      params: parameters from :func:`init` (arrays, tracers or ShapeDtypeStructs).

    Returns:
      ``"lenet5"`` or ``"tutorial"``.

    Raises:
      ValueError: the tree matches neither variant.

    Example:
      >>> import jax
      >>> infer_variant(init(jax.random.key(0), "lenet5"))
      'lenet5'
    """
    try:
        got = _shapes(params)
    except Exception:
        got = None
    for v in VARIANTS:
        if v not in _SHAPES:
            _SHAPES[v] = _shapes(jax.eval_shape(model(v).init, jax.random.PRNGKey(0)))
        if got == _SHAPES[v]:
            return v
    raise ValueError(
        "jaxconv.models.lenet.apply: params match no LeNet variant "
        f"({', '.join(map(repr, VARIANTS))}); got "
        f"{got if got is not None else type(params).__name__} -- create them with "
        "jaxconv.models.lenet.init(key, variant)"
    )


def apply(params: Mapping[str, Any], x: ArrayLike, variant: str | None = None) -> jax.Array:
    """LeNet forward pass: logits for a batch of 28x28 single-channel images.

    Args:
      params: parameters from :func:`init`.
      x: images ``(N, 1, 28, 28)``, floating point (MNIST in ``[0, 1]``).
      variant: ``"lenet5"`` or ``"tutorial"``; default: inferred from the
        parameter shapes (static, so free under ``jax.jit``).

    Returns:
      Logits ``(N, 10)``.

    Raises:
      ValueError: ``x`` is not ``(N, 1, 28, 28)``, or ``params`` match no variant.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> apply(init(jax.random.key(0)), jnp.zeros((2, 1, 28, 28))).shape
      (2, 10)
    """
    variant = infer_variant(params) if variant is None else _check_variant("apply", variant)
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4 or shape[1:] != (1, 28, 28):
        raise ValueError(
            f"jaxconv.models.lenet.apply: x must be (N, 1, 28, 28) images; got x.shape={shape}"
        )
    return model(variant).apply(params, jnp.asarray(x))
