"""Verified MNIST download into a local cache: pooch per file, a loop over mirrors around it.

Each file is fetched with ``pooch.retrieve`` (SHA-256 verified, written to a
temporary file in the cache and moved into place only once verified, skipped
when already present with the right hash) from each mirror of
:data:`MIRRORS` in turn. A mirror that cannot be reached (refused, timed out)
is skipped for the remaining files; every failure is reported per mirror in
:class:`DownloadError`.

Cache directory: the ``cache_dir`` argument, else the ``JAXCONV_DATA``
environment variable, else ``~/.cache/jaxconv/mnist``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Union

import pooch
import requests

__all__ = [
    "FILES",
    "MIRRORS",
    "SHA256",
    "SIZES",
    "DownloadError",
    "default_cache_dir",
    "download",
]

_MOD = "jaxconv.datasets.download"

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


DEFAULT_TIMEOUT = 10.0


class DownloadError(OSError):
    """Every mirror failed for some file.

    Attributes:
        file: the file name that could not be fetched.
        failures: one ``(url, reason)`` pair per mirror tried.

    Example:
      >>> err = DownloadError("no mirror answered", "t10k-labels-idx1-ubyte.gz",
      ...                     [("https://example.org/t10k-labels-idx1-ubyte.gz", "HTTP 404")])
      >>> isinstance(err, OSError), err.file, len(err.failures)
      (True, 't10k-labels-idx1-ubyte.gz', 1)
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



def default_cache_dir() -> Path:
    """The cache directory used when ``cache_dir`` is not given.

    Returns:
        ``$JAXCONV_DATA`` when that environment variable is set (the directory
        the MNIST files live in), else ``~/.cache/jaxconv/mnist``.

    Example:
        >>> import os
        >>> from jaxconv.datasets import download
        >>> os.environ["JAXCONV_DATA"] = "/data/mnist"
        >>> str(download.default_cache_dir())
        '/data/mnist'
        >>> del os.environ["JAXCONV_DATA"]
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



@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs every download at INFO level; this module prints its own lines."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _truncation(e: BaseException) -> str | None:
    """The 'truncated transfer' reason when ``e`` is a body shorter than its Content-Length."""
    text = str(e)
    m = re.search(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)", text)
    if m:
        got, more = int(m.group(1)), int(m.group(2))
        return f"truncated transfer: Content-Length {got + more} bytes, connection closed after {got}"
    if "IncompleteRead" in text or "Connection broken" in text:
        return f"truncated transfer: connection closed early ({text})"
    return None


def _fetch(url: str, dest: Path, sha256: str, timeout: float) -> None:
    """Downloads ``url`` to ``dest`` with ``pooch.retrieve``: verified, atomic.

    pooch streams the body into a temporary file in ``dest``'s directory,
    checks its SHA-256 and only then moves it onto ``dest``; the temporary
    file is removed on every failure, KeyboardInterrupt included. Raises
    :class:`_MirrorFailure` with a one-line reason.
    """
    downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=False,
                                      headers={"User-Agent": "jaxconv"})
    try:
        with _quiet_pooch():
            pooch.retrieve(url, known_hash=f"sha256:{sha256}", path=dest.parent, fname=dest.name,
                           downloader=downloader, progressbar=False)
    except requests.exceptions.HTTPError as e:
        resp = e.response
        code = resp.status_code if resp is not None else "?"
        reason = resp.reason if resp is not None else str(e)
        raise _MirrorFailure(f"HTTP {code} {reason}") from None
    except requests.exceptions.Timeout:
        raise _MirrorFailure(f"timed out after {timeout:g} s", dead=True) from None
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as e:
        raise _MirrorFailure(_truncation(e) or f"{type(e).__name__}: {e}") from None
    except requests.exceptions.ConnectionError as e:
        truncated = _truncation(e)
        if truncated:
            raise _MirrorFailure(truncated) from None
        inner: object = e.args[0] if e.args else e
        text = str(getattr(inner, "reason", inner))
        if "timed out" in text.lower():
            raise _MirrorFailure(f"timed out after {timeout:g} s", dead=True) from None
        m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
        raise _MirrorFailure(m.group(1).strip() if m else text, dead=True) from None
    except requests.exceptions.RequestException as e:
        raise _MirrorFailure(f"{type(e).__name__}: {e}") from None
    except ValueError as e:  # pooch: the hash of the downloaded file does not match
        if "hash" not in str(e).lower():
            raise
        digest = re.search(r"\(([0-9a-f]{64})\)", str(e))
        got = digest.group(1) if digest else "another hash"
        raise _MirrorFailure(f"SHA-256 mismatch: expected {sha256}, got {got}") from None
    except OSError as e:
        raise _MirrorFailure(f"{type(e).__name__}: {e}") from None


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
    timeout: float = DEFAULT_TIMEOUT,
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

    Example:
        Files already in the cache with the expected SHA-256 are not fetched:

        >>> import hashlib, tempfile
        >>> from pathlib import Path
        >>> from jaxconv.datasets import download
        >>> cache = Path(tempfile.mkdtemp())
        >>> sums = {}
        >>> for name in download.FILES.values():
        ...     _ = (cache / name).write_bytes(name.encode())
        ...     sums[name] = hashlib.sha256(name.encode()).hexdigest()
        >>> paths = download.download(cache, checksums=sums, mirrors="http://127.0.0.1:9/")
        >>> paths["train_labels"].name
        'train-labels-idx1-ubyte.gz'
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
