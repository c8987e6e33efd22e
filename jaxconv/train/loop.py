"""The training loop: :class:`TrainState`, :class:`Trainer` (jitted step and evaluation),
:func:`fit` (the epoch loop with early stopping) and data-parallel sharding.

Data parallelism. A :class:`Trainer` runs on a 1-d :class:`jax.sharding.Mesh`
(:func:`data_mesh`; by default every local device). Each batch is sharded
over the mesh's axis (a ``NamedSharding`` with ``PartitionSpec(axis)``);
parameters, optimiser state and the dataset arrays are replicated. The step
is one ``jax.jit`` program: XLA's SPMD partitioner runs the forward and
backward pass on each device's share of the batch and inserts the
all-reduce of the gradients (no hand-written communication), so every
device applies the same update. On one device this is ordinary training.

Padding. Every step has the same shape (one compilation): the last batch of
an epoch is padded with zero-weight examples, and a batch size that does
not divide by the number of devices is rounded up to the next multiple
with zero-weight examples too. The loss and the metrics are weighted means,
so padding changes no figure: a padded, sharded step computes the loss and
update of the unpadded batch (within float rounding).
"""

from __future__ import annotations

import contextlib
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.typing import ArrayLike

from .._src.compile_options import compiler_options as _compiler_options
from ._checks import MOD, check_images_labels, check_int, check_pair
from .augment import epoch_permutation, random_shift_rotate, step_key
from .losses import cross_entropy, error_rate
from .schedules import learning_rate, steps_per_epoch

__all__ = ["TrainState", "Trainer", "data_mesh", "fit", "should_stop"]

#: Name of the mesh axis the batch is sharded over (see :func:`data_mesh`).
BATCH_AXIS = "batch"

Devices = int | Sequence[jax.Device] | Mesh | None


def data_mesh(devices: Devices = None) -> Mesh:
    """A 1-d device mesh for data-parallel training, axis name ``"batch"``.

    Args:
      devices: None (every local device, ``jax.local_devices()``), a number
        ``n`` (the first ``n`` local devices), a sequence of devices (e.g.
        ``jax.devices()`` for every device of a multi-host run), or a 1-d
        ``Mesh`` (returned as is).

    Returns:
      A ``jax.sharding.Mesh`` with one axis.

    Raises:
      ValueError: ``n`` is not between 1 and the number of local devices, the
        sequence is empty, or the mesh is not 1-d.

    Example:
      >>> import jax
      >>> from jaxconv import train
      >>> mesh = train.data_mesh(1)
      >>> mesh.axis_names, mesh.devices.shape
      (('batch',), (1,))
    """
    fn = "data_mesh"
    if isinstance(devices, Mesh):
        if devices.devices.ndim != 1:
            raise ValueError(f"{MOD}.{fn}: devices must be a 1-d Mesh; got a mesh of shape "
                             f"{dict(devices.shape)}")
        return devices
    local = jax.local_devices()
    if devices is None:
        chosen = list(local)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        n = int(devices)
        if not 1 <= n <= len(local):
            raise ValueError(f"{MOD}.{fn}: devices must be between 1 and the number of local "
                             f"devices ({len(local)}); got devices={n}")
        chosen = list(local[:n])
    elif isinstance(devices, Sequence) and all(isinstance(d, jax.Device) for d in devices):
        chosen = list(devices)
        if not chosen:
            raise ValueError(f"{MOD}.{fn}: devices must name at least one device; got []")
    else:
        raise TypeError(f"{MOD}.{fn}: devices must be None, an int, a sequence of jax devices or "
                        f"a 1-d Mesh; got {devices!r}")
    return Mesh(np.array(chosen), (BATCH_AXIS,))


def should_stop(val_errors: Sequence[float], patience: int | None) -> bool:
    """Early stopping: True when the best validation error is ``patience`` epochs old.

    Like Keras' ``EarlyStopping(patience=...)`` on a minimised metric.

    Args:
      val_errors: validation error after each epoch so far.
      patience: epochs without a strict improvement on the best error that
        are tolerated; None or 0 disables early stopping.

    Returns:
      Whether to stop now.

    Example:
      >>> from jaxconv import train
      >>> train.should_stop([0.3, 0.4, 0.3], 2), train.should_stop([0.5, 0.4, 0.3], 2)
      (True, False)
    """
    if patience is None or patience == 0:
        return False
    patience = check_int("should_stop", "patience", patience, 0)
    if not val_errors:
        return False
    best = int(np.argmin(np.asarray(val_errors, dtype=np.float64)))  # first best
    return len(val_errors) - 1 - best >= patience


