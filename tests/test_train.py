"""jaxconv.train: loss, schedules, augmentation, trainer, fit, checkpoints and exact resume."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxconv import train
from jaxconv.models import lenet

N_TRAIN, N_VAL, BS = 48, 16, 16


def _synthetic(n, seed):
    """Images of 10 classes: a fixed sparse random prototype per class plus noise, in [0, 1]."""
    protos = (np.random.default_rng(123).uniform(0, 1, (10, 1, 28, 28)) > 0.85).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int32)
    x = np.clip(protos[y] + 0.2 * rng.normal(size=(n, 1, 28, 28)), 0, 1).astype(np.float32)
    return x, y


TRAIN, VAL = _synthetic(N_TRAIN, 1), _synthetic(N_VAL, 2)


def _apply(p, x):
    return lenet.apply(p, x, "lenet5")


def make_trainer(*, augment=True, lr=0.05, l2=1e-4):
    opt = train.sgd(lr, momentum=0.9, decay=0.5, steps_per_epoch=train.steps_per_epoch(N_TRAIN, BS), l2=l2)
    return train.Trainer(_apply, opt, batch_size=BS, augment=augment, eval_batch_size=32)


@pytest.fixture(scope="module")
def trainer():
    return make_trainer()


@pytest.fixture(scope="module")
def params0():
    return lenet.init(jax.random.PRNGKey(0), "lenet5")


# --------------------------------------------------------------------------
# Loss, metrics, schedules
# --------------------------------------------------------------------------


def test_cross_entropy_error_rate_l2():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = jnp.array([0, 2])
    ce = -np.log(np.exp([2.0, 0.0]) / np.exp(logits).sum(axis=1))
    np.testing.assert_allclose(train.cross_entropy(logits, labels), ce.mean(), rtol=1e-6)
    np.testing.assert_allclose(train.cross_entropy(logits, labels, jnp.array([1.0, 0.0])), ce[0], rtol=1e-6)
    assert float(train.error_rate(logits, labels)) == 0.5
    assert float(train.error_rate(logits, labels, jnp.array([0.0, 1.0]))) == 1.0  # padding weight 0
    p = {"a": {"w": jnp.ones((2, 3)), "b": jnp.ones(3)}, "c": jnp.full((1, 1, 2, 2), 2.0)}
    assert float(train.l2_penalty(p)) == 6 + 16  # biases (1-d) excluded
    with pytest.raises(ValueError, match=r"cross_entropy: logits must be \(N, K\) and labels \(N,\)"):
        train.cross_entropy(logits, jnp.array([0, 1, 2]))


def test_inverse_time_decay_and_sgd():
    sched = train.inverse_time_decay(0.1, 0.5, steps_per_epoch=10)
    np.testing.assert_allclose([sched(s) for s in (0, 9, 10, 25)], [0.1, 0.1, 0.1 / 1.5, 0.1 / 2.0], rtol=1e-6)
    assert train.steps_per_epoch(100, 32) == 4
    # decay acts on the update size: one SGD step at epoch 2 is lr0 / (1 + 2d) * grad
    opt = train.sgd(0.1, decay=0.5, steps_per_epoch=1)
    p, g = jnp.ones(2), jnp.ones(2)
    s = opt.init(p)
    for _ in range(2):
        _, s = opt.update(g, s, p)
    u, _ = opt.update(g, s, p)
    np.testing.assert_allclose(u, -0.05 * g, rtol=1e-6)
    assert isinstance(train.sgd(optax.cosine_decay_schedule(0.1, 100), momentum=0.9),
                      optax.GradientTransformation)


def test_weight_decay_equals_the_l2_term_and_lr_is_in_the_state(params0):
    """sgd(l2=...) (optax.add_decayed_weights, biases masked) == SGD on ce + l2 * sum(W**2)."""
    x, y = jnp.asarray(TRAIN[0][:8]), jnp.asarray(TRAIN[1][:8])
    l2, lr = 0.01, 0.1

    def ce(p):
        return train.cross_entropy(_apply(p, x), y)

    new = train.sgd(lr, momentum=0.9, l2=l2)
    old = optax.sgd(lr, momentum=0.9)  # the hand-written L2 term of the previous train.py
    p_new = p_old = params0
    s_new, s_old = new.init(params0), old.init(params0)
    grad_new = jax.jit(jax.grad(ce))
    grad_old = jax.jit(jax.grad(lambda p: ce(p) + l2 * train.l2_penalty(p)))
    for _ in range(2):
        u, s_new = new.update(grad_new(p_new), s_new, p_new)
        p_new = optax.apply_updates(p_new, u)
        u, s_old = old.update(grad_old(p_old), s_old, p_old)
        p_old = optax.apply_updates(p_old, u)
    for a, b in zip(jax.tree.leaves(p_new), jax.tree.leaves(p_old)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(p_new["conv1"]["w"], params0["conv1"]["w"])
    assert train.weight_decay_mask(params0)["conv1"] == {"b": False, "w": True}
    # the learning rate of the last step, read from the (chained) optimiser state
    sched = train.sgd(0.1, decay=1.0, steps_per_epoch=2, l2=l2)
    st = sched.init(params0)
    rates = []
    for _ in range(5):
        _, st = sched.update(jax.tree.map(jnp.zeros_like, params0), st, params0)
        rates.append(float(train.learning_rate(st)))
    np.testing.assert_allclose(rates, [0.1, 0.1, 0.05, 0.05, 0.1 / 3], rtol=1e-6)
    with pytest.raises(ValueError, match=r"learning_rate: opt_state holds no injected learning_rate"):
        train.learning_rate(optax.sgd(0.1).init(params0))


def test_schedule_and_optimizer_errors():
    with pytest.raises(ValueError, match=r"sgd: momentum must be in \[0, 1\); got momentum=1.0"):
        train.sgd(0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"sgd: learning_rate must be a finite number > 0.0; got learning_rate=0.0"):
        train.sgd(0.0)
    with pytest.raises(ValueError, match=r"sgd: decay=0.1 needs steps_per_epoch"):
        train.sgd(0.1, decay=0.1)
    with pytest.raises(ValueError, match=r"inverse_time_decay: decay must be a finite number >= 0.0; got decay=-1.0"):
        train.inverse_time_decay(0.1, -1, 10)
    with pytest.raises(ValueError, match=r"steps_per_epoch: batch_size must be an int >= 1; got batch_size=0"):
        train.steps_per_epoch(10, 0)
    with pytest.raises(ValueError, match=r"Trainer: batch_size must be an int >= 1; got batch_size=0"):
        train.Trainer(_apply, optax.sgd(0.1), batch_size=0)
    with pytest.raises(ValueError, match=r"Trainer.init_state: seed must be < 2\*\*31; got seed=2147483648"):
        train.Trainer(_apply, optax.sgd(0.1), batch_size=2).init_state({}, seed=2**31)
    with pytest.raises(TypeError, match=r"Trainer: optimizer must be an optax GradientTransformation; got float"):
        train.Trainer(_apply, 0.1, batch_size=2)
    n = len(jax.local_devices())
    with pytest.raises(ValueError, match=rf"data_mesh: devices must be between 1 and the number of local devices \({n}\); got devices={n + 1}"):
        train.Trainer(_apply, optax.sgd(0.1), batch_size=2, devices=n + 1)
    with pytest.raises(TypeError, match=r"data_mesh: devices must be None, an int, a sequence of jax devices or a 1-d Mesh; got 'gpu'"):
        train.data_mesh("gpu")
    mesh = train.data_mesh()
    assert mesh.axis_names == ("batch",) and list(mesh.devices.flat) == jax.local_devices()
    assert train.data_mesh(mesh) is mesh


# --------------------------------------------------------------------------
# Randomness and augmentation
# --------------------------------------------------------------------------


def test_shuffles_and_keys_are_pure_functions_of_seed_epoch_step():
    a = train.epoch_permutation(3, 5, 100)
    np.testing.assert_array_equal(a, train.epoch_permutation(3, 5, 100))
    assert sorted(a) == list(range(100))
    assert not np.array_equal(a, train.epoch_permutation(3, 6, 100))
    assert not np.array_equal(a, train.epoch_permutation(4, 5, 100))
    k = jax.random.key_data(train.step_key(1, 2, 3))
    np.testing.assert_array_equal(k, jax.random.key_data(train.step_key(1, 2, 3)))
    assert not np.array_equal(k, jax.random.key_data(train.step_key(1, 2, 4)))
    with pytest.raises(ValueError, match=r"epoch_permutation: epoch must be an int >= 0; got epoch=-1"):
        train.epoch_permutation(0, -1, 10)


def test_random_shift_rotate():
    x = jnp.asarray(TRAIN[0][:4])
    key = jax.random.PRNGKey(0)
    same = train.random_shift_rotate(key, x, max_shift=0.0, max_degrees=0.0)
    np.testing.assert_allclose(same, x, atol=1e-6)
    y = jax.jit(train.random_shift_rotate)(key, x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.allclose(y, x)
    assert float(jnp.min(y)) >= 0.0 and float(jnp.max(y)) <= 1.0 + 1e-6  # bilinear, zero fill
    # mass is roughly preserved (small shifts and rotations of a centred blob)
    img = jnp.zeros((8, 1, 15, 15)).at[:, 0, 6:9, 6:9].set(1.0)
    moved = train.random_shift_rotate(key, img)
    np.testing.assert_allclose(jnp.sum(moved, axis=(1, 2, 3)), 9.0, rtol=0.05)
    with pytest.raises(ValueError, match=r"random_shift_rotate: images must be \(N, C, H, W\)"):
        train.random_shift_rotate(key, img[0])
    with pytest.raises(ValueError, match=r"random_shift_rotate: max_degrees must be a finite number >= 0.0"):
        train.random_shift_rotate(key, img, max_degrees=-5)


def test_should_stop():
    assert not train.should_stop([0.5, 0.4, 0.3], 2)
    assert not train.should_stop([0.3, 0.4], 2)
    assert train.should_stop([0.3, 0.4, 0.3], 2)  # ties do not count as an improvement
    assert not train.should_stop([0.3, 0.4, 0.5, 0.6], None)
    assert not train.should_stop([], 1)


# --------------------------------------------------------------------------
# Trainer and fit
# --------------------------------------------------------------------------


def test_a_few_steps_reduce_the_loss(params0):
    # One small batch, 8 plain SGD-momentum steps (one per "epoch"): the loss must fall.
    tr = train.Trainer(_apply, train.sgd(0.05, momentum=0.9), batch_size=16, eval_batch_size=16)
    x, y = TRAIN[0][:16], TRAIN[1][:16]
    state = tr.init_state(params0, seed=0)
    loss0, err0 = tr.evaluate(state.params, x, y)
    losses = []
    for _ in range(8):
        state, loss = tr.train_epoch(state, x, y)
        losses.append(loss)
    loss1, err1 = tr.evaluate(state.params, x, y)
    assert state.epoch == 8 and state.metrics == ()
    assert loss1 < 0.9 * loss0, (loss0, loss1, losses)
    assert losses[-1] < losses[0]
    assert err1 < err0 and 0.0 <= err1 <= 1.0


def test_on_step_and_padding(trainer, params0):
    calls = []
    state = trainer.init_state(params0, seed=0)
    x, y = TRAIN[0][:20], TRAIN[1][:20]  # 20 = one full batch of 16 + one padded batch of 4
    trainer.train_epoch(state, x, y, on_step=lambda s, n, loss: calls.append((s, n, float(loss))))
    assert [c[:2] for c in calls] == [(1, 2), (2, 2)]
    assert trainer.step_batch == BS and trainer.devices == tuple(jax.local_devices())
    assert all(np.isfinite(c[2]) for c in calls)
    with pytest.raises(ValueError, match=r"Trainer.train_epoch: data must be \(images \(N, \.\.\.\), labels \(N,\)\) with the same N"):
        trainer.train_epoch(state, x, y[:3])


def _state_arrays(state):
    return jax.tree.leaves((state.params, state.opt_state))


def _strip_times(metrics):
    return [{k: v for k, v in m.items() if "second" not in k} for m in metrics]


def test_resume_is_exact(trainer, params0, tmp_path):
    """2 epochs straight == 1 epoch, checkpoint, load into a fresh trainer, 1 more epoch."""
    straight = list(train.fit(trainer, trainer.init_state(params0, seed=7), TRAIN, VAL, epochs=2))[-1]

    first = list(train.fit(trainer, trainer.init_state(params0, seed=7), TRAIN, VAL, epochs=1))[-1]
    path = train.save_checkpoint(tmp_path / "ck.npz", first, config={"variant": "lenet5"})
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind
    fresh = make_trainer()  # as a new process would build it
    like = fresh.init_state(lenet.init(jax.random.PRNGKey(99), "lenet5"), seed=0)
    loaded, config = train.load_checkpoint(path, like)
    assert config == {"variant": "lenet5"} and loaded.epoch == 1 and loaded.seed == 7
    for a, b in zip(_state_arrays(first), _state_arrays(loaded)):
        np.testing.assert_array_equal(a, b)
    resumed = list(train.fit(fresh, loaded, TRAIN, VAL, epochs=2))[-1]

    assert resumed.epoch == straight.epoch == 2
    for a, b in zip(_state_arrays(straight), _state_arrays(resumed)):
        np.testing.assert_array_equal(a, b)
    assert _strip_times(resumed.metrics) == _strip_times(straight.metrics)
    with pytest.raises(TypeError, match="does not support item assignment"):  # read-only
        resumed.metrics[0]["epoch"] = 5


def test_fit_records_and_early_stopping(params0):
    # A learning rate of ~0 leaves the parameters unchanged, so the validation
    # error never improves on epoch 1 and patience 2 stops after epoch 3.
    tr = make_trainer(augment=False, lr=1e-30, l2=0.0)
    states = list(train.fit(tr, tr.init_state(params0, seed=0), TRAIN, VAL, epochs=10, test=VAL, patience=2))
    assert [s.epoch for s in states] == [1, 2, 3]
    m = states[-1].metrics
    assert [r["epoch"] for r in m] == [1, 2, 3]
    assert set(m[0]) >= {"epoch", "train_loss", "val_loss", "val_error", "test_loss", "test_error",
                         "learning_rate", "seconds", "train_seconds", "images_per_second"}
    assert m[0]["learning_rate"] == pytest.approx(1e-30, rel=1e-5)
    assert 0 <= m[0]["val_error"] <= 1 and m[0]["images_per_second"] > 0
    # a state that already meets the criterion trains no further
    assert list(train.fit(tr, states[-1], TRAIN, VAL, epochs=10, patience=2)) == []
    with pytest.raises(ValueError, match=r"fit: epochs must be an int >= 0; got epochs=-1"):
        next(train.fit(tr, states[-1], TRAIN, VAL, epochs=-1))
    with pytest.raises(TypeError, match=r"fit: val must be a pair \(images, labels\)"):
        next(train.fit(tr, states[-1], TRAIN, VAL[0], epochs=1))


# --------------------------------------------------------------------------
# Checkpoint errors
# --------------------------------------------------------------------------


def test_checkpoint_errors(trainer, params0, tmp_path):
    state = trainer.init_state(params0, seed=0)
    path = train.save_checkpoint(tmp_path / "ck.npz", state)
    other = trainer.init_state(lenet.init(jax.random.PRNGKey(0), "tutorial"), seed=0)
    with pytest.raises(ValueError, match=r"load_checkpoint: .*params has a different structure from the model \(missing \[\], unexpected \[.*fc3"):
        train.load_checkpoint(path, other)
    assert train.checkpoint_config(path) is None
    with pytest.raises(FileNotFoundError, match=r"load_checkpoint: no checkpoint at"):
        train.load_checkpoint(tmp_path / "missing.npz", state)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"load_checkpoint: .*junk.npz' is not a readable jaxconv checkpoint"):
        train.load_checkpoint(tmp_path / "junk.npz", state)
    np.savez(tmp_path / "foreign.npz", a=np.ones(3), meta=np.array('{"format": "other"}'))
    with pytest.raises(ValueError, match=r"is not a jaxconv checkpoint of this version .*got 'other'"):
        train.checkpoint_config(tmp_path / "foreign.npz")
    with pytest.raises(FileNotFoundError, match=r"save_checkpoint: directory .* does not exist"):
        train.save_checkpoint(tmp_path / "nope" / "ck.npz", state)
    with pytest.raises(TypeError, match=r"save_checkpoint: config and metrics must be JSON-serialisable"):
        train.save_checkpoint(tmp_path / "ck2.npz", state, config={"f": object()})
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "foreign.npz", "junk.npz"]
