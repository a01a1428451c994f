"""Optimizers: SGD (momentum, Nesterov, L2 weight decay) and Adam, each one kernel launch.

An optimizer updates a parameter vector in place from a gradient vector of the same length
(a :class:`clnn.nn.Network` keeps all its parameters in one vector, so a step is one launch).
Its state (momentum, Adam moments) is allocated on the first step and belongs to that
parameter vector. The kernels are kernels/optim.cl.mako, built once per runtime and dtype
(tunables: family ``"optim"``, variant ``"flat"``). ``lr`` is a number or a schedule: any
callable ``epoch -> lr`` (see :mod:`clnn.schedules`).

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     p, g = rt.vector([1.0, 2.0]), rt.vector([0.5, -0.5])
    ...     clnn.optim.SGD(0.1).step(p, g)
    ...     print(p.to_numpy())
    [0.95 2.05]
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np
import pyopencl as cl

from . import checks
from .array import Vector
from .errors import OperandError, RuntimeMismatchError, ShapeError
from .launch import Plan, check_wgs, local_size, real_type, template_signatures, tiles
from .tuning import params as tuned_params
from .tuning import register_defaults

__all__ = ["Optimizer", "SGD", "Adam"]

LR = Union[float, Callable[[int], float]]


def _real(v, what: str, lo: float = 0.0, hi: float = math.inf, lo_open: bool = False) -> float:
    v = checks.scalar(v, "optimizer", what)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        raise OperandError(f"optimizer: {what}={v!r} is out of range")
    return v


def optim_defaults(device: Any, variant: str, dtype: str) -> dict:
    """Built-in tunables of the optimizer kernels: VW elements per chunk, WGS work-items per
    group (the local size only) and, host-side, about ITEMS work-items per compute unit, each
    taking a run of consecutive chunks (CPUs: one work-item per group)."""
    vw = 8 if dtype == "float" else 4
    if device.type == "CPU":
        return {"VW": vw, "WGS": 1, "ITEMS": 16}
    return {"VW": 1, "WGS": min(64, device.max_work_group_size), "ITEMS": 1 << 20}


def _validate(device: Any, variant: str, dtype: str, p: dict) -> None:
    check_wgs(device, p)


register_defaults("optim", optim_defaults, _validate)


class _Kernels:
    """The optimizer program of one runtime and dtype (kept with :meth:`Runtime.memo`)."""

    def __init__(self, rt: Any, dtype: np.dtype):
        rtype = real_type(dtype)
        self.rt = rt
        self.p = tuned_params(rt.device, "optim", "flat", rtype)
        self.program = rt.programs.program("optim.cl.mako", dtype=rtype, VW=self.p["VW"])
        self.sigs = template_signatures("optim.cl.mako", dtype=rtype, VW=self.p["VW"])
        self.wgs = local_size(rt, self.program, self.p["WGS"])

    def site(self, name: str, n: int, args: dict) -> Plan:
        """The prepared update of kernel ``name`` over ``n`` elements; ``args`` by name, but
        for the chunks per work-item ``cpi``."""
        cpi, g, l_ = tiles(self.rt, self.p["ITEMS"], self.wgs, -(-n // self.p["VW"]))
        names, dtypes = self.sigs[name]
        return Plan(self.rt, cl.Kernel(self.program, name), dtypes, wgs=l_[0],
                    names=names).bind(g, l_, dict(args, cpi=cpi))


def _kernels(rt: Any, dtype: np.dtype) -> _Kernels:
    return rt.memo(("optim", dtype.name), lambda: _Kernels(rt, dtype))


class Optimizer:
    """Base class: learning rate (or schedule), binding to one parameter vector, one
    launch per :meth:`step`."""

    _state_names: tuple = ()

    def __init__(self, lr: LR, weight_decay: float = 0.0):
        if not callable(lr):
            lr = _real(lr, "lr", lo_open=True)
        self.lr = lr
        self.weight_decay = _real(weight_decay, "weight_decay")
        self.epoch = 0
        self.t = 0  # steps taken
        self._params: Optional[Vector] = None
        self._grads: Optional[Vector] = None
        self.state_vectors: list = []
        self._site: Optional[Plan] = None
        self._lr_now = 0.0

    # ---- learning rate ------------------------------------------------------------------------
    def lr_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (the schedule called, or the constant)."""
        lr = self.lr(epoch) if callable(self.lr) else self.lr
        return _real(lr, f"lr at epoch {epoch}", lo=0.0)

    def start_epoch(self, epoch: int) -> float:
        """Set the learning rate of ``epoch`` and return it (internal to clnn: fit calls it)."""
        self.epoch = epoch
        self._lr_now = self.lr_at(epoch)
        return self._lr_now

    # ---- binding ------------------------------------------------------------------------------
    def check(self, params: Vector, grads: Vector) -> None:
        """Raise unless these params/grads can be bound (internal to clnn: fit's checks)."""
        checks.need(params, Vector, "optimizer", "params")
        checks.need(grads, Vector, "optimizer", "grads")
        checks.same_runtime("optimizer", params, grads)
        checks.same_dtype("optimizer", params, grads)
        if params.n != grads.n:
            raise ShapeError(f"optimizer: params has {params.n} elements, grads {grads.n}")
        if params.stride != 1 or grads.stride != 1:
            raise ShapeError("optimizer: params and grads must be contiguous vectors")
        if checks.overlaps(params, grads):
            raise ShapeError("optimizer: params and grads share memory")
        if self._params is not None and not self._params.released:
            same = (self._params._owner is params._owner and self._params.offset == params.offset
                    and self._params.n == params.n)
            if not same:
                if self._params.runtime is not params.runtime:
                    raise RuntimeMismatchError(
                        "optimizer: it holds state on another runtime "
                        f"({self._params.runtime.device}); make a new optimizer")
                raise OperandError("optimizer: it already holds state for other parameters; "
                                   "make a new optimizer for these")

    def bind(self, params: Vector, grads: Vector) -> None:
        """Prepare the update of ``params`` from ``grads`` (state and launch; internal to
        clnn: fit binds once, then enqueues each step)."""
        self.check(params, grads)
        if self._params is not None and not self._params.released:
            if self._grads is grads or (self._grads._owner is grads._owner
                                        and self._grads.offset == grads.offset):
                return
        rt = params.runtime
        self._params, self._grads = params, grads
        self.state_vectors = [rt.zeros(params.n, dtype=params.dtype) for _ in self._state_names]
        self._real = params.dtype.type
        if self._lr_now == 0.0:
            self._lr_now = self.lr_at(self.epoch)
        p, g = params, grads
        state = dict(zip(self._state_bufs, (s._buf for s in self.state_vectors)))
        self._site = _kernels(rt, params.dtype).site(
            self._entry, p.n, dict(n=p.n, P=p._owner._buf, offP=p.offset, G=g._owner._buf,
                                   offG=g.offset, **state, **self._args()))

    def step(self, params: Vector, grads: Vector) -> None:
        """One update of ``params`` from ``grads`` (one kernel launch, not waited for)."""
        self.bind(params, grads)
        self.enqueue()

    def enqueue(self) -> None:
        """Enqueue one update with the bound params and grads (internal to clnn)."""
        self.t += 1
        self._site.update(**self._args())
        with self._params.runtime._lock:
            self._site()

    # subclasses: _entry, _state_names, _state_bufs (their kernel arguments), _args() (the
    # scalar arguments, by name: re-set when they change)

    def state(self) -> dict:
        """The optimizer's state buffers as numpy arrays (for inspection and tests)."""
        return {n: s.to_numpy() for n, s in zip(self._state_names, self.state_vectors)}

    def __repr__(self) -> str:
        lr = getattr(self.lr, "__name__", None) or repr(self.lr)
        return f"{type(self).__name__}(lr={lr}, weight_decay={self.weight_decay})"


