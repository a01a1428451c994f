"""``clnn train digits``: a 64-256-10 network learns scikit-learn's bundled 8x8 digits.

The 1797 images (no download) are split into a held-out test set (20%, stratified by the
seed), and the rest into training and validation data. The network (relu hidden layer,
softmax + cross-entropy) trains with Adam under a cosine schedule; the command prints
``test accuracy: NN.N%`` and writes the learning curves to a PNG.

Example:
    clnn train digits --epochs 60 --seed 0 --out digits.png
"""

from __future__ import annotations

import argparse
import sys
import time

import matplotlib  # noqa: F401  (the examples extra; a missing one becomes a hint)
import numpy as np
import sklearn  # noqa: F401
import tqdm  # noqa: F401
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from . import add_training_arguments

NAME = "digits"


def add_arguments(parser: argparse.ArgumentParser, name: str = NAME) -> None:
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (60)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split, the initial weights and the shuffles (0)")
    parser.add_argument("--out", default="digits.png", help="PNG of the learning curves")
    add_training_arguments(parser, hidden=256, hidden_help="hidden units")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI ranks, the global --batch-size split "
                             "across them: mpiexec -n 2 clnn train digits --distributed")


def load(seed: int):
    """(x_train, y_train, x_val, y_val, x_test, y_test), pixels scaled to [0, 1]."""
    d = load_digits()
    x, y = d.data / 16.0, d.target
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y,
                                                      random_state=seed)
    x_tr, x_val, y_tr, y_val = train_test_split(x_rest, y_rest, test_size=0.1,
                                                stratify=y_rest, random_state=seed)
    return x_tr, y_tr, x_val, y_val, x_test, y_test


def run(args: argparse.Namespace, name: str = NAME) -> int:
    if getattr(args, "distributed", False):
        from clnn import distributed

        with distributed.session() as comm:
            return _run(args, comm)
    return _run(args, None)


def _run(args: argparse.Namespace, comm) -> int:
    """Train and report; ``comm`` (a clnn.distributed.Communicator): every rank trains a
    replica on its share of each batch, rank 0 prints and plots."""
    import clnn
    from clnn.nn import Dense, Network
    from clnn.schedules import CosineLR

    from .plotting import learning_curves

    if args.epochs < 1:
        raise clnn.OperandError("--epochs must be >= 1")
    x_tr, y_tr, x_val, y_val, x_test, y_test = load(args.seed)
    t0 = time.perf_counter()
    say = print if comm is None else comm.print
    device = getattr(args, "device", None)
    if comm is not None:
        device = clnn.distributed.rank_device(comm, device)
    with clnn.Runtime(device) as rt:
        say(f"device: {rt.device}" + ("" if comm is None else " (rank 0)"))
        net = Network(rt, [Dense(64, args.hidden, "relu"), Dense(args.hidden, 10, "softmax")],
                      loss="cross_entropy", dtype=np.dtype(args.dtype), seed=args.seed)
        say(f"{net}; {len(x_tr)} training, {len(x_val)} validation, {len(x_test)} test "
            "images")
        if comm is not None:
            say(f"data-parallel over {comm.size} MPI rank{'s' * (comm.size > 1)}: global "
                f"batch {args.batch_size}, one allreduce of "
                f"{net.grads.n * net.dtype.itemsize / 1024:.1f} KiB per step")
        opt = clnn.optim.Adam(CosineLR(args.lr, args.epochs))
        hist = net.fit(x_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                       optimizer=opt, validation=(x_val, y_val), comm=comm,
                       verbose=not args.quiet and (comm is None or comm.is_root))
        test = net.evaluate(x_test, y_test)
    elapsed = time.perf_counter() - t0
    if comm is None or comm.is_root:
        learning_curves(hist, args.out, f"clnn: 8x8 digits, {net.layers[0].in_features}-"
                        f"{args.hidden}-10, test accuracy {100 * test['accuracy']:.1f}%",
                        metric="accuracy")
    say(f"final training loss {hist['loss'][-1]:.4f}, validation accuracy "
        f"{100 * hist['val_accuracy'][-1]:.1f}%")
    say(f"learning curves: {args.out}")
    if comm is not None and comm.size > 1:
        say(f"time in the gradient allreduce (rank 0): {hist.parallel['allreduce_s']:.2f} s")
    say(f"time: {elapsed:.1f} s")
    say(f"test accuracy: {100 * test['accuracy']:.1f}%")
    sys.stdout.flush()
    return 0
