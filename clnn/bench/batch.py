"""``clnn bench batch``: why a layer processes a batch with one ``mm``, not one ``mv`` per sample.

A dense layer of ``--inputs`` to ``--outputs`` units (default 784 -> 128, an MNIST hidden
layer) is applied to ``--batch`` samples (default 10,000), the columns of X:

* ``mv`` x batch: ``clnn.mv(W, X.col(j), out=Y.col(j))`` for every column (views, no copies),
  all enqueued, then one wait;
* one ``mm``: ``clnn.mm(W, X, out=Y)``.

Both write the same Y; the runs alternate and the medians are printed with the speed-up.
numpy's single ``W @ X`` is shown for scale.

Example:
    clnn bench batch
    clnn bench batch --inputs 256 --outputs 64 --batch 2000 --json batch.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .options import FLOATS, add_options
from .timing import SETTLE_S, interleaved, table, write_json


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--inputs", type=int, default=784, help="layer inputs (default 784)")
    parser.add_argument("--outputs", type=int, default=128, help="layer outputs (default 128)")
    parser.add_argument("--batch", type=int, default=10000, help="samples (default 10000)")
    add_options(parser, quick="batch of 1000, 3 runs", dtype=(FLOATS, "float32", None),
                repeat=(5, "timed runs of each (default 5)"))


def run(args: argparse.Namespace, name: str) -> int:
    import clnn

    from ..runtime import Runtime

    n_in, n_out, batch = args.inputs, args.outputs, args.batch
    repeat = args.repeat
    if args.quick:
        batch, repeat = min(batch, 1000), min(repeat, 3)
    dt = np.dtype(args.dtype)
    rng = np.random.default_rng(5)
    W = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dt)
    X = rng.standard_normal((n_in, batch)).astype(dt)
    with Runtime(getattr(args, "device", None)) as rt:
        w = rt.matrix(W)
        x = rt.matrix(X, layout="col")  # samples are contiguous columns
        y_mv = rt.matrix((n_out, batch), layout="col", dtype=dt)
        y_mm = rt.matrix((n_out, batch), layout="col", dtype=dt)
        xs = [x.col(j) for j in range(batch)]
        ys = [y_mv.col(j) for j in range(batch)]
        mv, mm = clnn.mv, clnn.mm

        def per_sample():
            for xj, yj in zip(xs, ys):
                mv(w, xj, out=yj)
            rt.finish()

        def batched():
            mm(w, x, out=y_mm)
            rt.finish()

        def numpy_mm():
            return W @ X

        print(f"clnn bench batch on {rt.device}")
        print(f"layer {n_in} -> {n_out} ({dt.name}) applied to {batch} samples: "
              f"{batch} mv calls against one mm of {n_out}x{n_in} by {n_in}x{batch}")
        t0 = time.perf_counter()
        res = interleaved({"mv": per_sample, "mm": batched, "numpy": numpy_mm},
                          repeat=repeat, number={"mv": 1, "mm": 1, "numpy": 1}, pause=SETTLE_S)
        ref = W.astype(np.float64) @ X.astype(np.float64)
        scale = max(1.0, float(np.max(np.abs(ref))))
        err_mv = float(np.max(np.abs(y_mv.to_numpy() - ref)) / scale)
        err_mm = float(np.max(np.abs(y_mm.to_numpy() - ref)) / scale)
        dev = rt.device.as_dict()
    flops = 2.0 * n_out * n_in * batch
    rows = [[f"{batch} x clnn.mv", f"{res['mv'] * 1e3:.2f}", f"{flops / res['mv'] / 1e9:.2f}",
             f"{res['mv'] / batch * 1e6:.1f}", f"{err_mv:.1e}"],
            ["1 x clnn.mm", f"{res['mm'] * 1e3:.2f}", f"{flops / res['mm'] / 1e9:.2f}",
             f"{res['mm'] / batch * 1e6:.3f}", f"{err_mm:.1e}"],
            ["1 x numpy @", f"{res['numpy'] * 1e3:.2f}",
             f"{flops / res['numpy'] / 1e9:.2f}", f"{res['numpy'] / batch * 1e6:.3f}", ""]]
    print(table(["", "ms", "GFLOP/s", "us/sample", "rel err"], rows))
    speedup = res["mv"] / res["mm"]
    print(f"speed-up of one mm over {batch} mv calls: {speedup:.1f}x "
          f"(mm is {res['numpy'] / res['mm']:.2f}x numpy's speed; "
          f"{time.perf_counter() - t0:.0f} s)")
    if args.json:
        write_json(args.json, {"bench": "batch", "device": dev, "inputs": n_in,
                               "outputs": n_out, "batch": batch, "dtype": dt.name,
                               "mv_s": res["mv"], "mm_s": res["mm"], "numpy_s": res["numpy"],
                               "speedup": speedup, "mv_rel_err": err_mv,
                               "mm_rel_err": err_mm})
    ok = err_mv < 1e-3 and err_mm < 1e-3
    return 0 if ok else 1
