"""fit on the network's own runtime (package-internal): the :class:`~clnn.nn.epochs.Trainer`
that :meth:`clnn.nn.Network.fit` gives the epoch loop when it trains on one device.
"""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING, Dict, Iterator, Optional

import numpy as np
import pyopencl as cl

from ..array import Vector
from ..errors import DivergenceError
from .buffers import Data
from .epochs import FitArgs, History, Trainer, divergence_error

if TYPE_CHECKING:
    from .network import Network

__all__ = ["OneDevice", "gate"]


class OneDevice(Trainer):
    """fit on the network's own runtime (see :mod:`clnn.nn.epochs` for the loop): the samples
    go to the device once and each epoch's order is gathered there, an epoch's steps are
    enqueued behind one gate, and the weights at the start of the last two epochs are kept on
    the device for the rewind."""

    def __init__(self, net: Network, a: FitArgs, B: int, rem: int):
        self.net, self.a, self.B, self.rem = net, a, B, rem
        self.opt = a.optimizer
        self.epoch = 0
        self.data: Optional[Data] = None
        self.vdata: Optional[Data] = None
        self.snaps: Optional[Vector] = None

    def begin(self) -> None:
        net, a = self.net, self.a
        self.ws = net._workspace(self.B, True)
        self.data = net._data("train", len(a.x), self.B)
        if a.guard:
            if net._snaps is None:
                net._snaps = net.runtime.vector(2 * len(net.params), dtype=net.dtype)
            self.snaps = net._snaps
        if a.validation is not None:
            self.vdata = net._data("val", len(a.validation[0]), self.B)
            self.vdata.upload(*a.validation)
        self.opt.bind(net.params, net.grads)
        self.full = net._plan(self.ws, self.B, self.data, "train")
        self.last = (net._plan(self.ws, self.rem, self.data, "train") if self.rem != self.B
                     else self.full)
        if self.data.shuffled:
            self.data.upload_source(a.x, a.y)

    def start_epoch(self, epoch: int) -> float:
        self.epoch = epoch
        return self.opt.start_epoch(epoch)

    def load(self, perm: Optional[np.ndarray]) -> None:
        a = self.a
        if perm is None:
            perm = np.arange(len(a.x))
        if self.data.shuffled:
            self.data.shuffle(perm.astype(self.net.dtype))
        else:
            self.data.upload(np.ascontiguousarray(a.x[perm]), np.ascontiguousarray(a.y[perm]))
        if self.snaps is not None:
            snapshot(self.net.params, self.snaps, self.epoch % 2)

    @contextlib.contextmanager
    def stepping(self) -> Iterator[None]:
        rt = self.net.runtime
        with rt._lock, gate(rt):
            yield

    def step(self, s: int, last: bool) -> None:
        p = self.last if last else self.full
        p.point(s * self.B)
        p.run()
        self.opt.enqueue()

    def gather(self) -> Dict[str, float]:
        loss, hit = self.data.results(len(self.a.x))
        logs = self.net._summary(loss, hit)
        if self.vdata is not None:
            v = self.net.evaluate_data(self.ws, self.vdata, self.B)
            logs.update({"val_" + k: val_ for k, val_ in v.items()})
        return logs

    def diverged(self, epoch: int, epochs: int, loss: float,
                 hist: History) -> DivergenceError:
        both = self.snaps.to_numpy().reshape(2, -1)
        starts = [both[epoch % 2]] + ([both[(epoch - 1) % 2]] if epoch else [])
        return divergence_error(self.net, starts, epoch, epochs, loss, hist)

    def close(self) -> None:
        for d in (self.data, self.vdata):
            if d is not None:
                d.settle()


def snapshot(params: Vector, snaps: Vector, slot: int) -> None:
    """Enqueue a copy of the weights into half ``slot`` of ``snaps`` (device to device)."""
    size = params.n * params.dtype.itemsize
    with params.runtime._lock:
        cl.enqueue_copy(params.runtime.queue, snaps._owner._buf, params._owner._buf,
                        byte_count=size, src_offset=params.offset * params.dtype.itemsize,
                        dst_offset=(snaps.offset + slot * params.n) * params.dtype.itemsize)


@contextlib.contextmanager
def gate(rt):
    """Hold back the launches enqueued inside the block until it ends: a marker waiting on a
    user event goes first, and the event completes on the way out (also on an exception).

    On a CPU device the driver's worker threads and the host thread that enqueues share the
    cores: launches that start while the host is still enqueueing the epoch's next ones make
    both slower. Gated, the host enqueues an epoch's steps back to back, then the workers run
    them without the host in their way. Only kernel launches and non-blocking copies may be
    enqueued inside (a blocking call there would wait for itself). The cyclic garbage
    collector is off meanwhile: a clnn buffer it frees may wait for the queue (a host-backed
    buffer settles before it is freed), and so for the gate."""
    ev = cl.UserEvent(rt.ctx)
    collecting = gc.isenabled()
    gc.disable()
    try:
        cl.enqueue_marker(rt.queue, wait_for=[ev])
        yield
    finally:
        ev.set_status(cl.command_execution_status.COMPLETE)
        if collecting:
            gc.enable()


