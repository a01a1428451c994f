"""List OpenCL devices and choose one from a spec, ``CLNN_DEVICE`` or ``PYOPENCL_CTX``.

The order: the ``device=`` argument (``--device`` on the command line), else ``CLNN_DEVICE``
(ignored when blank), else ``PYOPENCL_CTX``, else the first GPU, else the first CPU, else the
first device. Devices are numbered and tried in the order ``clnn devices`` lists them.

**Specs** (``device=``, ``--device``, ``CLNN_DEVICE``, ``clnn devices --select``)::

    spec         := alternative ("," alternative)*   tried left to right; the first that
                                                      some device satisfies wins
    alternative  := term ("+" term)*                 a device must satisfy every term
    term         := P:D | P                           platform and device index ("1:0"; "1" = "1:0")
                  | gpu | cpu | accelerator           the device type
                  | fp64                              double precision (cl_khr_fp64)
                  | any                               every device
                  | LIMIT OP VALUE                    a device limit, e.g. mem>=8G, cu>=16
                  | TEXT                              a case-insensitive part of the platform's
                                                      or the device's name or vendor ("pocl")
    LIMIT        := mem (global memory) | alloc (largest buffer) | local (local memory per
                    work-group) | cu (compute units) | wg (largest work-group)
    OP           := >= | <= | > | < | =
    VALUE        := a whole number; mem, alloc and local also take K, M, G, T (powers of
                    1024, "B" or "iB" optional): 512M, 8G, 1.5GiB

Spaces around terms are ignored and keywords are case-insensitive; the keywords above win over
a name part, and a name part cannot hold ``,`` or ``+``. Among the devices an alternative
allows, the first one listed is chosen. Examples: ``"gpu+fp64,cpu"`` (a GPU with fp64, else any
CPU), ``"gpu+mem>=8G"``, ``"nvidia,amd,cpu"``, ``"0:1"``. An ``int`` is an index into
:func:`devices`.

**PYOPENCL_CTX** is read exactly as pyopencl reads it: clnn hands the value to pyopencl's own
non-interactive ``choose_devices`` (``":"``, ``"0:"``, ``":1"``, ``"1"``, ``"Portable:pthread"``,
``"0:0,1"``...; platform and device parts are indexes or name parts, an empty part means the
first) and uses the first device it returns. A value pyopencl rejects raises
:class:`clnn.DeviceError` naming it; set but empty, it means what it means to pyopencl (the
first device of the first platform).

Example:
    >>> import clnn
    >>> d = clnn.select_device("cpu")
    >>> d.type
    'CPU'
    >>> clnn.select_device("gpu+fp64,cpu").type in ("GPU", "CPU")
    True
"""

from __future__ import annotations

import operator
import os
import re
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Union

import pyopencl as cl

from .errors import DeviceError

__all__ = ["DeviceInfo", "devices", "select_device", "describe_choice"]

_SPEC_INDEX = re.compile(r"^(\d+)\s*(?::\s*(\d+))?$")
_KINDS = {"gpu": "GPU", "cpu": "CPU", "accelerator": "ACCELERATOR"}
# LIMIT name -> DeviceInfo field; the first three are byte sizes
_LIMITS = {"mem": "global_mem", "alloc": "max_alloc", "local": "local_mem",
           "cu": "compute_units", "wg": "max_work_group_size"}
_SIZED = ("mem", "alloc", "local")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
        "=": operator.eq}
_LIMIT_TERM = re.compile(r"^([a-z_]\w*)\s*(>=|<=|>|<|=)\s*(.*)$", re.I)
_SIZE = re.compile(r"^(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?$", re.I)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


