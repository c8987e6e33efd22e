"""The training loss and the metrics: softmax cross-entropy, error rate, the L2 term.

Every function takes optional per-example ``weights`` where it averages over
the batch: the trainer pads the last batch of an epoch (and a batch that does
not divide over the devices) with zero-weight examples, so a padded batch
gives exactly the figures of the unpadded one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from ._checks import MOD

__all__ = ["cross_entropy", "error_rate", "l2_penalty", "weight_decay_mask"]


def _check(fn: str, logits: jax.Array, labels: jax.Array, weights: jax.Array | None) -> None:
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"{MOD}.{fn}: logits must be (N, K) and labels (N,); got "
                         f"logits.shape={tuple(logits.shape)}, labels.shape={tuple(labels.shape)}")
    if weights is not None and weights.shape != labels.shape:
        raise ValueError(f"{MOD}.{fn}: weights must be (N,) like labels; got "
                         f"weights.shape={tuple(weights.shape)}, labels.shape={tuple(labels.shape)}")


def _weighted_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(values)
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def cross_entropy(logits: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> jax.Array:
    """Mean softmax cross-entropy with integer labels.

    Matches ``torch.nn.functional.cross_entropy(logits, labels)`` (mean
    reduction); with ``weights`` it is the weighted mean over examples.

    Args:
      logits: ``(N, K)`` unnormalised log-probabilities.
      labels: ``(N,)`` integers in ``0..K-1``.
      weights: optional ``(N,)`` per-example weights (e.g. 0 for padding);
        the mean is ``sum(w * ce) / max(sum(w), 1e-12)``.

    Returns:
      A scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import train
      >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
      >>> round(float(train.cross_entropy(logits, jnp.array([0, 0]))), 4)
      1.1269
      >>> round(float(train.cross_entropy(logits, jnp.array([0, 0]), jnp.array([1.0, 0.0]))), 4)
      0.1269
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    w = None if weights is None else jnp.asarray(weights)
    _check("cross_entropy", logits, labels, w)
    return _weighted_mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels), w)


def error_rate(logits: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> jax.Array:
    """Fraction of examples whose arg-max logit is not the label.

    Args:
      logits: ``(N, K)``.
      labels: ``(N,)`` integers.
      weights: optional ``(N,)`` per-example weights (0 for padding): the
        weighted fraction ``sum(w * wrong) / max(sum(w), 1e-12)``.

    Returns:
      A scalar in ``[0, 1]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import train
      >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
      >>> float(train.error_rate(logits, jnp.array([0, 0, 0])))
      0.3333333432674408
      >>> float(train.error_rate(logits, jnp.array([0, 0, 0]), jnp.array([1.0, 0.0, 1.0])))
      0.0
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    w = None if weights is None else jnp.asarray(weights)
    _check("error_rate", logits, labels, w)
    wrong = (jnp.argmax(logits, axis=-1) != labels).astype(jnp.float32)
    return _weighted_mean(wrong, w)


def weight_decay_mask(params: Any) -> Any:
    """Which leaves are weights: True for every leaf with 2 or more dims (biases excluded).

    The mask :func:`jaxconv.train.sgd` gives ``optax.add_decayed_weights``
    and the leaves :func:`l2_penalty` sums over.

    Args:
      params: a pytree of arrays.

    Returns:
      A pytree of bools with the structure of ``params``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import train
      >>> train.weight_decay_mask({"w": jnp.ones((2, 3)), "b": jnp.ones(3)})
      {'b': False, 'w': True}
    """
    return jax.tree.map(lambda leaf: jnp.ndim(leaf) >= 2, params)


def l2_penalty(params: Any) -> jax.Array:
    """Sum of squares of the weights: every leaf with 2 or more dims (biases excluded).

    ``l2 * l2_penalty(params)`` is the tutorial's ``L2_reg * sum(W ** 2)``,
    gradient ``2 * l2 * W``. Training does not add this term to the loss: it
    applies the same gradient as ``optax.add_decayed_weights(2 * l2,
    mask=weight_decay_mask)`` (see :func:`jaxconv.train.sgd`). This function
    reports the penalty's value.

    Args:
      params: a pytree of arrays.

    Returns:
      A scalar (0.0 when there are no weights).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import train
      >>> float(train.l2_penalty({"w": jnp.full((2, 2), 2.0), "b": jnp.ones(3)}))
      16.0
    """
    leaves = [leaf for leaf in jax.tree.leaves(params) if jnp.ndim(leaf) >= 2]
    total = jnp.zeros((), jnp.float32)
    for leaf in leaves:
        total = total + jnp.sum(jnp.square(leaf))
    return total
