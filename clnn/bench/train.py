"""``clnn bench train``: training epochs of a dense network, clnn beside numpy and PyTorch.

The network is ``digits`` (64-256-10 as in ``clnn train digits``; ``--hidden`` changes the
width) on scikit-learn's 8x8 digits (random data of that shape without scikit-learn), or any
``--network IN-H1-...-OUT`` on random MNIST-shaped data (``--samples`` rows of IN values in
[0, 1), labels of OUT classes); relu hidden layers, softmax + cross-entropy, float32. The
contenders train the same network from the same initial weights with the same batch size and
optimizer (``sgd``: SGD(0.01, momentum 0.9); ``adam``: Adam(1e-3)): clnn (``net.fit``), a
plain numpy implementation and, whenever ``torch`` is importable, PyTorch on the CPU with as
many threads as the device has compute units (:mod:`clnn.bench.mlp`). One epoch is: shuffle,
every mini-batch step (forward, loss, backward, update) and the epoch's loss on the host.

A fourth contender, ``gemm``, runs the matrix products of the same steps through ``clnn.mm``
alone (forward ``X W^T`` and ``dZ^T X`` per layer, ``dZ W`` past the first): "step GF/s" is
the training's rate on those flops, "gemm GF/s" the products' own rate, the speed the step
could reach. Runs alternate round by round (A B C D, D C B A, ...), each after 0.1 s of idle
and, for runs under 0.25 s, 50 ms of untimed runs of the same contender
(:func:`clnn.bench.timing.paired_samples`); a timed run is whole epochs for at least 30 ms.
Every ratio is the median over the rounds of that round's ratio, so the machine's slow phases
cancel out. Then ``predict`` on 1024 rows, beside numpy and PyTorch under ``torch.no_grad()``.

Targets (PoCL CPU device; printed per row, exit status 1 when one is missed):

* digits: clnn >= 1.0x numpy at batch 32, 128 and 512;
* MNIST-sized networks (784 inputs, hidden layers of 256-1024, 10 outputs): clnn >= 1.5x
  PyTorch at batch 32, >= 1.3x PyTorch and numpy at 128 and 512; at 512 the step's GFLOP/s
  >= 80% of the gemm's; ``predict`` at batch 1024 >= 1.3x PyTorch.

Without PyTorch its columns and targets are left out (one line says so).

Example:
    clnn bench train
    clnn bench train --network 784-1024-512-10 --batch-sizes 128 --repeat 3
    clnn bench train --network digits 784-512-256-10 --optimizer sgd adam --json train.json
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Dict, List, Optional

import numpy as np

from ..errors import ClnnError, OutOfMemoryError
from .data import digits_data, mnist_shaped
from .mlp import (
    OPTIMIZERS,
    NumpyMLP,
    StepProducts,
    TorchMLP,
    forward_flops,
    n_params,
    parse_network,
    step_flops,
)
from .options import add_options
from .peak import FmaPeak
from .timing import SETTLE_S, WARM_S, pair_ratio, paired_samples, table, time_call, write_json

BATCHES = (32, 128, 512)
REPEAT = 9
TARGET_REPEAT = 15
"""Rounds of a case with a target: its runs are whole epochs (0.3-0.8 s) whose round ratios
spread over 0.7-2.6x on a shared machine, so the median needs more of them."""
QUICK_REPEAT = 3
RUN_S = 0.03
"""Least length of a timed run (whole epochs, measured on numpy's side)."""
LONG_RUN_S = 0.25
"""Runs at least this long get no untimed warm-up runs: waking the cores is lost in them."""
HIDDEN = 256  # the network of `clnn train digits`
SAMPLES = 8192
QUICK_SAMPLES = 2048
PREDICT_ROWS = 1024

DIGITS_TARGETS = {32: {"numpy": 1.0}, 128: {"numpy": 1.0}, 512: {"numpy": 1.0}}
MNIST_TARGETS = {32: {"torch": 1.5}, 128: {"torch": 1.3, "numpy": 1.3},
                 512: {"torch": 1.3, "numpy": 1.3, "gemm": 0.8}}
PREDICT_TARGET = 1.3


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--network", nargs="+", default=["digits"], metavar="SPEC",
                        help="networks to train: 'digits' (64-HIDDEN-10 on the 8x8 digits; "
                             "the default) or layer sizes IN-H1-...-OUT such as "
                             "784-1024-512-10 (random MNIST-shaped data)")
    parser.add_argument("--optimizer", nargs="+", choices=OPTIMIZERS, metavar="OPT",
                        help="sgd = SGD(0.01, momentum 0.9), adam = Adam(1e-3); one or both "
                             "(default: adam for digits, 'sgd adam' for the other networks)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", metavar="B",
                        help=f"batch sizes (default {' '.join(map(str, BATCHES))})")
    parser.add_argument("--samples", type=int, default=None,
                        help=f"samples per epoch of the IN-...-OUT networks (default "
                             f"{SAMPLES}, --quick {QUICK_SAMPLES})")
    parser.add_argument("--hidden", type=int, default=HIDDEN,
                        help=f"hidden units of the digits network ({HIDDEN})")
    parser.add_argument("--no-torch", action="store_true",
                        help="leave PyTorch out even when it is installed")
    add_options(parser, quick=f"{QUICK_REPEAT} rounds and {QUICK_SAMPLES} samples per epoch",
                repeat=(None, f"rounds (timed runs per contender; default {REPEAT}, "
                              f"{TARGET_REPEAT} for the cases with a target, --quick "
                              f"{QUICK_REPEAT} for all)"))
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI ranks: samples/s for 1 and 2 ranks and "
                             "the time in the allreduce (clnn.bench.distributed)")
    from .distributed import add_arguments as distributed_arguments

    distributed_arguments(parser)


