"""Checkpoints: a :class:`TrainState` in one ``.npz``, written atomically, read back exactly.

The file holds the parameter and optimiser-state leaves as arrays and one
JSON record (format tag, leaf paths, epoch, seed, metrics, the caller's
``config``). Sharded runs save and load the same files: leaves are gathered
to the host on save (parameters and optimiser state are replicated), and
:func:`load_checkpoint` places each leaf like the corresponding leaf of
``like``, so a checkpoint written on N devices resumes on M.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._src._files import atomic_file
from ._checks import MOD
from .loop import TrainState, _frozen_record

__all__ = ["CHECKPOINT_FORMAT", "checkpoint_config", "load_checkpoint", "save_checkpoint"]

#: Format tag stored in every checkpoint.
CHECKPOINT_FORMAT = "jaxconv.train.checkpoint/2"


def _flatten(tree: Any) -> tuple[list[str], list[Any]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [jax.tree_util.keystr(p) for p, _ in flat], [leaf for _, leaf in flat]


def _to_host(leaf: Any) -> np.ndarray:
    """A leaf as a numpy array; a replicated array spanning hosts is read from a local copy."""
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        if not leaf.is_fully_replicated:
            raise ValueError(f"{MOD}.save_checkpoint: a leaf is sharded over processes (sharding "
                             f"{leaf.sharding}); expected replicated parameters and optimiser state")
        return np.asarray(leaf.addressable_data(0))
    return np.asarray(leaf)


def _read(path: str, fn: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{MOD}.{fn}: no checkpoint at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data.pop("meta")))
    except Exception as e:
        raise ValueError(f"{MOD}.{fn}: {path!r} is not a readable jaxconv checkpoint "
                         f"({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{MOD}.{fn}: {path!r} is not a jaxconv checkpoint of this version "
                         f"(expected format {CHECKPOINT_FORMAT!r}; got {found!r})")
    return data, meta


def checkpoint_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config`` stored by :func:`save_checkpoint`, read without a model to load into.

    Args:
      path: the ``.npz`` file.

    Returns:
      The stored config dict, or None when none was stored.

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a readable jaxconv checkpoint.

    Example:
      >>> import os, tempfile, jax.numpy as jnp
      >>> from jaxconv import train
      >>> state = train.TrainState({"w": jnp.ones(2)}, (), epoch=0, seed=0)
      >>> path = train.save_checkpoint(os.path.join(tempfile.mkdtemp(), "ck.npz"), state,
      ...                              config={"variant": "lenet5"})
      >>> train.checkpoint_config(path)
      {'variant': 'lenet5'}
    """
    _, meta = _read(os.fspath(path), "checkpoint_config")
    config = meta.get("config")
    return dict(config) if isinstance(config, dict) else None


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

    Example:
      >>> import os, tempfile, jax.numpy as jnp
      >>> from jaxconv import train
      >>> state = train.TrainState({"w": jnp.ones(2)}, (), epoch=3, seed=1)
      >>> path = train.save_checkpoint(os.path.join(tempfile.mkdtemp(), "ck.npz"), state)
      >>> loaded, config = train.load_checkpoint(path, like=state)
      >>> loaded.epoch, loaded.params["w"].tolist(), config
      (3, [1.0, 1.0], None)
    """
    fn = "save_checkpoint"
    if not isinstance(state, TrainState):
        raise TypeError(f"{MOD}.{fn}: state must be a jaxconv.train.TrainState; got "
                        f"{type(state).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{MOD}.{fn}: directory {directory!r} does not exist "
                                f"(path={path!r})")
    p_paths, p_leaves = _flatten(state.params)
    o_paths, o_leaves = _flatten(state.opt_state)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(state.epoch),
        "seed": int(state.seed),
        "metrics": [dict(m) for m in state.metrics],
        "params_paths": p_paths,
        "opt_state_paths": o_paths,
        "config": dict(config) if config is not None else None,
    }
    try:
        meta_json = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"{MOD}.{fn}: config and metrics must be JSON-serialisable; {e}") from None
    arrays = {f"params/{i}": _to_host(a) for i, a in enumerate(p_leaves)}
    arrays.update({f"opt_state/{i}": _to_host(a) for i, a in enumerate(o_leaves)})
    arrays["meta"] = np.array(meta_json)
    with atomic_file(path) as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    return path


def load_checkpoint(path: str | os.PathLike, like: TrainState
                    ) -> tuple[TrainState, dict[str, Any] | None]:
    """Reads a checkpoint written by :func:`save_checkpoint`.

    Args:
      path: the ``.npz`` file.
      like: a state with the same structure (e.g. ``trainer.init_state(model.init(key))``):
        it supplies the pytree structure, every leaf's shape and dtype are
        checked against it, and each restored leaf gets its leaf's sharding
        (so loading into a sharded trainer's state gives replicated arrays).

    Returns:
      ``(state, config)``: the restored :class:`TrainState` (leaves as jax
      arrays, metrics as read-only records) and the stored ``config`` (or None).

    Example:
      >>> import os, tempfile, jax.numpy as jnp
      >>> from jaxconv import train
      >>> state = train.TrainState({"b": jnp.zeros(3)}, (), epoch=1, seed=0)
      >>> path = train.save_checkpoint(os.path.join(tempfile.mkdtemp(), "ck.npz"), state,
      ...                              config={"lr": 0.1})
      >>> loaded, config = train.load_checkpoint(path, like=state)
      >>> loaded.params["b"].shape, config
      ((3,), {'lr': 0.1})

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a jaxconv checkpoint, or its structure, shapes or dtypes
        do not match ``like`` (the message names the first mismatching leaf).
    """
    fn = "load_checkpoint"
    path = os.fspath(path)
    data, meta = _read(path, fn)

    def restore(name: str, template: Any) -> Any:
        paths, leaves = _flatten(template)
        stored = meta[f"{name}_paths"]
        if stored != paths:
            missing = sorted(set(paths) - set(stored))
            extra = sorted(set(stored) - set(paths))
            raise ValueError(
                f"{MOD}.{fn}: {path!r}: {name} has a different structure from the model "
                f"(missing {missing[:5]}, unexpected {extra[:5]}); was it written for another model?"
            )
        out = []
        for i, (p, leaf) in enumerate(zip(paths, leaves)):
            arr = data[f"{name}/{i}"]
            shape, dtype = tuple(np.shape(leaf)), np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype))
            if arr.shape != shape or arr.dtype != dtype:
                raise ValueError(
                    f"{MOD}.{fn}: {path!r}: {name}{p} has shape {arr.shape} and dtype {arr.dtype}; "
                    f"expected shape {shape} and dtype {dtype} (was it written for another model?)"
                )
            if isinstance(leaf, jax.Array):
                out.append(jax.device_put(arr, leaf.sharding))
            else:
                out.append(jnp.asarray(arr))
        return jax.tree.unflatten(jax.tree.structure(template), out)

    state = TrainState(
        params=restore("params", like.params),
        opt_state=restore("opt_state", like.opt_state),
        epoch=int(meta["epoch"]),
        seed=int(meta["seed"]),
        metrics=tuple(_frozen_record(m) for m in meta["metrics"]),
    )
    return state, meta.get("config")
