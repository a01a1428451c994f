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

NAME = "digits"


def add_arguments(parser: argparse.ArgumentParser, name: str = NAME) -> None:
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (60)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split, the initial weights and the shuffles (0)")
    parser.add_argument("--out", default="digits.png", help="PNG of the learning curves")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (32)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden units (256)")
    parser.add_argument("--lr", type=float, default=3e-3, help="initial Adam learning rate")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


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
    import clnn
    from clnn.nn import Dense, Network
    from clnn.schedules import CosineLR

    from .plotting import learning_curves

    if args.epochs < 1:
        raise clnn.OperandError("--epochs must be >= 1")
    x_tr, y_tr, x_val, y_val, x_test, y_test = load(args.seed)
    t0 = time.perf_counter()
    with clnn.Runtime(getattr(args, "device", None)) as rt:
        print(f"device: {rt.device}")
        net = Network(rt, [Dense(64, args.hidden, "relu"), Dense(args.hidden, 10, "softmax")],
                      loss="cross_entropy", dtype=np.dtype(args.dtype), seed=args.seed)
        print(f"{net}; {len(x_tr)} training, {len(x_val)} validation, {len(x_test)} test "
              "images")
        opt = clnn.optim.Adam(CosineLR(args.lr, args.epochs))
        hist = net.fit(x_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                       optimizer=opt, validation=(x_val, y_val), verbose=not args.quiet)
        test = net.evaluate(x_test, y_test)
    elapsed = time.perf_counter() - t0
    learning_curves(hist, args.out, f"clnn: 8x8 digits, {net.layers[0].in_features}-"
                    f"{args.hidden}-10, test accuracy {100 * test['accuracy']:.1f}%",
                    metric="accuracy")
    print(f"final training loss {hist['loss'][-1]:.4f}, validation accuracy "
          f"{100 * hist['val_accuracy'][-1]:.1f}%")
    print(f"learning curves: {args.out}")
    print(f"time: {elapsed:.1f} s")
    print(f"test accuracy: {100 * test['accuracy']:.1f}%")
    sys.stdout.flush()
    return 0
