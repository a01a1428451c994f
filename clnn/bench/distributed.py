"""``clnn bench train --distributed``: data-parallel training epochs over 1, 2, ... MPI ranks.

The network and data are those of ``clnn bench train`` (64-256-10 on the 8x8 digits, Adam
unless ``--optimizer sgd``, float32). Every rank trains a replica on its share of each global
batch (``--batch-sizes`` are global) and the gradients are allreduced once per step
(:mod:`clnn.distributed`).

Run plainly, the command is a launcher: for each count in ``--ranks`` (default 1 2) it starts
``mpiexec -n N`` on itself, alternating the counts for ``--rounds`` rounds (machines change
speed within seconds; medians over rounds), and prints samples/s per rank count, the speed-up
over one rank, and the time spent in the gradient allreduce: inside training (which includes
waiting for the slowest rank) and alone (the same buffer allreduced back to back).
Started under ``mpiexec`` itself it measures that one world and prints its row.

Threads: each rank's PoCL CPU device gets ``cores // ranks per machine`` threads unless
``--threads`` (or ``POCL_MAX_PTHREAD_COUNT``) says otherwise.

Example:
    clnn bench train --distributed
    clnn bench train --distributed --ranks 1 2 4 --hostfile hosts --json dist.json
    mpiexec -n 2 clnn bench train --distributed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np

from ..errors import ClnnError
from .data import digits_data
from .timing import table, time_call, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the distributed mode (added to ``clnn bench train``'s)."""
    parser.add_argument("--ranks", type=int, nargs="+", metavar="N",
                        help="--distributed: rank counts to launch (default 1 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="--distributed: launches per rank count, alternating (3)")
    parser.add_argument("--threads", type=int, default=None, metavar="T",
                        help="--distributed: PoCL CPU threads per rank (default: cores / "
                             "ranks per machine)")
    parser.add_argument("--hostfile", default=None,
                        help="--distributed: hostfile passed to mpiexec (a cluster run)")
    parser.add_argument("--mpiexec", default=None,
                        help="--distributed: the mpiexec to use (default: the one beside "
                             "python, else on PATH)")
    parser.add_argument("--worker-json", default=None, help=argparse.SUPPRESS)


def _find_mpiexec(given: Optional[str]) -> str:
    if given:
        return given
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(local, os.X_OK):
        return local
    found = shutil.which("mpiexec")
    if not found:
        raise ClnnError("no mpiexec found: pip install 'clnn[mpi]' (MPICH's wheel brings one) "
                        "or load your cluster's MPI")
    return found


def _hostfile_args(mpiexec: str, hostfile: Optional[str]) -> List[str]:
    if not hostfile:
        return []
    try:
        ver = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        ver = ""
    return ["--hostfile", hostfile] if "Open MPI" in ver or "OpenRTE" in ver else \
        ["-f", hostfile]


def run(args: argparse.Namespace) -> int:
    from ..distributed import env_rank

    if list(getattr(args, "network", ["digits"])) != ["digits"]:
        raise ClnnError("--distributed trains the digits network; leave out --network")
    opts = getattr(args, "optimizer", None) or ["adam"]
    if isinstance(opts, str):
        opts = [opts]
    if len(opts) != 1:
        raise ClnnError("--distributed takes one --optimizer")
    args.optimizer = opts[0]
    if env_rank() is not None or args.worker_json:
        return _worker(args)
    return _launch(args)


# ---- the launcher ------------------------------------------------------------------------
def _launch(args: argparse.Namespace) -> int:
    import clnn

    mpiexec = _find_mpiexec(args.mpiexec)
    counts = args.ranks or [1, 2]
    if any(c < 1 for c in counts) or args.rounds < 1:
        raise ClnnError("--ranks and --rounds must be >= 1")
    batches = args.batch_sizes
    root = os.path.dirname(os.path.dirname(os.path.abspath(clnn.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    if args.threads is not None:
        env["POCL_MAX_PTHREAD_COUNT"] = str(args.threads)
    runs: Dict[int, List[dict]] = {c: [] for c in counts}
    with tempfile.TemporaryDirectory(prefix="clnn-bench-dist-") as tmp:
        for rnd in range(args.rounds):
            for c in counts:
                out = os.path.join(tmp, f"r{rnd}-n{c}.json")
                cmd = ([mpiexec] + _hostfile_args(mpiexec, args.hostfile) + ["-n", str(c)]
                       + [sys.executable, "-m", "clnn", "bench", "train", "--distributed",
                          "--worker-json", out, "--repeat", str(args.repeat),
                          "--hidden", str(args.hidden), "--optimizer", args.optimizer,
                          "--batch-sizes", *map(str, batches)]
                       + (["--device", args.device] if args.device else []))
                print(f"round {rnd + 1}/{args.rounds}: mpiexec -n {c} ...", flush=True)
                r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True)
                if r.returncode != 0 or not os.path.exists(out):
                    tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
                    raise ClnnError(f"mpiexec -n {c} failed (status {r.returncode}): "
                                    + " | ".join(tail))
                with open(out) as f:
                    runs[c].append(json.load(f))
    first = runs[counts[0]][0]
    print(f"device (rank 0): {first['device']}")
    print(f"network 64-{args.hidden}-10, float32, {first['samples']} samples per epoch, "
          f"{first['parameters']} parameters = {first['grad_bytes'] / 1024:.1f} KiB of "
          f"gradients allreduced per step, optimizer {args.optimizer}")
    rows, results = [], []
    for B in batches:
        base = None
        for c in counts:
            res = [next(b for b in run_["batches"] if b["batch"] == B) for run_ in runs[c]]
            med = {k: statistics.median(x[k] for x in res)
                   for k in ("samples_s", "epoch_s", "allreduce_s", "allreduce_alone_s",
                             "compute_wait_s")}
            if base is None:
                base = med["samples_s"]
            steps = res[0]["steps"]
            threads = runs[c][0]["threads"]
            rows.append((B, c, threads, f"{med['samples_s']:,.0f}",
                         f"{med['samples_s'] / base:.2f}x", f"{med['epoch_s'] * 1e3:.1f}",
                         "-" if c == 1 else f"{med['allreduce_s'] * 1e3:.2f} "
                         f"({100 * med['allreduce_s'] / med['epoch_s']:.0f}%)",
                         "-" if c == 1 else f"{med['allreduce_alone_s'] / steps * 1e6:.0f}"))
            results.append({"batch": B, "ranks": c, "threads_per_rank": threads,
                            "steps": steps, **med, "speedup": med["samples_s"] / base,
                            "rounds": len(res)})
    print(table(["global batch", "ranks", "threads/rank", "samples/s", "vs 1st",
                 "epoch ms", "allreduce ms/epoch (share)", "allreduce alone us/step"], rows))
    print("allreduce ms/epoch: time inside the gradient allreduce during training, waiting "
          "for the slowest rank included; alone: the same allreduce back to back")
    if args.json:
        write_json(args.json, {"bench": "train --distributed", "host": platform.node(),
                               "device": first["device"], "hidden": args.hidden,
                               "optimizer": args.optimizer, "rounds": args.rounds,
                               "results": results})
    return 0


# ---- one world, under mpiexec ------------------------------------------------------------
def _worker(args: argparse.Namespace) -> int:
    import clnn
    from clnn import distributed
    from clnn.nn import Dense, Network

    batches = args.batch_sizes
    with distributed.session() as comm:
        x, y = digits_data()
        dev = distributed.rank_device(comm, args.device)
        out = {"ranks": comm.size, "samples": len(x), "host": platform.node(),
               "threads": os.environ.get("POCL_MAX_PTHREAD_COUNT", "all"), "batches": []}
        with clnn.Runtime(dev) as rt:
            out["device"] = str(rt.device)
            for B in batches:
                net = Network(rt, [Dense(64, args.hidden, "relu"),
                                   Dense(args.hidden, 10, "softmax")],
                              loss="cross_entropy", seed=0)
                opt = clnn.optim.Adam(1e-3) if args.optimizer == "adam" else \
                    clnn.optim.SGD(0.01, momentum=0.9)
                out["parameters"] = net.n_params
                out["grad_bytes"] = net.grads.n * net.dtype.itemsize

                stats: List[dict] = []  # fit's data-parallel figures, epoch by epoch

                def epoch(net=net, B=B, opt=opt, stats=stats):
                    stats.append(net.fit(x, y, epochs=1, batch_size=B, optimizer=opt,
                                         verbose=False, comm=comm).parallel)

                epoch()  # warm-up: kernels built, buffers allocated
                ep = []
                for _ in range(max(1, args.repeat)):
                    comm.barrier()
                    ep.append(time_call(epoch))
                ar = [p["allreduce_s"] for p in stats[1:]]
                cw = [p["compute_wait_s"] for p in stats[1:]]
                steps = stats[-1]["steps"]
                # the same allreduce with no training around it
                g = np.zeros(net.grads.n, net.dtype)
                comm.barrier()
                alone = time_call(lambda g=g: comm.allreduce_(g), steps) * steps
                # every rank's medians; the slowest rank sets the pace
                mine = np.array([statistics.median(ep), statistics.median(ar),
                                 statistics.median(cw), alone])
                worst = comm.allgather(mine).max(axis=0)
                out["batches"].append({
                    "batch": B, "steps": steps, "epoch_s": worst[0],
                    "samples_s": len(x) / worst[0], "allreduce_s": worst[1],
                    "compute_wait_s": worst[2], "allreduce_alone_s": worst[3]})
                net.release()
        if comm.is_root:
            if args.worker_json:
                with open(args.worker_json, "w") as f:
                    json.dump(out, f)
            else:
                comm.print(f"device (rank 0): {out['device']}; {comm.size} ranks, "
                           f"threads per rank: {out['threads']}")
                comm.print(table(
                    ["global batch", "samples/s", "epoch ms", "allreduce ms/epoch",
                     "allreduce alone us/step"],
                    [(b["batch"], f"{b['samples_s']:,.0f}", f"{b['epoch_s'] * 1e3:.1f}",
                      f"{b['allreduce_s'] * 1e3:.2f}",
                      f"{b['allreduce_alone_s'] / b['steps'] * 1e6:.0f}")
                     for b in out["batches"]]))
                if args.json:
                    write_json(args.json, {"bench": "train --distributed", **out})
    return 0
