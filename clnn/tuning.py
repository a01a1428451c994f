"""Tunable kernel parameters: built-in defaults, shipped measurements and a per-user database.

Each kernel family registers a function that derives defaults from device limits
(``register_defaults``) and, optionally, a table of values measured on known devices that ships
with clnn (``register_builtin``). ``clnn tune NAME`` (:mod:`clnn.tune`) measures candidates and
writes the winners to the per-user tuning database with :func:`store`.

``params(device, family, variant, dtype, size_class)`` looks up, first hit wins:

1. the database entry of this device (name + platform + driver version), this size class;
2. the same device, size class ``"any"``;
3. the database entry of the device's vendor/type (``vendor:<platform vendor>|<type>``),
   this size class, then ``"any"``;
4. the shipped measurements for the vendor/type, this size class, then ``"any"``;
5. the defaults derived from the device's limits.

Entries are merged over the derived defaults, so a partial entry is fine. A database that
cannot be read or parsed, has another format version, or holds entries whose names or values
the family does not know (a stale database from another clnn) is ignored with a warning; it
never makes an operation fail. Values that fail to build are dropped for the rest of the
process with a warning (see :func:`build_with_fallback`).

The database is JSON at ``$CLNN_TUNING_DB``, else ``$XDG_CACHE_HOME/clnn/tuning.json``, else
``~/.cache/clnn/tuning.json``; its folder is created with mode 0700 and every write replaces
the file atomically.

Tuned values are render parameters of the kernels, so they are part of the kernel cache key
(in memory and on disk) automatically.

Example:
    >>> import clnn
    >>> from clnn.tuning import params
    >>> p = params(clnn.select_device("cpu"), "gemv", "row", "float", "large")
    >>> {"RPT", "VW", "WGS"} <= set(p)
    True
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from .atomic import atomic_write
from .devices import DeviceInfo
from .errors import BuildError, KernelLimitError, RenderError

__all__ = ["params", "defaults", "register_defaults", "register_builtin", "store", "db_path",
           "load_db", "lookup", "build_with_fallback", "vendor_key", "ANY", "FORMAT_VERSION",
           "TuningWarning", "clear_cache", "generation", "check"]

ANY = "any"
FORMAT_VERSION = 1
_FORMAT = "clnn-tuning"

DefaultsFn = Callable[..., dict]
ValidateFn = Callable[[DeviceInfo, str, str, dict], None]


class TuningWarning(UserWarning):
    """A tuning database or tuned value was ignored (the defaults are used instead)."""


_DEFAULTS: Dict[str, Tuple[DefaultsFn, bool, Optional[ValidateFn]]] = {}
_BUILTIN: Dict[str, Dict[str, Dict[str, dict]]] = {}
_FLAGS: Dict[str, frozenset] = {}
_lock = threading.RLock()
_cache: Dict[tuple, dict] = {}
_rejected: set = set()
_db_cache: Dict[str, Any] = {"key": None, "db": None}
_warned: set = set()
_generation = [0]


def generation() -> int:
    """A counter bumped whenever looked-up values may have changed (ops key plans by it)."""
    return _generation[0]


def register_defaults(family: str, fn: DefaultsFn, validate: Optional[ValidateFn] = None,
                      flags: Tuple[str, ...] = ()) -> None:
    """Register ``fn(device, variant, dtype[, size_class]) -> dict`` as the derived defaults
    of ``family``. ``validate(device, variant, dtype, params)`` may raise ``ValueError`` for
    values that cannot work (they are then ignored like stale entries). Tunables are positive
    integers, except the names in ``flags``, which may also be 0."""
    try:
        takes_sc = len(inspect.signature(fn).parameters) >= 4
    except (TypeError, ValueError):
        takes_sc = False
    with _lock:
        _DEFAULTS[family] = (fn, takes_sc, validate)
        _FLAGS[family] = frozenset(flags)
        _cache.clear()


def register_builtin(family: str, table: Dict[str, Dict[str, dict]]) -> None:
    """Ship measured values: ``table[vendor_key][f"{variant}/{dtype}/{size_class}"] = params``
    (see :func:`vendor_key`)."""
    with _lock:
        _BUILTIN[family] = {k: dict(v) for k, v in table.items()}
        _cache.clear()


def vendor_key(device: DeviceInfo) -> str:
    """The vendor/type fallback key of ``device``, e.g. ``"The pocl project|CPU"``."""
    return f"{device.platform_vendor}|{device.type}"


def _derived(device: DeviceInfo, family: str, variant: str, dtype: str, size_class: str
             ) -> dict:
    try:
        fn, takes_sc, _ = _DEFAULTS[family]
    except KeyError:
        raise KeyError(f"no tunables registered for kernel family {family!r}") from None
    return dict(fn(device, variant, dtype, size_class) if takes_sc
                else fn(device, variant, dtype))


def _warn_once(key: Any, msg: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(msg, TuningWarning, stacklevel=4)


def _check_entry(device: DeviceInfo, family: str, variant: str, dtype: str, base: dict,
                 entry: Any) -> dict:
    """``entry`` merged over ``base``; ``ValueError`` (the reason) when it does not fit."""
    if not isinstance(entry, dict) or not entry:
        raise ValueError("not a dict of tunables")
    unknown = set(entry) - set(base)
    flags = _FLAGS.get(family, frozenset())
    bad = [k for k, v in entry.items()
           if isinstance(v, bool) or not isinstance(v, int) or v < 0
           or (v == 0 and k not in flags)]
    if unknown:
        raise ValueError(f"unknown tunables {sorted(unknown)}")
    if bad:
        raise ValueError(f"values of {sorted(bad)} are not positive integers (or 0 for a flag)")
    merged = dict(base)
    merged.update(entry)
    validate = _DEFAULTS[family][2]
    if validate is not None:
        validate(device, variant, dtype, merged)
    return merged


def check(device: DeviceInfo, family: str, variant: str, dtype: str, params: dict,
          size_class: str = ANY) -> dict:
    """Validate ``params`` (all or some tunables of ``family``/``variant``) for ``device`` with
    the very checks clnn applies to a tuning database entry before it uses one. Returns the
    set merged over the values derived from the device's limits; raises ``ValueError`` with
    the reason clnn would give when it ignores such an entry (a set that fails here is
    replaced by the defaults, with one :class:`TuningWarning` per process).

    Tests that inject tunables call this first, so that a set the device cannot run is
    skipped with its reason instead of silently testing the defaults.

    Example:
        >>> import clnn
        >>> from clnn import tuning
        >>> cpu = clnn.select_device("cpu")
        >>> tuning.check(cpu, "gemv", "col", "float", {"ACC": 1})["ACC"]
        1
    """
    base = _derived(device, family, variant, dtype, size_class)
    return _check_entry(device, family, variant, dtype, base, params)


def _valid(device: DeviceInfo, family: str, variant: str, dtype: str, base: dict,
           entry: Any, where: str) -> Optional[dict]:
    """``entry`` merged over ``base``, or None (with a warning) when it does not fit."""
    try:
        return _check_entry(device, family, variant, dtype, base, entry)
    except ValueError as e:
        stale = str(e).startswith(("unknown tunables", "values of"))
        _warn_once(("entry", where),
                   f"clnn tuning: ignoring {'stale ' if stale else ''}{where}: {e}")
        return None


def defaults(device: DeviceInfo, family: str, variant: str, dtype: str,
             size_class: str = ANY) -> dict:
    """The tunables used without a tuning database: shipped measurements for the device's
    vendor/type when clnn has them, else the values derived from the device's limits."""
    base = _derived(device, family, variant, dtype, size_class)
    table = _BUILTIN.get(family, {}).get(vendor_key(device), {})
    for sc in (size_class, ANY):
        entry = table.get(f"{variant}/{dtype}/{sc}")
        if entry is not None:
            got = _valid(device, family, variant, dtype, base, entry,
                         f"built-in {family} entry {variant}/{dtype}/{sc}")
            if got is not None:
                return got
    return base