class SGD(Optimizer):
    """Stochastic gradient descent: ``g = grad + weight_decay * p``; with momentum
    ``v = momentum * v + g`` and ``p -= lr * v`` (Nesterov: ``p -= lr * (g + momentum * v)``),
    PyTorch's convention.

    Example:
        >>> import clnn
        >>> opt = clnn.optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    """

    def __init__(self, lr: LR = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _real(momentum, "momentum", hi=1.0)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise OperandError("SGD: nesterov needs a momentum > 0")
        if self.momentum > 0:
            self._entry, self._state_names, self._state_bufs = ("optim_momentum",
                                                                 ("velocity",), ("V",))
        else:
            self._entry, self._state_names, self._state_bufs = "optim_sgd", (), ()

    def _args(self) -> dict:
        r = self._real
        if self._entry == "optim_sgd":
            return {"lr": r(self._lr_now), "wd": r(self.weight_decay)}
        return {"lr": r(self._lr_now), "wd": r(self.weight_decay), "mu": r(self.momentum),
                "nesterov": int(self.nesterov)}


class Adam(Optimizer):
    """Adam with bias correction: ``m = b1 m + (1-b1) g``, ``s = b2 s + (1-b2) g^2``,
    ``p -= lr * m_hat / (sqrt(s_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``s_hat = s / (1 - b2^t)``; ``weight_decay`` adds L2 to the gradient.

    Example:
        >>> import clnn
        >>> opt = clnn.optim.Adam(1e-3, betas=(0.9, 0.999))
    """

    _entry = "optim_adam"
    _state_names = ("m", "s")
    _state_bufs = ("M", "S")

    def __init__(self, lr: LR = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise OperandError(f"Adam: betas must be a pair, got {betas!r}")
        self.b1 = _real(betas[0], "beta1", hi=1.0)
        self.b2 = _real(betas[1], "beta2", hi=1.0)
        if self.b1 >= 1 or self.b2 >= 1:
            raise OperandError("Adam: betas must be < 1")
        self.eps = _real(eps, "eps", lo_open=True)

    def _args(self) -> dict:
        r = self._real
        t = max(self.t, 1)
        c1 = 1.0 / (1.0 - self.b1 ** t)
        c2 = 1.0 / (1.0 - self.b2 ** t)
        return {"lr": r(self._lr_now), "wd": r(self.weight_decay), "b1": r(self.b1),
                "b2": r(self.b2), "eps": r(self.eps), "c1": r(c1), "c2": r(c2)}
