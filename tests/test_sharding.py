"""Data-parallel training over a device mesh: jaxconv.train sharded over 4 CPU host devices.

The work runs in ONE subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (so the rest of the suite
keeps its single device): this file run as a script computes every figure and
prints them as JSON; the tests below check them. The subprocess compares

* a sharded train epoch (4 devices) with the single-device one: loss and parameters;
* a batch size not divisible by the device count (padded with zero-weight examples);
* evaluation of a sharded test set with the single-device figures;
* a checkpoint written on 4 devices resumed on 1, and the other way round;
* jaxconv.conv and max_pool (custom_vjp) and their gradients under ``jax.shard_map``;
* the collectives in the compiled HLO of a sharded train step (LeNet, and a
  network with grouped and depthwise convolutions): only all-reduces.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

N_DEVICES = 4
COLLECTIVES = ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter",
               "collective-broadcast")


# --------------------------------------------------------------------------
# The subprocess (this file run as a script)
# --------------------------------------------------------------------------


def _max_diff(a, b):
    import jax
    import numpy as np

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(la, lb))


def _collectives(hlo: str) -> dict:
    """Collective ops in compiled HLO text: name -> list of the result shapes."""
    found: dict = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT\s+)?%\S+\s*=\s*(.*?)\s(" + "|".join(COLLECTIVES) + r")(-start)?\(", line)
        if m:
            found.setdefault(m.group(2), []).append(m.group(1))
    return found


def _grouped_net():
    """conv 1->8 5x5, depthwise 3x3 (groups 8), grouped 8->16 3x3 (groups 2), max-pool, dense."""
    import jax
    import jax.numpy as jnp

    import jaxconv

    def init(key):
        k = jax.random.split(key, 4)
        return {"c1": jax.random.normal(k[0], (8, 1, 5, 5)) * 0.2,
                "dw": jax.random.normal(k[1], (8, 1, 3, 3)) * 0.3,
                "g2": jax.random.normal(k[2], (16, 4, 3, 3)) * 0.2,
                "fc": jax.random.normal(k[3], (16 * 10 * 10, 10)) * 0.01,
                "b": jnp.zeros(10)}

    def apply(p, x):
        h = jnp.tanh(jaxconv.conv(x, p["c1"]))                      # (N, 8, 24, 24)
        h = jnp.tanh(jaxconv.conv(h, p["dw"], groups=8))             # (N, 8, 22, 22)
        h = jaxconv.max_pool(jaxconv.conv(h, p["g2"], groups=2), 2)  # (N, 16, 10, 10)
        return h.reshape(h.shape[0], -1) @ p["fc"] + p["b"]

    return init, apply


def _step_hlo(trainer, state, x, y):
    import jax
    import numpy as np

    from jaxconv.train.loop import _padded_batches

    xs, ys = trainer._data("hlo", x, y)
    idx, wts = _padded_batches(np.arange(len(y)), trainer.batch_size, trainer.mesh.devices.size)
    idx_d, wts_d = trainer._index_arrays(idx, wts)
    args = (state.params, state.opt_state, xs, ys, idx_d, wts_d, np.int32(0), np.int32(0), np.int32(0))
    del jax
    return trainer._train_step.lower(*args).compile().as_text()


def worker() -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P

    import jaxconv
    from jaxconv import train
    from jaxconv.models import lenet

    out: dict = {"n_devices": len(jax.devices())}
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (20, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 20).astype(np.int32)
    xt = rng.uniform(0, 1, (13, 1, 28, 28)).astype(np.float32)
    yt = rng.integers(0, 10, 13).astype(np.int32)
    params0 = lenet.init(jax.random.PRNGKey(0), "tutorial")

    def apply(p, a):
        return lenet.apply(p, a, "tutorial")

    def make(bs, devices):
        opt = train.sgd(0.05, momentum=0.9, decay=0.5, steps_per_epoch=train.steps_per_epoch(20, bs),
                        l2=1e-4)
        return train.Trainer(apply, opt, batch_size=bs, augment=True, eval_batch_size=5,
                             devices=devices)

    # 1. sharded epoch == single-device epoch (batch 8: steps of 8, 8 and 4 padded to 8)
    t1, t4 = make(8, 1), make(8, N_DEVICES)
    s1, loss1 = t1.train_epoch(t1.init_state(params0, seed=3), x, y)
    s4, loss4 = t4.train_epoch(t4.init_state(params0, seed=3), x, y)
    out["equal_loss"] = [loss1, loss4]
    out["equal_params_diff"] = _max_diff(s1.params, s4.params)
    out["moved"] = _max_diff(s1.params, params0)
    out["params_sharding_devices"] = len(jax.tree.leaves(s4.params)[0].sharding.device_set)
    out["params_replicated"] = all(a.sharding.is_fully_replicated for a in jax.tree.leaves((s4.params, s4.opt_state)))

    # 2. a batch not divisible by the device count: 6 -> padded to 8 per step, masked
    t1b, t4b = make(6, 1), make(6, N_DEVICES)
    out["step_batch"] = [t1b.step_batch, t4b.step_batch]
    s1b, l1b = t1b.train_epoch(t1b.init_state(params0, seed=3), x, y)
    s4b, l4b = t4b.train_epoch(t4b.init_state(params0, seed=3), x, y)
    out["odd_loss"] = [l1b, l4b]
    out["odd_params_diff"] = _max_diff(s1b.params, s4b.params)

    # 3. evaluation of a sharded test set (13 images, batches of 5 padded to 8)
    out["eval"] = [list(t1.evaluate(s1.params, xt, yt)), list(t4.evaluate(s1.params, xt, yt))]

    # 4. checkpoints across device counts
    with tempfile.TemporaryDirectory() as d:
        s1_2, _ = t1.train_epoch(s1, x, y)  # 2 epochs on 1 device
        s4_2, _ = t4.train_epoch(s4, x, y)  # 2 epochs on 4 devices
        train.save_checkpoint(os.path.join(d, "from4.npz"), s4)
        on1, _ = train.load_checkpoint(os.path.join(d, "from4.npz"), like=t1.init_state(params0))
        on1_2, _ = t1.train_epoch(on1, x, y)
        out["ckpt_4to1_diff"] = _max_diff(on1_2.params, s1_2.params)
        train.save_checkpoint(os.path.join(d, "from1.npz"), s1)
        on4, _ = train.load_checkpoint(os.path.join(d, "from1.npz"), like=t4.init_state(params0))
        out["ckpt_loaded_on"] = len(jax.tree.leaves(on4.params)[0].sharding.device_set)
        on4_2, _ = t4.train_epoch(on4, x, y)
        out["ckpt_1to4_diff"] = _max_diff(on4_2.params, s4_2.params)
        out["ckpt_epochs"] = [on1_2.epoch, on4_2.epoch]

    # 5. custom_vjp ops under shard_map (batch sharded, weights replicated, psum of w-grads)
    mesh = t4.mesh
    w = jax.random.normal(jax.random.PRNGKey(1), (6, 1, 5, 5))
    xs = jnp.asarray(x[:8])

    def net(a, wt):
        return jaxconv.max_pool(jnp.tanh(jaxconv.conv(a, wt, padding=2)), 2)

    def local_loss(a, wt):
        return jax.lax.psum(jnp.sum(net(a, wt) ** 2), "batch")

    fwd = jax.jit(jax.shard_map(net, mesh=mesh, in_specs=(P("batch"), P()), out_specs=P("batch")))
    grad_sm = jax.jit(jax.shard_map(jax.grad(local_loss, argnums=(0, 1)), mesh=mesh,
                                    in_specs=(P("batch"), P()), out_specs=(P("batch"), P())))
    ref_dx, ref_dw = jax.grad(lambda a, wt: jnp.sum(net(a, wt) ** 2), argnums=(0, 1))(xs, w)
    dx, dw = grad_sm(xs, w)
    out["shard_map_fwd_diff"] = _max_diff(fwd(xs, w), net(xs, w))
    out["shard_map_dx_diff"] = _max_diff(dx, ref_dx)
    out["shard_map_dx_scale"] = float(jnp.max(jnp.abs(ref_dx)))
    out["shard_map_dw_diff"] = _max_diff(dw, ref_dw)
    out["shard_map_dw_scale"] = float(jnp.max(jnp.abs(ref_dw)))

    # 6. collectives in the compiled sharded train step (LeNet), and in the gradient of one
    #    sharded conv per kind of grouping; values of a grouped/depthwise network's step
    out["hlo_lenet"] = _collectives(_step_hlo(t4, s4, x, y))
    # a batch large enough that the algorithms' chunk loops run (32 samples per device)
    t128 = make(128, N_DEVICES)
    xb, yb = np.resize(x, (128, 1, 28, 28)), np.resize(y, 128)
    out["hlo_lenet_128"] = _collectives(_step_hlo(t128, t128.init_state(params0), xb, yb))
    xs4 = jax.device_put(jnp.ones((8, 8, 12, 12)), jax.sharding.NamedSharding(mesh, P("batch")))
    for name, wshape, groups in (("depthwise", (8, 1, 3, 3), 8), ("groups2", (16, 4, 3, 3), 2),
                                 ("depthwise_x2", (16, 1, 3, 3), 8), ("dense", (16, 8, 3, 3), 1)):
        def conv_loss(a, wt, groups=groups):
            return jnp.sum(jaxconv.conv(a, wt, groups=groups) ** 2)

        hlo = jax.jit(jax.grad(conv_loss, argnums=(0, 1))).lower(xs4, jnp.ones(wshape)).compile().as_text()
        out[f"hlo_conv_{name}"] = _collectives(hlo)
    g_init, g_apply = _grouped_net()
    tg = train.Trainer(g_apply, train.sgd(0.01), batch_size=8, devices=N_DEVICES)
    tg1 = train.Trainer(g_apply, train.sgd(0.01), batch_size=8, devices=1)
    sg1, lg1 = tg1.train_epoch(tg1.init_state(g_init(jax.random.PRNGKey(2))), x, y)
    sg4, lg4 = tg.train_epoch(tg.init_state(g_init(jax.random.PRNGKey(2))), x, y)
    out["grouped_loss"] = [lg1, lg4]
    out["grouped_params_diff"] = _max_diff(sg1.params, sg4.params)
    out["param_shapes"] = {
        "lenet": sorted(str(list(a.shape)) for a in jax.tree.leaves(params0)),
    }
    return out


# --------------------------------------------------------------------------
# The tests (in the main pytest process)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def figures():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={N_DEVICES}").strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, __file__], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


TOL = 2e-5  # f32: the sharded step sums the batch in another order


def test_the_subprocess_has_four_devices(figures):
    assert figures["n_devices"] == N_DEVICES


def test_sharded_step_equals_single_device_step(figures):
    l1, l4 = figures["equal_loss"]
    assert abs(l1 - l4) <= TOL * abs(l1)
    assert figures["moved"] > 1e-3  # the epoch did change the parameters
    assert figures["equal_params_diff"] <= TOL
    assert figures["params_sharding_devices"] == N_DEVICES and figures["params_replicated"]


def test_batch_not_divisible_by_devices_is_padded_and_masked(figures):
    assert figures["step_batch"] == [6, 8]
    l1, l4 = figures["odd_loss"]
    assert abs(l1 - l4) <= TOL * abs(l1)
    assert figures["odd_params_diff"] <= TOL


def test_sharded_evaluation_gives_single_device_figures(figures):
    (loss1, err1), (loss4, err4) = figures["eval"]
    assert abs(loss1 - loss4) <= TOL * loss1
    assert err1 == err4 and abs(err1 * 13 - round(err1 * 13)) < 1e-6  # a count of 13 images


def test_checkpoints_move_between_device_counts(figures):
    assert figures["ckpt_epochs"] == [2, 2]
    assert figures["ckpt_loaded_on"] == N_DEVICES  # loaded into the 4-device state: replicated
    assert figures["ckpt_4to1_diff"] <= TOL
    assert figures["ckpt_1to4_diff"] <= TOL


def test_custom_vjp_ops_under_shard_map(figures):
    # the reference runs op by op and the shard_map version jitted, per device: float32
    # sums in another order. The gradients get the tolerance every float32 gradient
    # check of this suite has (test_conv); the reference's own float32 error here is
    # about 2e-5 of dx's scale (against the same network in float64)
    assert figures["shard_map_fwd_diff"] <= 1e-6
    assert figures["shard_map_dx_diff"] <= 1e-4 * max(1.0, figures["shard_map_dx_scale"])
    assert figures["shard_map_dw_diff"] <= 1e-4 * max(1.0, figures["shard_map_dw_scale"])


def _only_gradient_all_reduces(collectives, shapes):
    assert set(collectives) == {"all-reduce"}, collectives
    # every all-reduce is of a parameter gradient (a tuple of them, or one), or of the
    # two loss scalars (sum of weighted cross-entropies, sum of weights). A gradient may be
    # reduced in the layout its algorithm computes it in (im2col's weight gradient is
    # (G, taps, C_in/G, C_out/G) before the reshape to (C_out, C_in/G, *k)), so sizes are
    # compared: an activation or a batch-sized array has no parameter's size. im2col pads its
    # weight-gradient product to a multiple of 16 output channels and crops after the
    # reduction, so a conv weight's gradient may also be reduced at that padded size.
    # Winograd's weight gradient is summed over samples in the transformed domain
    # (n x n tile positions per channel pair, before G^T dU G), so a 3x3 or 5x5
    # kernel's gradient may be reduced at that size too.
    from jaxconv._src.algorithms.im2col import _padded_width
    from jaxconv._src.algorithms.winograd import TRANSFORMS

    dims = [[int(d) for d in re.findall(r"\d+", s)] for s in shapes]
    param_sizes = {math.prod(d) for d in dims}
    param_sizes |= {_padded_width(d[0]) * math.prod(d[1:]) for d in dims if len(d) > 2}
    param_sizes |= {TRANSFORMS[d[2]].tile ** 2 * d[0] * d[1] for d in dims
                    if len(d) == 4 and d[2] == d[3] and d[2] in TRANSFORMS}
    for result in collectives["all-reduce"]:
        for dims in re.findall(r"f32\[([\d,]*)\]", result):
            dims_t = tuple(int(d) for d in dims.split(",") if d)
            assert dims_t == () or math.prod(dims_t) in param_sizes, (result, sorted(param_sizes))


@pytest.mark.parametrize("batch", ["", "_128"])
def test_hlo_collectives_are_only_gradient_all_reduces(figures, batch):
    # at batch 128 im2col and direct loop over chunks of samples: each chunk takes some
    # samples of every device's shard, so the partitioner gathers nothing
    _only_gradient_all_reduces(figures["hlo_lenet" + batch], figures["param_shapes"]["lenet"])


@pytest.mark.parametrize("kind", ["dense", "depthwise"])
def test_sharded_conv_gradient_gathers_no_activations(figures, kind):
    # the weight gradient's all-reduce over the batch shards is the only collective
    assert set(figures[f"hlo_conv_{kind}"]) == {"all-reduce"}, figures[f"hlo_conv_{kind}"]


# XLA's SPMD partitioner all-gathers the batch of a feature_group_count convolution
# unless each group has one input and one output channel; the xla algorithm formulates
# grouped convolutions so that it does not (algorithms/xla.py, _grouped_conv).
@pytest.mark.parametrize("kind", ["groups2", "depthwise_x2"])
def test_sharded_grouped_conv_gradient_gathers_no_activations(figures, kind):
    assert set(figures[f"hlo_conv_{kind}"]) == {"all-reduce"}, figures[f"hlo_conv_{kind}"]


def test_grouped_network_sharded_step_equals_single_device(figures):
    l1, l4 = figures["grouped_loss"]
    assert abs(l1 - l4) <= TOL * abs(l1)
    assert figures["grouped_params_diff"] <= TOL


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's jaxconv
    print(json.dumps(worker()))
