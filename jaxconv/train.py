"""Training with optax: a jitted SGD step, batched evaluation, schedules,
augmentation, early stopping and exact, atomic checkpoints.

The pieces, from small to large:

* :func:`cross_entropy`, :func:`l2_penalty`, :func:`error_rate` -- the loss and metrics.
* :func:`inverse_time_decay` -- the learning-rate decay ``lr0 / (1 + d*t)`` with
  ``t`` the epoch, as an optax schedule; :func:`sgd` builds optax SGD (optional
  momentum) from a constant, this decay, or any optax schedule.
* :func:`random_shift_rotate` -- random small shifts and rotations of images
  ("expand the training set with distorted data"), on the device.
* :func:`epoch_permutation`, :func:`step_key` -- all randomness is a pure
  function of ``(seed, epoch[, step])``, so a resumed run is bit-identical to
  an uninterrupted one by construction.
* :class:`Trainer` -- the jitted train step and evaluation for one model and
  optimiser; :meth:`Trainer.train_epoch`, :meth:`Trainer.evaluate`.
* :func:`fit` -- the epoch loop as a generator of :class:`TrainState` (one per
  completed epoch, metrics included), with early stopping on validation error.
* :func:`save_checkpoint` / :func:`load_checkpoint` -- parameters, optimiser
  state, epoch, seed (the whole RNG state) and metrics in one ``.npz``,
  written atomically (temporary file in the same directory, then rename).

Typical use::

    from jaxconv import train
    from jaxconv.models import lenet
    opt = train.sgd(0.05, momentum=0.9, decay=0.05, steps_per_epoch=train.steps_per_epoch(4000, 64))
    trainer = train.Trainer(lenet.apply, opt, batch_size=64)
    state = trainer.init_state(lenet.init(jax.random.PRNGKey(0)), seed=0)
    for state in train.fit(trainer, state, data.train, data.val, epochs=10, test=data.test):
        print(state.metrics[-1])
    train.save_checkpoint("run/checkpoint.npz", state)
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._src._args import is_int as _is_int
from ._src._files import atomic_file as atomic_file  # re-exported: public helper

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainState",
    "Trainer",
    "atomic_file",
    "cross_entropy",
    "epoch_permutation",
    "error_rate",
    "fit",
    "inverse_time_decay",
    "l2_penalty",
    "load_checkpoint",
    "random_shift_rotate",
    "save_checkpoint",
    "sgd",
    "should_stop",
    "step_key",
    "steps_per_epoch",
]

_MOD = "jaxconv.train"

#: Format tag stored in every checkpoint.
CHECKPOINT_FORMAT = "jaxconv.train.checkpoint/1"


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _int(fn: str, name: str, v: Any, minimum: int) -> int:
    if not _is_int(v):
        raise TypeError(f"{_MOD}.{fn}: {name} must be an int >= {minimum}; got {v!r} of type "
                        f"{type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{_MOD}.{fn}: {name} must be an int >= {minimum}; got {name}={v}")
    return int(v)


def _float(fn: str, name: str, v: Any, minimum: float = 0.0, *, strict: bool = False) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{_MOD}.{fn}: {name} must be a real number; got {v!r} of type "
                        f"{type(v).__name__}")
    v = float(v)
    if not math.isfinite(v) or v < minimum or (strict and v == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{_MOD}.{fn}: {name} must be a finite number {op} {minimum}; got {name}={v}")
    return v


def _check_images_labels(fn: str, images: Any, labels: Any, name: str = "data") -> tuple:
    images = images if isinstance(images, jax.Array) else np.asarray(images)
    labels = labels if isinstance(labels, jax.Array) else np.asarray(labels)
    if images.ndim < 2 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{_MOD}.{fn}: {name} must be (images (N, ...), labels (N,)) with the same N; got "
            f"images.shape={tuple(images.shape)}, labels.shape={tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{_MOD}.{fn}: {name} is empty (N = 0)")
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"{_MOD}.{fn}: {name} images must be floating point; got dtype={images.dtype}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{_MOD}.{fn}: {name} labels must be integers; got dtype={labels.dtype}")
    return images, labels


def _pair(fn: str, name: str, data: Any) -> tuple:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{_MOD}.{fn}: {name} must be a pair (images, labels); got "
                        f"{type(data).__name__}")
    return _check_images_labels(fn, data[0], data[1], name)


# --------------------------------------------------------------------------
# Loss and metrics
# --------------------------------------------------------------------------


def cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean softmax cross-entropy with integer labels.

    Args:
      logits: ``(N, K)`` unnormalised log-probabilities.
      labels: ``(N,)`` integers in ``0..K-1``.
      weights: optional ``(N,)`` per-example weights (e.g. 0 for padding);
        the mean is ``sum(w * ce) / max(sum(w), 1e-12)``.

    Returns:
      A scalar.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"{_MOD}.cross_entropy: logits must be (N, K) and labels (N,); got "
                         f"logits.shape={tuple(logits.shape)}, labels.shape={tuple(labels.shape)}")
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    if weights is None:
        return jnp.mean(ce)
    return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def error_rate(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of examples whose arg-max logit is not the label.

    Args:
      logits: ``(N, K)``.
      labels: ``(N,)`` integers.

    Returns:
      A scalar in ``[0, 1]``.
    """
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"{_MOD}.error_rate: logits must be (N, K) and labels (N,); got "
                         f"logits.shape={tuple(logits.shape)}, labels.shape={tuple(labels.shape)}")
    return jnp.mean(jnp.argmax(logits, axis=-1) != labels)


