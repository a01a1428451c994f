"""A dense network: a sequence of :class:`~clnn.nn.Dense` layers trained on the device.

Memory: all parameters live in ONE device vector (``net.params``) and all gradients in another
(``net.grads``), each layer's ``weights``/``bias`` being views into them; an optimizer step is
therefore one kernel launch. Activations and deltas live in a workspace allocated once per
batch size and reused by every step: training keeps each layer's output (the backward pass
needs them) and ping-pongs two delta buffers between consecutive layers; inference ping-pongs
two activation buffers.

Training data go to the device once per ``fit`` (an unshuffled source copy); each epoch
uploads only the permutation and one gather launch copies the samples into the preallocated
epoch buffers, row-major and (when the first layer runs on the fused kernels) transposed: the
fused first-layer forward reads the transposed copy, an outer product without reductions.

Each layer's forward and backward pass run on one of two paths, chosen apart by the batch
and the layer's size (``Kernels.gemm_forward``, ``gemm_backward`` in
:mod:`clnn.nn._kernels`; tunable). Small: one fused forward launch, one fused backward launch
that computes dW, db and the previous layer's delta together. Large: prepared packed gemm
products (:class:`clnn.gemm.Product`, their panel scratch in the workspace) with the bias and
activation fused into the forward product's stores, the bias gradient summed while
dW = dZ^T X is computed, and the activation derivative fused into the stores of dX = dZ W.
A step is the layers' forward launches, one fused loss launch (softmax + cross-entropy or
squared error, with the output layer's derivative), the backward launches (the first layer
computes no input gradient unless ``gradient(..., input_grad=True)``) and one optimizer
launch, all enqueued without waiting and without allocating; every sample's loss is written
on the device and read back once per epoch.

Example:
    >>> import clnn, numpy as np
    >>> from clnn.nn import Dense, Network
    >>> x = np.random.default_rng(0).normal(size=(64, 2))
    >>> y = (x[:, 0] > 0).astype(int)
    >>> with clnn.Runtime("cpu") as rt:
    ...     net = Network(rt, [Dense(2, 8, "tanh"), Dense(8, 2, "softmax")],
    ...                   loss="cross_entropy", seed=0)
    ...     hist = net.fit(x, y, epochs=30, batch_size=16, verbose=False,
    ...                    optimizer=clnn.optim.Adam(0.05))
    ...     print(hist["accuracy"][-1] > 0.9)
    True
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyopencl as cl

from .. import checks, transfer
from ..array import Array, Matrix, Vector, as_dtype
from ..errors import (
    DivergenceError,
    OperandError,
    ReleasedError,
    RuntimeMismatchError,
    ShapeError,
)
from ..gemm import Product, panel_bound
from ..gemv import mv
from . import activations
from . import init as _init
from ._kernels import Site, kernels
from .epochs import (
    FitArgs,
    History,
    Trainer,
    batches,
    divergence_error,
    divergence_guard,
    generator,
    run,
    summary,
)
from .layers import Dense
from .losses import DataError, canonical, metric_name

__all__ = ["Network"]

ALIGN = 16  # elements: every parameter / workspace segment starts on a 64-byte boundary
_LIN = 0
_SOFTMAX = activations.SOFTMAX


def _pad(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _products(k, B: int, K: int, N: int, train: bool) -> List[Tuple[int, int, int]]:
    """The (m, n, k) of the products a layer runs on the packed gemm at batch B (kernels
    ``k`` choose): the forward, then (train) the weight and the input gradients."""
    out = [(B, N, K)] if k.gemm_forward(B, K, N) else []
    if train and k.gemm_backward(B, K, N):
        out += [(N, K, B), (B, K, N)]
    return out


class _Workspace:
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
                total += _pad(cap * w)
            dmax = max(widths + [net.in_features])
            self.delta = [total, total + _pad(cap * dmax)]
            total += 2 * _pad(cap * dmax)
            self.act = offs
        else:
            w = max(widths)
            pp = [0, _pad(cap * w)]
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
            for m, n, k in _products(net._k, cap, layer.in_features, layer.out_features, train):
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


class _Data:
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
        self.xt_off = _pad(n * net.in_features)
        self.y_off = self.xt_off + _pad(net.in_features * self.ldt)
        self.loss_off = self.y_off + _pad(n * y_width)
        self.hit_off = self.loss_off + _pad(n)
        total = self.hit_off + _pad(n)
        self.shuffled = shuffled  # keeps an unshuffled source copy and shuffles on the device
        if shuffled:
            self.sx_off = total
            self.sy_off = self.sx_off + _pad(n * net.in_features)
            self.perm_off = self.sy_off + _pad(n * y_width)
            total = self.perm_off + _pad(n)
            rpi, g, l_ = net._k.rows(n)
            self._gather = net._k.site("nn_gather", g, l_, (
                n, net.in_features, y_width, None, self.perm_off, None, self.sx_off, None,
                self.sy_off, None, self.x_off, None, self.xt_off, self.ldt, None, self.y_off,
                rpi))
        self.vec = net.runtime.vector(total, dtype=net.dtype)
        self.buf = self.vec._buf
        self._keep: list = []
        self._queue = net.runtime.queue
        self._isz = net.dtype.itemsize
        self._xt = None if shuffled or not xt else np.zeros((net.in_features, self.ldt),
                                                            dtype=net.dtype)
        if shuffled:
            b = self.buf
            a = list(self._gather.args)
            for i in (3, 5, 7, 9, 11, 14):
                a[i] = b
            self._gather.set(a)

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


class _Plan:
    """The launches of one forward (+ loss (+ backward)) pass at batch size B.

    Each layer's forward and backward pass runs on the fused kernels or, when
    ``Kernels.gemm_forward`` / ``gemm_backward`` say so, on prepared packed products
    (:class:`clnn.gemm.Product`): the forward ``Y = act(X W^T + b)`` with the
    bias-and-activation epilogue, the weight gradient ``dW = dZ^T X`` with the bias gradient
    summed from the packed dZ^T panels, and the input gradient ``dX = (dZ W) * act'(Y_prev)``
    with the derivative epilogue.

    :meth:`point` aims the launches that read samples at row ``row0`` of the data, and
    :meth:`run` enqueues every launch (the caller holds the runtime lock)."""

    def __init__(self, net: Network, ws: _Workspace, B: int, data: Optional[_Data],
                 mode: str, input_grad: bool = False):
        # mode: "predict" (forward only, softmax applied), "eval" (forward + loss),
        # "train" (forward + loss + backward)
        k = net._k
        lay = net.layers
        L = len(lay)
        pbuf, gbuf, wbuf = net.params._buf, net.grads._buf, ws.buf
        xent = net.loss == "cross_entropy"
        self.sites: List[Callable[[], None]] = []
        self.data = data
        self.B = B
        # the launches that read the samples: the first layer's forward (x_site) and its
        # weight gradient (bx_site): Sites or Products
        self.x_site: Any = None
        self.bx_site: Any = None
        self.loss_site: Optional[Site] = None
        for i, layer in enumerate(lay):
            K, N = layer.in_features, layer.out_features
            gemm = k.gemm_forward(B, K, N)
            entry = "nn_forward"
            if i > 0:
                xb, xo, ldx = wbuf, ws.act[i - 1], K
            elif data is not None and gemm:  # the samples' rows, read in place or packed
                xb, xo, ldx = data.buf, data.x_off, K
            elif data is not None:  # the samples' transposed copy: the outer-product kernel
                xb, xo, ldx = data.buf, data.xt_off, data.ldt
                entry = "nn_forward_t"
            else:  # forward(Matrix) sets the input
                xb, xo, ldx = wbuf, 0, K
            a = activations.code(layer.activation)
            last = i == L - 1
            row_softmax = a == _SOFTMAX and not (last and xent and mode != "predict")
            act = _LIN if a == _SOFTMAX else a
            if gemm:
                s: Any = Product(net.runtime, net.dtype, B, N, K, (xb, xo, ldx, 1),
                                 (pbuf, layer.w_off, 1, K), (wbuf, ws.act[i], N, 1),
                                 ws.panel_bufs, "bias_act", (pbuf, layer.b_off, 0), act)
            else:
                tpi, g, l_ = (k.forward_t_size if entry == "nn_forward_t"
                              else k.forward_size)(B, N)
                s = k.site(entry, g, l_, (B, K, N, xb, xo, ldx, pbuf, layer.w_off, pbuf,
                                          layer.b_off, wbuf, ws.act[i], N, act, tpi))
            self.sites.append(s)
            if i == 0:
                self.x_site = s
            if row_softmax:
                rpi, g, l_ = k.rows(B)
                self.sites.append(k.site("nn_softmax_rows", g, l_,
                                         (B, N, wbuf, ws.act[i], N, rpi)))
        self.out_off = ws.act[L - 1]
        if mode == "predict":
            return
        last = lay[-1]
        C = last.out_features
        rpi, g, l_ = k.rows(-(-B // k.p["VW"])) if xent else k.rows(B)
        self._xent = xent  # args: ... loss offset at [10], (xent) hit offset at [12]
        if xent:
            self.loss_site = k.site("nn_xent", g, l_,
                                    (B, C, wbuf, ws.act[L - 1], data.buf, data.y_off,
                                     wbuf, ws.delta[0], k.real(1.0 / B), data.buf,
                                     data.loss_off, data.buf, data.hit_off, rpi))
        else:
            self.loss_site = k.site("nn_mse", g, l_,
                                    (B, C, wbuf, ws.act[L - 1], data.buf, data.y_off,
                                     wbuf, ws.delta[0], k.real(1.0 / (B * C)), data.buf,
                                     data.loss_off, activations.code(last.activation), rpi))
        self.sites.append(self.loss_site)
        if mode == "eval":
            return
        cur = 0
        for i in range(L - 1, -1, -1):
            layer = lay[i]
            K, N = layer.in_features, layer.out_features
            want_dx = i > 0 or input_grad
            if i == 0:
                xb, xo, ldx = data.buf, data.x_off, K
                act_prev = _LIN
            else:
                xb, xo, ldx = wbuf, ws.act[i - 1], K
                act_prev = activations.code(lay[i - 1].activation)
            dact = _LIN if act_prev == _SOFTMAX else act_prev
            dz, dx = ws.delta[cur], ws.delta[1 - cur]
            if k.gemm_backward(B, K, N):
                s = Product(net.runtime, net.dtype, N, K, B, (wbuf, dz, 1, N), (xb, xo, ldx, 1),
                            (gbuf, layer.w_off, K, 1), ws.panel_bufs, "rowsum",
                            (gbuf, layer.b_off, 1))
                self.sites.append(s)
                if want_dx:
                    self.sites.append(Product(
                        net.runtime, net.dtype, B, K, N, (wbuf, dz, N, 1),
                        (pbuf, layer.w_off, K, 1), (wbuf, dx, K, 1), ws.panel_bufs, "dact",
                        (xb, xo, ldx) if i > 0 else (wbuf, 0, 0), dact))
            else:
                n_w, n_x, tpi, g, l_ = k.backward_counts(B, K, N, want_dx)
                s = k.site("nn_backward", g, l_,
                           (B, K, N, xb, xo, ldx, pbuf, layer.w_off, wbuf, dz,
                            gbuf, layer.w_off, gbuf, layer.b_off, wbuf, dx,
                            n_w, n_x, dact, tpi))
                self.sites.append(s)
            if i == 0:
                self.bx_site = s
            if want_dx and act_prev == _SOFTMAX:
                rpi, g2, l2 = k.rows(B)
                self.sites.append(k.site("nn_softmax_bwd", g2, l2,
                                         (B, K, wbuf, ws.act[i - 1], K, wbuf, dx, rpi)))
            cur = 1 - cur
        self.dx_off = ws.delta[cur]  # input gradient (when input_grad)

    def set_input(self, buf: Any, off: int, ld: int) -> None:
        """Read the first layer's input from row-major ``buf`` (forward on device data)."""
        s = self.x_site
        if isinstance(s, Product):
            s.point(a=(buf, off, ld, 1))
        else:
            s.set(s.args[:3] + (buf, off, ld) + s.args[6:])

    def point(self, row0: int) -> None:
        """Aim the data-reading launches at sample ``row0`` of the data."""
        d = self.data
        xrow = d.x_off + row0 * d.in_features
        s = self.x_site
        if isinstance(s, Product):
            s.point(a=xrow)
        else:
            s.set(s.args[:4] + (d.xt_off + row0,) + s.args[5:])
        s = self.bx_site
        if isinstance(s, Product):
            s.point(b=xrow)
        elif s is not None:
            s.set(s.args[:4] + (xrow,) + s.args[5:])
        if self.loss_site is not None:
            a = list(self.loss_site.args)
            a[5] = d.y_off + row0 * d.y_width
            a[10] = d.loss_off + row0
            if self._xent:
                a[12] = d.hit_off + row0
            self.loss_site.set(a)

    def run(self) -> None:
        for s in self.sites:
            s()


