"""Dense neural networks on the OpenCL device: layers, losses, training, saving.

Example:
    >>> import clnn, numpy as np
    >>> from clnn.nn import Dense, Network
    >>> with clnn.Runtime("cpu") as rt:
    ...     net = Network(rt, [Dense(4, 8, "relu"), Dense(8, 3, "softmax")],
    ...                   loss="cross_entropy", seed=0)
    ...     print(net.predict(np.ones((2, 4))).shape)
    (2, 3)
"""

from ..errors import DivergenceError
from . import activations, init, losses
from .activations import ACTIVATIONS
from .epochs import History
from .io import NetworkFileError, load
from .layers import Dense
from .losses import DataError
from .network import Network

__all__ = ["Dense", "Network", "History", "load", "ACTIVATIONS", "DataError",
           "NetworkFileError", "DivergenceError", "activations", "init", "losses"]
