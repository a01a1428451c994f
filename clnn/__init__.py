"""clnn: deep learning from scratch on OpenCL, on any CPU or GPU OpenCL device.

Example:
    >>> import clnn
    >>> with clnn.Runtime() as rt:
    ...     y = clnn.mv(rt.matrix([[1, 2], [3, 4]]), rt.vector([1, 0]))
    ...     print(y.to_numpy())
    [1. 3.]
"""

# operators: imported for what it does on import (the arrays' engine: see clnn.buffer)
from . import _version, nn, operators, optim, schedules  # noqa: F401
from .array import Matrix, Vector, submatrix, subvector
from .blas1 import asum, axpy, copy, dot, iamax, nrm2, rk, scal, swap
from .devices import DeviceInfo, devices, select_device
from .elementwise import (
    activate,
    activate_grad,
    add,
    add_bias,
    div,
    exp,
    log,
    mul,
    relu,
    relu_grad,
    scale_shift,
    sigmoid,
    sigmoid_grad,
    sub,
    tanh,
    tanh_grad,
)
from .errors import (
    BuildError,
    ClnnError,
    DeviceError,
    DTypeError,
    KernelLimitError,
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
from .reduce import argmax, max, sum
from .runtime import Runtime

__version__ = _version.version()

__all__ = [
    "Runtime", "Vector", "Matrix", "devices", "select_device", "DeviceInfo",
    "mv", "gemv", "mm", "gemm",
    "subvector", "submatrix",
    "axpy", "scal", "copy", "swap", "dot", "nrm2", "asum", "iamax", "rk",
    "add", "sub", "mul", "div", "scale_shift", "exp", "log", "tanh", "sigmoid", "relu",
    "sigmoid_grad", "tanh_grad", "relu_grad", "add_bias", "activate", "activate_grad",
    "sum", "max", "argmax", "nn", "optim", "schedules", "load",
    "ClnnError", "DeviceError", "ReleasedError", "ShapeError", "DTypeError",
    "RuntimeMismatchError", "UnsupportedError", "RenderError", "BuildError",
    "KernelLimitError", "OutOfMemoryError", "OperandError",
]
