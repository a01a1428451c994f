"""``clnn bench train``: training epochs of the digits network, clnn beside plain numpy.

Both sides train the same network (64-256-10 as in ``clnn train digits``, relu then softmax +
cross-entropy; ``--hidden`` changes the width) from the same initial weights, on the same data
(scikit-learn's 8x8 digits when installed, else random data of that shape), with the same
batch size and optimizer, float32. One epoch is: shuffle, every
mini-batch step (forward, loss, backward, update), and the epoch's loss on the host -- for
clnn that is ``net.fit(x, y, epochs=1)``; numpy is a straightforward matmul implementation.
Runs alternate between the two, at batch sizes 32, 128 and 512, and report samples/s (medians)
and clnn/numpy, the median over the rounds of each round's ratio. A timed run is whole epochs
for about 30 ms (one ``fit(epochs=k)`` call; numpy: k epochs), after 0.1 s of idle and 50 ms
of untimed epochs of the same contender, so it measures training as it runs, epoch after
epoch, not the wake-up of idle cores.

Targets (PoCL CPU device): clnn >= 1.0x numpy at batch 128 and 512; batch 32 is reported.
The exit status is 1 when a target fails.

Example:
    clnn bench train
    clnn bench train --batch-sizes 128 --repeat 5 --json train.json
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Dict, List

import numpy as np

from .timing import WARM_S, paired, table, write_json

BATCHES = (32, 128, 512)
RUN_S = 0.03
"""Length of a timed run (whole epochs, measured on numpy's side)."""
SETTLE_S = 0.1
"""Idle before each timed run: OpenBLAS's threads spin ~0.1 s after a call."""

TARGETS = {128: 1.0, 512: 1.0}
HIDDEN = 256  # the network of `clnn train digits`


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--batch-sizes", type=int, nargs="+", metavar="B",
                        help=f"batch sizes (default {' '.join(map(str, BATCHES))})")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                        help="Adam(1e-3) as in 'clnn train digits', or SGD(0.01, momentum 0.9)")
    parser.add_argument("--repeat", type=int, default=9,
                        help="rounds (timed runs per contender; default 9)")
    parser.add_argument("--hidden", type=int, default=HIDDEN, help=f"hidden units ({HIDDEN})")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI ranks: samples/s for 1 and 2 ranks and "
                             "the time in the allreduce (clnn.bench.distributed)")
    from .distributed import add_arguments as distributed_arguments

    distributed_arguments(parser)


