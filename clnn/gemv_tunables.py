"""gemv's tunables: size classes, the defaults derived from device limits, the checks a set
of tunables must pass, and the values measured on PoCL that ship with clnn.

:mod:`clnn.gemv` launches with what :mod:`clnn.tuning` looks up from these (tuning database,
then the shipped table, then the derived defaults); ``clnn tune gemv``
(:mod:`clnn.tune.gemv`) measures candidates around them. The template's header
(``kernels/gemv.cl.mako``) says what every tunable does.

Example:
    >>> import clnn
    >>> from clnn.gemv_tunables import gemv_defaults, size_class
    >>> size_class(100000, 16)
    'tall'
    >>> gemv_defaults(clnn.select_device("cpu"), "row", "float")["WGS"]
    1
"""

from __future__ import annotations

from . import tuning
from .devices import DeviceInfo

__all__ = ["SIZE_CLASSES", "size_class", "gemv_defaults", "validate"]

SIZE_CLASSES = ("small", "large", "tall", "wide")
"""``small``: at most 65536 elements (launch-bound); ``wide``: fewer than 64 rows and more
columns than rows; ``tall``: fewer than 64 columns, more rows than columns; else ``large``."""


def size_class(m: int, n: int) -> str:
    """The size class of an ``m x n`` gemv (as the operation sees ``A``), for tuning."""
    if m * n <= 65536:
        return "small"
    if m < 64 and n > m:
        return "wide"
    if n < 64 and m >= n:
        return "tall"
    return "large"


def gemv_defaults(device: DeviceInfo, variant: str, dtype: str,
                  size_class: str = tuning.ANY) -> dict:
    """Tunables derived from device limits: CPUs get one work-item per block of rows (or of
    columns) with wide vector loads; GPUs get work-groups of many work-items reading
    neighbouring addresses."""
    wide = 16 if dtype == "float" else 8
    cu = max(1, device.compute_units)
    if device.type == "CPU":
        if variant == "row":
            return {"WGS": 1, "RPT": 4, "VW": wide, "NG": 8 * cu, "KMIN": 1024, "AL": 0,
                    "NVW": wide // 2, "SMIN": 1 << 18}
        return {"WGS": 1, "RPT": 1, "VW": wide // 2, "ACC": 1, "CU": 8, "MB": 4096,
                "NG": 8 * cu, "KMIN": 256, "AL": 0, "NVW": wide // 2, "SMIN": 1 << 18,
                "PAN": 32}
    wgs = 1
    while wgs * 2 <= min(128, device.max_work_group_size):
        wgs *= 2
    if variant == "row":
        return {"WGS": wgs, "RPT": 1, "VW": 4 if dtype == "float" else 2, "NG": 64 * cu,
                "KMIN": 4096, "AL": 1, "NVW": 4, "SMIN": 1 << 16}
    return {"WGS": wgs, "RPT": 1, "VW": 1, "ACC": 0, "CU": 1, "MB": 1, "NG": 256 * cu,
            "KMIN": 1024, "AL": 1, "NVW": 4, "SMIN": 1 << 16, "PAN": 32}


def validate(device: DeviceInfo, variant: str, dtype: str, p: dict) -> None:
    """Raise ``ValueError`` naming the first tunable of ``p`` that cannot work on ``device``
    (:mod:`clnn.tuning` then ignores the set, as it does a stale database entry)."""
    for k in ("WGS", "VW", "NVW"):
        v = p.get(k, 1)
        if v & (v - 1):
            raise ValueError(f"{k}={v} is not a power of two")
    size = 4 if dtype == "float" else 8
    if max(p.get("VW", 1), p.get("NVW", 1)) * size > 64:
        # wider than 512 bits: beyond any CPU's registers, and PoCL mishandles such vectors
        raise ValueError("VW or NVW wider than 64 bytes")
    if p.get("WGS", 1) > device.max_work_group_size:
        raise ValueError(f"WGS={p['WGS']} exceeds the device's {device.max_work_group_size}")
    if p.get("AL", 0) not in (0, 1):
        raise ValueError(f"AL={p['AL']} is not 0 or 1")
    if variant == "col" and p.get("ACC", 0) not in (0, 1, 2):
        raise ValueError(f"ACC={p['ACC']} is not 0, 1 or 2")
    if variant == "col" and p.get("ACC") in (1, 2) and p.get("WGS", 1) != 1:
        raise ValueError(f"ACC={p['ACC']} needs WGS=1")
    if variant == "col" and p.get("ACC") == 2 and device.type != "CPU":
        # the last-group pattern relies on a CPU's coherent caches between work-groups
        raise ValueError("ACC=2 is for CPU devices")
    if p.get("PAN", 1) < 1:
        raise ValueError(f"PAN={p['PAN']} is not positive")
    if p.get("RPT", 1) > 16 or p.get("CU", 1) > 8:
        raise ValueError("RPT > 16 or CU > 8 (register pressure)")


tuning.register_defaults("gemv", gemv_defaults, validate, flags=("ACC", "AL"))

# Shipped measurements: the winners of ``clnn tune gemv`` on PoCL 3.0 (pthread device, AMD
# EPYC, 2 cores, AVX2 code), as differences from the derived CPU defaults, and what the
# side-by-side runs of ``clnn bench gemv`` showed for the large class: PoCL hands a launch of
# at most 128 work-groups per thread out in one chunk per thread, so a thread that starts late
# (an idle core waking up, ~0.1-1 ms on a shared VM) delays the whole launch. The large row
# class therefore uses 512 one-block work-groups (PoCL then deals chunks of 32 as threads ask)
# and 8 rows x 8 lanes (16 accumulators of 8 lanes spill on AVX2); the large col class uses
# ACC=2, two persistent work-groups taking 32-column panels from a counter.
_POCL = "The pocl project|CPU"
tuning.register_builtin("gemv", {_POCL: {
    "row/float/small": {"RPT": 2, "VW": 8, "NG": 32},
    "row/float/large": {"RPT": 8, "VW": 8, "NG": 512},
    "row/float/tall": {"VW": 8, "NG": 8},
    "row/float/wide": {"RPT": 8, "VW": 8, "NG": 8},
    "col/float/small": {"MB": 16384},
    "col/float/large": {"ACC": 2, "VW": 16, "NG": 2, "PAN": 32},
    "row/double/small": {"KMIN": 4096},
    "row/double/large": {"RPT": 8, "VW": 4, "NG": 512},
    "row/double/tall": {"RPT": 8, "NG": 8},
    "row/double/wide": {"RPT": 8, "VW": 4, "NG": 32},
    "col/double/small": {"CU": 2, "MB": 16384},
    "col/double/large": {"ACC": 2, "VW": 8, "NG": 2, "PAN": 32},
    "col/double/tall": {"VW": 8, "MB": 16384},
    "col/double/wide": {"VW": 8, "MB": 1024},
}})
