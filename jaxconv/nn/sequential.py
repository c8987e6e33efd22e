"""Composition: :class:`Sequential` and :func:`sequential`.

:func:`sequential` chains named layers; its parameters are a nested dict with
one entry per layer that has parameters, e.g.
``{"conv1": {"w": ..., "b": ...}, "fc1": {"w": ..., "b": ...}}``, so they are a
pytree that optax, ``jax.tree`` and checkpoints handle directly.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from .._src import _args
from .base import Layer, Params, check_param_keys, count_params


@dataclasses.dataclass(frozen=True)
class Sequential(Layer):
    """Named layers applied in order; build it with :func:`sequential` (which has an example).

    ``init(key)`` returns ``{name: layer_params}`` for every layer with
    parameters (parameter-free layers have no entry); ``apply(params, x)``
    feeds ``x`` through the layers in order.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxconv import nn
      >>> net = nn.Sequential((("flat", nn.Flatten()), ("act", nn.Tanh())))
      >>> net.names, net.apply({}, jnp.zeros((2, 1, 2, 2))).shape
      (('flat', 'act'), (2, 4))
    """

    layers: tuple[tuple[str, Layer], ...]

    @property
    def has_params(self) -> bool:  # type: ignore[override]
        return any(layer.has_params for _, layer in self.layers)

    @property
    def names(self) -> tuple[str, ...]:
        """The layer names, in order."""
        return tuple(name for name, _ in self.layers)

    def __getitem__(self, name: str) -> Layer:
        for n, layer in self.layers:
            if n == name:
                return layer
        raise KeyError(f"jaxconv.nn.Sequential: no layer named {name!r}; layers are {list(self.names)}")

    def init(self, key: jax.Array) -> dict[str, dict[str, jax.Array]]:  # type: ignore[override]
        """Fresh parameters ``{name: layer.init(key_i)}`` for the layers with parameters.

        Args:
          key: a JAX PRNG key; layer ``i`` gets ``jax.random.fold_in(key, i)``,
            so adding a parameter-free layer does not change the others' draws
            at other positions.

        Returns:
          A nested dict of arrays.
        """
        _args.check_key("nn.Sequential.init", key)
        return _init_layers(self, key)

    def apply(self, params: Params | None, x: ArrayLike) -> jax.Array:
        """Applies the layers in order.

        Args:
          params: ``{name: layer_params}`` as returned by :meth:`init`.
          x: the first layer's input.

        Returns:
          The last layer's output.
        """
        params = check_param_keys("Sequential.apply", params,
                                  [name for name, layer in self.layers if layer.has_params],
                                  " (one per layer with parameters)")
        for name, layer in self.layers:
            try:
                with jax.named_scope(name):  # profiles (and HLO metadata) name the layer
                    x = layer.apply(params[name] if layer.has_params else {}, x)
            except (ValueError, TypeError) as e:
                if hasattr(e, "add_note"):
                    e.add_note(f"  (in layer {name!r} of jaxconv.nn.Sequential: {layer!r})")
                raise
        return jnp.asarray(x)

    def summary(self, input_shape: tuple[int, ...]) -> str:
        """A table of layer names, output shapes and parameter counts.

        Args:
          input_shape: shape of the input, e.g. ``(1, 1, 28, 28)``.

        Returns:
          A multi-line string (nothing is computed: shapes come from ``jax.eval_shape``).
        """
        params = jax.eval_shape(self.init, jax.random.PRNGKey(0))
        shape = tuple(input_shape)
        rows = [("input", str(shape), "")]
        for name, layer in self.layers:
            p = params.get(name, {})
            out = jax.eval_shape(layer.apply, p, jax.ShapeDtypeStruct(shape, jnp.float32))
            shape = tuple(out.shape)
            n = count_params(p)
            rows.append((f"{name} ({type(layer).__name__})", str(shape), f"{n:,}" if n else ""))
        rows.append(("total", "", f"{count_params(params):,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}".rstrip() for a, b, c in rows
        )


@functools.partial(jax.jit, static_argnums=0)
def _init_layers(net: Sequential, key: jax.Array) -> dict[str, dict[str, jax.Array]]:
    """Every layer's ``init`` in one compiled function (eagerly each draw would compile)."""
    return {
        name: layer.init(jax.random.fold_in(key, i))
        for i, (name, layer) in enumerate(net.layers)
        if layer.has_params
    }


def sequential(*layers: Layer | tuple[str, Layer]) -> Sequential:
    """Chains layers into one :class:`Sequential` layer.

    Args:
      *layers: each a ``(name, layer)`` pair or a bare layer. A bare layer is
        named after its class and its position among layers of that class
        (``conv1``, ``conv2``, ``dense1``, ``maxpool1``, ``tanh1``, ...).

    Returns:
      A :class:`Sequential`, whose parameters are ``{name: layer_params}``.

    Raises:
      TypeError: an item is neither a layer nor a ``(str, layer)`` pair.
      ValueError: no layers, a duplicate name, or an empty name / one containing ``/``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv import nn
      >>> net = sequential(("conv1", nn.Conv(1, 6, 5, padding=2)), ("act1", nn.Tanh()),
      ...                  ("flat", nn.Flatten()), ("fc", nn.Dense(6 * 28 * 28, 10)))
      >>> params = net.init(jax.random.key(0))
      >>> sorted(params), net.apply(params, jnp.ones((2, 1, 28, 28))).shape
      (['conv1', 'fc'], (2, 10))
    """
    if not layers:
        raise ValueError("jaxconv.nn.sequential: expected at least one layer; got none")
    named: list[tuple[str, Layer]] = []
    counters: dict[str, int] = {}
    for i, item in enumerate(layers):
        if isinstance(item, Layer):
            base = type(item).__name__.lower()
            counters[base] = counters.get(base, 0) + 1
            name, layer = f"{base}{counters[base]}", item
        elif (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
              and isinstance(item[1], Layer)):
            name, layer = item
        else:
            raise TypeError(
                f"jaxconv.nn.sequential: layer {i} must be a jaxconv.nn layer or a (name, layer) "
                f"pair; got {item!r}"
            )
        if not name or "/" in name:
            raise ValueError(f"jaxconv.nn.sequential: layer names must be non-empty and contain no "
                             f"'/'; got {name!r} (layer {i})")
        if any(name == n for n, _ in named):
            raise ValueError(f"jaxconv.nn.sequential: duplicate layer name {name!r} (layer {i}); "
                             f"names so far {[n for n, _ in named]}")
        named.append((name, layer))
    return Sequential(tuple(named))