def mnist_sized(sizes: List[int]) -> bool:
    """The networks the issue's targets name: 784 inputs, hidden layers of 256-1024, 10
    outputs."""
    return (len(sizes) > 2 and sizes[0] == 784 and sizes[-1] == 10
            and all(256 <= h <= 1024 for h in sizes[1:-1]))


class _Case:
    """One network of the run: its name, layer sizes, data and targets."""

    def __init__(self, spec: str, args: argparse.Namespace):
        self.digits = spec == "digits"
        if self.digits:
            if args.hidden < 1:
                raise ClnnError(f"--hidden must be at least 1, got {args.hidden}")
            self.sizes = [64, args.hidden, 10]
        else:
            self.sizes = parse_network(spec)
        self.name = "-".join(map(str, self.sizes))
        self.optimizers = args.optimizer or (["adam"] if self.digits else ["sgd", "adam"])
        self.x: Optional[np.ndarray] = None
        self.y: Optional[np.ndarray] = None

    def load(self, samples: int) -> None:
        if self.digits:
            self.x, self.y = digits_data()
            self.data = "the 8x8 digits"
        else:
            self.x, self.y = mnist_shaped(samples, self.sizes[0], self.sizes[-1])
            self.data = "random MNIST-shaped data"

    def targets(self, batch: int) -> Dict[str, float]:
        if self.digits:
            return DIGITS_TARGETS.get(batch, {})
        return MNIST_TARGETS.get(batch, {}) if mnist_sized(self.sizes) else {}

    def predict_targets(self) -> Dict[str, float]:
        return {"torch": PREDICT_TARGET} if mnist_sized(self.sizes) else {}

    def check_fits(self, device, samples: int, batch: int) -> None:
        """Refuse a network the device cannot hold, before anything is allocated."""
        big = max(i * o for i, o in zip(self.sizes[:-1], self.sizes[1:])) * 4
        need = 4 * (4 * n_params(self.sizes) + samples * self.sizes[0]
                    + 3 * batch * sum(self.sizes))
        if big > device.max_alloc or need > device.global_mem:
            raise OutOfMemoryError(
                f"--network {self.name}: needs about {need / 2**30:.1f} GiB (largest buffer "
                f"{big / 2**30:.1f} GiB) at batch {batch}; {device.name!r} has "
                f"{device.global_mem / 2**30:.1f} GiB (buffers up to "
                f"{device.max_alloc / 2**30:.1f} GiB)")


def _import_torch(skip: bool):
    if skip:
        return None
    try:
        import torch
    except (ImportError, OSError):
        return None
    return torch


def _network(rt, sizes: List[int]):
    from clnn.nn import Dense, Network

    layers = [Dense(i, o, "relu") for i, o in zip(sizes[:-2], sizes[1:-1])]
    layers.append(Dense(sizes[-2], sizes[-1], "softmax"))
    net = Network(rt, layers, loss="cross_entropy", seed=0)
    return net, [(la.weights.to_numpy(), la.bias.to_numpy()) for la in net.layers]


