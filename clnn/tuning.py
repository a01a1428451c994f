"""Tunable kernel parameters.

Each kernel family registers a function that derives built-in defaults from device limits
(``register_defaults``). ``params`` returns the tunables to render a variant with.

Example:
    >>> import clnn
    >>> from clnn.tuning import params
    >>> sorted(params(clnn.select_device("cpu"), "gemv", "row", "float"))
    ['RPT', 'VW', 'WGS']
"""

from __future__ import annotations

from typing import Callable, Dict

from .devices import DeviceInfo

__all__ = ["params", "defaults", "register_defaults"]

DefaultsFn = Callable[[DeviceInfo, str, str], dict]
_DEFAULTS: Dict[str, DefaultsFn] = {}


def register_defaults(family: str, fn: DefaultsFn) -> None:
    """Register ``fn(device, variant, dtype) -> dict`` as the defaults of ``family``."""
    _DEFAULTS[family] = fn


def defaults(device: DeviceInfo, family: str, variant: str, dtype: str) -> dict:
    """Built-in defaults of one kernel variant, derived from the device's limits."""
    try:
        fn = _DEFAULTS[family]
    except KeyError:
        raise KeyError(f"no tunables registered for kernel family {family!r}") from None
    return dict(fn(device, variant, dtype))


def params(device: DeviceInfo, family: str, variant: str, dtype: str) -> dict:
    """The tunables to render ``family``/``variant`` with on ``device``."""
    return defaults(device, family, variant, dtype)
