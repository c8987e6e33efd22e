"""Conventions every public op follows (DESIGN.md): keyword-only options,
documented shapes and gradients, clear errors for non-array input."""

import inspect

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
}


# Public names that are not ops (perf branch: plans and autotuning).
TOOLS = {"Plan", "autotune", "conv_plan"}


def test_all_is_exactly_the_ops():
    assert sorted(set(jaxconv.__all__) - TOOLS) == sorted(POSITIONAL)
    for name in jaxconv.__all__:
        assert callable(getattr(jaxconv, name))


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_options_are_keyword_only(name):
    params = inspect.signature(getattr(jaxconv, name)).parameters.values()
    positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
    assert positional == POSITIONAL[name]
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_docstring_has_args_returns_and_shapes(name):
    doc = inspect.getdoc(getattr(jaxconv, name))
    assert doc and "Args:" in doc and "Returns:" in doc
    for param in inspect.signature(getattr(jaxconv, name)).parameters:
        assert f"{param}:" in doc, f"{name}: argument {param} is not documented"
    if name != "gaussian_window":
        assert "(N, C" in doc, f"{name}: docstring gives no shapes"
        assert "jax.jvp" in doc, f"{name}: docstring does not say forward mode is unavailable"


@pytest.mark.parametrize("name", ["conv", "conv_transpose", "max_pool", "avg_pool", "upsample"])
def test_non_array_input_is_a_clear_type_error(name):
    args = {"conv": (jnp.ones((2, 2)),), "conv_transpose": (jnp.ones((2, 2)),)}.get(name, (2,))
    with pytest.raises(TypeError, match=rf"jaxconv\.{name}: x must be an array"):
        getattr(jaxconv, name)(object(), *args)