@dataclass(frozen=True)
class DeviceInfo:
    """What clnn knows about one OpenCL device (a plain, hashable record).

    clnn takes the limits from this record, not from the driver: a copy with other values
    (``dataclasses.replace(info, max_work_group_size=64, fp64=False)``) given to
    :class:`clnn.Runtime` makes clnn act as on a device with those limits, on the same
    hardware (the tests use this to check small work-groups, no fp64 and GPU code paths)."""

    index: int
    platform_index: int
    device_index: int
    platform: str
    platform_vendor: str
    name: str
    vendor: str
    type: str
    compute_units: int
    global_mem: int
    max_alloc: int
    max_work_group_size: int
    fp64: bool
    opencl_version: str
    driver_version: str
    #: bytes of local memory per work-group (CL_DEVICE_LOCAL_MEM_SIZE; 16 KiB is OpenCL's least)
    local_mem: int = 16384

    @property
    def spec(self) -> str:
        """The ``"P:D"`` spec that selects exactly this device."""
        return f"{self.platform_index}:{self.device_index}"

    @property
    def key(self) -> str:
        """A string that identifies device and driver (used in cache and tuning keys)."""
        return f"{self.platform}|{self.name}|{self.driver_version}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec
        return d

    def __str__(self) -> str:
        return f"[{self.spec}] {self.name} ({self.platform}, {self.type})"


def _type_name(t: int) -> str:
    if t & cl.device_type.GPU:
        return "GPU"
    if t & cl.device_type.CPU:
        return "CPU"
    if t & cl.device_type.ACCELERATOR:
        return "ACCELERATOR"
    return "OTHER"


def _platforms() -> list:
    try:
        return cl.get_platforms()
    except cl.Error:
        # pyopencl raises when the ICD loader finds no platform at all.
        return []


def devices() -> list[DeviceInfo]:
    """Every device of every OpenCL platform, in platform order.

    Example:
        >>> import clnn
        >>> len(clnn.devices()) >= 1
        True
    """
    out: list[DeviceInfo] = []
    for pi, p in enumerate(_platforms()):
        try:
            devs = p.get_devices()
        except cl.Error:
            continue
        for di, d in enumerate(devs):
            exts = d.extensions.split()
            fp64 = "cl_khr_fp64" in exts or bool(getattr(d, "double_fp_config", 0))
            out.append(
                DeviceInfo(
                    index=len(out),
                    platform_index=pi,
                    device_index=di,
                    platform=p.name.strip(),
                    platform_vendor=p.vendor.strip(),
                    name=d.name.strip(),
                    vendor=d.vendor.strip(),
                    type=_type_name(d.type),
                    compute_units=int(d.max_compute_units),
                    global_mem=int(d.global_mem_size),
                    max_alloc=int(d.max_mem_alloc_size),
                    max_work_group_size=int(d.max_work_group_size),
                    fp64=fp64,
                    opencl_version=d.version.strip(),
                    driver_version=d.driver_version.strip(),
                    local_mem=int(d.local_mem_size),
                )
            )
    return out


def _brief(d: DeviceInfo) -> str:
    fp64 = "fp64" if d.fp64 else "no fp64"
    return f"[{d.spec}] {d.name} ({d.platform}, {d.type}, {fp64}, {d.global_mem / 2**30:.1f} GiB)"


def _listing(devs: list[DeviceInfo]) -> str:
    if not devs:
        return "no OpenCL device found (install one, e.g. pip install 'pyopencl[pocl]')"
    return "available: " + "; ".join(_brief(d) for d in devs)


Test = Callable[[DeviceInfo], bool]


def _limit(name: str, op: str, value: str) -> Optional[Test]:
    """The test of a ``LIMIT OP VALUE`` term, None when VALUE does not parse."""
    if name in _SIZED:
        m = _SIZE.match(value)
        if not m:
            return None
        bound = float(m.group(1)) * _UNITS[m.group(2).lower()]
    elif value.isdigit():
        bound = int(value)
    else:
        return None
    field, cmp = _LIMITS[name], _OPS[op]
    return lambda d: cmp(getattr(d, field), bound)


