"""Randomness and augmentation: shuffles and keys as pure functions of ``(seed, epoch, step)``.

* :func:`epoch_permutation` -- the training-set order of an epoch (numpy, on the host).
* :func:`step_key` -- the PRNG key of one step (traceable, derived inside the jitted step).
* :func:`random_shift_rotate` -- random small shifts and rotations of images
  ("expand the training set with distorted data"), on the device.

A resumed run draws the same shuffles and keys as an uninterrupted one by
construction. JAX's partitionable threefry (the default) gives the same
random numbers whether a batch is sharded over devices or not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ._checks import MOD, check_float, check_int

__all__ = ["epoch_permutation", "random_shift_rotate", "step_key"]


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training-set order of one epoch: a pure function of ``(seed, epoch)``.

    Args:
      seed: the run's seed, >= 0.
      epoch: epoch index, >= 0.
      n: number of examples, >= 1.

    Returns:
      A permutation of ``range(n)``, int64 ``(n,)``
      (``np.random.default_rng([seed, epoch]).permutation(n)``).

    Example:
      >>> from jaxconv import train
      >>> train.epoch_permutation(0, 0, 5).tolist() == train.epoch_permutation(0, 0, 5).tolist()
      True
      >>> sorted(train.epoch_permutation(0, 1, 5).tolist())
      [0, 1, 2, 3, 4]
    """
    seed = check_int("epoch_permutation", "seed", seed, 0)
    epoch = check_int("epoch_permutation", "epoch", epoch, 0)
    n = check_int("epoch_permutation", "n", n, 1)
    return np.random.default_rng([seed, epoch]).permutation(n)


def step_key(seed: ArrayLike, epoch: ArrayLike, step: ArrayLike) -> jax.Array:
    """The PRNG key of one training step: ``fold_in(fold_in(PRNGKey(seed), epoch), step)``.

    Traceable (the arguments may be traced int32 scalars), so the jitted step
    derives its augmentation key itself and a resumed run draws the same keys.

    Args:
      seed, epoch, step: non-negative integers (or int32 scalars).

    Returns:
      A ``jax.random.PRNGKey``-style key.

    Example:
      >>> import jax
      >>> from jaxconv import train
      >>> k = train.step_key(0, 1, 2)
      >>> bool((jax.random.key_data(k) == jax.random.key_data(train.step_key(0, 1, 2))).all())
      True
    """
    key = jax.random.PRNGKey(seed)
    return jax.random.fold_in(jax.random.fold_in(key, epoch), step)


def random_shift_rotate(key: jax.Array, images: ArrayLike, *, max_shift: float = 2.0,
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

    Like ``torchvision.transforms.RandomAffine(degrees, translate)`` with
    bilinear interpolation, per image.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxconv import train
      >>> x = jnp.ones((2, 1, 8, 8))
      >>> train.random_shift_rotate(jax.random.PRNGKey(0), x).shape
      (2, 1, 8, 8)
    """
    fn = "random_shift_rotate"
    max_shift = check_float(fn, "max_shift", max_shift, 0.0)
    max_degrees = check_float(fn, "max_degrees", max_degrees, 0.0)
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{MOD}.{fn}: images must be (N, C, H, W); got images.shape="
                         f"{tuple(images.shape)}")
    n, _, h, w = images.shape
    k_angle, k_shift = jax.random.split(key)
    theta = jnp.deg2rad(max_degrees) * jax.random.uniform(k_angle, (n,), minval=-1.0, maxval=1.0)
    shift = max_shift * jax.random.uniform(k_shift, (n, 2), minval=-1.0, maxval=1.0)
    ci, cj = (h - 1) / 2.0, (w - 1) / 2.0
    ii, jj = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - ci,
                          jnp.arange(w, dtype=jnp.float32) - cj, indexing="ij")

    def one(img: jax.Array, t: jax.Array, s: jax.Array) -> jax.Array:
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
