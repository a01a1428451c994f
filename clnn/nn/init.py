"""Weight initialisation: Glorot/Xavier and He, uniform and normal, from a numpy Generator.

Values are drawn in float64 from the generator and then rounded to the network's dtype, so the
same seed gives the same weights on every device.

Example:
    >>> import numpy as np
    >>> from clnn.nn import init
    >>> w = init.glorot_uniform(np.random.default_rng(0), 3, 2)
    >>> w.shape, bool(abs(w).max() <= np.sqrt(6 / 5))
    ((2, 3), True)
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np

from ..errors import OperandError

__all__ = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "INITIALIZERS",
           "get", "default_for"]


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)); shape (fan_out, fan_in)."""
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, size=(fan_out, fan_in))


def glorot_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 2 / (fan_in + fan_out)); shape (fan_out, fan_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_out, fan_in))


def he_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-l, l) with l = sqrt(6 / fan_in); shape (fan_out, fan_in)."""
    lim = np.sqrt(6.0 / fan_in)
    return rng.uniform(-lim, lim, size=(fan_out, fan_in))


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 2 / fan_in); shape (fan_out, fan_in)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_out, fan_in))


INITIALIZERS: Dict[str, Callable] = {
    "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform, "xavier_normal": glorot_normal,
    "he_uniform": he_uniform, "he_normal": he_normal,
}


def get(name: str) -> Callable:
    """The initializer called ``name``; an unknown name raises OperandError."""
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise OperandError(f"unknown initializer {name!r}; choose one of "
                           f"{', '.join(INITIALIZERS)}") from None


def default_for(activation: str) -> str:
    """He for relu layers, Glorot for the others."""
    return "he_uniform" if activation == "relu" else "glorot_uniform"
