"""clnn: deep learning from scratch on OpenCL, on any CPU or GPU OpenCL device.

Example:
    >>> import clnn
    >>> with clnn.Runtime() as rt:
    ...     y = clnn.mv(rt.matrix([[1, 2], [3, 4]]), rt.vector([1, 0]))
    ...     print(y.to_numpy())
    [1. 3.]
"""

from . import nn, optim, schedules
from .array import Matrix, Vector
from .devices import DeviceInfo, devices, select_device
from .errors import (
    BuildError,
    ClnnError,
    DeviceError,
    DTypeError,
    OperandError,
    OutOfMemoryError,
    ReleasedError,
    RenderError,
    RuntimeMismatchError,
    ShapeError,
    UnsupportedError,
)
from .gemm import gemm, mm
from .gemv import gemv, mv
from .nn import load
from .runtime import Runtime

__version__ = "0.1.0"

__all__ = [
    "Runtime", "Vector", "Matrix", "devices", "select_device", "DeviceInfo",
    "mv", "gemv", "mm", "gemm", "nn", "optim", "schedules", "load",
    "ClnnError", "DeviceError", "ReleasedError", "ShapeError", "DTypeError",
    "RuntimeMismatchError", "UnsupportedError", "RenderError", "BuildError",
    "OutOfMemoryError", "OperandError",
]
