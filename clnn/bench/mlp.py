"""The contenders of ``clnn bench train`` beside clnn: one dense network in numpy and in PyTorch.

The network is given by its layer sizes, ``IN-H1-...-OUT`` (:func:`parse_network`): relu on
every hidden layer, softmax + cross-entropy on the last, as in ``clnn train digits``. Both
references start from the weights they are given (clnn's initial weights), shuffle every
epoch, step with the same optimizer -- ``sgd`` is SGD(0.01, momentum 0.9), ``adam`` is
Adam(1e-3) -- and read the epoch's loss once, at its end. :class:`StepProducts` runs the
matrix products of one training step through ``clnn.mm`` alone, the speed the step could reach.

Example:
    >>> import numpy as np
    >>> sizes = parse_network("4-3-2")
    >>> w = [(np.ones((3, 4), np.float32), np.zeros(3, np.float32)),
    ...      (np.ones((2, 3), np.float32), np.zeros(2, np.float32))]
    >>> ref = NumpyMLP(w, "sgd", seed=0)
    >>> ref.predict(np.ones((1, 4), np.float32)).round(2).tolist()
    [[0.5, 0.5]]
    >>> step_flops(sizes, 8)  # 2 * 8 * (3 * (4*3 + 3*2) - 4*3)
    672
    >>> forward_flops(sizes, 8)  # 2 * 8 * (4*3 + 3*2)
    288
"""

from __future__ import annotations

import re
from typing import List, Sequence, Tuple

import numpy as np

from ..errors import ShapeError

OPTIMIZERS = ("sgd", "adam")
Weights = Sequence[Tuple[np.ndarray, np.ndarray]]


def parse_network(spec: str) -> List[int]:
    """Layer sizes of ``"IN-H1-...-OUT"``: at least two positive whole numbers.

    >>> parse_network("784-1024-512-10")
    [784, 1024, 512, 10]
    >>> parse_network("784-0-10")
    Traceback (most recent call last):
    ...
    clnn.errors.ShapeError: --network '784-0-10': layer sizes must be at least 1, got 0
    """
    parts = spec.split("-")
    if len(parts) < 2:
        raise ShapeError(f"--network {spec!r}: give the inputs, any hidden sizes and the "
                         "outputs, joined by '-' (e.g. 784-1024-512-10)")
    sizes = []
    for p in parts:
        if not re.fullmatch(r"[0-9]+", p):
            raise ShapeError(f"--network {spec!r}: {p!r} is not a whole number (layer sizes "
                             "joined by '-', e.g. 784-1024-512-10)")
        sizes.append(int(p))
        if sizes[-1] < 1:
            raise ShapeError(f"--network {spec!r}: layer sizes must be at least 1, got "
                             f"{sizes[-1]}")
    return sizes


def n_params(sizes: Sequence[int]) -> int:
    """Weights and biases of the network."""
    return sum(o * i + o for i, o in zip(sizes[:-1], sizes[1:]))


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """Floating-point operations of the matrix products of one training step at ``batch``:
    forward ``X W^T`` and weight gradient ``dZ^T X`` for every layer, input gradient ``dZ W``
    for all but the first (2 flops per multiply-add)."""
    return 3 * forward_flops(sizes, batch) - 2 * batch * sizes[0] * sizes[1]