def _term(text: str) -> Union[Test, str]:
    """The test one term stands for, or a string saying why the term is malformed."""
    low = text.lower()
    if not low:
        return "empty term (a '+' too many)"
    m = _SPEC_INDEX.match(low)
    if m:
        pi, di = int(m.group(1)), int(m.group(2) or 0)
        return lambda d: d.platform_index == pi and d.device_index == di
    if low in _KINDS:
        kind = _KINDS[low]
        return lambda d: d.type == kind
    if low == "fp64":
        return lambda d: d.fp64
    if low == "any":
        return lambda d: True
    m = _LIMIT_TERM.match(text)
    if m:
        name, op, value = m.groups()
        name = name.lower()
        if name not in _LIMITS:
            return f"unknown limit {name!r} in {text!r} (known: {', '.join(_LIMITS)})"
        test = _limit(name, op, value.strip())
        if test is None:
            what = "a size like 512M or 8G" if name in _SIZED else "a whole number"
            return f"{value.strip()!r} in {text!r} is not {what}"
        return test
    return lambda d: any(low in f.lower() for f in (d.platform, d.platform_vendor, d.name,
                                                     d.vendor))


def _parse(spec: str, source: str, devs: list[DeviceInfo]) -> list[tuple[str, list[Test]]]:
    """``spec``'s alternatives, each as (its text, its terms' tests)."""
    if not spec.strip():
        raise DeviceError(f"{source} is empty; {_listing(devs)}")
    alts = []
    for alt in spec.split(","):
        if not alt.strip():
            raise DeviceError(f"{source} {spec!r}: empty alternative (a comma too many); "
                              f"{_listing(devs)}")
        tests = []
        for term in alt.split("+"):
            t = _term(term.strip())
            if isinstance(t, str):
                where = f" in alternative {alt.strip()!r}" if "," in spec else ""
                raise DeviceError(f"{source} {spec!r}: {t}{where}; {_listing(devs)}")
            tests.append(t)
        alts.append((alt.strip(), tests))
    return alts


def all_matching(spec: str, source: str = "device") -> list[DeviceInfo]:
    """Every device that the first satisfiable alternative of ``spec`` allows, in listing
    order (what :func:`select_device` takes the first of); for spreading work over devices.
    Raises :class:`clnn.DeviceError` when no alternative holds.

    Example:
        >>> import clnn
        >>> from clnn.devices import all_matching
        >>> all_matching("gpu+fp64,cpu")[0].type in ("GPU", "CPU")
        True
    """
    devs = devices()
    alts = _parse(spec, source, devs)
    for _text, tests in alts:
        found = [d for d in devs if all(t(d) for t in tests)]
        if found:
            return found
    raise DeviceError(f"{source} {spec!r} matches no device; {_listing(devs)}")


def _match(spec: str, devs: list[DeviceInfo], source: str) -> tuple[DeviceInfo, str]:
    """The device ``spec`` chooses from ``devs``, and a rule naming the spec (and the
    alternative that held, when there are several)."""
    alts = _parse(spec, source, devs)
    if not devs:
        raise DeviceError(f"{source} {spec!r}: {_listing(devs)}")
    for text, tests in alts:
        for d in devs:
            if all(t(d) for t in tests):
                rule = f"{source} {spec.strip()!r}"
                return d, (rule + f", alternative {text!r}" if len(alts) > 1 else rule)
    raise DeviceError(f"{source} {spec!r} matches no device; {_listing(devs)}")


def _pyopencl_ctx(value: str, devs: list[DeviceInfo]) -> DeviceInfo:
    """The device pyopencl's ``create_some_context(interactive=False)`` takes for
    ``PYOPENCL_CTX=value``: pyopencl parses the value itself (its answers are the ``:``-parts)."""
    if not devs:
        raise DeviceError(f"PYOPENCL_CTX {value!r}: {_listing(devs)}")
    try:
        choose = getattr(cl, "choose_devices", None)
        answers = value.split(":")
        if choose is not None:
            chosen = choose(interactive=False, answers=answers)[0]
        else:  # pyopencl before choose_devices: the same parsing, inside create_some_context
            chosen = cl.create_some_context(interactive=False, answers=answers).devices[0]
        plats = _platforms()
        pi = plats.index(chosen.platform)
        di = plats[pi].get_devices().index(chosen)
    except (RuntimeError, ValueError, cl.Error) as e:
        why = " ".join(str(e).split()) or type(e).__name__
        raise DeviceError(f"PYOPENCL_CTX {value!r} is rejected by pyopencl ({why}); "
                          f"{_listing(devs)}") from None
    for d in devs:
        if (d.platform_index, d.device_index) == (pi, di):
            return d
    raise DeviceError(f"PYOPENCL_CTX {value!r} names [{pi}:{di}], which clnn does not list; "
                      f"{_listing(devs)}")