def _verdicts(ratios: Dict[str, float], goals: Dict[str, float]) -> Dict[str, bool]:
    """Target name -> met, for the targets whose contender ran."""
    return {k: bool(ratios[k] >= g) for k, g in goals.items() if ratios.get(k) is not None}


def _goal_text(goals: Dict[str, float], met: Dict[str, bool],
               ceilings: Optional[Dict[str, float]] = None) -> str:
    """"torch >= 1.3x ok, step/gemm >= 80% MISSED": the targets judged, or "-"; a missed
    ratio that lies above its ceiling (no implementation could reach it in this run) says
    so: "torch >= 1.3x MISSED (ceiling 1.21x)"."""
    out = []
    for k, g in goals.items():
        if k in met:
            what = f"step/gemm >= {g:.0%}" if k == "gemm" else f"{k} >= {g:.1f}x"
            text = f"{what} {'ok' if met[k] else 'MISSED'}"
            ceiling = (ceilings or {}).get(k)
            if not met[k] and ceiling is not None and ceiling < g:
                text += f" (ceiling {ceiling:.2f}x)"
            out.append(text)
    return ", ".join(out) or "-"


def _ceilings(s: Dict[str, List[float]]) -> Dict[str, float]:
    """Contender -> the median over the rounds of its time over the peak's: the most any
    implementation of the same products could gain over it in this run."""
    return {c: pair_ratio(s["peak"], s[c]) for c in ("numpy", "torch") if c in s}


