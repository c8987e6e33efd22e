"""The IDX file format (MNIST's): read and write, gzipped or not. numpy + stdlib only.

An IDX file is a magic number ``0x0000TTNN`` (``TT`` the type code, ``NN`` the
number of dimensions), one big-endian uint32 per dimension, then the
big-endian payload. MNIST images are ``0x00000803`` (uint8, 3 dims), labels
``0x00000801`` (uint8, 1 dim).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

from .._src._files import atomic_file

__all__ = ["read_idx", "write_idx"]

_MOD = "jaxconv.datasets.idx"

PathLike = Union[str, "os.PathLike[str]"]

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

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from jaxconv.datasets import idx
        >>> path = idx.write_idx(os.path.join(tempfile.mkdtemp(), "labels.gz"), np.array([3, 1], np.uint8))
        >>> idx.read_idx(path)
        array([3, 1], dtype=uint8)
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

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from jaxconv.datasets import idx
        >>> path = idx.write_idx(os.path.join(tempfile.mkdtemp(), "x"), np.zeros((2, 28, 28), np.uint8))
        >>> path.read_bytes()[:4].hex(), path.stat().st_size
        ('00000803', 1584)
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
