"""Data-parallel training: replicas of one network share every batch, on several devices of
one process and/or several MPI ranks.

``net.fit(x, y, devices=[...])`` and ``net.fit(x, y, comm=comm)`` come here. There are
``W = ranks x local devices`` workers; each holds a replica of the network (the network itself
is the replica on its own runtime). Every global batch of ``batch_size`` rows is cut into W
contiguous shares of near-equal size, worker ``w`` taking share ``w``. A step is:

1. every worker runs forward + loss + backward on its share, with the loss scaled by
   ``1 / global batch`` (not by its share), so its gradient is its part of the global mean;
2. each worker's ONE gradient buffer is read to the host and the local buffers are summed;
   with MPI the sum is then allreduced over the ranks: one message per step;
3. the sum is written back to every worker, whose optimizer takes the same step.

The sum over the shares equals the gradient of the whole batch, so training follows the
one-device run step for step (up to float rounding of the re-ordered sums): same seed, same
global batch size, same weights. Replicas start from the network's weights (broadcast from
rank 0) and every epoch each checks that it is still bit-identical to worker 0 (resyncing
from it when devices round differently). The per-epoch shuffle is drawn by rank 0 from the
network's generator, exactly as :meth:`Network.fit` draws it, and broadcast: the epoch loop
is the one of :mod:`clnn.nn.epochs`, this module giving its data-parallel :class:`Trainer`.

Example (two runtimes on one device stand in for two devices):
    >>> import clnn, numpy as np
    >>> from clnn.nn import Dense, Network
    >>> x = np.random.default_rng(0).normal(size=(64, 2))
    >>> y = (x[:, 0] > 0).astype(int)
    >>> with clnn.Runtime("cpu") as rt, clnn.Runtime("cpu") as rt2:
    ...     net = Network(rt, [Dense(2, 8, "tanh"), Dense(8, 2, "softmax")],
    ...                   loss="cross_entropy", seed=0)
    ...     hist = net.fit(x, y, epochs=30, batch_size=16, verbose=False,
    ...                    optimizer=clnn.optim.Adam(0.05), devices=[rt, rt2])
    ...     print(hist["accuracy"][-1] > 0.9, hist.parallel["workers"])
    True 2
"""

from __future__ import annotations

import copy
import inspect
import time
from contextlib import nullcontext
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyopencl as cl

from ..errors import ClnnError, DivergenceError, OperandError, ReleasedError, ShapeError
from .epochs import FitArgs, History, Trainer, batches, divergence_error, run, summary
from .layers import Dense

__all__ = ["fit_data_parallel", "shares", "replicate"]


def shares(n: int, parts: int) -> List[int]:
    """``n`` rows cut into ``parts`` near-equal shares, the first ``n % parts`` one larger.

    Example:
        >>> shares(10, 4)
        [3, 3, 2, 2]
    """
    q, r = divmod(n, parts)
    return [q + (i < r) for i in range(parts)]


def replicate(net, runtime):
    """A new network on ``runtime`` with ``net``'s layers, loss, dtype and current weights.

    Example:
        >>> import clnn
        >>> from clnn.nn import Dense, Network
        >>> with clnn.Runtime("cpu") as a, clnn.Runtime("cpu") as b:
        ...     net = Network(a, [Dense(3, 2, "tanh")], seed=1)
        ...     twin = replicate(net, b)
        ...     print((twin.params.to_numpy() == net.params.to_numpy()).all())
        True
    """
    layers = [Dense(la.in_features, la.out_features, la.activation, la.init)
              for la in net.layers]
    rep = type(net)(runtime, layers, loss=net.loss, dtype=net.dtype, seed=0)
    rep.params.set(net.params.to_numpy())
    return rep


def _clone_optimizer(opt):
    """An unbound copy of ``opt``: same hyper-parameters, schedule, step count and epoch."""
    c = copy.copy(opt)
    c._params = c._grads = None
    c.state_vectors = []
    c._site = None
    return c


