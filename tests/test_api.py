"""Conventions every public op follows (DESIGN.md): keyword-only options,
reverse-mode gradients (forward mode refused), clear errors for non-array input."""

import inspect

import jax
import jax.numpy as jnp
import pytest

import jaxconv

# The positional (array / required) parameters of each public op; every other
# parameter must be keyword-only.
POSITIONAL = {
    "conv": ("x", "w", "b"),
    "conv_transpose": ("x", "w", "b"),
    "max_pool": ("x", "window"),
    "avg_pool": ("x", "window"),
    "lp_pool": ("x", "p", "window"),
    "weighted_pool": ("x", "weights"),
    "gaussian_window": ("window", "sigma"),
    "max_unpool": ("x", "indices", "output_size"),
    "adaptive_avg_pool": ("x", "output_size"),
    "adaptive_max_pool": ("x", "output_size"),
    "upsample": ("x", "factor"),
    # toolbox
    "unfold": ("x", "window"),
    "fold": ("cols", "output_size", "window"),
    "conv_matrix": ("w", "input_shape"),
    "pad": ("x", "padding"),
    "local_conv": ("x", "w", "b"),
    "tiled_conv": ("x", "w", "b"),
    "separable_conv": ("x", "kernels"),
    "depthwise_separable_conv": ("x", "w_depthwise", "w_pointwise", "b"),
}


# Public names that are not array ops: the plan of a conv, measured autotuning and
# XLA compile options.
NOT_OPS = ("Plan", "autotune", "compiler_options", "conv_plan")


def test_all_is_exactly_the_ops():
    assert sorted(jaxconv.__all__) == sorted((*POSITIONAL, *NOT_OPS))
    for name in jaxconv.__all__:
        assert callable(getattr(jaxconv, name))


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_options_are_keyword_only(name):
    params = inspect.signature(getattr(jaxconv, name)).parameters.values()
    positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
    assert positional == POSITIONAL[name]
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)


# What the docstrings' forward-mode note says, as behaviour: reverse mode only.
_DIFFERENTIABLE = {
    "conv": lambda x: jaxconv.conv(x, jnp.ones((2, 1, 3, 3))),
    "conv_transpose": lambda x: jaxconv.conv_transpose(x, jnp.ones((1, 2, 3, 3))),
    "max_pool": lambda x: jaxconv.max_pool(x, 2),
    "avg_pool": lambda x: jaxconv.avg_pool(x, 2),
    "upsample": lambda x: jaxconv.upsample(x, 2),
}


@pytest.mark.parametrize("name", sorted(_DIFFERENTIABLE))
def test_reverse_mode_works_and_forward_mode_is_refused(name):
    f = _DIFFERENTIABLE[name]
    x = jnp.arange(16.0).reshape(1, 1, 4, 4)
    g = jax.grad(lambda x: jnp.sum(f(x) ** 2))(x)
    assert g.shape == x.shape and bool(jnp.any(g != 0))
    with pytest.raises(TypeError, match=r"forward-mode autodiff"):
        jax.jvp(f, (x,), (x,))


@pytest.mark.parametrize("name", ["conv", "conv_transpose", "max_pool", "avg_pool", "upsample"])
def test_non_array_input_is_a_clear_type_error(name):
    args = {"conv": (jnp.ones((2, 2)),), "conv_transpose": (jnp.ones((2, 2)),)}.get(name, (2,))
    with pytest.raises(TypeError, match=rf"jaxconv\.{name}: x must be an array"):
        getattr(jaxconv, name)(object(), *args)
