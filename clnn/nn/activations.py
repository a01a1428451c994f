"""Activations of a dense layer: names, kernel codes and numpy references.

Each activation is applied in the forward kernel's epilogue; its derivative is taken from the
activation's *output* a (sigmoid a(1-a), tanh 1-a^2, relu [a > 0], linear 1) inside the
backward kernel. ``softmax`` works on whole rows: the forward pass finishes it with a row
kernel, and with the cross-entropy loss it is fused into the loss kernel.

Example:
    >>> from clnn.nn.activations import ACTIVATIONS, reference
    >>> sorted(ACTIVATIONS)
    ['linear', 'relu', 'sigmoid', 'softmax', 'tanh']
    >>> import numpy as np
    >>> reference("relu", np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
"""

from __future__ import annotations

import numpy as np

from ..elementwise import ACTIVATION_CODES
from ..errors import OperandError

__all__ = ["ACTIVATIONS", "code", "reference"]

SOFTMAX = len(ACTIVATION_CODES)
# name -> kernel code (the templates read these): clnn's element-wise activations, identity
# under Keras' name "linear", and softmax
ACTIVATIONS = {("linear" if n == "identity" else n): c for n, c in ACTIVATION_CODES.items()}
ACTIVATIONS["softmax"] = SOFTMAX


def code(name: str) -> int:
    """The kernel code of activation ``name``; an unknown name raises OperandError."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise OperandError(f"unknown activation {name!r}; choose one of "
                           f"{', '.join(ACTIVATIONS)}") from None


def reference(name: str, z: np.ndarray) -> np.ndarray:
    """The activation applied to the pre-activations ``z`` (rows = samples) with numpy."""
    code(name)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return z.copy()