def _as_comm(comm: Any):
    if comm is None:
        return None
    from ..distributed import Communicator

    if isinstance(comm, Communicator):
        return comm
    if hasattr(comm, "Iallreduce") and hasattr(comm, "Get_rank"):
        return Communicator(comm)
    raise OperandError(f"fit: comm must be a clnn.distributed.Communicator or an mpi4py "
                       f"communicator, got {type(comm).__name__}")


def _resolve_devices(net, devices: Any) -> List[Tuple[Any, bool]]:
    """(runtime, made here) per device entry; the network's runtime stands for itself."""
    from ..devices import select_device
    from ..runtime import Runtime

    if devices is None:
        return [(net.runtime, False)]
    if isinstance(devices, (str, bytes)) or not isinstance(devices, Sequence):
        raise OperandError("fit: devices must be a list of clnn.Runtime objects or device "
                           f"specs, got {type(devices).__name__}")
    if len(devices) == 0:
        raise ShapeError("fit: devices is empty; give at least the network's own runtime")
    out: List[Tuple[Any, Any]] = []
    have_net = False
    for i, d in enumerate(devices):
        if isinstance(d, Runtime):
            if d.released:
                raise ReleasedError(f"fit: devices[{i}] is a released runtime")
            if any(r is d for r, _ in out):
                raise OperandError(f"fit: devices[{i}] repeats a runtime; to use one device "
                                   "twice give two runtimes on it")
            have_net |= d is net.runtime
            out.append((d, None))
        else:
            info = select_device(d)  # raises DeviceError naming what exists
            if not have_net and info == net.runtime.device:
                have_net = True
                out.append((net.runtime, None))
            else:
                out.append((None, info))
    if not have_net:
        raise OperandError(f"fit: devices must include the network's own device "
                           f"({net.runtime.device}); it computes one share and keeps the "
                           "trained weights")
    made: List[Tuple[Any, bool]] = []
    try:
        for r, info in out:
            made.append((r, False) if r is not None else (Runtime(info), True))
    except BaseException:
        for r, own in made:
            if own:
                r.release()
        raise
    return made


class _Worker:
    """One replica: its network, optimizer, samples on the device and launch plans."""

    def __init__(self, net, opt, runtime, owns_runtime: bool, index: int):
        self.net, self.opt, self.rt = net, opt, runtime
        self.owns_runtime = owns_runtime
        self.index = index  # global worker index: rank * local workers + local position
        self.ws = self.data = self.full = self.last = None
        g = net.grads
        self.gbuf, self.goff = g._owner._buf, g.offset * net.dtype.itemsize
        self.host = np.empty(g.n, dtype=net.dtype)
        self.positions: Optional[np.ndarray] = None
        self.n = 0
        self.fb = 0


def _global_scale(plan, net, rows: int, global_rows: int) -> None:
    """Scale the loss gradient of a share of ``rows`` by 1 / ``global_rows`` (as for the
    whole batch) instead of 1 / ``rows``: the ``scale`` argument of nn_xent / nn_mse."""
    C = 1 if net.loss == "cross_entropy" else net.out_features
    plan.loss_site.update(scale=net.dtype.type(1.0 / (global_rows * C)))


def fit_data_parallel(net, x: Any, y: Any, *args: Any, **kwargs: Any) -> History:
    """:meth:`clnn.nn.Network.fit` across ``devices`` (a list of runtimes or device specs
    that includes the network's own) and/or MPI ranks (``comm``), with the same arguments
    (Network.fit calls this when it is given either). ``batch_size`` is the
    global batch, split across every worker of every rank. Returns the
    :class:`~clnn.nn.History`, with ``history.parallel`` holding the worker counts and the
    time spent waiting for the devices, summing on the host and in the allreduce.

    A NaN or infinite epoch loss (the sum over every worker and rank, so every rank sees it)
    raises :class:`clnn.nn.DivergenceError` on every rank as in ``Network.fit``, the weights
    rewound from the host copies that the per-epoch replica check reads anyway."""
    bound = inspect.signature(type(net).fit).bind(net, x, y, *args, **kwargs)
    bound.apply_defaults()
    o = dict(bound.arguments)
    del o["self"]
    return _fit(net, **o)