def digits_data(seed: int = 0):
    """(x, y): the 8x8 digits scaled to [0, 1], or random data of that shape without
    scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(seed)
        return rng.random((1797, 64)).astype(np.float32), rng.integers(0, 10, 1797)
    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


class NumpyMLP:
    """The reference: the same dense network and optimizer in plain float32 numpy."""

    def __init__(self, weights: List[tuple], optimizer: str, seed: int):
        self.p = [np.array(a, dtype=np.float32) for wb in weights for a in wb]
        self.opt = optimizer
        self.m = [np.zeros_like(a) for a in self.p]
        self.s = [np.zeros_like(a) for a in self.p]
        self.t = 0
        self.rng = np.random.default_rng(seed)

    def epoch(self, x: np.ndarray, y: np.ndarray, batch: int) -> float:
        W1, b1, W2, b2 = self.p
        n = len(x)
        perm = self.rng.permutation(n)
        xs, ys = x[perm], y[perm]
        total = 0.0
        for r0 in range(0, n, batch):
            xb, yb = xs[r0:r0 + batch], ys[r0:r0 + batch]
            B = len(xb)
            rows = np.arange(B)
            a1 = np.maximum(xb @ W1.T + b1, 0)
            z = a1 @ W2.T + b2
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            total += float(np.log(s[:, 0]).sum() - z[rows, yb].sum())
            dz = e / s
            dz[rows, yb] -= 1
            dz *= np.float32(1.0 / B)
            gW2 = dz.T @ a1
            gb2 = dz.sum(axis=0)
            da1 = dz @ W2
            da1 *= a1 > 0
            gW1 = da1.T @ xb
            gb1 = da1.sum(axis=0)
            self._update([gW1, gb1, gW2, gb2])
        return total / n

    def _update(self, grads: list) -> None:
        self.t += 1
        if self.opt == "adam":
            lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
            c1 = np.float32(1 / (1 - b1 ** self.t))
            c2 = np.float32(1 / (1 - b2 ** self.t))
            for p, g, m, s in zip(self.p, grads, self.m, self.s):
                m *= b1
                m += (1 - b1) * g
                s *= b2
                s += (1 - b2) * g * g
                p -= lr * (m * c1) / (np.sqrt(s * c2) + eps)
        else:
            for p, g, v in zip(self.p, grads, self.m):
                v *= 0.9
                v += g
                p -= 0.01 * v


def run(args: argparse.Namespace, name: str = "train") -> int:
    if getattr(args, "distributed", False):
        from .distributed import run as run_distributed

        return run_distributed(args)
    import clnn
    from clnn.nn import Dense, Network

    x, y = digits_data()
    batches = args.batch_sizes or list(BATCHES)
    results: List[Dict] = []
    failed = False
    with clnn.Runtime(args.device) as rt:
        print(f"device: {rt.device}")
        print(f"network 64-{args.hidden}-10 (relu, softmax + cross-entropy), float32, "
              f"{len(x)} samples per epoch, optimizer {args.optimizer}")
        rows = []
        for B in batches:
            layers = [Dense(64, args.hidden, "relu"), Dense(args.hidden, 10, "softmax")]
            net = Network(rt, layers,
                          loss="cross_entropy", seed=0)
            ref = NumpyMLP([(la.weights.to_numpy(), la.bias.to_numpy()) for la in net.layers],
                           args.optimizer, seed=1)
            opt = clnn.optim.Adam(1e-3) if args.optimizer == "adam" else clnn.optim.SGD(
                0.01, momentum=0.9)

            # a timed run is `k` epochs (at least RUN_S of numpy's): one fit(epochs=k) call,
            # as training is run, beside k numpy epochs
            t0 = time.perf_counter()
            ref.epoch(x, y, B)
            k = max(1, min(50, round(RUN_S / max(time.perf_counter() - t0, 1e-6))))

            def run_clnn(net=net, opt=opt, B=B, k=k):
                net.fit(x, y, epochs=k, batch_size=B, optimizer=opt, verbose=False)

            def run_numpy(ref=ref, B=B, k=k):
                for _ in range(k):
                    ref.epoch(x, y, B)

            t = paired({"clnn": run_clnn, "numpy": run_numpy}, args.repeat, SETTLE_S, WARM_S)
            sc, sn = k * len(x) / t["clnn"], k * len(x) / t["numpy"]
            ratio = t["pair_ratio"]
            goal = TARGETS.get(B)
            ok = goal is None or ratio >= goal
            failed |= not ok
            rows.append((B, f"{sc:,.0f}", f"{sn:,.0f}", f"{ratio:.2f}x",
                         "-" if goal is None else f">= {goal:.1f}x " + ("ok" if ok else "MISSED")))
            results.append({"batch": B, "clnn_samples_s": sc, "numpy_samples_s": sn,
                            "ratio": ratio, "target": goal, "ok": ok,
                            "ratio_of_medians": sc / sn, "epochs_per_run": k,
                            "clnn_epoch_s": t["clnn"] / k, "numpy_epoch_s": t["numpy"] / k})
            net.release()
        print(table(["batch", "clnn samples/s", "numpy samples/s", "clnn/numpy", "target"], rows))
        if args.json:
            write_json(args.json, {"bench": "train", "device": str(rt.device),
                                   "host": platform.node(), "optimizer": args.optimizer,
                                   "hidden": args.hidden, "results": results})
    return 1 if failed else 0
