"""Never trust an on-disk compile cache: verify it before the OpenCL driver reads it.

A damaged cache entry does not fail politely: PoCL aborts the whole process on a truncated or
bit-flipped kernel ``.so`` or program bitcode ("LLVM ERROR", SIGABRT, SIGBUS), and loads an
emptied one as a program without kernels. So clnn keeps the compilers' caches in a folder of its
own, ``$CLNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/clnn``, else ``~/.cache/clnn``:

* ``pocl-kcache/``: PoCL's kernel cache. clnn points ``POCL_CACHE_DIR`` there when it is not
  set already (PoCL reads it when the first context is made, so import clnn before creating
  PoCL contexts with pyopencl directly). A ``POCL_CACHE_DIR`` you set yourself is yours: clnn
  leaves it alone and does not check it.
* ``pyopencl/``: pyopencl's binary cache, used for drivers that have no cache of their own.

A manifest in each folder (``clnn-manifest.json``) records the size, SHA-256 and modification
time of every file. Before the first runtime of a process builds anything, every file is checked
against it (a file whose size and modification time are unchanged is trusted without being read
again; any other is hashed); an
entry (one program's folder) holding a file that differs from the manifest, or that the
manifest does not know, is deleted, so the driver rebuilds it rather than load it. A manifest
that cannot be read trusts nothing: the cache is emptied. One exception: while another clnn
process uses the folder (each holds a shared lock on ``clnn-live.lock``), unknown files
younger than ten minutes are left alone -- they are most likely that process's compile in
progress, and deleting a folder under a running PoCL compile aborts it -- and checked by a
later start. Files the drivers write while clnn runs are added to the manifest at exit (and
when a runtime is released, at most once a minute); those of a process that crashed first
are rebuilt next time. Every step tolerates a read-only or missing folder (the cache is then just
not used by clnn's checks); ``CLNN_CACHE_GUARD=0`` switches the checks off.

Concurrent processes share the folders safely: PoCL writes every file under a temporary name
and renames it, and the manifest is read and written under a file lock.

Example:
    >>> from clnn import cacheguard
    >>> cacheguard.cache_root().name
    'clnn'
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from .atomic import atomic_write

__all__ = ["cache_root", "pocl_dir", "pyopencl_dir", "Guard", "setup", "verify_once",
           "record_all", "guards"]

MANIFEST = "clnn-manifest.json"
_LOCKFILE = "clnn-manifest.lock"
_LIVEFILE = "clnn-live.lock"  # every clnn process using the folder holds a shared flock
_FORMAT = "clnn-cache-manifest"
_VERSION = 1
# written and rewritten by the drivers themselves, never loaded as code
_SKIP_NAMES = {MANIFEST, _LOCKFILE, _LIVEFILE, "lock", "last_accessed"}
_SKIP_PREFIXES = ("tempfile", ".clnn-manifest-")
# while other clnn processes use the folder, files the manifest does not know that changed
# less than this long ago are left alone: one of them may be compiling into that entry now
GRACE_S = 600


def cache_root() -> Path:
    """clnn's cache folder: ``$CLNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/clnn``, else
    ``~/.cache/clnn``."""
    env = os.environ.get("CLNN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clnn"


def pocl_dir() -> Path:
    return cache_root() / "pocl-kcache"


def pyopencl_dir() -> Path:
    return cache_root() / "pyopencl"


def _enabled() -> bool:
    return os.environ.get("CLNN_CACHE_GUARD", "1").strip().lower() not in ("0", "no", "false",
                                                                           "off")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Guard:
    """The manifest check of one cache folder whose entries are ``depth`` levels deep
    (PoCL: ``XX/HASH/...`` is 2, pyopencl: ``KEY/...`` is 1)."""

    def __init__(self, path: Path, depth: int):
        self.path = Path(path)
        self.depth = depth
        self.verified_at: Optional[int] = None  # time.time_ns() of this process's check
        self.removed: List[str] = []  # entries deleted by the last verify (tests read it)
        self._known: Dict[str, list] = {}
        self._live_fd: Optional[int] = None

    # ---- files ----------------------------------------------------------------------------
    def _files(self) -> Iterator[Tuple[str, str, os.stat_result]]:
        # plain strings and os.scandir: a cache of thousands of files is walked at every start
        base = str(self.path)
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            try:
                it = os.scandir(os.path.join(base, rel_dir) if rel_dir else base)
            except OSError:
                continue
            with it:
                entries = list(it)
            for e in entries:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(rel)
                        continue
                    if e.name in _SKIP_NAMES or e.name.startswith(_SKIP_PREFIXES):
                        continue
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield rel, e.path, st

    def _entry(self, rel: str) -> str:
        parts = rel.split("/")
        return "/".join(parts[: self.depth]) if len(parts) > self.depth else rel

    def _lock(self):
        return _FileLock(self.path / _LOCKFILE)

    def _load(self) -> Optional[Dict[str, list]]:
        """The manifest's files, {} when there is none, None when it is damaged."""
        p = self.path / MANIFEST
        try:
            with open(p, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if (not isinstance(data, dict) or data.get("format") != _FORMAT
                or data.get("version") != _VERSION or not isinstance(data.get("files"), dict)):
            return None
        files = {}
        for rel, rec in data["files"].items():
            if (isinstance(rec, list) and len(rec) == 3 and isinstance(rec[0], int)
                    and isinstance(rec[1], str) and isinstance(rec[2], int)):
                files[rel] = rec
            else:
                return None
        return files

    def _save(self, files: Dict[str, list]) -> None:
        data = {"format": _FORMAT, "version": _VERSION, "files": files}
        with atomic_write(self.path / MANIFEST, "w", prefix=".clnn-manifest-") as f:
            json.dump(data, f, sort_keys=True)

    def _remove(self, entry: str) -> None:
        p = self.path / entry
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                p.unlink()
            except OSError:
                pass

    def _join(self) -> bool:
        """Hold a shared lock on ``clnn-live.lock`` for the rest of the process; True when no
        other process held one (then nothing in the folder is being written)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: assume company
            return False
        if self._live_fd is None:
            self._live_fd = os.open(self.path / _LIVEFILE, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._live_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            alone = False
        fcntl.flock(self._live_fd, fcntl.LOCK_SH)
        return alone

    def close(self) -> None:
        """Give up this process's share of the folder (done by the OS at exit)."""
        if self._live_fd is not None:
            os.close(self._live_fd)
            self._live_fd = None

    # ---- the two operations ---------------------------------------------------------------
    def verify(self) -> List[str]:
        """Check every file against the manifest; delete the entries that do not match.
        Returns the deleted entries."""
        self.removed = []
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with self._lock():
                alone = self._join()
                manifest = self._load()
                bad = set()
                busy = set()  # entries another process may be writing right now
                good: Dict[str, list] = {}
                young = time.time_ns() - GRACE_S * 1_000_000_000
                for rel, full, st in self._files():
                    rec = None if manifest is None else manifest.get(rel)
                    if rec is None and not alone and st.st_mtime_ns > young:
                        busy.add(self._entry(rel))  # unknown but fresh: checked next time
                        continue
                    try:
                        # unchanged size and mtime since we hashed it: trusted without reading
                        # the file again (as make and rsync do), so a start-up costs one stat
                        # per file; anything touched since is hashed and compared
                        ok = (rec is not None and rec[0] == st.st_size
                              and (rec[2] == st.st_mtime_ns or rec[1] == _sha256(full)))
                    except OSError:
                        ok = False
                    if ok:
                        good[rel] = [st.st_size, rec[1], st.st_mtime_ns]
                    else:
                        bad.add((self._entry(rel), rec is not None))
                # a damaged known file goes at once; an unknown old one unless its entry is
                # being written by another process (deleting under a live PoCL compile
                # aborts that process)
                doomed = {e for e, known in bad if known or e not in busy}
                for entry in sorted(doomed):
                    self._remove(entry)
                bad = doomed
                good = {r: v for r, v in good.items() if self._entry(r) not in bad}
                self._save(good)
                self._known = good
                self.removed = sorted(bad)
        except OSError:
            pass  # unwritable cache: the drivers cope (or do not cache) on their own
        self.verified_at = time.time_ns()
        return self.removed

    def record(self) -> None:
        """Add the files the drivers wrote since :meth:`verify` to the manifest."""
        if self.verified_at is None or not self.path.is_dir():
            return
        try:
            with self._lock():
                old = self._load() or {}
                new: Dict[str, list] = {}
                for rel, full, st in self._files():
                    rec = old.get(rel) or self._known.get(rel)
                    if rec is not None and rec[0] == st.st_size and rec[2] == st.st_mtime_ns:
                        new[rel] = rec
                    elif st.st_mtime_ns >= self.verified_at - 2_000_000_000:
                        # written by a driver while clnn ran (2 s of clock slack)
                        try:
                            new[rel] = [st.st_size, _sha256(full), st.st_mtime_ns]
                        except OSError:
                            pass
                    # else: older than our check and unknown: not blessed, deleted next time
                self._save(new)
                self._known = new
        except OSError:
            pass


class _FileLock:
    """An exclusive ``flock`` on a lock file (no-op where fcntl does not exist)."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: Optional[int] = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


_lock = threading.RLock()  # re-entrant: a GC finalizer (Runtime.__del__) may come here
_guards: Dict[str, Guard] = {}
_state = {"verified": False, "atexit": False, "recorded": float("-inf")}


def setup() -> None:
    """Point ``POCL_CACHE_DIR`` at clnn's folder unless it is set (called on import)."""
    if _enabled() and not os.environ.get("POCL_CACHE_DIR"):
        os.environ["POCL_CACHE_DIR"] = str(pocl_dir())


def guards() -> List[Guard]:
    """The guards of the folders clnn uses now (PoCL's only when it is clnn's own)."""
    out = []
    with _lock:
        wanted = [(pyopencl_dir(), 1)]
        pocl = os.environ.get("POCL_CACHE_DIR")
        if pocl and Path(pocl).expanduser().resolve() == pocl_dir().expanduser().resolve():
            wanted.append((pocl_dir(), 2))
        for path, depth in wanted:
            key = str(Path(path).expanduser().resolve())
            g = _guards.get(key)
            if g is None:
                g = _guards[key] = Guard(path, depth)
            out.append(g)
    return out


def verify_once() -> None:
    """Verify clnn's cache folders, once per process (every runtime calls this first)."""
    if _state["verified"] or not _enabled():
        return
    with _lock:
        if _state["verified"]:
            return
        _state["verified"] = True
        if not _state["atexit"]:
            atexit.register(record_all)
            _state["atexit"] = True
    for g in guards():
        if g.verified_at is None:
            g.verify()


RECORD_EVERY_S = 60.0


def record_all(force: bool = True) -> None:
    """Add newly written cache files to the manifests: at exit, and when a runtime is
    released (``force=False``: at most every ``RECORD_EVERY_S`` seconds, since it walks the
    whole cache)."""
    if not _enabled():
        return
    now = time.monotonic()
    if not force and now - _state["recorded"] < RECORD_EVERY_S:
        return
    _state["recorded"] = now
    for g in guards():
        g.record()


def _reset_for_tests() -> None:
    with _lock:
        _guards.clear()
        _state["verified"] = False