def lookup(device: DeviceInfo, family: str, variant: str, dtype: str,
           size_class: str = ANY) -> Tuple[dict, str]:
    """``(params, source)``: the tunables and where they came from (``"device"``,
    ``"vendor"``, ``"builtin"`` or ``"derived"`` -- builtin/derived both mean defaults)."""
    db = load_db()
    base = _derived(device, family, variant, dtype, size_class)
    for scope, key in (("device", device.key), ("vendor", "vendor:" + vendor_key(device))):
        entries = db.get(key, {}).get("entries", {})
        if not isinstance(entries, dict):
            continue
        for sc in (size_class, ANY):
            name = f"{family}/{variant}/{dtype}/{sc}"
            rec = entries.get(name)
            if rec is None:
                continue
            p = rec.get("params") if isinstance(rec, dict) else None
            got = _valid(device, family, variant, dtype, base, p,
                         f"tuning database entry {name} of {key!r}")
            if got is not None and _frozen(device, family, variant, dtype, got) not in _rejected:
                return got, scope
    d = defaults(device, family, variant, dtype, size_class)
    return d, ("builtin" if d != base else "derived")


def params(device: DeviceInfo, family: str, variant: str, dtype: str,
           size_class: str = ANY) -> dict:
    """The tunables to render ``family``/``variant`` with on ``device`` (a new dict)."""
    # the whole record, not device.key: a DeviceInfo with other limits (dataclasses.replace,
    # as tests force them) shares the key of the device it copies but derives other values
    key = (device, family, variant, dtype, size_class, os.environ.get("CLNN_TUNING_DB"))
    p = _cache.get(key)
    if p is None:
        with _lock:
            p, _ = lookup(device, family, variant, dtype, size_class)
            _cache[key] = p
    return dict(p)