def _as_int(v: Any, what: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < lo:
        raise ShapeError(f"{what} must be an integer >= {lo}, got {v!r}")
    return int(v)


class Network:
    """A sequence of dense layers with a loss, on one runtime.

    ``loss`` is ``"mse"`` or ``"cross_entropy"`` (softmax + cross-entropy fused; the last
    layer must then be softmax). ``seed`` (an int or a numpy Generator) draws the initial
    weights and the per-epoch shuffles, so a seed reproduces a run exactly on one device.
    """

    def __init__(self, runtime, layers: Sequence[Dense], loss: str = "mse",
                 dtype: Any = np.float32, seed: Union[int, np.random.Generator, None] = None):
        from ..runtime import Runtime

        if not isinstance(runtime, Runtime):
            raise OperandError(f"Network: runtime must be a clnn.Runtime, got "
                               f"{type(runtime).__name__}")
        runtime._live()
        layers = list(layers)
        if not layers:
            raise ShapeError("Network: needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise OperandError(f"Network: layer {i} is a {type(layer).__name__}, "
                                   "not a clnn.nn.Dense")
            if layer._net is not None:
                raise OperandError(f"Network: layer {i} ({layer!r}) already belongs to a "
                                   "network; make a new Dense")
            if i and layer.in_features != layers[i - 1].out_features:
                raise ShapeError(f"Network: layer {i} takes {layer.in_features} inputs but "
                                 f"layer {i - 1} gives {layers[i - 1].out_features}")
        if len(set(map(id, layers))) != len(layers):
            raise OperandError("Network: the same Dense appears twice; make a new one")
        self.loss = canonical(loss)
        if self.loss == "cross_entropy" and layers[-1].activation != "softmax":
            raise OperandError("Network: the cross_entropy loss needs a softmax last layer "
                               f"(it has {layers[-1].activation!r})")
        self.dtype = as_dtype(dtype)
        runtime._check_dtype(self.dtype)
        self.runtime = runtime
        self.layers: List[Dense] = layers
        self.metric = metric_name(self.loss)
        self._rng = seed if isinstance(seed, np.random.Generator) else \
            np.random.default_rng(seed)
        self._k = kernels(runtime, self.dtype)
        self._ws: Dict[tuple, _Workspace] = {}
        self._vws: Optional[_VectorWorkspace] = None
        self._datas: Dict[str, _Data] = {}
        self._vin: Optional[Vector] = None
        self._snaps: Optional[Vector] = None  # fit's weights at two epoch starts (rewind)
        self._lock = threading.RLock()
        # one parameter buffer, one gradient buffer: layer segments 64-byte aligned
        offs, total = [], 0
        for layer in layers:
            w_off = total
            total += _pad(layer.out_features * layer.in_features)
            b_off = total
            total += _pad(layer.out_features)
            offs.append((w_off, b_off))
        self.n_params = sum(layer.n_params for layer in layers)
        host = np.zeros(total, dtype=self.dtype)
        for layer, (w_off, _) in zip(layers, offs):
            fn = _init.get(layer.init)
            w = fn(self._rng, layer.in_features, layer.out_features)
            host[w_off:w_off + w.size] = w.astype(self.dtype).ravel()
        self.params = runtime.vector(host)
        self.grads = runtime.zeros(total, dtype=self.dtype)
        for layer, (w_off, b_off) in zip(layers, offs):
            layer._bind(self, w_off, b_off)

    # ---- description ------------------------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    def config(self) -> dict:
        return {"loss": self.loss, "dtype": self.dtype.name,
                "layers": [layer.config() for layer in self.layers]}

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return (f"<clnn.nn.Network [{inner}], loss={self.loss!r}, {self.dtype.name}, "
                f"{self.n_params} parameters>")

    def _live(self) -> None:
        """Raise ReleasedError when the network or its runtime was released."""
        if self.runtime.released:
            raise ReleasedError(f"the runtime of this network was released ({self.runtime!r}), "
                                "and the network with it: make a new clnn.Runtime and build "
                                "the network again (or clnn.load a saved one)")
        if self.params._released or self.grads._released:
            raise ReleasedError("this network was released (net.release() or the end of its "
                                "with block) and cannot be used")

    def __enter__(self) -> Network:
        self._live()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Free the device memory of the network (parameters, gradients, workspaces, data
        buffers); harmless twice. A network is also a ``with`` block that releases it."""
        for ws in self._ws.values():
            ws.release()
        self._ws.clear()
        for d in self._datas.values():
            d.release()
        self._datas.clear()
        for extra in (self._vws, self._vin, self._snaps):
            if extra is not None:
                extra.release()
        self._vws = self._vin = self._snaps = None
        self.params.release()
        self.grads.release()

    # ---- workspaces -------------------------------------------------------------------------
    def _workspace(self, cap: int, train: bool) -> _Workspace:
        for (c, t), ws in self._ws.items():
            if t == train and c >= cap:
                return ws
        old = self._ws.pop((max([c for c, t in self._ws if t == train], default=0), train),
                           None)
        if old is not None:
            old.release()
        ws = _Workspace(self, cap, train)
        self._ws[(cap, train)] = ws
        return ws

    def _plan(self, ws: _Workspace, B: int, data: Optional[_Data], mode: str,
              input_grad: bool = False) -> _Plan:
        key = (B, id(data), mode, input_grad)
        p = ws.plans.get(key)
        if p is None or p.data is not data:
            p = _Plan(self, ws, B, data, mode, input_grad)
            ws.plans[key] = p
        return p

    # ---- data checks ------------------------------------------------------------------------
    def _host_x(self, x: Any, what: str, ndim: Optional[int] = None) -> np.ndarray:
        if isinstance(x, Array):
            x._live()
            if x.runtime is not self.runtime:
                raise RuntimeMismatchError(
                    f"{what}: the data lives on another runtime ({x.runtime.device}) than the "
                    f"network ({self.runtime.device}); copy it over first")
            x = x.to_numpy()
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise ShapeError(f"{what}: cannot make an array of x ({e})") from None
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{what}: x of dtype {arr.dtype} is not real numbers")
        if ndim is not None and arr.ndim != ndim or arr.ndim not in (1, 2):
            raise ShapeError(f"{what}: x must be 2-d (samples, features), got shape "
                             f"{arr.shape}")
        feats = arr.shape[-1]
        if feats != self.in_features:
            raise ShapeError(f"{what}: x has {feats} features per sample but the network "
                             f"takes {self.in_features}")
        if arr.size == 0:
            raise ShapeError(f"{what}: x holds no samples")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        bad = ~np.isfinite(arr)
        if bad.any():
            r = int(np.argwhere(bad)[0][0])
            raise DataError(f"{what}: x contains NaN or Inf (first in sample {r}); clean the "
                            "data first")
        return arr

    def _host_y(self, y: Any, n: int, what: str) -> np.ndarray:
        if isinstance(y, Array):
            y._live()
            if y.runtime is not self.runtime:
                raise RuntimeMismatchError(
                    f"{what}: the targets live on another runtime ({y.runtime.device}) than "
                    f"the network ({self.runtime.device}); copy them over first")
            y = y.to_numpy()
        try:
            arr = np.asarray(y)
        except (ValueError, TypeError) as e:
            raise ShapeError(f"{what}: cannot make an array of y ({e})") from None
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{what}: y of dtype {arr.dtype} is not numbers")
        if arr.ndim == 0 or len(arr) != n:
            raise ShapeError(f"{what}: {n} samples in x but y has shape {arr.shape}")
        C = self.out_features
        if self.loss == "cross_entropy":
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise ShapeError(f"{what}: cross_entropy takes integer class labels, shape "
                                 f"({n},); got shape {arr.shape}")
            if arr.dtype.kind == "f":
                if not np.isfinite(arr).all():
                    raise DataError(f"{what}: y contains NaN or Inf")
                if (arr != np.rint(arr)).any():
                    raise DataError(f"{what}: class labels must be whole numbers")
            lo, hi = arr.min(), arr.max()
            if lo < 0 or hi >= C:
                bad = lo if lo < 0 else hi
                raise DataError(f"{what}: label {bad:g} is out of range; the network has {C} "
                                f"classes, 0..{C - 1}")
            return np.ascontiguousarray(arr, dtype=self.dtype)
        if arr.ndim == 1 and C == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != C:
            raise ShapeError(f"{what}: the network gives {C} outputs per sample but y has "
                             f"shape {arr.shape}")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        bad = ~np.isfinite(arr)
        if bad.any():
            r = int(np.argwhere(bad)[0][0])
            raise DataError(f"{what}: y contains NaN or Inf (first in sample {r})")
        return arr

    def _y_width(self) -> int:
        return 1 if self.loss == "cross_entropy" else self.out_features

    # ---- inference --------------------------------------------------------------------------
    def forward(self, x: Union[Matrix, Vector]) -> Union[Matrix, Vector]:
        """Outputs for device inputs: a Vector (one sample, gemv path) or a row-layout
        Matrix (a batch: per layer one fused launch, or on a large batch the packed gemm with
        the bias and activation in its stores). The result is a view of the network's
        workspace, valid until the next call.

        Example:
            >>> import clnn
            >>> from clnn.nn import Dense, Network
            >>> with clnn.Runtime("cpu") as rt:
            ...     net = Network(rt, [Dense(3, 2, "relu")], seed=1)
            ...     print(net.forward(rt.matrix([[1, 2, 3]])).shape)
            (1, 2)
        """
        self._live()
        if not isinstance(x, (Matrix, Vector)):
            raise OperandError(f"forward: x must be a clnn.Vector or clnn.Matrix, got "
                               f"{type(x).__name__}; use predict() for numpy data")
        x._live()
        checks.same_runtime("forward", self.params, x)
        checks.same_dtype("forward", self.params, x)
        if isinstance(x, Vector):
            return self._forward_vector(x)
        if x.n != self.in_features:
            raise ShapeError(f"forward: x has {x.n} features per sample but the network takes "
                             f"{self.in_features}")
        if x.layout != "row":
            raise ShapeError("forward: x must be a row-layout matrix (samples in rows)")
        B = x.m
        rt = self.runtime
        with self._lock:
            ws = self._workspace(B, False)
            p = self._plan(ws, B, None, "predict")
            with rt._lock:
                p.set_input(x._owner._buf, x.offset, x.ld)
                p.run()
            return Matrix(rt, B, self.out_features, self.dtype, "row", owner=ws.vec,
                          offset=p.out_off)

    def _forward_vector(self, x: Vector) -> Vector:
        if x.n != self.in_features:
            raise ShapeError(f"forward: x has length {x.n} but the network takes "
                             f"{self.in_features} inputs")
        rt = self.runtime
        with self._lock:
            ws = self._vws
            if ws is None:
                ws = self._vws = _VectorWorkspace(self)
            h = x
            for i, layer in enumerate(self.layers):
                out = ws.out[i]
                mv(layer.weights, h, out=out)
                a = activations.code(layer.activation)
                s = ws.sites[i]
                with rt._lock:
                    s()
                    if a == _SOFTMAX:
                        ws.soft[i]()
                h = out
            return h

    def predict(self, x: Any, batch_size: Optional[int] = None) -> np.ndarray:
        """Outputs for numpy inputs: (samples, features) -> (samples, outputs), or one
        sample (features,) -> (outputs,) through the gemv path. Softmax layers give
        probabilities."""
        self._live()
        arr = self._host_x(x, "predict")
        if arr.ndim == 1:
            with self._lock:
                if self._vin is None:
                    self._vin = self.runtime.vector(self.in_features, dtype=self.dtype)
                self._vin.set(arr)
                return self._forward_vector(self._vin).to_numpy()
        n = len(arr)
        bs = n if batch_size is None else _as_int(batch_size, "predict: batch_size", 1)
        bs = min(bs, n, 4096)
        out = np.empty((n, self.out_features), dtype=self.dtype)
        rt = self.runtime
        with self._lock:
            ws = self._workspace(bs, False)
            data = self._data("aux", n, bs)
            try:
                data.upload(arr, None)
                for r0 in range(0, n, bs):
                    B = min(bs, n - r0)
                    p = self._plan(ws, B, data, "predict")
                    with rt._lock:
                        p.point(r0)
                        p.run()
                        transfer.read(rt.queue, out[r0:r0 + B], ws.buf,
                                      p.out_off * self.dtype.itemsize)
            finally:
                data.settle()
        return out

    def _data(self, slot: str, n: int, bs: int) -> _Data:
        """The device buffer for ``n`` samples kept in ``slot`` (train, val, aux), read in
        batches of ``bs`` rows: reused while it holds exactly n (train: shuffled on the
        device) or at least n samples (and the transposed copy when a batch needs it), so
        repeated calls allocate nothing and reuse their prepared launches."""
        d = self._datas.get(slot)
        train = slot == "train"
        # the transposed copy serves the first layer's fused forward (not the gemm's)
        first = self.layers[0]
        xt = any(not self._k.gemm_forward(b, first.in_features, first.out_features)
                 for b in (min(bs, n), n - (-(-n // bs) - 1) * bs))
        if d is not None and (d.cap == n if train else d.cap >= n) and (d.xt or not xt):
            d.n = n
            return d
        if d is not None:
            self._drop_plans(d)
            d.release()
        # float32 holds sample indices exactly below 2**24; beyond, shuffle on the host
        d = _Data(self, n, self._y_width(),
                  shuffled=train and (n < 2**24 or self.dtype == np.float64), xt=xt)
        self._datas[slot] = d
        return d

    def _drop_plans(self, data: _Data) -> None:
        for ws in self._ws.values():
            for key in [k for k, p in ws.plans.items() if p.data is data]:
                del ws.plans[key]

    def evaluate(self, x: Any, y: Any, batch_size: Optional[int] = None) -> Dict[str, float]:
        """``{"loss": ..., metric: ...}`` over the samples (metric: accuracy or rmse)."""
        self._live()
        xh = self._host_x(x, "evaluate", ndim=2)
        yh = self._host_y(y, len(xh), "evaluate")
        n = len(xh)
        bs = min(n, 1024 if batch_size is None else _as_int(batch_size,
                                                             "evaluate: batch_size", 1))
        with self._lock:
            ws = self._workspace(bs, True)
            data = self._data("aux", n, bs)
            data.upload(xh, yh)
            return self.evaluate_data(ws, data, bs)

    def evaluate_data(self, ws: _Workspace, data: _Data, bs: int) -> Dict[str, float]:
        """The loss and metric of the samples in ``data``, in batches of ``bs`` rows on
        workspace ``ws`` (internal to clnn.nn: evaluate, fit's validation and data-parallel
        training use it)."""
        rt = self.runtime
        n = data.n
        with rt._lock:
            for r0 in range(0, n, bs):
                B = min(bs, n - r0)
                p = self._plan(ws, B, data, "eval")
                p.point(r0)
                p.run()
        loss, hit = data.results(n)
        return self._summary(loss, hit)

    def _summary(self, loss: np.ndarray, hit: np.ndarray) -> Dict[str, float]:
        return summary(self.metric, np.sum(loss, dtype=np.float64),
                       np.sum(hit, dtype=np.float64), len(loss))

    # ---- gradients --------------------------------------------------------------------------
    def gradient(self, x: Any, y: Any, input_grad: bool = False
                 ) -> Union[float, Tuple[float, np.ndarray]]:
        """One forward + backward pass over all the samples as one batch: fills every
        layer's ``grad_weights``/``grad_bias`` and returns the loss (and dLoss/dx when
        ``input_grad``)."""
        self._live()
        xh = self._host_x(x, "gradient", ndim=2)
        yh = self._host_y(y, len(xh), "gradient")
        n = len(xh)
        rt = self.runtime
        with self._lock:
            ws = self._workspace(n, True)
            data = self._data("aux", n, n)
            try:
                data.upload(xh, yh)
                p = self._plan(ws, n, data, "train", input_grad)
                with rt._lock:
                    p.point(0)
                    p.run()
                loss, _ = data.results(n)
                value = float(np.mean(loss, dtype=np.float64))
                if not input_grad:
                    return value
                dx = np.empty((n, self.in_features), dtype=self.dtype)
                transfer.read(rt.queue, dx, ws.buf, p.dx_off * self.dtype.itemsize)
                return value, dx
            finally:
                data.settle()

    # ---- training ---------------------------------------------------------------------------
    def fit(self, x: Any, y: Any, epochs: int = 10, batch_size: int = 32,
            optimizer: Any = None, validation: Optional[Tuple[Any, Any]] = None,
            verbose: bool = True, shuffle: bool = True,
            seed: Union[int, np.random.Generator, None] = None,
            on_epoch: Optional[Callable[[int, dict], Any]] = None,
            devices: Optional[Sequence[Any]] = None, comm: Any = None,
            on_divergence: str = "raise") -> History:
        """Train with mini-batches; returns the :class:`History`.

        Each epoch shuffles the samples (from the network's seeded generator, or ``seed``),
        copies them into a device buffer allocated once, runs every step without waiting and
        reads the per-sample losses back once. ``optimizer`` defaults to SGD(0.01, momentum
        0.9). ``verbose`` shows a tqdm bar (only when stderr is a terminal and tqdm is
        installed). ``on_epoch(epoch, logs)`` is called after each epoch.

        Divergence: when an epoch's mean training loss is NaN or infinite, ``fit`` raises
        :class:`clnn.nn.DivergenceError` (``on_divergence="raise"``, the default) after
        rewinding the weights to where they were at the start of that epoch, the end of the
        last finite one (or, when those already hold a NaN or infinity because the previous
        epoch's last step diverged, to the start of the previous epoch). The optimizer's own
        state (momentum, Adam moments) is not rewound: go on with a new optimizer and a
        smaller learning rate. ``on_divergence="continue"`` trains on and records the NaN
        losses in the history. The loss is checked where it is read, once per epoch.

        Data-parallel: ``devices`` (runtimes or device specs, the network's own among them)
        and/or ``comm`` (a :class:`clnn.distributed.Communicator`: MPI ranks) split every
        batch of ``batch_size`` rows across replicas and sum their gradients before each
        step, so training matches one device (see :mod:`clnn.nn.parallel`).
        """
        self._live()
        if devices is not None or comm is not None:
            from .parallel import fit_data_parallel

            return fit_data_parallel(self, x, y, epochs, batch_size, optimizer, validation,
                                     verbose, shuffle, seed, on_epoch, devices, comm,
                                     on_divergence)
        a = self.fit_args(x, y, validation, epochs, batch_size, optimizer, on_epoch,
                          on_divergence)  # every check before any device work
        rng = self.fit_generator(seed)
        n = len(a.x)
        B, steps, rem = batches(n, a.batch_size)
        trainer = _OneDevice(self, a, B, rem)
        with self._lock:
            try:
                return run(trainer, History(self.metric, a.validation is not None),
                           epochs=a.epochs, n=n, steps=steps, shuffle=shuffle, rng=rng,
                           guard=a.guard, on_epoch=on_epoch, verbose=verbose)
            finally:
                trainer.close()

    # ---- internal to clnn.nn: what fit's loop and data-parallel training build on -----------
    @property
    def lock(self) -> threading.RLock:
        """The re-entrant lock that every call on this network holds (internal to clnn.nn)."""
        return self._lock

    def fit_args(self, x: Any, y: Any, validation: Any, epochs: Any, batch_size: Any,
                 optimizer: Any, on_epoch: Any, on_divergence: Any) -> FitArgs:
        """fit's argument checks, all before any device work: host data, the validation
        pair, the counts, the optimizer, ``on_divergence`` and ``on_epoch`` (internal to
        clnn.nn)."""
        from ..optim import SGD, Optimizer

        xh = self._host_x(x, "fit", ndim=2)
        yh = self._host_y(y, len(xh), "fit")
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise OperandError("fit: validation must be a pair (x, y)")
            xv = self._host_x(validation[0], "fit validation", ndim=2)
            val = (xv, self._host_y(validation[1], len(xv), "fit validation"))
        epochs = _as_int(epochs, "fit: epochs", 0)
        batch_size = _as_int(batch_size, "fit: batch_size", 1)
        if optimizer is None:
            optimizer = SGD(0.01, momentum=0.9)
        if not isinstance(optimizer, Optimizer):
            raise OperandError(f"fit: optimizer must be a clnn.optim optimizer, got "
                               f"{type(optimizer).__name__}")
        optimizer._check(self.params, self.grads)
        guard = divergence_guard(on_divergence)
        if on_epoch is not None and not callable(on_epoch):
            raise OperandError("fit: on_epoch must be callable")
        return FitArgs(xh, yh, val, epochs, batch_size, optimizer, guard)

    def fit_generator(self, seed: Union[int, np.random.Generator, None]
                      ) -> np.random.Generator:
        """The generator fit draws its shuffles from: ``seed``'s, or the network's own
        (internal to clnn.nn)."""
        return generator(self._rng, seed)

    def new_workspace(self, cap: int) -> _Workspace:
        """A training workspace for batches of up to ``cap`` rows, outside the network's
        cache: the caller releases it (internal to clnn.nn)."""
        return _Workspace(self, cap, True)

    def new_data(self, n: int) -> _Data:
        """A device buffer for ``n`` samples (unshuffled), outside the network's cache: the
        caller releases it (internal to clnn.nn)."""
        return _Data(self, n, self._y_width())

    def new_plan(self, ws: _Workspace, rows: int, data: _Data) -> _Plan:
        """The training launches of a batch of ``rows`` samples of ``data`` on ``ws``, not
        kept in the workspace's plans (internal to clnn.nn)."""
        return _Plan(self, ws, rows, data, "train")

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write architecture and weights to one ``.npz`` file, atomically."""
        self._live()
        from .io import save

        save(self, path)


class _VectorWorkspace:
    """Two vectors of the widest layer for the one-sample (gemv) path, plus its sites."""

    def __init__(self, net: Network):
        rt, k = net.runtime, net._k
        w = max(layer.out_features for layer in net.layers)
        self.vec = rt.vector(2 * _pad(w), dtype=net.dtype)
        self.plans: dict = {}
        self.out, self.sites, self.soft = [], [], {}
        for i, layer in enumerate(net.layers):
            n = layer.out_features
            o = (i % 2) * _pad(w)
            self.out.append(Vector(rt, n, net.dtype, owner=self.vec, offset=o))
            a = activations.code(layer.activation)
            g, l_ = k.flat(n)
            self.sites.append(k.site("nn_bias_act", g, l_,
                                     (n, self.vec._buf, o, 1, net.params._buf, layer.b_off,
                                      _LIN if a == _SOFTMAX else a)))
            if a == _SOFTMAX:
                rpi, g, l_ = k.rows(1)
                self.soft[i] = k.site("nn_softmax_rows", g, l_,
                                      (1, n, self.vec._buf, o, n, rpi))

    def release(self) -> None:
        self.vec.release()


class _OneDevice(Trainer):
    """fit on the network's own runtime (see :mod:`clnn.nn.epochs` for the loop): the samples
    go to the device once and each epoch's order is gathered there, an epoch's steps are
    enqueued behind one gate, and the weights at the start of the last two epochs are kept on
    the device for the rewind."""

    def __init__(self, net: Network, a: FitArgs, B: int, rem: int):
        self.net, self.a, self.B, self.rem = net, a, B, rem
        self.opt = a.optimizer
        self.epoch = 0
        self.data: Optional[_Data] = None
        self.vdata: Optional[_Data] = None
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
        self.opt._bind(net.params, net.grads)
        self.full = net._plan(self.ws, self.B, self.data, "train")
        self.last = (net._plan(self.ws, self.rem, self.data, "train") if self.rem != self.B
                     else self.full)
        if self.data.shuffled:
            self.data.upload_source(a.x, a.y)

    def start_epoch(self, epoch: int) -> float:
        self.epoch = epoch
        return self.opt._start_epoch(epoch)

    def load(self, perm: Optional[np.ndarray]) -> None:
        a = self.a
        if perm is None:
            perm = np.arange(len(a.x))
        if self.data.shuffled:
            self.data.shuffle(perm.astype(self.net.dtype))
        else:
            self.data.upload(np.ascontiguousarray(a.x[perm]), np.ascontiguousarray(a.y[perm]))
        if self.snaps is not None:
            _snapshot(self.net.params, self.snaps, self.epoch % 2)

    @contextlib.contextmanager
    def stepping(self) -> Iterator[None]:
        rt = self.net.runtime
        with rt._lock, _gate(rt):
            yield

    def step(self, s: int, last: bool) -> None:
        p = self.last if last else self.full
        p.point(s * self.B)
        p.run()
        self.opt._enqueue()

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


def _snapshot(params: Vector, snaps: Vector, slot: int) -> None:
    """Enqueue a copy of the weights into half ``slot`` of ``snaps`` (device to device)."""
    size = params.n * params.dtype.itemsize
    with params.runtime._lock:
        cl.enqueue_copy(params.runtime.queue, snaps._owner._buf, params._owner._buf,
                        byte_count=size, src_offset=params.offset * params.dtype.itemsize,
                        dst_offset=(snaps.offset + slot * params.n) * params.dtype.itemsize)


@contextlib.contextmanager
def _gate(rt):
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