def _fit(net, x, y, epochs, batch_size, optimizer, validation, verbose, shuffle, seed,
         on_epoch, devices, comm, on_divergence) -> History:
    comm = _as_comm(comm)
    size, rank = (comm.size, comm.rank) if comm is not None else (1, 0)
    error: Optional[BaseException] = None
    rts: List[Tuple[Any, bool]] = []
    a: Optional[FitArgs] = None
    B = n_local = 0
    try:
        a = net.fit_args(x, y, validation, epochs, batch_size, optimizer, on_epoch,
                         on_divergence)
        rts = _resolve_devices(net, devices)
        n_local = len(rts)
        B = min(a.batch_size, len(a.x))
        W = size * n_local
        if B < W:
            raise ShapeError(
                f"fit: a global batch of {B} samples cannot be split across {W} workers "
                f"({size} rank{'s' if size != 1 else ''} x {n_local} device"
                f"{'s' if n_local != 1 else ''}); use batch_size >= {W} or fewer ranks")
    except ClnnError as e:
        error = e
    try:
        if comm is not None:
            _agree(comm, error, a, B, net, n_local, shuffle)
        elif error is not None:
            raise error
    except BaseException:
        for r, own in rts:
            if own:
                r.release()
        raise

    rng = net.fit_generator(seed)
    n = len(a.x)
    B, steps, rem = batches(n, a.batch_size)
    hist = History(net.metric, a.validation is not None)
    hist.parallel = {"ranks": size, "local_devices": n_local, "workers": size * n_local,
                     "global_batch": B, "steps": 0, "compute_wait_s": 0.0,
                     "host_reduce_s": 0.0, "allreduce_s": 0.0, "allreduce_bytes": 0,
                     "epoch_s": [], "resyncs": 0}
    trainer = _DataParallel(net, a, rts, comm, steps, rem, hist.parallel)
    try:
        with net.lock, comm.guard("training") if comm is not None else nullcontext():
            return run(trainer, hist, epochs=a.epochs, n=n, steps=steps, shuffle=shuffle,
                       rng=rng, guard=a.guard, on_epoch=on_epoch, verbose=verbose and rank == 0)
    finally:
        trainer.close()