def _train_case(rt, case: _Case, opt_name: str, B: int, repeat: int, torch,
                peak: FmaPeak) -> dict:
    """Time one (network, optimizer, batch) row; the row's results."""
    import clnn

    x, y = case.x, case.y
    n = len(x)
    net, weights = _network(rt, case.sizes)
    ref = NumpyMLP(weights, opt_name, seed=1)
    tm = TorchMLP(weights, opt_name, seed=1) if torch else None
    opt = clnn.optim.Adam(1e-3) if opt_name == "adam" else clnn.optim.SGD(0.01, momentum=0.9)
    prod = StepProducts(rt, case.sizes, B)
    try:
        # a timed run is k epochs (at least RUN_S of numpy's): one fit(epochs=k) call, as
        # training is run, beside k epochs of the others
        t_np = max(time_call(lambda: ref.epoch(x, y, B)), 1e-6)
        k = max(1, min(50, round(RUN_S / t_np)))
        steps = max(1, n // B) * k  # gemm: the products of k epochs' full steps

        def run_clnn():
            net.fit(x, y, epochs=k, batch_size=B, optimizer=opt, verbose=False)

        def run_numpy():
            for _ in range(k):
                ref.epoch(x, y, B)

        contenders = {"clnn": run_clnn, "numpy": run_numpy}
        if tm is not None:
            xt, yt = tm.tensors(x, y)

            def run_torch():
                for _ in range(k):
                    tm.epoch(xt, yt, B)

            contenders["torch"] = run_torch
        contenders["gemm"] = lambda: prod.run(steps)
        flops = k * n * step_flops(case.sizes, 1)  # the matrix products of k epochs
        contenders["peak"] = peak.runner(flops)
        warm = WARM_S if k * t_np < LONG_RUN_S else 0.0
        s = paired_samples(contenders, repeat, SETTLE_S, warm)
    finally:
        net.release()
        prod.release()
    flops_gemm = steps * prod.flops
    med = {c: float(np.median(v)) for c, v in s.items()}
    rounds = {c: [ta / tc for tc, ta in zip(s["clnn"], s[c])] for c in s if c != "clnn"}
    rounds["gemm"] = [r * flops / flops_gemm for r in rounds["gemm"]]  # step rate / gemm's
    ratios = {c: pair_ratio(s["clnn"], s[c]) for c in s if c != "clnn"}
    ratios["gemm"] *= flops / flops_gemm
    goals = case.targets(B)
    met = _verdicts(ratios, goals)
    ceilings = _ceilings(s)
    return {"network": case.name, "data": case.data, "optimizer": opt_name, "batch": B,
            "samples": n, "epochs_per_run": k, "rounds": repeat,
            "clnn_samples_s": k * n / med["clnn"], "numpy_samples_s": k * n / med["numpy"],
            "torch_samples_s": k * n / med["torch"] if "torch" in med else None,
            "ratio": ratios["numpy"], "torch_ratio": ratios.get("torch"),
            "ratio_of_medians": med["numpy"] / med["clnn"],
            "step_gflops": flops / med["clnn"] / 1e9,
            "gemm_gflops": flops_gemm / med["gemm"] / 1e9, "gemm_ratio": ratios["gemm"],
            "peak_gflops": peak.flops(flops) / med["peak"] / 1e9, "peak_ratio": ratios["peak"],
            "ceilings": ceilings,
            "round_ratios": rounds,
            "clnn_epoch_s": med["clnn"] / k, "numpy_epoch_s": med["numpy"] / k,
            "torch_epoch_s": med["torch"] / k if "torch" in med else None,
            "targets": goals, "met": met, "target": goals.get("numpy"),
            "ok": all(met.values()), "goal_text": _goal_text(goals, met, ceilings)}


def _predict_case(rt, case: _Case, repeat: int, torch, peak: FmaPeak) -> dict:
    """Time ``predict`` on PREDICT_ROWS rows: clnn, numpy, PyTorch under no_grad."""
    x = case.x[np.arange(PREDICT_ROWS) % len(case.x)]
    net, weights = _network(rt, case.sizes)
    ref = NumpyMLP(weights, "sgd", seed=1)
    tm = TorchMLP(weights, "sgd", seed=1) if torch else None
    try:
        want = ref.predict(x.astype(np.float64))
        err = float(np.max(np.abs(net.predict(x) - want)))
        k = max(1, min(100, round(0.05 / max(time_call(lambda: ref.predict(x)), 1e-6))))

        def run_clnn():
            for _ in range(k):
                net.predict(x)

        def run_numpy():
            for _ in range(k):
                ref.predict(x)

        contenders = {"clnn": run_clnn, "numpy": run_numpy}
        if tm is not None:
            xt = tm.tensors(x, np.zeros(1))[0]

            def run_torch():
                for _ in range(k):
                    tm.predict(xt)

            contenders["torch"] = run_torch
        contenders["peak"] = peak.runner(k * PREDICT_ROWS * forward_flops(case.sizes))
        s = paired_samples(contenders, repeat, SETTLE_S, WARM_S)
    finally:
        net.release()
    ratios = {c: pair_ratio(s["clnn"], s[c]) for c in s if c not in ("clnn", "peak")}
    goals = case.predict_targets()
    met = _verdicts(ratios, goals)
    ceilings = _ceilings(s)
    med = {c: float(np.median(v)) / k for c, v in s.items()}
    return {"network": case.name, "rows": PREDICT_ROWS, "rounds": repeat, "clnn_s": med["clnn"],
            "numpy_s": med["numpy"], "torch_s": med.get("torch"), "ratio": ratios["numpy"],
            "torch_ratio": ratios.get("torch"), "max_abs_err": err, "ceilings": ceilings,
            "peak_ratio": pair_ratio(s["clnn"], s["peak"]), "targets": goals,
            "met": met, "ok": all(met.values()), "goal_text": _goal_text(goals, met, ceilings)}


def _rounds(given: Optional[int], quick: bool, targets: Dict[str, float]) -> int:
    """Rounds of a case: ``--repeat``, else the quick run's, else more for a case with
    targets."""
    if given is not None:
        return given
    return QUICK_REPEAT if quick else TARGET_REPEAT if targets else REPEAT


def _fmt_ratio(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _ceiling_head(torch) -> List[str]:
    return ["ceil/numpy"] + (["ceil/torch"] if torch is not None else [])


def _ceiling_cells(r: dict, torch) -> List[str]:
    """The ceiling columns of a row: the most any code could gain over numpy (and torch)."""
    c = r["ceilings"]
    return [_fmt_ratio(c["numpy"])] + ([_fmt_ratio(c.get("torch"))] if torch is not None
                                       else [])


def run(args: argparse.Namespace, name: str = "train") -> int:
    given = args.repeat

    def rounds(targets: Dict[str, float]) -> int:
        return _rounds(given, args.quick, targets)

    args.batch_sizes = args.batch_sizes or list(BATCHES)
    if getattr(args, "distributed", False):
        from .distributed import run as run_distributed

        return run_distributed(args)
    import clnn

    # every check before any device work
    cases = [_Case(spec, args) for spec in args.network]
    samples = args.samples if args.samples is not None else (
        QUICK_SAMPLES if args.quick else SAMPLES)
    batches = args.batch_sizes
    for what, v in (("--repeat", [rounds({})]), ("--samples", [samples]),
                    ("--batch-sizes", batches)):
        if min(v) < 1:
            raise ClnnError(f"{what} must be at least 1, got {min(v)}")
    torch = _import_torch(args.no_torch)
    t_start = time.perf_counter()
    results: List[Dict] = []
    predicts: List[Dict] = []
    with clnn.Runtime(args.device) as rt, FmaPeak(rt) as peak:
        for case in cases:
            case.check_fits(rt.device, samples, max(batches + [PREDICT_ROWS]))
        print(f"device: {rt.device}")
        threads = rt.device.compute_units
        if torch is not None:
            torch.set_num_threads(threads)
            print(f"PyTorch {torch.__version__} on the CPU, {threads} threads (the device's "
                  "compute units)")
        else:
            print("PyTorch: " + ("left out (--no-torch)" if args.no_torch else
                                 "not installed") + "; its columns and targets are skipped")
        print("ratios: clnn's speed over each contender's, the median over the rounds of "
              "each round's ratio; step GF/s: the training's rate on its matrix products, "
              "gemm GF/s: clnn.mm alone on the same products; peak GF/s: the device's "
              "multiply-add rate (clnn bench peak) in the same rounds, and ceil: each "
              "contender's time over the peak's for the same flops, the most any code could "
              "gain over it")
        for case in cases:
            case.load(samples)
            for opt_name in case.optimizers:
                print(f"\nnetwork {case.name} (relu, softmax + cross-entropy), float32, "
                      f"{len(case.x)} samples per epoch of {case.data}, optimizer {opt_name}")
                rows = []
                for B in batches:
                    r = _train_case(rt, case, opt_name, B, rounds(case.targets(B)), torch,
                                    peak)
                    results.append(r)
                    row = [B, f"{r['clnn_samples_s']:,.0f}", f"{r['numpy_samples_s']:,.0f}",
                           _fmt_ratio(r["ratio"])]
                    if torch is not None:
                        row += [f"{r['torch_samples_s']:,.0f}", _fmt_ratio(r["torch_ratio"])]
                    row += [f"{r['step_gflops']:.1f}", f"{r['gemm_gflops']:.1f}",
                            f"{r['gemm_ratio']:.0%}", f"{r['peak_gflops']:.1f}",
                            f"{r['peak_ratio']:.0%}", *_ceiling_cells(r, torch),
                            r["goal_text"]]
                    rows.append(row)
                head = ["batch", "clnn samples/s", "numpy samples/s", "clnn/numpy"]
                if torch is not None:
                    head += ["torch samples/s", "clnn/torch"]
                head += ["step GF/s", "gemm GF/s", "step/gemm", "peak GF/s", "step/peak",
                         *_ceiling_head(torch), "targets"]
                print(table(head, rows), flush=True)
            predicts.append(_predict_case(
                rt, case, rounds(case.predict_targets()), torch, peak))
        print(f"\npredict on {PREDICT_ROWS} rows (PyTorch under torch.no_grad()), ms per call")
        head = ["network", "clnn ms", "numpy ms", "clnn/numpy"]
        if torch is not None:
            head += ["torch ms", "clnn/torch"]
        rows = []
        for p in predicts:
            row = [p["network"], f"{p['clnn_s'] * 1e3:.2f}", f"{p['numpy_s'] * 1e3:.2f}",
                   _fmt_ratio(p["ratio"])]
            if torch is not None:
                row += [f"{p['torch_s'] * 1e3:.2f}", _fmt_ratio(p["torch_ratio"])]
            rows.append(row + [f"{p['max_abs_err']:.1e}", f"{p['peak_ratio']:.0%}",
                               *_ceiling_cells(p, torch), p["goal_text"]])
        print(table(head + ["max |err|", "clnn/peak", *_ceiling_head(torch), "targets"], rows))
        missed = sum(not v for r in results + predicts for v in r["met"].values())
        judged = sum(len(r["met"]) for r in results + predicts)
        print(f"\n{judged - missed} of {judged} targets met"
              + (f", {missed} MISSED" if missed else "")
              + f" ({time.perf_counter() - t_start:.0f} s)")
        if args.json:
            write_json(args.json, {
                "bench": "train", "device": str(rt.device), "host": platform.node(),
                "torch": torch.__version__ if torch is not None else None,
                "torch_threads": threads if torch is not None else None,
                "networks": [c.name for c in cases], "hidden": args.hidden,
                "optimizer": results[0]["optimizer"] if results else None,
                "repeat": given, "results": results, "predict": predicts})
    return 1 if missed else 0
