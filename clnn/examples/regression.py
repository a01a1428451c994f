"""``clnn train regression``: a small tanh network learns y = sin(x1) + cos(x2).

Samples are drawn uniformly from [-pi, pi]^2 (seeded); a held-out test set measures the mean
squared error, printed as ``test MSE: ...``; the learning curves go to a PNG.

Example:
    clnn train regression --epochs 150 --seed 0 --out regression.png
"""

from __future__ import annotations

import argparse
import sys
import time

import matplotlib  # noqa: F401  (the examples extra; a missing one becomes a hint)
import numpy as np
import tqdm  # noqa: F401

from . import add_training_arguments

NAME = "regression"


def target(x: np.ndarray) -> np.ndarray:
    """y = sin(x1) + cos(x2), shaped (n, 1)."""
    return (np.sin(x[:, 0]) + np.cos(x[:, 1]))[:, None]


def add_arguments(parser: argparse.ArgumentParser, name: str = NAME) -> None:
    parser.add_argument("--epochs", type=int, default=150, help="training epochs (150)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data, the initial weights and the shuffles (0)")
    parser.add_argument("--out", default="regression.png", help="PNG of the learning curves")
    parser.add_argument("--samples", type=int, default=4000, help="training samples (4000)")
    add_training_arguments(parser, hidden=64, hidden_help="units per hidden layer")


def data(seed: int, n: int):
    """(x_train, y_train, x_val, y_val, x_test, y_test) for n training samples."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-np.pi, np.pi, size=(n + n // 4 + n // 4, 2))
    y = target(x)
    a, b = n, n + n // 4
    return x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]


def run(args: argparse.Namespace, name: str = NAME) -> int:
    import clnn
    from clnn.nn import Dense, Network
    from clnn.schedules import CosineLR

    from .plotting import learning_curves

    if args.epochs < 1 or args.samples < 8:
        raise clnn.OperandError("--epochs must be >= 1 and --samples >= 8")
    x_tr, y_tr, x_val, y_val, x_test, y_test = data(args.seed, args.samples)
    h = args.hidden
    t0 = time.perf_counter()
    with clnn.Runtime(getattr(args, "device", None)) as rt:
        print(f"device: {rt.device}")
        net = Network(rt, [Dense(2, h, "tanh"), Dense(h, h, "tanh"), Dense(h, 1)],
                      loss="mse", dtype=np.dtype(args.dtype), seed=args.seed)
        print(f"{net}; {len(x_tr)} training, {len(x_val)} validation, {len(x_test)} test "
              "samples of y = sin(x1) + cos(x2)")
        opt = clnn.optim.Adam(CosineLR(args.lr, args.epochs, min_lr=args.lr / 100))
        hist = net.fit(x_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                       optimizer=opt, validation=(x_val, y_val), verbose=not args.quiet)
        test = net.evaluate(x_test, y_test)
    elapsed = time.perf_counter() - t0
    learning_curves(hist, args.out, f"clnn: y = sin(x1) + cos(x2), test MSE "
                    f"{test['loss']:.2e}", metric=None)
    print(f"final training loss {hist['loss'][-1]:.3e}, validation MSE "
          f"{hist['val_loss'][-1]:.3e}")
    print(f"learning curves: {args.out}")
    print(f"time: {elapsed:.1f} s")
    print(f"test MSE: {test['loss']:.3e}")
    sys.stdout.flush()
    return 0
