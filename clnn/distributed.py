"""Data-parallel training across MPI ranks (mpi4py): a communicator with bounded waits.

Every rank holds a replica of the network and computes gradients on its share of each global
batch; :meth:`Communicator.allreduce_` sums the network's ONE gradient buffer over the ranks
(one message per step, not one per layer), so every replica takes the same step and stays
identical. ``net.fit(x, y, comm=comm)`` does all of that (see :mod:`clnn.nn.parallel`).

Install with ``pip install "clnn[mpi]"`` (mpi4py and the MPICH wheel, which puts ``mpiexec`` in
the environment's ``bin``) and run ``mpiexec -n 2 clnn train digits --distributed``.

Faults never hang a run:

* every collective is non-blocking and waited for with a deadline (``timeout`` seconds,
  ``CLNN_MPI_TIMEOUT``, default 120): a rank that gets no reply in time says so on stderr and
  aborts the whole job (``MPI_Abort``); a rank that dies is noticed by ``mpiexec``, which stops
  the others;
* an exception inside a collective phase (training) is printed with the rank that raised it
  and aborts the job (:meth:`Communicator.fail`), instead of leaving the others waiting;
* errors that every rank finds the same way before training (bad arguments, a batch too
  small for the ranks) are agreed on with :meth:`Communicator.agree` and raised on every rank
  as :class:`DistributedError`; :func:`session` prints them once, from rank 0.

Example (one process, no launcher: a world of one rank):
    >>> from clnn import distributed
    >>> comm = distributed.Communicator()  # doctest: +SKIP
    >>> comm.rank, comm.size  # doctest: +SKIP
    (0, 1)

Command line check of a launch (each rank reports its host, device and an allreduce)::

    mpiexec -n 2 python -m clnn.distributed
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional

import numpy as np

from .errors import ClnnError

__all__ = ["Communicator", "CommStats", "DistributedError", "MPIUnavailableError",
           "CollectiveTimeout", "session", "rank_device", "matching_devices", "env_rank",
           "env_size", "limit_threads", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 120.0
ENV_TIMEOUT = "CLNN_MPI_TIMEOUT"
_MSG = 2048  # bytes of an error message exchanged by agree()
_ABORT_GRACE = 0.3  # seconds between printing why and MPI_Abort

# rank and size as launchers put them in the environment (MPICH/Hydra, Open MPI, PMIx, Slurm)
_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_LOCAL_SIZE_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


class DistributedError(ClnnError):
    """A distributed run cannot go on: an error that every rank agreed on (raised on each)."""


class MPIUnavailableError(DistributedError):
    """mpi4py or the MPI library it needs is not installed."""


class CollectiveTimeout(DistributedError):
    """A collective did not complete within the deadline (a rank died, hangs or lags)."""


def _env_int(names: tuple) -> Optional[int]:
    for n in names:
        v = os.environ.get(n, "").strip()
        if v.isdigit():
            return int(v)
    return None


def env_rank() -> Optional[int]:
    """This process's rank as the MPI launcher announced it in the environment (None when not
    started by a launcher). Known before MPI is initialised, so even "mpi4py is missing" can
    be printed by rank 0 only."""
    r = _env_int(_RANK_VARS)
    if r is None and os.environ.get("SLURM_STEP_ID") is not None:
        r = _env_int(("SLURM_PROCID",))
    return r


def env_size() -> Optional[int]:
    """The world size the launcher announced (None when not started by a launcher)."""
    return _env_int(_SIZE_VARS)


def _import_mpi():
    try:
        import mpi4py
    except ImportError:
        raise MPIUnavailableError(
            "distributed training needs mpi4py and an MPI library: pip install 'clnn[mpi]'"
        ) from None
    mpi4py.rc.finalize = True
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MPIUnavailableError(
            f"mpi4py cannot load an MPI library ({first}); pip install 'clnn[mpi]' installs "
            "MPICH, or load your cluster's MPI module") from None
    return MPI


def limit_threads(local_size: int) -> Optional[str]:
    """Share the CPU cores between the ranks of one machine: unless the user set it, PoCL's
    CPU device gets ``cores // local_size`` threads (``POCL_MAX_PTHREAD_COUNT``). Must run
    before the first OpenCL call of the process. Returns the value set, or None."""
    if local_size <= 1 or "POCL_MAX_PTHREAD_COUNT" in os.environ:
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    v = str(max(1, cores // local_size))
    os.environ["POCL_MAX_PTHREAD_COUNT"] = v
    return v


@dataclass
class CommStats:
    """Time and traffic of the collectives of one :class:`Communicator`."""

    allreduce_calls: int = 0
    allreduce_s: float = 0.0  # wall time inside allreduce_, including waiting for slow ranks
    allreduce_bytes: int = 0
    other_calls: int = 0
    other_s: float = 0.0
    per_call: List[float] = field(default_factory=list, repr=False)

    def reset(self) -> None:
        self.allreduce_calls = self.allreduce_bytes = self.other_calls = 0
        self.allreduce_s = self.other_s = 0.0
        self.per_call.clear()

    def as_dict(self) -> dict:
        return {"allreduce_calls": self.allreduce_calls, "allreduce_s": self.allreduce_s,
                "allreduce_bytes": self.allreduce_bytes, "other_calls": self.other_calls,
                "other_s": self.other_s}


class Communicator:
    """An MPI communicator (``MPI.COMM_WORLD`` unless ``comm`` is given) with deadlines.

    ``timeout``: seconds any collective may wait for the other ranks (default
    ``CLNN_MPI_TIMEOUT`` or 120). Attributes: ``rank``, ``size``, ``local_rank`` and
    ``local_size`` (ranks on this machine), ``is_root``, ``stats`` (:class:`CommStats`).

    Example (under ``mpiexec -n 2``)::

        comm = clnn.distributed.Communicator()
        g = np.ones(4, np.float32)
        comm.allreduce_(g)      # g == 2 on both ranks
        comm.print("done")      # printed once, by rank 0
    """

    def __init__(self, comm: Any = None, timeout: Optional[float] = None):
        MPI = _import_mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        if not hasattr(self.comm, "Iallreduce"):
            raise DistributedError(f"Communicator: {type(comm).__name__} is not an mpi4py "
                                   "communicator")
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        if timeout is None:
            env = os.environ.get(ENV_TIMEOUT, "").strip()
            try:
                timeout = float(env) if env else DEFAULT_TIMEOUT
            except ValueError:
                raise DistributedError(f"{ENV_TIMEOUT}={env!r} is not a number of seconds"
                                       ) from None
        if not timeout > 0:
            raise DistributedError(f"Communicator: timeout must be > 0 seconds, got {timeout}")
        self.timeout = float(timeout)
        self.stats = CommStats()
        self.phase = "setup"  # named in timeout messages ("step 17 of epoch 2")
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        try:
            self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        finally:
            node.Free()

    # ---- identity ---------------------------------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __repr__(self) -> str:
        return (f"<clnn.distributed.Communicator rank {self.rank} of {self.size} "
                f"(local {self.local_rank} of {self.local_size}), timeout {self.timeout:g} s>")

    def print(self, *args: Any, **kw: Any) -> None:
        """``print`` on rank 0 only (flushed, so lines are not held back by the launcher)."""
        if self.rank == 0:
            kw.setdefault("flush", True)
            print(*args, **kw)

    # ---- waiting with a deadline ------------------------------------------------------------
    def _wait(self, req: Any, what: str) -> None:
        """Drive ``req`` to completion, then return; past the deadline, report and abort.

        MPI makes progress only while a rank calls into it, so a rank that slept between
        polls would delay its partners too: for the first second this polls continuously,
        yielding the core after each poll (as MPICH's own blocking calls spin); after that
        (a rank far behind: building kernels, or gone) it polls every millisecond."""
        if req.Test():
            return
        t0 = time.perf_counter()
        deadline = t0 + self.timeout
        relaxed = t0 + 1.0
        yield_ = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))
        while not req.Test():
            now = time.perf_counter()
            if now < relaxed:
                yield_()
                continue
            if now > deadline:
                self._timed_out(what)
            time.sleep(1e-3)

    def _timed_out(self, what: str) -> None:
        msg = (f"clnn: rank {self.rank} of {self.size}: no reply from the other ranks within "
               f"{self.timeout:g} s in {what} ({self.phase}); a rank died, hangs or is far "
               f"slower. Stopping all ranks (set {ENV_TIMEOUT} to wait longer).")
        self._abort(msg, 3)

    def _abort(self, msg: str, code: int) -> None:
        try:
            sys.stdout.flush()
        except Exception:
            pass
        print(msg, file=sys.stderr, flush=True)
        # the launcher forwards our output through a pipe; MPI_Abort makes it kill every
        # process at once, which can drop what is still in flight: give it a moment
        time.sleep(_ABORT_GRACE)
        self.comm.Abort(code)
        os._exit(code)  # pragma: no cover -- Abort does not return

    # ---- collectives ------------------------------------------------------------------------
    def allreduce_(self, buf: np.ndarray, what: str = "allreduce") -> np.ndarray:
        """Sum ``buf`` (a contiguous numpy array) over all ranks, in place; returns it."""
        t0 = time.perf_counter()
        if self.size > 1:
            req = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
            self._wait(req, what)
        dt = time.perf_counter() - t0
        s = self.stats
        s.allreduce_calls += 1
        s.allreduce_s += dt
        s.allreduce_bytes += buf.nbytes
        return buf

    def bcast_(self, buf: np.ndarray, root: int = 0, what: str = "broadcast") -> np.ndarray:
        """Overwrite ``buf`` on every rank with rank ``root``'s values; returns it."""
        t0 = time.perf_counter()
        if self.size > 1:
            self._wait(self.comm.Ibcast(buf, root=root), what)
        self.stats.other_calls += 1
        self.stats.other_s += time.perf_counter() - t0
        return buf

    def allgather(self, value: np.ndarray, what: str = "allgather") -> np.ndarray:
        """Rows of every rank's ``value`` (a small 1-d array), stacked in rank order."""
        value = np.ascontiguousarray(value)
        out = np.empty((self.size,) + value.shape, dtype=value.dtype)
        t0 = time.perf_counter()
        if self.size > 1:
            self._wait(self.comm.Iallgather(value, out), what)
        else:
            out[0] = value
        self.stats.other_calls += 1
        self.stats.other_s += time.perf_counter() - t0
        return out

    def barrier(self, what: str = "barrier") -> None:
        if self.size > 1:
            self._wait(self.comm.Ibarrier(), what)

    def same(self, arr: np.ndarray, what: str = "replica check") -> bool:
        """Whether ``arr`` is bit-identical on every rank (compares CRC-32 checksums)."""
        crc = np.array([zlib.crc32(np.ascontiguousarray(arr).view(np.uint8))], np.int64)
        sums = self.allgather(crc, what)
        return bool((sums == sums[0]).all())

    # ---- errors -----------------------------------------------------------------------------
    def agree(self, error: Optional[BaseException], what: str = "argument check") -> None:
        """Collective: each rank passes the error it found (or None). If any rank found one,
        every rank raises :class:`DistributedError` with the message of the lowest such rank
        (so a launcher-wide mistake is reported once, and no rank is left waiting)."""
        flags = self.allgather(np.array([0 if error is None else 1], np.int32), what)
        bad = np.flatnonzero(flags[:, 0])
        if bad.size == 0:
            return
        src = int(bad[0])
        msg = np.zeros(_MSG, np.uint8)
        if self.rank == src:
            text = _one_line(error).encode("utf-8", "replace")[:_MSG - 1]
            msg[:len(text)] = np.frombuffer(text, np.uint8)
        self.bcast_(msg, root=src, what=what)
        if error is not None:  # a rank that found an error raises its own
            error.agreed = True
            raise error
        text = bytes(msg).rstrip(b"\0").decode("utf-8", "replace")
        e = DistributedError(f"{text} (rank {src})")
        e.agreed = True
        raise e

    def fail(self, exc: BaseException, code: int = 1) -> None:
        """Stop the whole job because of ``exc`` raised on this rank: one line on stderr
        naming the rank, then ``MPI_Abort``. With one rank, ``exc`` is re-raised instead."""
        if self.size == 1:
            raise exc
        self._abort(f"clnn: rank {self.rank} of {self.size} failed: {_one_line(exc)}; "
                    f"stopping all ranks", code)

    @contextlib.contextmanager
    def guard(self, phase: str = "training") -> Iterator[None]:
        """Any exception inside the block stops every rank (:meth:`fail`)."""
        old = self.phase
        self.phase = phase
        try:
            yield
        except BaseException as e:  # noqa: B902 -- also KeyboardInterrupt: others must stop
            if getattr(e, "agreed", False) or isinstance(e, SystemExit) and e.code in (0, None):
                raise
            self.fail(e)
        finally:
            self.phase = old


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    name = type(e).__name__
    if isinstance(e, ClnnError):
        return first or name
    return f"{name}: {first}" if first else name


# ---- devices ------------------------------------------------------------------------------
def matching_devices(spec: Any = None) -> list:
    """Every device ``spec`` could mean, for spreading ranks over them: the devices the first
    satisfiable alternative of a spec allows (``"gpu"`` or a name part: all matches; ``"P:D"``
    exactly one; ``"gpu+fp64,cpu"``: every GPU with fp64, else every CPU); an ``int`` or a
    DeviceInfo exactly one; None gives every GPU, else every CPU, else every device."""
    from .devices import all_matching, devices, select_device

    if spec is None:
        devs = devices()
        for kind in ("GPU", "CPU"):
            found = [d for d in devs if d.type == kind]
            if found:
                return found
        return devs
    if not isinstance(spec, str):
        return [select_device(spec)]
    return all_matching(spec)


def rank_device(comm: Communicator, spec: Any = None):
    """The device this rank trains on: the ``local_rank % k``-th of the k devices ``spec``
    matches (``spec`` None: ``CLNN_DEVICE``, else every GPU, else the CPU). So on a node with
    4 GPUs, 4 ranks take one GPU each; with more ranks than devices, ranks share them.
    ``CLNN_DEVICE="P:D"`` (one device) pins every rank to it."""
    if spec is None:
        env = os.environ.get("CLNN_DEVICE", "").strip()
        spec = env or None
    found = matching_devices(spec)
    return found[comm.local_rank % len(found)]


# ---- command-line sessions ----------------------------------------------------------------
@contextlib.contextmanager
def session(timeout: Optional[float] = None, threads: bool = True) -> Iterator[Communicator]:
    """The frame of a distributed command-line program: yields a :class:`Communicator`.

    * mpi4py missing: one line (from rank 0 only) and exit status 2, on every rank;
    * ``threads``: PoCL's CPU threads are shared out between the ranks of one machine
      (:func:`limit_threads`) before OpenCL starts;
    * an error every rank agreed on (:meth:`Communicator.agree`) is raised on rank 0 only
      (the CLI prints it once); the others exit with status 2, silently;
    * any other exception stops every rank with a message naming the failing rank.
    """
    erank = env_rank()
    try:
        comm = Communicator(timeout=timeout)
    except DistributedError:
        if erank not in (None, 0):
            raise SystemExit(2) from None
        raise
    if threads:
        limit_threads(comm.local_size)
    try:
        with comm.guard("setup"):
            yield comm
    except ClnnError as e:
        if getattr(e, "agreed", False) and not comm.is_root:
            raise SystemExit(2) from None
        raise


# ---- `python -m clnn.distributed`: check a launch -------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    """Each rank reports host, device and the time of a 1 MB allreduce."""
    import argparse
    import socket

    parser = argparse.ArgumentParser(prog="python -m clnn.distributed",
                                     description="check an MPI launch of clnn")
    parser.add_argument("--device", default=None, help="device kind or spec to spread over")
    parser.add_argument("--timeout", type=float, default=None, help="collective deadline, s")
    args = parser.parse_args(argv)
    try:
        with session(args.timeout) as comm:
            dev = rank_device(comm, args.device)
            buf = np.ones(1 << 18, np.float32)
            comm.allreduce_(buf)  # warm-up
            t0 = time.perf_counter()
            for _ in range(10):
                buf[:] = 1
                comm.allreduce_(buf)
            dt = (time.perf_counter() - t0) / 10
            ok = bool((buf == comm.size).all())
            line = np.zeros(256, np.uint8)
            text = (f"rank {comm.rank}/{comm.size} on {socket.gethostname()} (local "
                    f"{comm.local_rank}/{comm.local_size}): {dev}; allreduce 1 MiB "
                    f"{dt * 1e3:.2f} ms {'ok' if ok else 'WRONG'}").encode()[:255]
            line[:len(text)] = np.frombuffer(text, np.uint8)
            lines = comm.allgather(line)
            for row in lines:
                comm.print(bytes(row).rstrip(b"\0").decode())
            return 0 if ok else 1
    except ClnnError as e:
        print(f"clnn: error: {_one_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
