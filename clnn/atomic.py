"""Atomic file writes: write a temporary file beside the target, flush it to disk, rename it
over the target. A crash at any moment leaves either the old file or the new one, never a
half-written file.

The new file gets the permissions a plain ``open(path, "w")`` would give it: those of the file
it replaces, or for a new file ``0o666`` less the user's umask (the temporary file is created
with that mode, so the system applies the umask and any default ACL itself).

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
import errno
import os
import secrets
import stat
from typing import IO, Any, Iterator, Tuple

__all__ = ["atomic_write"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(
    os, "O_CLOEXEC", 0)


def _temporary(path: str, folder: str, prefix: str, suffix: str) -> Tuple[int, str]:
    """Create a new file with a random name in ``folder``: (descriptor, name). Errors name
    ``path`` (what the caller asked to write), not the temporary file."""
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as e:
            if isinstance(e, FileNotFoundError) or e.errno == errno.ENOTDIR:
                why = f"the folder {folder!r} does not exist"
            else:
                why = f"{e.strerror.lower() if e.strerror else e} in the folder {folder!r}"
            raise type(e)(e.errno, f"cannot write {path!r}: {why}") from None
    raise FileExistsError(errno.EEXIST, f"cannot write {path!r}: no free temporary name in "
                          f"{folder!r}")


@contextlib.contextmanager
def atomic_write(path: Any, mode: str = "wb", prefix: str = ".clnn-",
                 encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing (``mode`` "w" or "wb") that replaces ``path`` when
    the block ends without an exception; on an exception the temporary file is removed and
    ``path`` is untouched. A missing folder or a folder that cannot be written raises the
    ``OSError`` naming ``path``. The result keeps the permission bits of the file it replaces."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] + ".tmp"
    fd, tmp = _temporary(path, folder, prefix, suffix)
    try:
        with contextlib.suppress(FileNotFoundError):
            old = os.stat(path)
            if stat.S_ISREG(old.st_mode):  # the permission bits, not set-id or sticky
                os.chmod(fd if os.chmod in os.supports_fd else tmp, old.st_mode & 0o777)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": encoding})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    """Flush the folder entry of the rename to disk (where the system allows it)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