def l2_penalty(params: Any) -> jax.Array:
    """Sum of squares of the weights: every leaf with 2 or more dims (biases excluded).

    The training loss is ``cross_entropy + l2 * l2_penalty(params)`` (the
    seed tutorial's ``L2_reg * sum(W ** 2)``; gradient ``2 * l2 * W``).

    Args:
      params: a pytree of arrays.

    Returns:
      A scalar (0.0 when there are no weights).
    """
    leaves = [leaf for leaf in jax.tree.leaves(params) if jnp.ndim(leaf) >= 2]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


# --------------------------------------------------------------------------
# Learning rate and optimiser
# --------------------------------------------------------------------------


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """``ceil(n_train / batch_size)``: one epoch visits every example once.

    Args:
      n_train: number of training examples, >= 1.
      batch_size: >= 1.
    """
    n_train = _int("steps_per_epoch", "n_train", n_train, 1)
    batch_size = _int("steps_per_epoch", "batch_size", batch_size, 1)
    return -(-n_train // batch_size)


def inverse_time_decay(learning_rate: float, decay: float, steps_per_epoch: int) -> optax.Schedule:
    """The seed's per-epoch decay ``lr0 / (1 + decay * t)``, ``t`` the epoch (from 0).

    Args:
      learning_rate: ``lr0``, > 0.
      decay: ``d`` >= 0 (0 is a constant rate).
      steps_per_epoch: optimiser steps per epoch, so that ``t = step // steps_per_epoch``.

    Returns:
      An optax schedule ``step -> learning rate`` (traceable; the step count
      lives in the optimiser state, so it is checkpointed with it).
    """
    fn = "inverse_time_decay"
    lr0 = _float(fn, "learning_rate", learning_rate, 0.0, strict=True)
    d = _float(fn, "decay", decay, 0.0)
    spe = _int(fn, "steps_per_epoch", steps_per_epoch, 1)

    def schedule(step):
        t = jnp.floor_divide(jnp.asarray(step), spe).astype(jnp.float32)
        return lr0 / (1.0 + d * t)

    return schedule


def sgd(learning_rate: float | optax.Schedule, *, momentum: float = 0.0, nesterov: bool = False,
        decay: float = 0.0, steps_per_epoch: int | None = None) -> optax.GradientTransformation:
    """optax SGD with optional momentum and the per-epoch ``lr0 / (1 + decay*t)`` decay.

    Args:
      learning_rate: a constant ``lr0`` > 0, or any optax schedule (e.g.
        ``optax.cosine_decay_schedule(...)``; then ``decay`` must be 0).
      momentum: heavy-ball momentum in ``[0, 1)``; 0 is plain SGD.
      nesterov: use Nesterov momentum.
      decay: ``d`` in ``lr0 / (1 + d * epoch)``; needs ``steps_per_epoch``.
      steps_per_epoch: optimiser steps per epoch (see :func:`steps_per_epoch`).

    Returns:
      An ``optax.GradientTransformation``.
    """
    fn = "sgd"
    momentum = _float(fn, "momentum", momentum, 0.0)
    if momentum >= 1.0:
        raise ValueError(f"{_MOD}.{fn}: momentum must be in [0, 1); got momentum={momentum}")
    decay = _float(fn, "decay", decay, 0.0)
    if callable(learning_rate):
        if decay:
            raise ValueError(f"{_MOD}.{fn}: decay must be 0 when learning_rate is a schedule; "
                             f"got decay={decay}")
        lr = learning_rate
    else:
        lr0 = _float(fn, "learning_rate", learning_rate, 0.0, strict=True)
        if decay:
            if steps_per_epoch is None:
                raise ValueError(f"{_MOD}.{fn}: decay={decay} needs steps_per_epoch (the number of "
                                 f"optimiser steps per epoch); got steps_per_epoch=None")
            lr = inverse_time_decay(lr0, decay, steps_per_epoch)
        else:
            lr = lr0
    return optax.sgd(lr, momentum=momentum or None, nesterov=bool(nesterov))


# --------------------------------------------------------------------------
# Randomness: pure functions of (seed, epoch, step)
# --------------------------------------------------------------------------


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training-set order of one epoch: a pure function of ``(seed, epoch)``.

    Args:
      seed: the run's seed, >= 0.
      epoch: epoch index, >= 0.
      n: number of examples, >= 1.

    Returns:
      A permutation of ``range(n)``, int64 ``(n,)``
      (``np.random.default_rng([seed, epoch]).permutation(n)``).
    """
    seed = _int("epoch_permutation", "seed", seed, 0)
    epoch = _int("epoch_permutation", "epoch", epoch, 0)
    n = _int("epoch_permutation", "n", n, 1)
    return np.random.default_rng([seed, epoch]).permutation(n)


def step_key(seed: Any, epoch: Any, step: Any) -> jax.Array:
    """The PRNG key of one training step: ``fold_in(fold_in(PRNGKey(seed), epoch), step)``.

    Traceable (the arguments may be traced int32 scalars), so the jitted step
    derives its augmentation key itself and a resumed run draws the same keys.

    Args:
      seed, epoch, step: non-negative integers (or int32 scalars).

    Returns:
      A ``jax.random.PRNGKey``-style key.
    """
    key = jax.random.PRNGKey(seed)
    return jax.random.fold_in(jax.random.fold_in(key, epoch), step)


def random_shift_rotate(key: jax.Array, images: jax.Array, *, max_shift: float = 2.0,
                        max_degrees: float = 10.0) -> jax.Array:
    """Random small shifts and rotations of a batch of images (bilinear, zero fill).

    Each image gets its own rotation angle ``U(-max_degrees, max_degrees)``
    about its centre and its own shift ``U(-max_shift, max_shift)`` pixels
    along each axis. Runs on the device; use it inside a jitted step.

    Args:
      key: a JAX PRNG key.
      images: ``(N, C, H, W)`` floating point.
      max_shift: largest shift in pixels, >= 0.
      max_degrees: largest rotation in degrees, >= 0.

    Returns:
      ``(N, C, H, W)`` in ``images``' dtype.
    """
    fn = "random_shift_rotate"
    max_shift = _float(fn, "max_shift", max_shift, 0.0)
    max_degrees = _float(fn, "max_degrees", max_degrees, 0.0)
    if images.ndim != 4:
        raise ValueError(f"{_MOD}.{fn}: images must be (N, C, H, W); got images.shape="
                         f"{tuple(images.shape)}")
    n, _, h, w = images.shape
    k_angle, k_shift = jax.random.split(key)
    theta = jnp.deg2rad(max_degrees) * jax.random.uniform(k_angle, (n,), minval=-1.0, maxval=1.0)
    shift = max_shift * jax.random.uniform(k_shift, (n, 2), minval=-1.0, maxval=1.0)
    ci, cj = (h - 1) / 2.0, (w - 1) / 2.0
    ii, jj = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - ci,
                          jnp.arange(w, dtype=jnp.float32) - cj, indexing="ij")

    def one(img, t, s):
        # Output pixel p samples the input at R(-t) p - s (inverse map of "rotate, then shift").
        c, sn = jnp.cos(t), jnp.sin(t)
        src_i = c * ii + sn * jj + ci - s[0]
        src_j = -sn * ii + c * jj + cj - s[1]
        return jax.vmap(
            lambda ch: jax.scipy.ndimage.map_coordinates(ch, [src_i, src_j], order=1,
                                                         mode="constant", cval=0.0)
        )(img)

    out = jax.vmap(one)(images.astype(jnp.float32), theta, shift)
    return out.astype(images.dtype)


# --------------------------------------------------------------------------
# Early stopping
# --------------------------------------------------------------------------


def should_stop(val_errors: Sequence[float], patience: int | None) -> bool:
    """Early stopping: True when the best validation error is ``patience`` epochs old.

    Args:
      val_errors: validation error after each epoch so far.
      patience: epochs without a strict improvement on the best error that
        are tolerated; None or 0 disables early stopping.

    Returns:
      Whether to stop now.
    """
    if patience is None or patience == 0:
        return False
    patience = _int("should_stop", "patience", patience, 0)
    if not val_errors:
        return False
    best = int(np.argmin(np.asarray(val_errors, dtype=np.float64)))  # first best
    return len(val_errors) - 1 - best >= patience


# --------------------------------------------------------------------------
# State, trainer, loop
# --------------------------------------------------------------------------


class TrainState(NamedTuple):
    """Everything a run needs to continue exactly where it stopped.

    Attributes:
      params: the model parameters (a pytree).
      opt_state: the optax optimiser state (holds the step count the
        learning-rate schedule reads).
      epoch: number of completed epochs.
      seed: the run's seed. With ``epoch`` it is the whole RNG state: the
        shuffle of epoch ``e`` is :func:`epoch_permutation` ``(seed, e, n)`` and
        the augmentation key of step ``s`` is :func:`step_key` ``(seed, e, s)``.
      metrics: one dict per completed epoch (see :func:`fit`).
    """

    params: Any
    opt_state: Any
    epoch: int
    seed: int
    metrics: tuple = ()


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """The jitted training step and evaluation for one model and optimiser.

    Holds configuration and compiled functions only, never parameters or
    optimiser state (those travel in :class:`TrainState`).

    Args:
      apply_fn: ``apply_fn(params, images) -> logits (N, K)``.
      optimizer: an optax ``GradientTransformation`` (see :func:`sgd`).
      batch_size: training batch size. Every step has this shape (one compile);
        the last batch of an epoch is padded with zero-weight examples.
      l2: weight of :func:`l2_penalty` in the loss, >= 0.
      augment: False, True (:func:`random_shift_rotate` with its defaults) or a
        function ``augment(key, images) -> images`` run inside the jitted step.
      eval_batch_size: batch size of :meth:`evaluate` (padded likewise).
    """

    apply_fn: Callable
    optimizer: optax.GradientTransformation
    batch_size: int
    l2: float = 0.0
    augment: bool | Callable = False
    eval_batch_size: int = 500

    def __post_init__(self):
        fn = "Trainer"
        if not callable(self.apply_fn):
            raise TypeError(f"{_MOD}.{fn}: apply_fn must be callable apply_fn(params, x); got "
                            f"{self.apply_fn!r}")
        if not (hasattr(self.optimizer, "init") and hasattr(self.optimizer, "update")):
            raise TypeError(f"{_MOD}.{fn}: optimizer must be an optax GradientTransformation; got "
                            f"{type(self.optimizer).__name__}")
        _int(fn, "batch_size", self.batch_size, 1)
        _int(fn, "eval_batch_size", self.eval_batch_size, 1)
        object.__setattr__(self, "l2", _float(fn, "l2", self.l2, 0.0))
        if not (isinstance(self.augment, bool) or callable(self.augment)):
            raise TypeError(f"{_MOD}.{fn}: augment must be a bool or a function augment(key, "
                            f"images); got {self.augment!r}")
        augment = random_shift_rotate if self.augment is True else (self.augment or None)
        apply_fn, optimizer, l2 = self.apply_fn, self.optimizer, self.l2

        def train_step(params, opt_state, images, labels, idx, weights, seed, epoch, step):
            x, y = images[idx], labels[idx]
            if augment is not None:
                x = augment(step_key(seed, epoch, step), x)

            def loss_fn(p):
                ce = cross_entropy(apply_fn(p, x), y, weights)
                return (ce + l2 * l2_penalty(p) if l2 else ce), ce

            (_, ce), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, ce

        def eval_step(params, images, labels, idx, weights):
            x, y = images[idx], labels[idx]
            logits = apply_fn(params, x)
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            wrong = (jnp.argmax(logits, axis=-1) != y).astype(jnp.float32)
            return jnp.sum(ce * weights), jnp.sum(wrong * weights)

        object.__setattr__(self, "_train_step", jax.jit(train_step))
        object.__setattr__(self, "_eval_step", jax.jit(eval_step))

    def init_state(self, params: Any, seed: int = 0) -> TrainState:
        """A fresh :class:`TrainState` at epoch 0.

        Args:
          params: initial parameters.
          seed: the run's seed (shuffles and augmentation), in ``[0, 2**31)``.
        """
        seed = _int("Trainer.init_state", "seed", seed, 0)
        if seed >= 2**31:
            raise ValueError(f"{_MOD}.Trainer.init_state: seed must be < 2**31; got seed={seed}")
        return TrainState(params, self.optimizer.init(params), 0, seed, ())

    def steps_per_epoch(self, n_train: int) -> int:
        """``ceil(n_train / batch_size)``."""
        return steps_per_epoch(n_train, self.batch_size)

    def train_epoch(self, state: TrainState, images: Any, labels: Any, *,
                    on_step: Callable[[int, int, jax.Array], None] | None = None
                    ) -> tuple[TrainState, float]:
        """One epoch of SGD over ``(images, labels)`` in the order of
        :func:`epoch_permutation` ``(state.seed, state.epoch, N)``.

        Args:
          state: the state before the epoch.
          images: ``(N, ...)`` floating point (numpy or jax).
          labels: ``(N,)`` integers.
          on_step: optional ``on_step(step, n_steps, loss)`` called after each
            step (``step`` from 1; ``loss`` the batch's mean cross-entropy as a
            device scalar -- converting it to float waits for the step).

        Returns:
          ``(new_state, train_loss)``: the state with ``epoch + 1`` (metrics
          unchanged) and the epoch's mean training cross-entropy over examples.
        """
        images, labels = _check_images_labels("Trainer.train_epoch", images, labels)
        images, labels = jnp.asarray(images), jnp.asarray(labels, jnp.int32)
        n, bs = images.shape[0], self.batch_size
        perm = epoch_permutation(state.seed, state.epoch, n)
        n_steps = steps_per_epoch(n, bs)
        pad = n_steps * bs - n
        idx = np.concatenate([perm, np.zeros(pad, perm.dtype)]).astype(np.int32).reshape(n_steps, bs)
        wts = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(n_steps, bs)
        params, opt_state = state.params, state.opt_state
        total = jnp.zeros((), jnp.float32)
        seed, epoch = np.int32(state.seed), np.int32(state.epoch)
        for s in range(n_steps):
            params, opt_state, loss = self._train_step(
                params, opt_state, images, labels, idx[s], wts[s], seed, epoch, np.int32(s))
            total = total + loss * float(wts[s].sum())
            if on_step is not None:
                on_step(s + 1, n_steps, loss)
        new = state._replace(params=params, opt_state=opt_state, epoch=state.epoch + 1)
        return new, float(total) / n

    def evaluate(self, params: Any, images: Any, labels: Any) -> tuple[float, float]:
        """Mean cross-entropy and error rate over a dataset, in jitted batches.

        Args:
          params: model parameters.
          images: ``(N, ...)`` floating point.
          labels: ``(N,)`` integers.

        Returns:
          ``(loss, error)``, Python floats; ``error`` is a fraction in ``[0, 1]``.
        """
        images, labels = _check_images_labels("Trainer.evaluate", images, labels)
        images, labels = jnp.asarray(images), jnp.asarray(labels, jnp.int32)
        n, bs = images.shape[0], self.eval_batch_size
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        idx = np.concatenate([np.arange(n), np.zeros(pad, np.int64)]).astype(np.int32)
        wts = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
        loss_sum = err_sum = jnp.zeros((), jnp.float32)
        for b in range(n_batches):
            sl = slice(b * bs, (b + 1) * bs)
            l, e = self._eval_step(params, images, labels, idx[sl], wts[sl])
            loss_sum, err_sum = loss_sum + l, err_sum + e
        return float(loss_sum) / n, float(err_sum) / n


def fit(trainer: Trainer, state: TrainState, train: tuple, val: tuple, *, epochs: int,
        test: tuple | None = None, patience: int | None = None,
        on_step: Callable[[int, int, jax.Array], None] | None = None,
        on_epoch_start: Callable[[int], None] | None = None) -> Iterator[TrainState]:
    """Trains from ``state.epoch`` up to ``epochs``, yielding the state after each epoch.

    A generator, so the caller holds the last completed state at all times
    (to checkpoint it, or to save it on Ctrl-C) and decides what to print.
    Each yielded state's ``metrics`` ends with this epoch's record::

        {"epoch": 1-based epoch, "train_loss": mean training cross-entropy,
         "val_loss", "val_error", ["test_loss", "test_error",]
         "seconds": wall time of the epoch (training + evaluation),
         "train_seconds": training only, "images_per_second": N_train / train_seconds}

    Errors are fractions in ``[0, 1]``. The first epoch's time includes compilation.
    Early stopping: stops after the epoch at which :func:`should_stop`
    ``(val errors, patience)`` becomes true (that epoch is still yielded).

    Args:
      trainer: the :class:`Trainer`.
      state: where to start (epoch 0, or a loaded checkpoint).
      train, val: ``(images, labels)`` pairs; ``test`` optional likewise.
      epochs: total number of epochs (not additional ones), >= 0.
      patience: early-stopping patience in epochs; None or 0 disables it.
      on_step: forwarded to :meth:`Trainer.train_epoch`.
      on_epoch_start: called with the 0-based epoch index before it starts.

    Yields:
      A :class:`TrainState` per completed epoch.
    """
    fn = "fit"
    if not isinstance(trainer, Trainer):
        raise TypeError(f"{_MOD}.{fn}: trainer must be a jaxconv.train.Trainer; got "
                        f"{type(trainer).__name__}")
    if not isinstance(state, TrainState):
        raise TypeError(f"{_MOD}.{fn}: state must be a jaxconv.train.TrainState; got "
                        f"{type(state).__name__}")
    epochs = _int(fn, "epochs", epochs, 0)
    if patience is not None:
        _int(fn, "patience", patience, 0)
    x_tr, y_tr = (jnp.asarray(a) for a in _pair(fn, "train", train))
    x_va, y_va = (jnp.asarray(a) for a in _pair(fn, "val", val))
    test_ = None if test is None else tuple(jnp.asarray(a) for a in _pair(fn, "test", test))
    if should_stop([m["val_error"] for m in state.metrics], patience):
        return
    while state.epoch < epochs:
        if on_epoch_start is not None:
            on_epoch_start(state.epoch)
        t0 = time.perf_counter()
        state, train_loss = trainer.train_epoch(state, x_tr, y_tr, on_step=on_step)
        t_train = time.perf_counter() - t0
        val_loss, val_err = trainer.evaluate(state.params, x_va, y_va)
        record = {"epoch": state.epoch, "train_loss": train_loss, "val_loss": val_loss,
                  "val_error": val_err}
        if test_ is not None:
            record["test_loss"], record["test_error"] = trainer.evaluate(state.params, *test_)
        seconds = time.perf_counter() - t0
        record.update(seconds=seconds, train_seconds=t_train,
                      images_per_second=int(x_tr.shape[0]) / max(t_train, 1e-9))
        state = state._replace(metrics=tuple(state.metrics) + (record,))
        yield state
        if should_stop([m["val_error"] for m in state.metrics], patience):
            return


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


def _flatten(tree: Any) -> tuple[list[str], list[Any]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [jax.tree_util.keystr(p) for p, _ in flat], [leaf for _, leaf in flat]


def save_checkpoint(path: str | os.PathLike, state: TrainState, *,
                    config: Mapping[str, Any] | None = None) -> str:
    """Writes a :class:`TrainState` to ``path`` (a ``.npz``), atomically.

    The file holds the parameter and optimiser-state leaves as arrays
    (``params/<i>``, ``opt_state/<i>`` in pytree order) and one JSON record
    (format tag, leaf paths, epoch, seed, metrics, ``config``). It is written
    to a temporary file in the same directory, flushed to disk, then renamed
    over ``path``: a reader sees the old file or the new one, never a part.

    Args:
      path: destination file; its directory must exist.
      state: the state to save.
      config: optional JSON-serialisable run configuration, stored alongside
        (e.g. the model variant and hyper-parameters, to check on resume).

    Returns:
      ``path`` as a string.

    Raises:
      TypeError: ``state`` is not a TrainState, or ``config`` is not JSON-serialisable.
      FileNotFoundError: the directory does not exist.
    """
    fn = "save_checkpoint"
    if not isinstance(state, TrainState):
        raise TypeError(f"{_MOD}.{fn}: state must be a jaxconv.train.TrainState; got "
                        f"{type(state).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{_MOD}.{fn}: directory {directory!r} does not exist "
                                f"(path={path!r})")
    p_paths, p_leaves = _flatten(state.params)
    o_paths, o_leaves = _flatten(state.opt_state)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(state.epoch),
        "seed": int(state.seed),
        "metrics": list(state.metrics),
        "params_paths": p_paths,
        "opt_state_paths": o_paths,
        "config": dict(config) if config is not None else None,
    }
    try:
        meta_json = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"{_MOD}.{fn}: config and metrics must be JSON-serialisable; {e}") from None
    arrays = {f"params/{i}": np.asarray(a) for i, a in enumerate(p_leaves)}
    arrays.update({f"opt_state/{i}": np.asarray(a) for i, a in enumerate(o_leaves)})
    arrays["meta"] = np.array(meta_json)
    with atomic_file(path) as f:
        np.savez(f, **arrays)
    return path


def load_checkpoint(path: str | os.PathLike, like: TrainState) -> tuple[TrainState, dict | None]:
    """Reads a checkpoint written by :func:`save_checkpoint`.

    Args:
      path: the ``.npz`` file.
      like: a state with the same structure (e.g. ``trainer.init_state(model.init(key))``):
        it supplies the pytree structure, and every leaf's shape and dtype are checked
        against it.

    Returns:
      ``(state, config)``: the restored :class:`TrainState` (leaves as jax
      arrays) and the stored ``config`` (or None).

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a jaxconv checkpoint, or its structure, shapes or dtypes
        do not match ``like`` (the message names the first mismatching leaf).
    """
    fn = "load_checkpoint"
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{_MOD}.{fn}: no checkpoint at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data.pop("meta")))
    except Exception as e:
        raise ValueError(f"{_MOD}.{fn}: {path!r} is not a readable jaxconv checkpoint "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{_MOD}.{fn}: {path!r} is not a jaxconv checkpoint (expected format "
                         f"{CHECKPOINT_FORMAT!r}; got {meta.get('format') if isinstance(meta, dict) else None!r})")

    def restore(name: str, template: Any) -> Any:
        paths, leaves = _flatten(template)
        stored = meta[f"{name}_paths"]
        if stored != paths:
            missing = sorted(set(paths) - set(stored))
            extra = sorted(set(stored) - set(paths))
            raise ValueError(
                f"{_MOD}.{fn}: {path!r}: {name} has a different structure from the model "
                f"(missing {missing[:5]}, unexpected {extra[:5]}); was it written for another model?"
            )
        out = []
        for i, (p, leaf) in enumerate(zip(paths, leaves)):
            arr = data[f"{name}/{i}"]
            shape, dtype = tuple(np.shape(leaf)), np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(
                    f"{_MOD}.{fn}: {path!r}: {name}{p} has shape {arr.shape} and dtype {arr.dtype}; "
                    f"expected shape {shape} and dtype {dtype} (was it written for another model?)"
                )
            out.append(jnp.asarray(arr))
        return jax.tree.unflatten(jax.tree.structure(template), out)

    state = TrainState(
        params=restore("params", like.params),
        opt_state=restore("opt_state", like.opt_state),
        epoch=int(meta["epoch"]),
        seed=int(meta["seed"]),
        metrics=tuple(meta["metrics"]),
    )
    return state, meta.get("config")
