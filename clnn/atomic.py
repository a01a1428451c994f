"""Atomic file writes: write a temporary file beside the target, flush it to disk, rename it
over the target. A crash at any moment leaves either the old file or the new one, never a
half-written file.

Example:
    >>> import os, tempfile
    >>> from clnn.atomic import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> with atomic_write(path, "w") as f:
    ...     _ = f.write("hello")
    >>> open(path).read()
    'hello'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Any, Iterator

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: Any, mode: str = "wb", prefix: str = ".clnn-",
                 encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing (``mode`` "w" or "wb") that replaces ``path`` when
    the block ends without an exception; on an exception the temporary file is removed and
    ``path`` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] + ".tmp"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
