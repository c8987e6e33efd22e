"""The adjoint-pair mechanism and small helpers shared by every op.

Almost every op in jaxconv is linear (or bilinear) in its arguments. A linear
map ``A`` and its adjoint ``A^T`` are each other's VJP: for ``y = A x`` the
cotangent of ``x`` is ``A^T g``, and for ``x = A^T y`` the cotangent of ``y``
is ``A h``. :func:`adjoint_pair` writes that once: given the two maps, it
returns both as ``jax.custom_vjp`` functions whose backward rules call each
other, so a gradient of a gradient again runs the same hand-written maps.

Both maps share one calling convention, ``f(cfg, *aux, v)``:

* ``cfg`` -- static, hashable configuration (a geometry, a tuple of sizes);
* ``aux`` -- zero or more arrays that fix the map but are *not* differentiated
  (argmax offsets, gather indices): their cotangent is zero;
* ``v``   -- the array the map is linear in.

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) is
not available on ``custom_vjp`` functions; reverse-over-reverse is.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

LinearMap = Callable[..., jax.Array]


def adjoint_pair(apply: LinearMap, apply_t: LinearMap) -> tuple[LinearMap, LinearMap]:
    """Returns ``(A, A_T)`` as custom_vjp functions whose VJPs are each other.

    Args:
      apply: ``apply(cfg, *aux, x) -> y``, linear in ``x``.
      apply_t: ``apply_t(cfg, *aux, y) -> x``, its exact adjoint:
        ``<apply(cfg, *aux, x), y> == <x, apply_t(cfg, *aux, y)>``.

    Returns:
      The pair ``(A, A_T)`` with the same signatures. ``cfg`` is a
      non-differentiable (static, hashable) argument; ``aux`` arrays get a
      zero cotangent.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> double, double_t = adjoint_pair(lambda c, x: 2 * x, lambda c, y: 2 * y)
      >>> float(jax.grad(lambda x: double(None, x).sum())(jnp.ones(())))
      2.0
    """

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def a(cfg: Any, *args: Any) -> jax.Array:
        return apply(cfg, *args)

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def a_t(cfg: Any, *args: Any) -> jax.Array:
        return apply_t(cfg, *args)

    def a_fwd(cfg: Any, *args: Any) -> tuple[jax.Array, tuple[Any, ...]]:
        return a(cfg, *args), args[:-1]

    # y = A x is linear in x, so dx = A^T g; aux is constant, so d aux = 0.
    def a_bwd(cfg: Any, aux: tuple[Any, ...], g: jax.Array) -> tuple[Any, ...]:
        return (None,) * len(aux) + (a_t(cfg, *aux, g),)

    def a_t_fwd(cfg: Any, *args: Any) -> tuple[jax.Array, tuple[Any, ...]]:
        return a_t(cfg, *args), args[:-1]

    # x = A^T y, so dy = (A^T)^T h = A h.
    def a_t_bwd(cfg: Any, aux: tuple[Any, ...], h: jax.Array) -> tuple[Any, ...]:
        return (None,) * len(aux) + (a(cfg, *aux, h),)

    a.defvjp(a_fwd, a_bwd)
    a_t.defvjp(a_t_fwd, a_t_bwd)
    return a, a_t


def backward_rule(f: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: makes ``bwd`` the backward rule of the custom_vjp map ``f(cfg, *args)``.

    The forward pass keeps the inputs ``args`` as the residuals (never an
    intermediate result), so ``bwd(cfg, args, g)`` gets them back unchanged
    and returns one cotangent per array in ``args``. This is the rule of the
    bilinear maps, whose backward pass calls other maps on the inputs.

    Example:
      >>> import jax
      >>> from functools import partial
      >>> @partial(jax.custom_vjp, nondiff_argnums=(0,))
      ... def mul(cfg, a, b):
      ...     return a * b
      >>> @backward_rule(mul)
      ... def mul_bwd(cfg, res, g):  # y = a b: da = g b, db = g a
      ...     a, b = res
      ...     return g * b, g * a
      >>> float(jax.grad(mul, argnums=2)(None, 2.0, 3.0))
      2.0
    """

    def fwd(cfg: Any, *args: Any) -> tuple[jax.Array, tuple[Any, ...]]:
        return f(cfg, *args), args

    def register(bwd: Callable[..., Any]) -> Callable[..., Any]:
        f.defvjp(fwd, bwd)
        return bwd

    return register


def acc_dtype(dtype: DTypeLike) -> jnp.dtype:
    """Accumulation dtype: float32 for 16-bit floats, else ``dtype`` itself.

    Example:
      >>> import jax.numpy as jnp
      >>> acc_dtype(jnp.bfloat16), acc_dtype(jnp.float32)
      (dtype('float32'), dtype('float32'))
    """
    d = jnp.dtype(dtype)
    if jnp.issubdtype(d, jnp.floating) and d.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return d


def channel_sum(g: jax.Array, dtype: DTypeLike) -> jax.Array:
    """Sums ``g`` over every axis but axis 1 (channels), accumulating in >= f32."""
    axes = (0, *range(2, g.ndim))
    return jnp.sum(g, axis=axes, dtype=acc_dtype(dtype)).astype(dtype)


def match_varying(*arrays: jax.Array | None) -> tuple[jax.Array | None, ...]:
    """Inside ``jax.shard_map``: casts every array to the union of their varying mesh axes.

    A ``custom_vjp`` backward rule must return a cotangent with its input's
    varying-axes type. When a batch-sharded ``x`` (varying over ``"batch"``)
    meets a replicated ``w`` (invariant), the weight gradient computed from
    ``x`` varies, so ``w`` is cast to varying first (``jax.lax.pcast(...,
    to="varying")``): JAX then transposes that cast into the ``psum`` of the
    per-device weight gradients, as it does for its own ops. Outside
    ``shard_map`` (no manual axes) the arrays are returned unchanged.

    Example:
      >>> import jax.numpy as jnp
      >>> match_varying(jnp.ones(2), None)[1] is None
      True
    """

    def varying(a: jax.Array) -> frozenset[str]:
        aval = jax.typeof(a)
        vma = getattr(aval, "vma", None)  # jax < 0.9 spelling
        if vma is None:
            vma = getattr(getattr(aval, "manual_axis_type", None), "varying", None)
        return frozenset(vma or ())

    union = frozenset().union(*(varying(a) for a in arrays if a is not None))
    if not union:
        return arrays
    out: list[jax.Array | None] = []
    for a in arrays:
        missing = None if a is None else union - varying(a)
        out.append(a if not missing else jax.lax.pcast(a, tuple(sorted(missing)), to="varying"))
    return tuple(out)