def _frozen(device: DeviceInfo, family: str, variant: str, dtype: str, p: dict) -> tuple:
    return (device, family, variant, dtype, tuple(sorted(p.items())))


def _fit(q: dict, e: BaseException) -> Optional[dict]:
    """``q`` with its work-group size WGS lowered to the largest power of two a built kernel
    allows (``KernelLimitError.limit``), or None when that cannot help."""
    limit = getattr(e, "limit", None)
    if not isinstance(e, KernelLimitError) or not limit or q.get("WGS", 1) <= limit:
        return None
    return dict(q, WGS=1 << (int(limit).bit_length() - 1))


def build_with_fallback(device: DeviceInfo, family: str, variant: str, dtype: str,
                        size_class: str, build: Callable[[dict], Any]) -> Tuple[Any, dict]:
    """``build(params)`` with the looked-up tunables; when that raises ``BuildError`` or
    ``RenderError`` and the tunables were not the defaults, warn, drop them for the rest of
    the process and build with the defaults (the shipped values, then the ones derived from
    the device's limits). A :class:`clnn.KernelLimitError` (the built kernel allows fewer
    work-items per group than WGS) tries the same values with WGS lowered to what the kernel
    allows before going on, with a warning. Returns ``(built, params_used)``."""
    derived = _derived(device, family, variant, dtype, size_class)
    tries: list = []
    for q in (params(device, family, variant, dtype, size_class),
              defaults(device, family, variant, dtype, size_class), derived):
        # values that already failed in this process are not tried (nor warned about) again
        if all(q != t for t in tries) and (_frozen(device, family, variant, dtype, q)
                                           not in _rejected or q is derived):
            tries.append(q)
    i = 0
    while True:
        q = tries[i]
        try:
            return build(q), q
        except (BuildError, RenderError) as e:
            fitted = _fit(q, e)
            if fitted is not None and all(fitted != t for t in tries):
                tries.insert(i + 1, fitted)
            if i == len(tries) - 1:
                raise
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            then = ("the same with WGS lowered to fit the kernel" if tries[i + 1] is fitted
                    else "the defaults")
            warnings.warn(f"clnn tuning: {family}/{variant}/{dtype}/{size_class} values {q} "
                          f"failed ({first}); using {then} {tries[i + 1]}",
                          TuningWarning, stacklevel=3)
            with _lock:
                _rejected.add(_frozen(device, family, variant, dtype, q))
                _cache.clear()
                _generation[0] += 1
            i += 1


