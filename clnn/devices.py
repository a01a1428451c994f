"""List OpenCL devices and choose one from a spec, ``CLNN_DEVICE`` or ``PYOPENCL_CTX``.

A *spec* is one of:

* ``"P:D"`` or ``"P"`` -- platform and device index, as in pyopencl's ``PYOPENCL_CTX``;
* ``"gpu"`` / ``"cpu"`` -- the first device of that type;
* any other text -- a case-insensitive substring of the platform's name or vendor, or of the
  device's name or vendor (``"pocl"``, ``"nvidia"``, ``"intel"``).

Example:
    >>> import clnn
    >>> d = clnn.select_device("cpu")
    >>> d.type
    'CPU'
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Optional, Union

import pyopencl as cl

from .errors import DeviceError

__all__ = ["DeviceInfo", "devices", "select_device", "describe_choice"]

_SPEC_INDEX = re.compile(r"^\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


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


def _listing(devs: list[DeviceInfo]) -> str:
    if not devs:
        return "no OpenCL device found (install one, e.g. pip install 'pyopencl[pocl]')"
    return "available: " + "; ".join(str(d) for d in devs)


def _match(spec: str, devs: list[DeviceInfo], source: str) -> DeviceInfo:
    s = spec.strip()
    if not devs:
        raise DeviceError(f"{source} {spec!r}: {_listing(devs)}")
    m = _SPEC_INDEX.match(s)
    if m:
        pi = int(m.group(1))
        di = int(m.group(2)) if m.group(2) is not None else 0
        for d in devs:
            if d.platform_index == pi and d.device_index == di:
                return d
        raise DeviceError(f"{source} {spec!r} names no device; {_listing(devs)}")
    low = s.lower()
    if low in ("gpu", "cpu", "accelerator"):
        for d in devs:
            if d.type.lower() == low:
                return d
        raise DeviceError(f"{source} {spec!r}: no {low.upper()} device; {_listing(devs)}")
    if not low:
        raise DeviceError(f"{source} is empty; {_listing(devs)}")
    for d in devs:
        fields = (d.platform, d.platform_vendor, d.name, d.vendor)
        if any(low in f.lower() for f in fields):
            return d
    raise DeviceError(f"{source} {spec!r} matches no device; {_listing(devs)}")


def select_device(spec: Union[str, int, DeviceInfo, None] = None) -> DeviceInfo:
    """Choose a device: ``spec``, else ``CLNN_DEVICE``, else ``PYOPENCL_CTX``, else the
    first GPU, else the first CPU, else the first device of any kind.

    Raises :class:`clnn.DeviceError` listing what exists when nothing matches.

    Example:
        >>> import clnn
        >>> clnn.select_device("pocl").platform_vendor
        'The pocl project'
    """
    if isinstance(spec, DeviceInfo):
        return spec
    devs = devices()
    return _select_from(spec, devs)[0]


def describe_choice(spec: Union[str, int, None] = None) -> tuple[DeviceInfo, str]:
    """Like :func:`select_device`, also saying which rule chose the device."""
    return _select_from(spec, devices())


def _select_from(
    spec: Union[str, int, None], devs: list[DeviceInfo]
) -> tuple[DeviceInfo, str]:
    if isinstance(spec, bool) or not isinstance(spec, (str, int, type(None))):
        raise DeviceError(f"device spec must be a string, an int or None, not {spec!r}")
    if isinstance(spec, int):
        if spec < 0 or spec >= len(devs):
            raise DeviceError(f"device index {spec} out of range; {_listing(devs)}")
        return devs[spec], "device= argument"
    if spec is not None:
        return _match(spec, devs, "device"), "device= argument"
    env: Optional[str] = os.environ.get("CLNN_DEVICE")
    if env is not None and env.strip():
        return _match(env, devs, "CLNN_DEVICE"), "CLNN_DEVICE"
    env = os.environ.get("PYOPENCL_CTX")
    if env is not None and env.strip():
        return _match(env, devs, "PYOPENCL_CTX"), "PYOPENCL_CTX"
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