class TrainState(NamedTuple):
    """Everything a run needs to continue exactly where it stopped (immutable).

    Attributes:
      params: the model parameters (a pytree).
      opt_state: the optax optimiser state (holds the step count the
        learning-rate schedule reads).
      epoch: number of completed epochs.
      seed: the run's seed. With ``epoch`` it is the whole RNG state: the
        shuffle of epoch ``e`` is :func:`epoch_permutation` ``(seed, e, n)`` and
        the augmentation key of step ``s`` is :func:`step_key` ``(seed, e, s)``.
      metrics: one read-only mapping per completed epoch (see :func:`fit`).

    Example:
      >>> from jaxconv import train
      >>> train.TrainState(params={}, opt_state=(), epoch=0, seed=0).metrics
      ()
    """

    params: Any
    opt_state: Any
    epoch: int
    seed: int
    metrics: tuple[Mapping[str, float], ...] = ()


def _frozen_record(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of an epoch record (``types.MappingProxyType``)."""
    return types.MappingProxyType(dict(record))


def _padded_batches(order: np.ndarray, batch_size: int, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of every batch of ``order``, padded to one shape.

    Returns ``(idx, weights)``, both ``(n_batches, B)`` with
    ``n_batches = ceil(len(order) / batch_size)`` and ``B`` = ``batch_size``
    rounded up to a multiple of ``multiple`` (the device count). Row ``b``
    holds ``order[b * batch_size : (b + 1) * batch_size]`` with weight 1, then
    padding (index 0, weight 0).
    """
    n = len(order)
    n_batches = -(-n // batch_size)
    width = -(-batch_size // multiple) * multiple
    flat = np.zeros(n_batches * batch_size, np.int32)
    flat[:n] = order
    real = np.zeros(n_batches * batch_size, np.float32)
    real[:n] = 1.0
    idx = np.zeros((n_batches, width), np.int32)
    wts = np.zeros((n_batches, width), np.float32)
    idx[:, :batch_size] = flat.reshape(n_batches, batch_size)
    wts[:, :batch_size] = real.reshape(n_batches, batch_size)
    return idx, wts


class Trainer:
    """The jitted, data-parallel training step and evaluation for one model and optimiser.

    Holds configuration and compiled functions only, never parameters or
    optimiser state (those travel in :class:`TrainState`). See the module
    docstring for the sharding and the padding.

    Args:
      apply_fn: ``apply_fn(params, images) -> logits (N, K)``.
      optimizer: an optax ``GradientTransformation`` (see :func:`jaxconv.train.sgd`,
        which also adds the L2 term).
      batch_size: training batch size. Every step has one shape (one compile):
        the last batch of an epoch is padded with zero-weight examples.
      augment: False, True (:func:`random_shift_rotate` with its defaults) or a
        function ``augment(key, images) -> images`` run inside the jitted step.
      eval_batch_size: batch size of :meth:`evaluate` (padded likewise).
      devices: where to run: see :func:`data_mesh` (default: every local
        device). A batch size not divisible by the device count is padded up
        to the next multiple with zero-weight examples.
      compiler_options: XLA compile options for the jitted step and
        evaluation (``jax.jit(..., compiler_options=)``). Default:
        :func:`jaxconv.compiler_options` for the mesh's platform (512-bit
        vectors on AVX-512 CPUs, nothing elsewhere). ``{}`` compiles with XLA's
        defaults.

    Attributes:
      mesh: the 1-d device mesh.
      step_batch: the per-step array batch (``batch_size`` rounded up to a
        multiple of the device count).
      compiler_options: the XLA compile options in use (a dict).

    Example:
      >>> import jax, optax
      >>> from jaxconv import train
      >>> from jaxconv.models import lenet
      >>> trainer = train.Trainer(lambda p, x: lenet.apply(p, x, "lenet5"), optax.sgd(0.1),
      ...                         batch_size=8, devices=1)
      >>> state = trainer.init_state(lenet.init(jax.random.PRNGKey(0), "lenet5"), seed=0)
      >>> x, y = jax.numpy.zeros((10, 1, 28, 28)), jax.numpy.zeros(10, "int32")
      >>> state, loss = trainer.train_epoch(state, x, y)  # 2 steps: 8 + 2 (padded to 8)
      >>> state.epoch, trainer.step_batch
      (1, 8)
    """

    __slots__ = ("_eval_step", "_repl", "_sync", "_train_step", "apply_fn", "augment", "batch_size",
                 "compiler_options", "eval_batch_size", "mesh", "optimizer", "step_batch")

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    optimizer: optax.GradientTransformation
    batch_size: int
    augment: bool | Callable[[jax.Array, jax.Array], jax.Array]
    eval_batch_size: int
    mesh: Mesh
    step_batch: int
    compiler_options: dict[str, Any]
    _repl: NamedSharding
    _sync: bool
    _train_step: Callable[..., tuple[Any, Any, jax.Array]]
    _eval_step: Callable[..., tuple[jax.Array, jax.Array]]

    def __init__(self, apply_fn: Callable[[Any, jax.Array], jax.Array],
                 optimizer: optax.GradientTransformation, batch_size: int, *,
                 augment: bool | Callable[[jax.Array, jax.Array], jax.Array] = False,
                 eval_batch_size: int = 500, devices: Devices = None,
                 compiler_options: Mapping[str, Any] | None = None) -> None:
        fn = "Trainer"
        if not callable(apply_fn):
            raise TypeError(f"{MOD}.{fn}: apply_fn must be callable apply_fn(params, x); got "
                            f"{apply_fn!r}")
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise TypeError(f"{MOD}.{fn}: optimizer must be an optax GradientTransformation; got "
                            f"{type(optimizer).__name__}")
        if not (isinstance(augment, bool) or callable(augment)):
            raise TypeError(f"{MOD}.{fn}: augment must be a bool or a function augment(key, "
                            f"images); got {augment!r}")
        self.apply_fn = apply_fn
        self.optimizer = optimizer
        self.batch_size = check_int(fn, "batch_size", batch_size, 1)
        self.eval_batch_size = check_int(fn, "eval_batch_size", eval_batch_size, 1)
        self.augment = augment
        self.mesh = data_mesh(devices)
        n_dev = self.mesh.devices.size
        if compiler_options is None:
            compiler_options = _compiler_options(self.mesh.devices.flat[0].platform)
        elif not (isinstance(compiler_options, Mapping)
                  and all(isinstance(k, str) for k in compiler_options)):
            raise TypeError(f"{MOD}.{fn}: compiler_options must be a mapping of XLA option "
                            f"names (str) to values, or None; got {compiler_options!r}")
        self.compiler_options = dict(compiler_options)
        # XLA:CPU runs the collectives of several host devices through an in-process
        # rendezvous; with executions of the step queued behind each other (async
        # dispatch) its thread pool can starve and the all-reduce deadlocks until XLA
        # aborts the process (seen on 2 cores with 2 and 4 host devices). So on a
        # multi-device CPU mesh each step is waited for; accelerators keep async dispatch.
        self._sync = n_dev > 1 and any(d.platform == "cpu" for d in self.mesh.devices.flat)
        self.step_batch = -(-self.batch_size // n_dev) * n_dev
        axis = self.mesh.axis_names[0]
        self._repl = NamedSharding(self.mesh, PartitionSpec())
        batch = NamedSharding(self.mesh, PartitionSpec(axis))
        aug = random_shift_rotate if augment is True else (augment or None)

        def train_step(params: Any, opt_state: Any, images: jax.Array, labels: jax.Array,
                       idx: jax.Array, wts: jax.Array, seed: jax.Array, epoch: jax.Array,
                       step: jax.Array) -> tuple[Any, Any, jax.Array]:
            i, w = idx[step], wts[step]
            x = jax.lax.with_sharding_constraint(images[i], batch)
            y = labels[i]
            if aug is not None:
                x = aug(step_key(seed, epoch, step), x)

            def loss_fn(p: Any) -> jax.Array:
                return cross_entropy(apply_fn(p, x), y, w)

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        def eval_step(params: Any, images: jax.Array, labels: jax.Array, idx: jax.Array,
                      wts: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
            i, w = idx[b], wts[b]
            x = jax.lax.with_sharding_constraint(images[i], batch)
            logits = apply_fn(params, x)
            n = jnp.sum(w)
            return cross_entropy(logits, labels[i], w) * n, error_rate(logits, labels[i], w) * n

        repl = self._repl
        opts = self.compiler_options
        self._train_step = jax.jit(train_step, out_shardings=(repl, repl, repl),
                                   compiler_options=opts)
        self._eval_step = jax.jit(eval_step, out_shardings=(repl, repl), compiler_options=opts)

    # ------------------------------------------------------------------ placement

    @property
    def devices(self) -> tuple[jax.Device, ...]:
        """The devices the trainer runs on, in mesh order."""
        return tuple(self.mesh.devices.flat)

    def replicate(self, tree: Any) -> Any:
        """``tree`` placed on every device of the mesh (a no-op for arrays already there)."""
        return jax.device_put(tree, self._repl)

    def _index_arrays(self, idx: np.ndarray, wts: np.ndarray) -> tuple[jax.Array, jax.Array]:
        sharding = NamedSharding(self.mesh, PartitionSpec(None, self.mesh.axis_names[0]))
        return jax.device_put(idx, sharding), jax.device_put(wts, sharding)

    def _data(self, fn: str, images: Any, labels: Any) -> tuple[jax.Array, jax.Array]:
        images, labels = check_images_labels(fn, images, labels)
        # host data goes straight from numpy to every device (no copy through device 0)
        if not isinstance(images, jax.Array):
            images = images.astype(jax.dtypes.canonicalize_dtype(images.dtype), copy=False)
        labels = (labels.astype(jnp.int32) if isinstance(labels, jax.Array)
                  else np.asarray(labels, np.int32))
        return self.replicate(images), self.replicate(labels)

    # ------------------------------------------------------------------ API

    def init_state(self, params: Any, seed: int = 0) -> TrainState:
        """A fresh :class:`TrainState` at epoch 0, parameters replicated on the mesh.

        Args:
          params: initial parameters.
          seed: the run's seed (shuffles and augmentation), in ``[0, 2**31)``.

        Returns:
          The state (``opt_state = optimizer.init(params)``, no metrics).
        """
        seed = check_int("Trainer.init_state", "seed", seed, 0)
        if seed >= 2**31:
            raise ValueError(f"{MOD}.Trainer.init_state: seed must be < 2**31; got seed={seed}")
        params = self.replicate(params)
        return TrainState(params, self.replicate(self.optimizer.init(params)), 0, seed, ())

    def steps_per_epoch(self, n_train: int) -> int:
        """``ceil(n_train / batch_size)``."""
        return steps_per_epoch(n_train, self.batch_size)

    def train_epoch(self, state: TrainState, images: ArrayLike, labels: ArrayLike, *,
                    on_step: Callable[[int, int, jax.Array], None] | None = None
                    ) -> tuple[TrainState, float]:
        """One epoch of SGD over ``(images, labels)`` in the order of
        :func:`epoch_permutation` ``(state.seed, state.epoch, N)``.

        Args:
          state: the state before the epoch (its arrays are replicated onto
            the mesh if they are not already, e.g. after loading a checkpoint).
          images: ``(N, ...)`` floating point (numpy or jax).
          labels: ``(N,)`` integers.
          on_step: optional ``on_step(step, n_steps, loss)`` called after each
            step (``step`` from 1; ``loss`` the batch's mean cross-entropy as a
            device scalar -- converting it to float waits for the step).

        Returns:
          ``(new_state, train_loss)``: the state with ``epoch + 1`` (metrics
          unchanged) and the epoch's mean training cross-entropy over examples.
        """
        x, y = self._data("Trainer.train_epoch", images, labels)
        n = x.shape[0]
        idx, wts = _padded_batches(epoch_permutation(state.seed, state.epoch, n), self.batch_size,
                                   self.mesh.devices.size)
        counts = wts.sum(axis=1)
        idx_d, wts_d = self._index_arrays(idx, wts)
        params, opt_state = self.replicate((state.params, state.opt_state))
        total = jnp.zeros((), jnp.float32)
        seed, epoch = np.int32(state.seed), np.int32(state.epoch)
        n_steps = idx.shape[0]
        for s in range(n_steps):
            params, opt_state, loss = self._train_step(
                params, opt_state, x, y, idx_d, wts_d, seed, epoch, np.int32(s))
            if self._sync:
                loss.block_until_ready()
            total = total + loss * counts[s]
            if on_step is not None:
                on_step(s + 1, n_steps, loss)
        new = state._replace(params=params, opt_state=opt_state, epoch=state.epoch + 1)
        return new, float(total) / n

    def evaluate(self, params: Any, images: ArrayLike, labels: ArrayLike) -> tuple[float, float]:
        """Mean cross-entropy and error rate over a dataset, in jitted, sharded batches.

        Args:
          params: model parameters.
          images: ``(N, ...)`` floating point.
          labels: ``(N,)`` integers.

        Returns:
          ``(loss, error)``, Python floats; ``error`` is a fraction in ``[0, 1]``.
        """
        x, y = self._data("Trainer.evaluate", images, labels)
        n = x.shape[0]
        idx, wts = _padded_batches(np.arange(n), self.eval_batch_size, self.mesh.devices.size)
        idx_d, wts_d = self._index_arrays(idx, wts)
        params = self.replicate(params)
        loss_sum = err_sum = jnp.zeros((), jnp.float32)
        for b in range(idx.shape[0]):
            loss, err = self._eval_step(params, x, y, idx_d, wts_d, np.int32(b))
            if self._sync:
                loss.block_until_ready()
            loss_sum, err_sum = loss_sum + loss, err_sum + err
        return float(loss_sum) / n, float(err_sum) / n


def fit(trainer: Trainer, state: TrainState, train: tuple[ArrayLike, ArrayLike],
        val: tuple[ArrayLike, ArrayLike], *, epochs: int,
        test: tuple[ArrayLike, ArrayLike] | None = None, patience: int | None = None,
        on_step: Callable[[int, int, jax.Array], None] | None = None,
        on_epoch_start: Callable[[int], None] | None = None) -> Iterator[TrainState]:
    """Trains from ``state.epoch`` up to ``epochs``, yielding the state after each epoch.

    A generator, so the caller holds the last completed state at all times
    (to checkpoint it, or to save it on Ctrl-C) and decides what to print.
    Each yielded state's ``metrics`` ends with this epoch's read-only record::

        {"epoch": 1-based epoch, "train_loss": mean training cross-entropy,
         "val_loss", "val_error", ["test_loss", "test_error",]
         ["learning_rate": the rate of the epoch's last step (optimisers from sgd),]
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

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv import train
      >>> from jaxconv.models import lenet
      >>> trainer = train.Trainer(lambda p, x: lenet.apply(p, x, "lenet5"), train.sgd(0.1),
      ...                         batch_size=4, devices=1)
      >>> state = trainer.init_state(lenet.init(jax.random.PRNGKey(0), "lenet5"))
      >>> data = (jnp.zeros((4, 1, 28, 28)), jnp.arange(4))
      >>> [s.epoch for s in train.fit(trainer, state, data, data, epochs=2)]
      [1, 2]
    """
    fn = "fit"
    if not isinstance(trainer, Trainer):
        raise TypeError(f"{MOD}.{fn}: trainer must be a jaxconv.train.Trainer; got "
                        f"{type(trainer).__name__}")
    if not isinstance(state, TrainState):
        raise TypeError(f"{MOD}.{fn}: state must be a jaxconv.train.TrainState; got "
                        f"{type(state).__name__}")
    epochs = check_int(fn, "epochs", epochs, 0)
    if patience is not None:
        check_int(fn, "patience", patience, 0)
    x_tr, y_tr = trainer._data(fn, *check_pair(fn, "train", train))
    x_va, y_va = trainer._data(fn, *check_pair(fn, "val", val))
    test_ = None if test is None else trainer._data(fn, *check_pair(fn, "test", test))
    if should_stop([m["val_error"] for m in state.metrics], patience):
        return
    while state.epoch < epochs:
        if on_epoch_start is not None:
            on_epoch_start(state.epoch)
        t0 = time.perf_counter()
        state, train_loss = trainer.train_epoch(state, x_tr, y_tr, on_step=on_step)
        t_train = time.perf_counter() - t0
        val_loss, val_err = trainer.evaluate(state.params, x_va, y_va)
        record: dict[str, float] = {"epoch": state.epoch, "train_loss": train_loss,
                                    "val_loss": val_loss, "val_error": val_err}
        if test_ is not None:
            record["test_loss"], record["test_error"] = trainer.evaluate(state.params, *test_)
        with contextlib.suppress(ValueError):  # an optimiser without an injected learning rate
            record["learning_rate"] = float(learning_rate(state.opt_state))
        seconds = time.perf_counter() - t0
        record.update(seconds=seconds, train_seconds=t_train,
                      images_per_second=int(x_tr.shape[0]) / max(t_train, 1e-9))
        state = state._replace(metrics=(*state.metrics, _frozen_record(record)))
        yield state
        if should_stop([m["val_error"] for m in state.metrics], patience):
            return
