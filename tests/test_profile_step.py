"""The pure parts of ``benchmarks/profile_step.py``: self times and HLO metadata."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import profile_step


def test_self_times_subtract_nested_events_per_thread():
    ev = [
        {"ph": "X", "name": "outer", "ts": 0, "dur": 10, "pid": 1, "tid": 1},
        {"ph": "X", "name": "a", "ts": 1, "dur": 3, "pid": 1, "tid": 1},
        {"ph": "X", "name": "b", "ts": 5, "dur": 4, "pid": 1, "tid": 1},
        {"ph": "X", "name": "a", "ts": 2, "dur": 5, "pid": 1, "tid": 2},  # other thread
        {"ph": "i", "name": "instant", "ts": 3},
    ]
    total, count = profile_step.self_times(ev)
    assert total == {"outer": 3, "a": 8, "b": 4}
    assert count == {"outer": 1, "a": 2, "b": 1}


def test_hlo_instructions_name_shape_and_pass():
    def loss(w, x):
        return jnp.sum(jnp.tanh(x @ w))

    compiled = jax.jit(jax.grad(loss)).lower(jnp.ones((4, 3)), jnp.ones((2, 4))).compile()
    ins = profile_step.hlo_instructions(compiled.as_text())
    assert ins, "no instruction parsed"
    shapes = {shape for shape, _ in ins.values()}
    assert "f32[4,3]" in shapes  # the gradient
    passes = {profile_step.scope_of(op)[0] for _, op in ins.values() if op}
    assert passes <= {"fwd", "bwd", "update", "?"} and passes & {"fwd", "bwd"}


def test_scope_of_names_pass_and_layer():
    scope_of = profile_step.scope_of
    assert scope_of("jit(step)/transpose(jvp(conv2))/while/body/dot_general") == (
        "bwd", "conv2", "while/body/dot_general")
    assert scope_of("jit(step)/jvp(pool1)/reduce") == ("fwd", "pool1", "reduce")
    assert scope_of("jit(step)/jvp()/log_softmax") == ("fwd", "", "log_softmax")
    assert scope_of("jit(step)/add") == ("update", "", "add")
    assert scope_of("") == ("?", "", "")


def test_sequential_names_each_layer_in_the_compiled_metadata():
    from jaxconv.models import lenet

    p = lenet.init(jax.random.PRNGKey(0), "tutorial")
    x = jnp.zeros((2, 1, 28, 28))
    text = jax.jit(jax.grad(lambda p: lenet.apply(p, x, "tutorial").sum())).lower(p).compile()
    layers = {profile_step.scope_of(op)[1] for _, op in
              profile_step.hlo_instructions(text.as_text()).values()}
    assert {"conv1", "conv2", "fc1"} <= layers
