"""Training with optax: a jitted, data-parallel SGD step, batched evaluation, schedules,
augmentation, early stopping and exact, atomic checkpoints.

One module per concern:

* :mod:`~jaxconv.train.losses` -- :func:`cross_entropy`, :func:`error_rate`,
  :func:`l2_penalty`, :func:`weight_decay_mask`.
* :mod:`~jaxconv.train.schedules` -- :func:`steps_per_epoch`,
  :func:`inverse_time_decay` (``lr0 / (1 + d*t)``, ``t`` the epoch),
  :func:`sgd` (optax SGD, optional momentum and L2 via
  ``optax.add_decayed_weights``), :func:`learning_rate` (read from the state).
* :mod:`~jaxconv.train.augment` -- :func:`epoch_permutation`, :func:`step_key`,
  :func:`random_shift_rotate`: all randomness is a pure function of
  ``(seed, epoch[, step])``, so a resumed run is bit-identical to an
  uninterrupted one by construction.
* :mod:`~jaxconv.train.loop` -- :class:`TrainState`, :class:`Trainer` (the
  jitted step and evaluation, sharded over a device mesh: :func:`data_mesh`),
  :func:`fit` (the epoch loop as a generator, early stopping via :func:`should_stop`).
* :mod:`~jaxconv.train.checkpoint` -- :func:`save_checkpoint`,
  :func:`load_checkpoint`, :func:`checkpoint_config`: parameters, optimiser
  state, epoch, seed and metrics in one ``.npz``, written atomically.

Typical use::

    from jaxconv import train
    from jaxconv.models import lenet
    opt = train.sgd(0.05, momentum=0.9, decay=0.05, steps_per_epoch=train.steps_per_epoch(4000, 64))
    trainer = train.Trainer(lenet.apply, opt, batch_size=64)   # every local device
    state = trainer.init_state(lenet.init(jax.random.PRNGKey(0)), seed=0)
    for state in train.fit(trainer, state, data.train, data.val, epochs=10, test=data.test):
        print(state.metrics[-1])
    train.save_checkpoint("run/checkpoint.npz", state)
"""

from .._src._files import atomic_file as atomic_file
from .augment import epoch_permutation as epoch_permutation
from .augment import random_shift_rotate as random_shift_rotate
from .augment import step_key as step_key
from .checkpoint import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from .checkpoint import checkpoint_config as checkpoint_config
from .checkpoint import load_checkpoint as load_checkpoint
from .checkpoint import save_checkpoint as save_checkpoint
from .loop import Trainer as Trainer
from .loop import TrainState as TrainState
from .loop import data_mesh as data_mesh
from .loop import fit as fit
from .loop import should_stop as should_stop
from .losses import cross_entropy as cross_entropy
from .losses import error_rate as error_rate
from .losses import l2_penalty as l2_penalty
from .losses import weight_decay_mask as weight_decay_mask
from .schedules import inverse_time_decay as inverse_time_decay
from .schedules import learning_rate as learning_rate
from .schedules import sgd as sgd
from .schedules import steps_per_epoch as steps_per_epoch

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainState",
    "Trainer",
    "atomic_file",
    "checkpoint_config",
    "cross_entropy",
    "data_mesh",
    "epoch_permutation",
    "error_rate",
    "fit",
    "inverse_time_decay",
    "l2_penalty",
    "learning_rate",
    "load_checkpoint",
    "random_shift_rotate",
    "save_checkpoint",
    "sgd",
    "should_stop",
    "step_key",
    "steps_per_epoch",
    "weight_decay_mask",
]
