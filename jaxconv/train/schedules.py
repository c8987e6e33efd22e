"""Learning-rate schedules and the SGD optimiser (optax), with the rate readable from its state.

:func:`sgd` is ``optax.inject_hyperparams(optax.sgd)``, so the learning rate
of the last step lives in the optimiser state (:func:`learning_rate` reads
it), preceded by ``optax.add_decayed_weights`` when an L2 weight is given.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._checks import MOD, check_float, check_int
from .losses import weight_decay_mask

__all__ = ["inverse_time_decay", "learning_rate", "sgd", "steps_per_epoch"]


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """``ceil(n_train / batch_size)``: one epoch visits every example once.

    Args:
      n_train: number of training examples, >= 1.
      batch_size: >= 1.

    Returns:
      The number of optimiser steps per epoch.

    Example:
      >>> from jaxconv import train
      >>> train.steps_per_epoch(100, 32)
      4
    """
    n_train = check_int("steps_per_epoch", "n_train", n_train, 1)
    batch_size = check_int("steps_per_epoch", "batch_size", batch_size, 1)
    return -(-n_train // batch_size)


def inverse_time_decay(learning_rate: float, decay: float, steps_per_epoch: int) -> optax.Schedule:
    """The seed's per-epoch decay ``lr0 / (1 + decay * t)``, ``t`` the epoch (from 0).

    Like ``torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + decay * t))``
    stepped once per epoch.

    Args:
      learning_rate: ``lr0``, > 0.
      decay: ``d`` >= 0 (0 is a constant rate).
      steps_per_epoch: optimiser steps per epoch, so that ``t = step // steps_per_epoch``.

    Returns:
      An optax schedule ``step -> learning rate`` (traceable; the step count
      lives in the optimiser state, so it is checkpointed with it).

    Example:
      >>> from jaxconv import train
      >>> sched = train.inverse_time_decay(0.1, 0.5, steps_per_epoch=10)
      >>> [round(float(sched(s)), 4) for s in (0, 9, 10, 25)]
      [0.1, 0.1, 0.0667, 0.05]
    """
    fn = "inverse_time_decay"
    lr0 = check_float(fn, "learning_rate", learning_rate, 0.0, strict=True)
    d = check_float(fn, "decay", decay, 0.0)
    spe = check_int(fn, "steps_per_epoch", steps_per_epoch, 1)

    def schedule(step: jax.typing.ArrayLike) -> jax.Array:
        t = jnp.floor_divide(jnp.asarray(step), spe).astype(jnp.float32)
        return lr0 / (1.0 + d * t)

    return schedule


def sgd(learning_rate: float | optax.Schedule, *, momentum: float = 0.0, nesterov: bool = False,
        decay: float = 0.0, steps_per_epoch: int | None = None,
        l2: float = 0.0) -> optax.GradientTransformation:
    """optax SGD with optional momentum, the per-epoch ``lr0 / (1 + decay*t)`` decay and L2.

    Matches ``torch.optim.SGD(params, lr, momentum, nesterov=...,
    weight_decay=2 * l2)`` with weight decay on the weights only. The L2 term
    is ``optax.add_decayed_weights(2 * l2, mask=weight_decay_mask)`` before
    SGD: the update of the loss ``ce + l2 * sum(W ** 2)`` (biases, the 1-d
    leaves, excluded) without computing that sum. The SGD part is
    ``optax.inject_hyperparams(optax.sgd)``, so :func:`learning_rate` reads
    the rate of the last step from the optimiser state.

    Args:
      learning_rate: a constant ``lr0`` > 0, or any optax schedule (e.g.
        ``optax.cosine_decay_schedule(...)``; then ``decay`` must be 0).
      momentum: heavy-ball momentum in ``[0, 1)``; 0 is plain SGD.
      nesterov: use Nesterov momentum.
      decay: ``d`` in ``lr0 / (1 + d * epoch)``; needs ``steps_per_epoch``.
      steps_per_epoch: optimiser steps per epoch (see :func:`steps_per_epoch`).
      l2: weight of the L2 penalty ``l2 * sum(W ** 2)``, >= 0.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import train
      >>> opt = train.sgd(0.1, decay=1.0, steps_per_epoch=1)
      >>> p = {"w": jnp.ones((1, 1))}
      >>> state = opt.init(p)
      >>> _, state = opt.update(p, state, p)
      >>> _, state = opt.update(p, state, p)
      >>> round(float(train.learning_rate(state)), 4)  # the rate of the second step (epoch 1)
      0.05
    """
    fn = "sgd"
    momentum = check_float(fn, "momentum", momentum, 0.0)
    if momentum >= 1.0:
        raise ValueError(f"{MOD}.{fn}: momentum must be in [0, 1); got momentum={momentum}")
    decay = check_float(fn, "decay", decay, 0.0)
    l2 = check_float(fn, "l2", l2, 0.0)
    lr: float | optax.Schedule
    if callable(learning_rate):
        if decay:
            raise ValueError(f"{MOD}.{fn}: decay must be 0 when learning_rate is a schedule; "
                             f"got decay={decay}")
        lr = learning_rate
    else:
        lr0 = check_float(fn, "learning_rate", learning_rate, 0.0, strict=True)
        if decay:
            if steps_per_epoch is None:
                raise ValueError(f"{MOD}.{fn}: decay={decay} needs steps_per_epoch (the number of "
                                 f"optimiser steps per epoch); got steps_per_epoch=None")
            lr = inverse_time_decay(lr0, decay, steps_per_epoch)
        else:
            lr = lr0
    opt = optax.inject_hyperparams(optax.sgd, static_args=("momentum", "nesterov"))(
        learning_rate=lr, momentum=momentum or None, nesterov=bool(nesterov))
    if not l2:
        return opt
    return optax.chain(optax.add_decayed_weights(2.0 * l2, mask=weight_decay_mask), opt)


def learning_rate(opt_state: Any) -> jax.Array:
    """The learning rate of the last step, read from an optimiser state built by :func:`sgd`.

    Works for any optimiser made with ``optax.inject_hyperparams`` (also
    inside ``optax.chain``): it finds the first injected ``learning_rate``.
    After ``k`` updates it is the rate step ``k`` used (before any update, the
    rate the first step will use).

    Args:
      opt_state: the optimiser state (e.g. ``TrainState.opt_state``).

    Returns:
      A scalar array.

    Raises:
      ValueError: the state holds no injected learning rate.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import train
      >>> opt = train.sgd(0.05, momentum=0.9)
      >>> float(train.learning_rate(opt.init({"w": jnp.ones(2)})))
      0.05000000074505806
    """
    def is_injected(x: Any) -> bool:
        return isinstance(getattr(x, "hyperparams", None), dict)

    for node in jax.tree.leaves(opt_state, is_leaf=is_injected):
        if is_injected(node) and "learning_rate" in node.hyperparams:
            return jnp.asarray(node.hyperparams["learning_rate"])
    raise ValueError(f"{MOD}.learning_rate: opt_state holds no injected learning_rate "
                     "(build the optimiser with jaxconv.train.sgd or optax.inject_hyperparams); "
                     f"got {type(opt_state).__name__}")
