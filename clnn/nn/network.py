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

import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import checks, transfer
from ..array import Matrix, Vector, as_dtype
from ..errors import (
    OperandError,
    ReleasedError,
    ShapeError,
)
from ..gemv import mv
from . import activations
from . import init as _init
from ._kernels import kernels
from .buffers import Data, VectorWorkspace, Workspace, pad
from .epochs import (
    FitArgs,
    History,
    batches,
    divergence_guard,
    generator,
    run,
    summary,
)
from .layers import Dense
from .losses import DataError, canonical, metric_name
from .onedevice import OneDevice
from .plan import BatchPlan

__all__ = ["Network"]

def _as_int(v: Any, what: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < lo:
        raise ShapeError(f"{what} must be an integer >= {lo}, got {v!r}")
    return int(v)


def _finite(arr: np.ndarray, dtype: np.dtype, what: str, hint: str = "") -> np.ndarray:
    """``arr`` as a contiguous array of ``dtype``; DataError naming the first sample (row)
    that holds a NaN or infinity."""
    arr = np.ascontiguousarray(arr, dtype=dtype)
    bad = ~np.isfinite(arr)
    if bad.any():
        r = int(np.argwhere(bad)[0][0])
        raise DataError(f"{what} contains NaN or Inf (first in sample {r}){hint}")
    return arr


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
        self._ws: Dict[tuple, Workspace] = {}
        self._vws: Optional[VectorWorkspace] = None
        self._datas: Dict[str, Data] = {}
        self._vin: Optional[Vector] = None
        self._snaps: Optional[Vector] = None  # fit's weights at two epoch starts (rewind)
        self._lock = threading.RLock()
        # one parameter buffer, one gradient buffer: layer segments 64-byte aligned
        offs, total = [], 0
        for layer in layers:
            w_off = total
            total += pad(layer.out_features * layer.in_features)
            b_off = total
            total += pad(layer.out_features)
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
    def _workspace(self, cap: int, train: bool) -> Workspace:
        for (c, t), ws in self._ws.items():
            if t == train and c >= cap:
                return ws
        old = self._ws.pop((max([c for c, t in self._ws if t == train], default=0), train),
                           None)
        if old is not None:
            old.release()
        ws = Workspace(self, cap, train)
        self._ws[(cap, train)] = ws
        return ws

    def _plan(self, ws: Workspace, B: int, data: Optional[Data], mode: str,
              input_grad: bool = False) -> BatchPlan:
        key = (B, id(data), mode, input_grad)
        p = ws.plans.get(key)
        if p is None or p.data is not data:
            p = BatchPlan(self, ws, B, data, mode, input_grad)
            ws.plans[key] = p
        return p

    # ---- data checks ------------------------------------------------------------------------
    def _host_x(self, x: Any, what: str, ndim: Optional[int] = None) -> np.ndarray:
        arr = checks.host_numbers(x, what, "x", error=DataError, runtime=self.runtime,
                                  owner="the network")
        if ndim is not None and arr.ndim != ndim or arr.ndim not in (1, 2):
            raise ShapeError(f"{what}: x must be 2-d (samples, features), got shape "
                             f"{arr.shape}")
        feats = arr.shape[-1]
        if feats != self.in_features:
            raise ShapeError(f"{what}: x has {feats} features per sample but the network "
                             f"takes {self.in_features}")
        if arr.size == 0:
            raise ShapeError(f"{what}: x holds no samples")
        return _finite(arr, self.dtype, f"{what}: x", "; clean the data first")

    def _host_y(self, y: Any, n: int, what: str) -> np.ndarray:
        arr = checks.host_numbers(y, what, "y", error=DataError, runtime=self.runtime,
                                  owner="the network")
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
        return _finite(arr, self.dtype, f"{what}: y")

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
                ws = self._vws = VectorWorkspace(self)
            h = x
            for i, layer in enumerate(self.layers):
                out = ws.out[i]
                mv(layer.weights, h, out=out)
                a = activations.code(layer.activation)
                s = ws.sites[i]
                with rt._lock:
                    s()
                    if a == activations.SOFTMAX:
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

    def _data(self, slot: str, n: int, bs: int) -> Data:
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
        d = Data(self, n, self._y_width(),
                  shuffled=train and (n < 2**24 or self.dtype == np.float64), xt=xt)
        self._datas[slot] = d
        return d

    def _drop_plans(self, data: Data) -> None:
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

    def evaluate_data(self, ws: Workspace, data: Data, bs: int) -> Dict[str, float]:
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
        trainer = OneDevice(self, a, B, rem)
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
        optimizer.check(self.params, self.grads)
        guard = divergence_guard(on_divergence)
        if on_epoch is not None and not callable(on_epoch):
            raise OperandError("fit: on_epoch must be callable")
        return FitArgs(xh, yh, val, epochs, batch_size, optimizer, guard)

    def fit_generator(self, seed: Union[int, np.random.Generator, None]
                      ) -> np.random.Generator:
        """The generator fit draws its shuffles from: ``seed``'s, or the network's own
        (internal to clnn.nn)."""
        return generator(self._rng, seed)

    def new_workspace(self, cap: int) -> Workspace:
        """A training workspace for batches of up to ``cap`` rows, outside the network's
        cache: the caller releases it (internal to clnn.nn)."""
        return Workspace(self, cap, True)

    def new_data(self, n: int) -> Data:
        """A device buffer for ``n`` samples (unshuffled), outside the network's cache: the
        caller releases it (internal to clnn.nn)."""
        return Data(self, n, self._y_width())

    def new_plan(self, ws: Workspace, rows: int, data: Data) -> BatchPlan:
        """The training launches of a batch of ``rows`` samples of ``data`` on ``ws``, not
        kept in the workspace's plans (internal to clnn.nn)."""
        return BatchPlan(self, ws, rows, data, "train")

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str) -> None:
        """Write architecture and weights to one ``.npz`` file, atomically."""
        self._live()
        from .io import save

        save(self, path)
