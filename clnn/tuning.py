"""Tunable kernel parameters: built-in defaults derived from device limits.

``params(rt, family, variant, dtype)`` returns the render parameters for one kernel variant on
the runtime's device.

Example:
    >>> import clnn
    >>> from clnn.tuning import params
    >>> with clnn.Runtime("cpu") as rt:
    ...     sorted(params(rt.device, "gemv", "row", "float"))
    ['RPT', 'VW', 'WGS']
"""

from __future__ import annotations

from .devices import DeviceInfo

__all__ = ["params", "defaults"]


def defaults(device: DeviceInfo, family: str, variant: str, dtype: str) -> dict:
    """Built-in defaults: CPU devices want one work-item per block with wide vector loads;
    GPUs want many work-items reading neighbouring addresses."""
    cpu = device.type == "CPU"
    vw = 16 if dtype == "float" else 8
    if family == "gemv":
        if cpu:
            return {"WGS": 1, "RPT": 4, "VW": vw}
        wgs = min(64, device.max_work_group_size)
        if variant == "row":
            return {"WGS": wgs, "RPT": 1, "VW": 4}
        return {"WGS": wgs, "RPT": 1, "VW": 1}
    raise KeyError(f"no tunables for kernel family {family!r}")


def params(device: DeviceInfo, family: str, variant: str, dtype: str) -> dict:
    """The tunables to render ``family``/``variant`` with on ``device``."""
    return defaults(device, family, variant, dtype)
