"""The dense layer: ``y = act(x W^T + b)`` with W shaped (out, in).

A :class:`Dense` is a description until a :class:`clnn.nn.Network` takes it; then its
parameters and gradients are views into the network's one parameter buffer and one gradient
buffer (so an optimizer updates every layer with a single launch).

Example:
    >>> import clnn, numpy as np
    >>> from clnn.nn import Dense, Network
    >>> with clnn.Runtime("cpu") as rt:
    ...     net = Network(rt, [Dense(2, 1)], seed=0)
    ...     layer = net.layers[0]
    ...     layer.weights = np.array([[1.0, 2.0]])
    ...     layer.bias = np.array([0.5])
    ...     print(net.predict(np.array([1.0, 1.0])))
    [3.5]
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..array import Matrix, Vector
from ..errors import OperandError, ShapeError
from . import activations
from . import init as _init

__all__ = ["Dense"]


def _size(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
        raise ShapeError(f"Dense: {what} must be a positive integer, got {v!r}")
    return int(v)


class Dense:
    """A fully connected layer of ``in_features`` inputs and ``out_features`` outputs.

    ``activation`` is one of linear, sigmoid, tanh, relu, softmax; ``init`` names the weight
    initializer (default: He uniform for relu, Glorot uniform otherwise). Biases start at 0.

    After the network is built: ``weights`` (out, in) and ``bias`` (out) are clnn buffers,
    and so are ``grad_weights`` and ``grad_bias`` (filled by a backward pass). Assigning numpy
    data to any of them (``layer.weights = w``) copies it to the device.
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 init: Optional[str] = None):
        self.in_features = _size(in_features, "in_features")
        self.out_features = _size(out_features, "out_features")
        activations.code(activation)
        self.activation = activation
        self.init = init if init is not None else _init.default_for(activation)
        _init.get(self.init)
        self._net = None
        self._w: Optional[Matrix] = None
        self._b: Optional[Vector] = None
        self._gw: Optional[Matrix] = None
        self._gb: Optional[Vector] = None
        self.w_off = self.b_off = 0

    # ---- binding (done by Network) ----------------------------------------------------------
    def _bind(self, net, w_off: int, b_off: int) -> None:
        from ..array import Matrix, Vector

        rt, dt = net.runtime, net.dtype
        o, i = self.out_features, self.in_features
        self._net = net
        self.w_off, self.b_off = w_off, b_off
        p, g = net.params, net.grads
        self._w = Matrix(rt, o, i, dt, "row", owner=p, offset=w_off)
        self._b = Vector(rt, o, dt, owner=p, offset=b_off)
        self._gw = Matrix(rt, o, i, dt, "row", owner=g, offset=w_off)
        self._gb = Vector(rt, o, dt, owner=g, offset=b_off)

    def _get(self, arr, name: str):
        if arr is None:
            raise OperandError(f"Dense.{name}: the layer is not part of a network yet; "
                               "build a clnn.nn.Network with it first")
        arr._live()
        return arr

    @property
    def weights(self) -> Matrix:
        """The (out, in) weight matrix on the device."""
        return self._get(self._w, "weights")

    @weights.setter
    def weights(self, value: Any) -> None:
        self._get(self._w, "weights").set(value)

    @property
    def bias(self) -> Vector:
        """The bias vector (out) on the device."""
        return self._get(self._b, "bias")

    @bias.setter
    def bias(self, value: Any) -> None:
        self._get(self._b, "bias").set(value)

    @property
    def grad_weights(self) -> Matrix:
        """dLoss/dW after a backward pass, (out, in)."""
        return self._get(self._gw, "grad_weights")

    @grad_weights.setter
    def grad_weights(self, value: Any) -> None:
        self._get(self._gw, "grad_weights").set(value)

    @property
    def grad_bias(self) -> Vector:
        """dLoss/db after a backward pass, (out)."""
        return self._get(self._gb, "grad_bias")

    @grad_bias.setter
    def grad_bias(self, value: Any) -> None:
        self._get(self._gb, "grad_bias").set(value)

    @property
    def n_params(self) -> int:
        return self.out_features * (self.in_features + 1)

    def config(self) -> dict:
        """The layer's architecture as plain data (what ``save`` stores)."""
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "activation": self.activation,
                "init": self.init}

    def __repr__(self) -> str:
        return (f"Dense({self.in_features}, {self.out_features}, "
                f"activation={self.activation!r})")
