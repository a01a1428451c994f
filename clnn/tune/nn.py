"""``clnn tune nn``: which passes of a dense network run on the packed gemm (the contract is
in :mod:`clnn.tune`).

The nn kernels' tunables that decide a layer's path (see :func:`clnn.nn._kernels.nn_defaults`:
``GEMM_B`` and ``GEMM_N`` for the forward pass, ``GEMM_BW`` and ``GEMM_MIN`` for the
backward pass) are varied one at a time around the defaults, and each candidate trains a
fixed set of networks one epoch at several batch sizes (from 16 rows, where the fused kernels
win, to 512, where the gemm does). The score is the geometric mean of the epoch times, so
every case counts alike whatever its size. The other nn tunables keep their defaults.

Example:
    >>> import clnn
    >>> from clnn.tune import nn
    >>> cands = list(nn.candidates(clnn.select_device("cpu"), "float", quick=True))
    >>> all(v == "dense" and {"GEMM_B", "GEMM_BW"} <= set(p) for v, _, p in cands)
    True
"""

from __future__ import annotations

import functools
import math
from typing import Any, Iterator, List, Tuple

import numpy as np

from ..bench.timing import interleaved
from ..devices import DeviceInfo
from ..nn import Dense, Network
from ..nn._kernels import GEMM_OFF, Kernels
from ..optim import SGD
from ..tuning import ANY, defaults

__all__ = ["candidates", "bench"]

# the values tried for each tunable (the others at their defaults)
_GRID = {"GEMM_B": (16, 32, 48, 96, 128, GEMM_OFF), "GEMM_N": (16, 32, 128),
         "GEMM_BW": (8, 32, 64, GEMM_OFF), "GEMM_MIN": (1 << 20, 1 << 22, 1 << 24, 1 << 26)}
_QUICK = {"GEMM_B": (32, GEMM_OFF), "GEMM_BW": (GEMM_OFF,)}


def candidates(device: DeviceInfo, dtype: str, quick: bool
               ) -> Iterator[Tuple[str, str, dict]]:
    """Candidates for ``clnn tune nn`` (see :mod:`clnn.tune` for the contract)."""
    base = defaults(device, "nn", "dense", dtype)
    for name, values in (_QUICK if quick else _GRID).items():
        for v in values:
            if v != base[name]:
                yield "dense", ANY, dict(base, **{name: v})


def _cases(quick: bool) -> List[Tuple[Tuple[int, ...], int]]:
    """(layer sizes, batch) of the networks each candidate trains: small and MNIST-sized
    layers, batches on both sides of the crossings."""
    if quick:
        return [((64, 256, 10), 32), ((64, 256, 10), 128), ((256, 512, 10), 64)]
    nets = [(64, 256, 10), (784, 256, 10), (784, 1024, 512, 10)]
    return [(d, b) for d in nets for b in (16, 32, 64, 128, 512)]


def _loss64(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    a = x.astype(np.float64)
    for layer in net.layers:
        a = a @ layer.weights.to_numpy().astype(np.float64).T + layer.bias.to_numpy()
        if layer.activation == "relu":
            a = np.maximum(a, 0)
    a -= a.max(axis=1, keepdims=True)
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def bench(rt: Any, variant: str, dtype: str, size_class_: str, params: dict,
          quick: bool = False) -> float:
    """Geometric mean of the seconds of one training epoch (SGD with momentum) over the
    cases of :func:`_cases`, the networks' passes on the paths ``params`` choose; raises
    AssertionError when a network's loss differs from numpy's."""
    dt = np.float32 if dtype == "float" else np.float64
    rng = np.random.default_rng(11)
    logs = []
    for dims, batch in _cases(quick):
        n = 8 * batch
        x = rng.standard_normal((n, dims[0])).astype(dt)
        y = rng.integers(0, dims[-1], n)
        acts = ["relu"] * (len(dims) - 2) + ["softmax"]
        with Network(rt, [Dense(dims[i], dims[i + 1], a) for i, a in enumerate(acts)],
                     loss="cross_entropy", dtype=dt, seed=3) as net:
            net._k = Kernels(rt, dt, params)  # before its first workspace
            got = net.gradient(x[:batch], y[:batch])
            want = _loss64(net, x[:batch], y[:batch])
            tol = 1e-4 if dt == np.float32 else 1e-10
            assert abs(got - want) <= tol * max(1.0, abs(want)), (
                f"nn {params}: loss {got} against numpy's {want} for {dims} at {batch}")
            epoch = functools.partial(net.fit, x, y, epochs=1, batch_size=batch, verbose=False,
                                      optimizer=SGD(0.01, momentum=0.9))
            t = interleaved({"fit": epoch}, repeat=3 if quick else 5, number={"fit": 1})
            logs.append(math.log(t["fit"]))
    return math.exp(sum(logs) / len(logs))