class _DataParallel(Trainer):
    """The data-parallel side of the epoch loop (:mod:`clnn.nn.epochs`): the replicas and
    their shares, the step with its gradient sum, the epoch's sums over workers and ranks,
    and the replica check."""

    def __init__(self, net, a: FitArgs, rts: List[Tuple[Any, bool]], comm: Any, steps: int,
                 rem: int, stats: dict):
        self.net, self.a, self.rts, self.comm = net, a, rts, comm
        self.size, self.rank = (comm.size, comm.rank) if comm is not None else (1, 0)
        self.mpi = comm is not None and self.size > 1
        self.draws = self.rank == 0  # rank 0 draws the shuffles and broadcasts them
        self.steps, self.rem, self.stats = steps, rem, stats
        self.B = stats["global_batch"]
        self.workers: List[_Worker] = []
        self.vdata = None
        self.starts: List[np.ndarray] = []
        self.epoch = 0
        self.t_epoch = 0.0

    def begin(self) -> None:
        net, opt, a = self.net, self.a.optimizer, self.a
        B, steps, rem, rank = self.B, self.steps, self.rem, self.rank
        if self.mpi:
            host = net.params.to_numpy()
            self.comm.bcast_(host, what="initial weights")
            net.params.set(host)
        opt.bind(net.params, net.grads)
        n_local = len(self.rts)
        for i, (rt_i, own) in enumerate(self.rts):
            if rt_i is net.runtime:
                rnet, ropt = net, opt
            else:
                rnet = replicate(net, rt_i)
                ropt = _clone_optimizer(opt)
                ropt.bind(rnet.params, rnet.grads)
                for src, dst in zip(opt.state_vectors, ropt.state_vectors):
                    dst.set(src.to_numpy())
            self.workers.append(_Worker(rnet, ropt, rt_i, own, rank * n_local + i))
        W = self.stats["workers"]
        fbs, lbs = shares(B, W), shares(rem, W)
        for wk in self.workers:
            w = wk.index
            wk.fb = fbs[w]
            starts_f, starts_l = sum(fbs[:w]), sum(lbs[:w])
            pos = [s * B + starts_f + np.arange(fbs[w]) for s in range(steps - 1)]
            pos.append((steps - 1) * B + starts_l + np.arange(lbs[w]))
            wk.positions = np.concatenate(pos).astype(np.int64)
            wk.n = len(wk.positions)
            wk.ws = wk.net.new_workspace(max(fbs[w], lbs[w]))
            wk.data = wk.net.new_data(max(wk.n, 1))
            if steps > 1:
                wk.full = wk.net.new_plan(wk.ws, fbs[w], wk.data)
                _global_scale(wk.full, wk.net, fbs[w], B)
            if lbs[w]:
                wk.last = wk.net.new_plan(wk.ws, lbs[w], wk.data)
                _global_scale(wk.last, wk.net, lbs[w], rem)
        lead = self.workers[0]
        if a.validation is not None:
            xv, yv = a.validation
            nv = len(xv)
            lo, hi = rank * nv // self.size, (rank + 1) * nv // self.size
            if hi > lo:
                self.vdata = lead.net.new_data(hi - lo)
                self.vdata.upload(xv[lo:hi], yv[lo:hi])
        self.gsum = np.empty_like(lead.host)
        self.reduce = len(self.workers) > 1 or self.size > 1
        # the weights at the start of the last two epochs (host copies), for the rewind
        self.starts = [net.params.to_numpy()] if a.guard else []

    def start_epoch(self, epoch: int) -> float:
        self.epoch = epoch
        self.t_epoch = time.perf_counter()
        lr = None
        for wk in self.workers:
            lr = wk.opt.start_epoch(epoch)
        return lr

    def load(self, perm: Optional[np.ndarray]) -> None:
        if perm is not None and self.mpi:
            perm = self.comm.bcast_(np.ascontiguousarray(perm, np.int64), what="shuffle")
        a = self.a
        for wk in self.workers:
            if wk.n:
                idx = wk.positions if perm is None else perm[wk.positions]
                wk.data.upload(a.x[idx], a.y[idx])

    def step(self, s: int, last: bool) -> None:
        comm, stats = self.comm, self.stats
        if comm is not None:
            comm.phase = f"step {s + 1} of {self.steps}, epoch {self.epoch + 1}"
        active, events = [], []
        for wk in self.workers:
            p = wk.last if last else wk.full
            if p is None:
                continue
            with wk.rt._lock:
                p.point(s * wk.fb)
                p.run()
                if not self.reduce:  # one worker, one rank: nothing to sum, no waiting
                    wk.opt.enqueue()
                    continue
                events.append(cl.enqueue_copy(wk.rt.queue, wk.host, wk.gbuf,
                                              src_offset=wk.goff, is_blocking=False))
            active.append(wk)
        stats["steps"] += 1
        if not self.reduce:
            return
        t0 = time.perf_counter()
        for ev in events:
            ev.wait()
        t1 = time.perf_counter()
        if not active:
            g = self.gsum
            g.fill(0)
        elif len(active) == 1:
            g = active[0].host
        else:
            g = self.gsum
            np.add(active[0].host, active[1].host, out=g)
            for wk in active[2:]:
                g += wk.host
        t2 = time.perf_counter()
        if self.mpi:
            comm.allreduce_(g, what="allreduce of the gradients")
        t3 = time.perf_counter()
        for wk in self.workers:
            with wk.rt._lock:
                cl.enqueue_copy(wk.rt.queue, wk.gbuf, g, dst_offset=wk.goff,
                                is_blocking=False)
                wk.opt.enqueue()
        stats["compute_wait_s"] += t1 - t0
        stats["host_reduce_s"] += t2 - t1
        stats["allreduce_s"] += t3 - t2
        stats["allreduce_bytes"] += g.nbytes if self.size > 1 else 0

    def gather(self) -> Dict[str, float]:
        if self.comm is not None:
            self.comm.phase = f"end of epoch {self.epoch + 1}"
        metric = self.net.metric
        tot = np.zeros(4, np.float64)  # loss sum, hit sum, val loss sum, val hit sum
        for wk in self.workers:
            if wk.n:
                loss, hit = wk.data.results(wk.n)
                tot[0] += float(np.sum(loss, dtype=np.float64))
                tot[1] += float(np.sum(hit, dtype=np.float64))
        if self.vdata is not None:
            lead = self.workers[0]
            v = lead.net.evaluate_data(lead.ws, self.vdata, lead.ws.cap)
            tot[2] = v["loss"] * self.vdata.n
            tot[3] = (v["accuracy"] if metric == "accuracy" else 0.0) * self.vdata.n
        if self.mpi:
            self.comm.allreduce_(tot, what="allreduce of the epoch's loss")
        logs = summary(metric, tot[0], tot[1], len(self.a.x))
        if self.a.validation is not None:
            vl = summary(metric, tot[2], tot[3], len(self.a.validation[0]))
            logs.update({"val_" + k: v for k, v in vl.items()})
        return logs

    def diverged(self, epoch: int, epochs: int, loss: float,
                 hist: History) -> DivergenceError:
        err = divergence_error(self.net, self.starts[::-1], epoch, epochs, loss, hist)
        err.agreed = True  # every rank sees the same summed loss and raises it
        return err

    def end_epoch(self, epoch: int) -> None:
        weights = _check_replicas(self.workers, self.comm, self.stats)
        if self.a.guard:
            self.starts = [self.starts[-1], weights]
        self.stats["epoch_s"].append(time.perf_counter() - self.t_epoch)

    def close(self) -> None:
        """Release the replicas, their buffers and the runtimes made for this fit."""
        for wk in self.workers:
            for obj in (wk.data, wk.ws):
                if obj is not None and not wk.rt.released:
                    obj.release()
            if wk.net is not self.net and not wk.rt.released:
                wk.net.release()
        if self.vdata is not None and self.workers and not self.workers[0].rt.released:
            self.vdata.release()
        for r, own in self.rts:
            if own:
                r.release()


