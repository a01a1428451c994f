"""The device buffers of a :class:`~clnn.nn.Network` (package-internal): the workspace of
activations, deltas and gemm panels for a batch size (:class:`Workspace`), the samples on the
device with their shuffle (:class:`Data`), and the two vectors of the one-sample gemv path
(:class:`VectorWorkspace`).

Every segment starts on a 64-byte boundary (:data:`ALIGN` elements, :func:`pad`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import numpy as np
import pyopencl as cl

from .. import transfer
from ..array import Vector
from ..gemm import panel_bound
from . import activations
from .plan import products

if TYPE_CHECKING:
    from .network import Network

__all__ = ["ALIGN", "pad", "Workspace", "Data", "VectorWorkspace"]

ALIGN = 16  # elements: every parameter / workspace segment starts on a 64-byte boundary


def pad(n: int) -> int:
    """``n`` rounded up to a whole number of :data:`ALIGN` elements."""
    return -(-n // ALIGN) * ALIGN


class Workspace:
    """Activations and deltas for batches of up to ``cap`` rows, in one allocation, and the
    panel scratch of the layers that run on the packed gemm (shared by all their products:
    the queue runs them one after another)."""

    def __init__(self, net: Network, cap: int, train: bool):
        self.cap, self.train = cap, train
        widths = [lay.out_features for lay in net.layers]
        offs, total = [], 0
        if train:
            for w in widths:
                offs.append(total)
                total += pad(cap * w)
            dmax = max(widths + [net.in_features])
            self.delta = [total, total + pad(cap * dmax)]
            total += 2 * pad(cap * dmax)
            self.act = offs
        else:
            w = max(widths)
            pp = [0, pad(cap * w)]
            total = 2 * pp[1]
            self.act = [pp[i % 2] for i in range(len(widths))]
            self.delta = []
        self.vec = net.runtime.vector(total, dtype=net.dtype)
        self.buf = self.vec._buf
        self.plans: Dict[tuple, Any] = {}
        # a pass on the gemm at a smaller batch is on it at cap too (the choices grow with
        # B), and panel_bound grows with the sizes: enough for every plan of this workspace
        need = [0, 0]
        for layer in net.layers:
            for m, n, k in products(net._k, cap, layer.in_features, layer.out_features, train):
                need = [max(x, y) for x, y in zip(need, panel_bound(m, n, k))]
        self.panels = [net.runtime.vector(x, dtype=net.dtype) for x in need] if need[1] else []

    @property
    def panel_bufs(self) -> tuple:
        return tuple(v._buf for v in self.panels)

    def release(self) -> None:
        self.plans.clear()
        self.vec.release()
        for v in self.panels:
            v.release()


class Data:
    """Samples on the device, one allocation: x (n, in) row-major and, with ``xt``, again
    transposed (in, ldt: the first layer's fused forward reads that; on the gemm it reads the
    rows), targets, per-sample loss and hit."""

    def __init__(self, net: Network, n: int, y_width: int, shuffled: bool = False,
                 xt: bool = True):
        self.n = self.cap = n
        self.in_features = net.in_features
        self.y_width = y_width
        self.xt = xt
        vw = net._k.p["VW"]
        # room for whole-vector reads past the last sample; 0: no transposed copy
        self.ldt = -(-(n + vw) // vw) * vw if xt else 0
        self.x_off = 0
        self.xt_off = pad(n * net.in_features)
        self.y_off = self.xt_off + pad(net.in_features * self.ldt)
        self.loss_off = self.y_off + pad(n * y_width)
        self.hit_off = self.loss_off + pad(n)
        total = self.hit_off + pad(n)
        self.shuffled = shuffled  # keeps an unshuffled source copy and shuffles on the device
        if shuffled:
            self.sx_off = total
            self.sy_off = self.sx_off + pad(n * net.in_features)
            self.perm_off = self.sy_off + pad(n * y_width)
            total = self.perm_off + pad(n)
        self.vec = net.runtime.vector(total, dtype=net.dtype)
        self.buf = b = self.vec._buf
        if shuffled:
            rpi, g, l_ = net._k.rows(n)
            self._gather = net._k.site(
                "nn_gather", g, l_, n=n, K=net.in_features, C=y_width, perm=b,
                offP=self.perm_off, SX=b, offSX=self.sx_off, SY=b, offSY=self.sy_off, X=b,
                offX=self.x_off, XT=b, offXT=self.xt_off, ldt=self.ldt, Y=b, offY=self.y_off,
                rpi=rpi)
        self._keep: list = []
        self._queue = net.runtime.queue
        self._isz = net.dtype.itemsize
        self._xt = None if shuffled or not xt else np.zeros((net.in_features, self.ldt),
                                                            dtype=net.dtype)

    def upload_source(self, x: np.ndarray, y: np.ndarray) -> None:
        """Copy the unshuffled samples in once (shuffled data only)."""
        self.settle()
        q = self._queue
        cl.enqueue_copy(q, self.buf, x, dst_offset=self.sx_off * self._isz, is_blocking=False)
        cl.enqueue_copy(q, self.buf, y, dst_offset=self.sy_off * self._isz, is_blocking=False)
        self._keep += [x, y]

    def shuffle(self, perm: np.ndarray) -> None:
        """Enqueue this epoch's order: one small copy and one gather launch."""
        cl.enqueue_copy(self._queue, self.buf, perm, dst_offset=self.perm_off * self._isz,
                        is_blocking=False)
        self._keep.append(perm)
        self._gather()

    def upload(self, x: np.ndarray, y: Optional[np.ndarray]) -> None:
        """Copy (without waiting) the samples in; the arrays stay referenced until
        :meth:`results` or :meth:`settle` has synchronised."""
        self.settle()  # the transposed staging array is reused
        q = self._queue
        cl.enqueue_copy(q, self.buf, x, dst_offset=self.x_off * self._isz, is_blocking=False)
        self._keep.append(x)
        if self.xt:
            self._xt[:, :len(x)] = x.T
            cl.enqueue_copy(q, self.buf, self._xt, dst_offset=self.xt_off * self._isz,
                            is_blocking=False)
            self._keep.append(self._xt)
        if y is not None:
            cl.enqueue_copy(q, self.buf, y, dst_offset=self.y_off * self._isz,
                            is_blocking=False)
            self._keep.append(y)

    def results(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """Per-sample losses and hits of the first n samples (waits for the queue)."""
        host = np.empty(self.hit_off + n - self.loss_off, dtype=self.vec.dtype)
        transfer.read(self._queue, host, self.buf, self.loss_off * self._isz)
        self._keep.clear()
        return host[:n], host[self.hit_off - self.loss_off:]

    def settle(self) -> None:
        """Wait for pending copies, then drop the host arrays they read from."""
        if self._keep:
            try:
                self._queue.finish()
            except cl.Error:  # pragma: no cover - the queue is gone; nothing is pending
                pass
            self._keep.clear()

    def release(self) -> None:
        self.settle()
        self.vec.release()


class VectorWorkspace:
    """Two vectors of the widest layer for the one-sample (gemv) path, plus its sites."""

    def __init__(self, net: Network):
        rt, k = net.runtime, net._k
        w = max(layer.out_features for layer in net.layers)
        self.vec = rt.vector(2 * pad(w), dtype=net.dtype)
        self.out, self.sites, self.soft = [], [], {}
        for i, layer in enumerate(net.layers):
            n = layer.out_features
            o = (i % 2) * pad(w)
            self.out.append(Vector(rt, n, net.dtype, owner=self.vec, offset=o))
            a = activations.code(layer.activation)
            g, l_ = k.flat(n)
            self.sites.append(k.site("nn_bias_act", g, l_, N=n, Y=self.vec._buf, offY=o,
                                     incY=1, bias=net.params._buf, offb=layer.b_off,
                                     act=0 if a == activations.SOFTMAX else a))
            if a == activations.SOFTMAX:
                rpi, g, l_ = k.rows(1)
                self.soft[i] = k.site("nn_softmax_rows", g, l_, B=1, N=n, Y=self.vec._buf,
                                      offY=o, ldY=n, rpi=rpi)

    def release(self) -> None:
        self.vec.release()