def forward_flops(sizes: Sequence[int], batch: int = 1) -> int:
    """Floating-point operations of the matrix products of one forward pass (``predict``)
    at ``batch``: ``X W^T`` for every layer."""
    return 2 * batch * sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class NumpyMLP:
    """The network and optimizer in plain numpy (matmuls through numpy's BLAS), float32 unless
    ``dtype`` says otherwise (the tests' float64 reference)."""

    def __init__(self, weights: Weights, optimizer: str, seed: int, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.p = [np.array(a, dtype=self.dtype) for wb in weights for a in wb]
        self.opt = optimizer
        self.m = [np.zeros_like(a) for a in self.p]
        self.s = [np.zeros_like(a) for a in self.p]
        self.t = 0
        self.rng = np.random.default_rng(seed)

    def _forward(self, x: np.ndarray) -> List[np.ndarray]:
        """The input and every layer's output (before the softmax on the last)."""
        acts = [x]
        last = len(self.p) // 2 - 1
        for i in range(last + 1):
            z = acts[-1] @ self.p[2 * i].T
            z += self.p[2 * i + 1]
            if i < last:
                np.maximum(z, 0, out=z)
            acts.append(z)
        return acts

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of the rows of ``x``."""
        return _softmax_rows(self._forward(x)[-1])

    def epoch(self, x: np.ndarray, y: np.ndarray, batch: int) -> float:
        """One shuffled epoch of mini-batch steps; the mean loss."""
        n = len(x)
        perm = self.rng.permutation(n)
        xs, ys = x[perm], y[perm]
        total = 0.0
        for r0 in range(0, n, batch):
            xb, yb = xs[r0:r0 + batch], ys[r0:r0 + batch]
            B = len(xb)
            rows = np.arange(B)
            acts = self._forward(xb)
            z = acts[-1]
            z -= z.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            total += float(np.log(s[:, 0]).sum() - z[rows, yb].sum())
            dz = e / s
            dz[rows, yb] -= 1
            dz *= self.dtype.type(1.0 / B)
            grads: List[np.ndarray] = [None] * len(self.p)  # type: ignore[list-item]
            for i in range(len(self.p) // 2 - 1, -1, -1):
                grads[2 * i] = dz.T @ acts[i]
                grads[2 * i + 1] = dz.sum(axis=0)
                if i > 0:
                    dz = dz @ self.p[2 * i]
                    dz *= acts[i] > 0
            self._update(grads)
        return total / n

    def _update(self, grads: list) -> None:
        self.t += 1
        if self.opt == "adam":
            lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
            c1 = self.dtype.type(1 / (1 - b1 ** self.t))
            c2 = self.dtype.type(1 / (1 - b2 ** self.t))
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


class TorchMLP:
    """The network in PyTorch (CPU, float32): ``Linear``/``ReLU`` layers, ``cross_entropy`` on
    the logits, ``torch.optim.SGD(lr=0.01, momentum=0.9)`` or ``Adam(lr=1e-3)``. ``x`` and
    ``y`` are given once as numpy arrays and shared with torch without a copy."""

    def __init__(self, weights: Weights, optimizer: str, seed: int):
        import torch

        self.torch = torch
        mods = []
        for i, (w, b) in enumerate(weights):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.asarray(w, np.float32)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
            mods.append(lin)
            if i < len(weights) - 1:
                mods.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*mods)
        params = self.model.parameters()
        self.opt = (torch.optim.Adam(params, lr=1e-3) if optimizer == "adam"
                    else torch.optim.SGD(params, lr=0.01, momentum=0.9))
        self.gen = torch.Generator().manual_seed(seed)

    def tensors(self, x: np.ndarray, y: np.ndarray) -> tuple:
        """``x`` and ``y`` as torch tensors (no copy for float32 / int64 arrays)."""
        return (self.torch.from_numpy(np.ascontiguousarray(x, np.float32)),
                self.torch.from_numpy(np.ascontiguousarray(y, np.int64)))

    def epoch(self, x, y, batch: int) -> float:
        """One shuffled epoch on tensors from :meth:`tensors`; the mean loss."""
        torch = self.torch
        n = len(x)
        perm = torch.randperm(n, generator=self.gen)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for r0 in range(0, n, batch):
            xb, yb = xs[r0:r0 + batch], ys[r0:r0 + batch]
            self.opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.detach() * len(xb)
        return float(total) / n

    def predict(self, x) -> np.ndarray:
        """Class probabilities of the rows of tensor ``x``, under ``torch.no_grad()``."""
        with self.torch.no_grad():
            return self.torch.softmax(self.model(x), dim=1).numpy()


class StepProducts:
    """The matrix products of one training step at batch ``batch``, on device matrices of the
    step's shapes, through ``clnn.mm``: per layer ``X W^T`` (forward), ``dZ^T X`` (weight
    gradient) and, past the first layer, ``dZ W`` (input gradient). :meth:`run` enqueues them
    for ``steps`` steps and waits once, as training does. ``flops`` is one step's."""

    def __init__(self, rt, sizes: Sequence[int], batch: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.rt = rt
        self.flops = step_flops(sizes, batch)
        self.keep: list = []
        self.products: List[tuple] = []

        def mat(shape):
            m = rt.matrix(rng.uniform(-1, 1, shape).astype(np.float32))
            self.keep.append(m)
            return m

        for li, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            x, w, y = mat((batch, i)), mat((o, i)), mat((batch, o))
            dz, dw = mat((batch, o)), mat((o, i))
            self.products.append((x, w.T, y))           # Y = X W^T
            self.products.append((dz.T, x, dw))         # dW = dZ^T X
            if li > 0:
                self.products.append((dz, w, mat((batch, i))))  # dX = dZ W

    def run(self, steps: int) -> None:
        """The products of ``steps`` steps, then one wait."""
        import clnn

        for _ in range(steps):
            for a, b, c in self.products:
                clnn.mm(a, b, out=c)
        self.rt.finish()

    def release(self) -> None:
        for m in self.keep:
            m.release()
        self.keep = []
