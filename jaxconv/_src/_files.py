"""Atomic file writes, shared by checkpoints, the MNIST cache and the example."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Yields a binary file that becomes ``path`` only if the block succeeds.

    The data goes to a temporary file in ``path``'s directory (same file
    system), is flushed and fsynced, gets the usual permissions (``0o666`` less
    the umask; ``mkstemp`` makes ``0o600``) and is renamed onto ``path`` with
    ``os.replace``. If the block raises -- KeyboardInterrupt included -- the
    temporary file is removed and ``path`` is left as it was.

    Args:
      path: the destination; its directory must exist.
      suffix: suffix of the temporary file's name.

    Example:
      >>> import os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "data.bin")
      >>> with atomic_file(path) as f:
      ...     _ = f.write(b"abc")
      >>> open(path, "rb").read()
      b'abc'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