def select_device(spec: Union[str, int, DeviceInfo, None] = None) -> DeviceInfo:
    """Choose a device: ``spec``, else ``CLNN_DEVICE``, else ``PYOPENCL_CTX``, else the
    first GPU, else the first CPU, else the first device (the grammar of ``spec`` is in the
    module's docstring).

    Raises :class:`clnn.DeviceError` naming the spec and listing what exists when nothing
    matches.

    Example:
        >>> import clnn
        >>> clnn.select_device("pocl").platform_vendor
        'The pocl project'
        >>> clnn.select_device("accelerator,cpu+fp64,cpu").type
        'CPU'
    """
    if isinstance(spec, DeviceInfo):
        return spec
    devs = devices()
    return _select_from(spec, devs)[0]


def describe_choice(spec: Union[str, int, None] = None,
                    source: str = "device") -> tuple[DeviceInfo, str]:
    """Like :func:`select_device`, also saying which rule chose the device; ``source`` names
    ``spec`` in that rule and in errors (the command line passes ``"--device"``).

    Example:
        >>> import clnn
        >>> d, rule = describe_choice("gpu,cpu")
        >>> rule.startswith("device 'gpu,cpu', alternative")
        True
    """
    return _select_from(spec, devices(), source)


def _select_from(spec: Union[str, int, None], devs: list[DeviceInfo],
                 source: str = "device") -> tuple[DeviceInfo, str]:
    if isinstance(spec, bool) or not isinstance(spec, (str, int, type(None))):
        raise DeviceError(f"device spec must be a string, an int or None, not {spec!r}")
    if isinstance(spec, int):
        if spec < 0 or spec >= len(devs):
            raise DeviceError(f"device index {spec} out of range; {_listing(devs)}")
        return devs[spec], f"{source} index {spec}"
    if spec is not None:
        return _match(spec, devs, source)
    env: Optional[str] = os.environ.get("CLNN_DEVICE")
    if env is not None and env.strip():
        return _match(env, devs, "CLNN_DEVICE")
    env = os.environ.get("PYOPENCL_CTX")
    if env is not None:
        return _pyopencl_ctx(env, devs), f"PYOPENCL_CTX {env!r}"
    if not devs:
        raise DeviceError(_listing(devs))
    for kind in ("GPU", "CPU"):
        for d in devs:
            if d.type == kind:
                return d, f"first {kind}"
    return devs[0], "first device"


def cl_device(info: DeviceInfo) -> cl.Device:
    """The pyopencl device object behind ``info``."""
    plats = _platforms()
    try:
        return plats[info.platform_index].get_devices()[info.device_index]
    except (IndexError, cl.Error) as e:
        raise DeviceError(f"device {info} is no longer available: {e}") from None


def device_info(dev: cl.Device) -> DeviceInfo:
    """The :class:`DeviceInfo` of a pyopencl device (one of :func:`devices`; a sub-device or a
    device of no listed platform raises :class:`clnn.DeviceError`).

    Example:
        >>> import clnn, pyopencl as cl
        >>> info = clnn.select_device("cpu")
        >>> device_info(cl_device(info)) == info
        True
    """
    for info in devices():
        try:
            if cl_device(info) == dev:
                return info
        except DeviceError:
            continue
    raise DeviceError(f"the OpenCL device {dev.name.strip()!r} is not one of clnn.devices() "
                      "(sub-devices are not supported)")
