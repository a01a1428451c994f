"""The exceptions clnn raises. Every one derives from :class:`ClnnError`."""

from __future__ import annotations


class ClnnError(Exception):
    """Base class of every error clnn raises on purpose."""


class DeviceError(ClnnError):
    """No OpenCL device matches the request, or none exists at all."""


class ReleasedError(ClnnError):
    """A runtime, buffer or view was used after it was released."""


class ShapeError(ClnnError, ValueError):
    """Operand shapes, sizes, offsets or strides do not fit together."""


class DTypeError(ClnnError, TypeError):
    """Unsupported dtype, or operands of different dtypes mixed in one call."""


class RuntimeMismatchError(ClnnError, ValueError):
    """Operands that belong to different runtimes were mixed in one call."""


class UnsupportedError(ClnnError):
    """The device lacks a feature the call needs (for example cl_khr_fp64)."""


class RenderError(ClnnError):
    """A kernel template failed to render; the message lists its parameters."""


class BuildError(ClnnError):
    """An OpenCL program failed to build; the message holds the build log."""


class KernelLimitError(BuildError):
    """A built kernel does not fit the device: it would be launched with more work-items per
    work-group than ``CL_KERNEL_WORK_GROUP_SIZE`` (or the device) allows, or it needs more
    local memory than the device has. ``limit`` is the most work-items per group the kernel
    allows (None when local memory is the problem). Raised when the kernel is prepared, before
    anything is enqueued; tunables that cause it are dropped like those that fail to build."""

    def __init__(self, msg: str, limit=None):
        super().__init__(msg)
        self.limit = limit


class OutOfMemoryError(ClnnError, MemoryError):
    """An allocation is larger than the device can hold."""


class OperandError(ClnnError, TypeError):
    """An operand is not a clnn array of the kind the operation takes."""


class DivergenceError(ClnnError, ArithmeticError):
    """Training diverged: an epoch's mean training loss is NaN or infinite (usually a learning
    rate too large for the data). Raised by ``Network.fit`` after that epoch, with the weights
    rewound (see ``fit``'s ``on_divergence``). ``epoch`` is the epoch's 0-based index (as
    ``on_epoch`` gets it), ``loss`` its loss and ``history`` the :class:`clnn.nn.History` of
    every epoch so far, the diverged one included."""

    def __init__(self, msg: str, epoch: int = 0, loss: float = float("nan"), history=None):
        super().__init__(msg)
        self.epoch = epoch
        self.loss = loss
        self.history = history
