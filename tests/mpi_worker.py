"""A training run for the MPI tests, started as ``mpiexec -n N python tests/mpi_worker.py``.

Trains a small network data-parallel (``fit(comm=...)``) on seeded synthetic data and writes
rank 0's final weights and history to ``--out``. ``--fault MODE --fault-rank R`` makes rank R
misbehave after its first epoch: ``raise`` (an exception), ``exit`` (vanishes: ``os._exit(7)``),
``kill`` (killed by a signal, as by the OOM killer), ``hang`` (sleeps past any deadline).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import numpy as np


def data(n: int = 301, features: int = 12, classes: int = 3, seed: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    w = rng.normal(size=(features, classes))
    y = np.argmax(x @ w, axis=1)
    return x, y


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--fault", choices=["raise", "exit", "kill", "hang"])
    p.add_argument("--fault-rank", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None,
                   help="collective deadline from the second epoch on")
    a = p.parse_args()
    import clnn

    try:
        return train(a)
    except clnn.ClnnError as e:  # as the clnn command line does: one line, status 2
        print(f"clnn: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2


def train(a) -> int:
    import clnn
    from clnn import distributed
    from clnn.nn import Dense, Network

    with distributed.session() as comm:
        x, y = data()

        def on_epoch(epoch, logs):
            if a.timeout:  # from the second epoch on: the first one builds the kernels
                comm.timeout = a.timeout
            if a.fault and comm.rank == a.fault_rank:
                if a.fault == "raise":
                    raise RuntimeError("injected fault")
                if a.fault == "exit":
                    os._exit(7)
                if a.fault == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(3600)

        with clnn.Runtime(distributed.rank_device(comm)) as rt:
            net = Network(rt, [Dense(12, 17, "tanh"), Dense(17, 3, "softmax")],
                          loss="cross_entropy", seed=0)
            opt = (clnn.optim.Adam(0.01) if a.optimizer == "adam"
                   else clnn.optim.SGD(0.05, momentum=0.9))
            hist = net.fit(x, y, epochs=a.epochs, batch_size=a.batch_size, optimizer=opt,
                           verbose=False, comm=comm, on_epoch=on_epoch)
            if comm.is_root:
                np.savez(a.out, params=net.params.to_numpy(), loss=np.array(hist["loss"]),
                         accuracy=np.array(hist["accuracy"]), ranks=comm.size,
                         allreduce_calls=hist.parallel["steps"])
            comm.print(f"done: {comm.size} ranks, loss {hist['loss'][-1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