def _agree(comm, error, a: Optional[FitArgs], B, net, n_local, shuffle) -> None:
    """Collective: raise the same error on every rank if any rank's arguments were bad, or
    if the ranks do not all hold the same data and network (the shares would not add up)."""
    comm.agree(error, "fit argument check")
    val = a.validation
    mine = np.array([len(a.x), B, a.epochs, net.params.n, n_local, int(shuffle),
                     -1 if val is None else len(val[0])], np.int64)
    every = comm.allgather(mine, "fit argument check")
    bad = np.flatnonzero((every != every[0]).any(axis=1))
    if bad.size:
        what = ["samples", "batch_size", "epochs", "parameters", "local devices", "shuffle",
                "validation samples"]
        r = int(bad[0])
        col = int(np.flatnonzero(every[r] != every[0])[0])
        e = ShapeError(f"fit: the ranks disagree on {what[col]}: rank 0 has {every[0, col]}, "
                       f"rank {r} has {every[r, col]}; every rank must pass the same data and "
                       "arguments")
        e.agreed = True
        raise e


def _check_replicas(workers: List[_Worker], comm: Any, stats: dict) -> np.ndarray:
    """Every replica must equal worker 0's weights bit for bit (the same summed gradient and
    the same optimizer kernel give the same step); devices that round differently are
    brought back to worker 0's weights, which are returned."""
    lead = workers[0].net.params.to_numpy()
    if comm is not None and comm.size > 1 and not comm.same(lead, "replica check"):
        comm.bcast_(lead, what="replica resync")
        workers[0].net.params.set(lead)
        stats["resyncs"] += 1
    for wk in workers[1:]:
        if not np.array_equal(wk.net.params.to_numpy(), lead):
            wk.net.params.set(lead)
            stats["resyncs"] += 1
    return lead