# ---- the database file ---------------------------------------------------------------------
def db_path() -> Path:
    """Where the per-user tuning database lives (``$CLNN_TUNING_DB`` wins)."""
    env = os.environ.get("CLNN_TUNING_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clnn" / "tuning.json"


def _read(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as e:
        _warn_once(("db", str(path), type(e).__name__),
                   f"clnn tuning: ignoring unreadable tuning database {path}: {e}")
        return {}
    if (not isinstance(data, dict) or data.get("format") != _FORMAT
            or data.get("version") != FORMAT_VERSION or not isinstance(data.get("devices"), dict)):
        ver = data.get("version") if isinstance(data, dict) else None
        _warn_once(("db", str(path), "format"),
                   f"clnn tuning: ignoring tuning database {path}: not a {_FORMAT} "
                   f"version {FORMAT_VERSION} file (version {ver!r}); re-run `clnn tune`")
        return {}
    return {k: v for k, v in data["devices"].items() if isinstance(v, dict)}


def load_db() -> dict:
    """The database's devices as ``{device key: {"entries": {...}, ...}}`` ({} when absent
    or unusable). Re-read when the file changes."""
    path = db_path()
    try:
        st = path.stat()
        stamp = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (str(path), None, None)
    if _db_cache["key"] != stamp:
        with _lock:
            first = _db_cache["key"] is None
            _db_cache["db"] = _read(path) if stamp[1] is not None else {}
            _db_cache["key"] = stamp
            _cache.clear()
            if not first:  # the file changed under us: plans built from it are stale
                _generation[0] += 1
    return _db_cache["db"]


def clear_cache() -> None:
    """Forget every looked-up value (the next lookup re-reads the database) and which
    warnings were given (the next ignored entry warns again)."""
    with _lock:
        _cache.clear()
        _rejected.clear()
        _warned.clear()
        _db_cache["key"] = None
        _generation[0] += 1


def store(device: DeviceInfo, family: str, variant: str, dtype: str, size_class: str,
          values: dict, info: Optional[dict] = None, scope: str = "device") -> Path:
    """Write ``values`` as the tuned tunables of one (device, family, variant, dtype,
    size_class) into the database (``scope="vendor"``: for every device of this vendor/type).
    The file is replaced atomically; an unusable old file is replaced with a warning."""
    if scope not in ("device", "vendor"):
        raise ValueError(f"scope must be 'device' or 'vendor', not {scope!r}")
    path = db_path()
    with _lock:
        devices = dict(load_db())
        key = device.key if scope == "device" else "vendor:" + vendor_key(device)
        rec = dict(devices.get(key, {}))
        rec.update({"name": device.name, "platform": device.platform,
                    "driver": device.driver_version, "type": device.type})
        entries = dict(rec.get("entries", {})) if isinstance(rec.get("entries"), dict) else {}
        entry = {"params": {k: int(v) for k, v in values.items()},
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        entry.update(info or {})
        entries[f"{family}/{variant}/{dtype}/{size_class}"] = entry
        rec["entries"] = entries
        devices[key] = rec
        data = {"format": _FORMAT, "version": FORMAT_VERSION, "devices": devices}
        folder = path.parent
        if not folder.exists():
            os.makedirs(folder, mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)
        with atomic_write(path, "w", prefix=".tuning-") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        _db_cache["key"] = None
        _cache.clear()
        _generation[0] += 1
    return path
