"""Losses: mean squared error, and softmax + cross-entropy fused.

``"mse"``: mean over samples and outputs of (a - t)^2 (targets shaped like the outputs); the
metric reported beside it is the root of that mean (``rmse``).

``"cross_entropy"``: the last layer must be ``softmax``; its logits go straight into one
kernel that computes the softmax, the loss -log p[label] and the gradient (p - onehot) / B,
which is stable for large logits. Targets are integer class labels; the metric is accuracy.

Example:
    >>> import numpy as np
    >>> from clnn.nn.losses import reference
    >>> round(reference("cross_entropy", np.array([[0.0, 0.0]]), np.array([1])), 4)
    0.6931
"""

from __future__ import annotations

import numpy as np

from ..errors import OperandError

__all__ = ["LOSSES", "canonical", "metric_name", "reference", "DataError"]

LOSSES = {"mse": "mse", "mean_squared_error": "mse", "cross_entropy": "cross_entropy",
          "softmax_cross_entropy": "cross_entropy", "xent": "cross_entropy"}


class DataError(OperandError, ValueError):
    """Training or evaluation data that cannot be used: NaN or Inf values, labels out of
    range, or targets that do not fit the network."""


def canonical(name: str) -> str:
    """The canonical name of loss ``name`` ("mse" or "cross_entropy")."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise OperandError(f"unknown loss {name!r}; choose 'mse' or 'cross_entropy'") from None


def metric_name(loss: str) -> str:
    return "accuracy" if canonical(loss) == "cross_entropy" else "rmse"


def reference(loss: str, out: np.ndarray, target: np.ndarray) -> float:
    """The loss with numpy: ``out`` are logits for cross_entropy, outputs for mse."""
    loss = canonical(loss)
    out = np.asarray(out, dtype=np.float64)
    if loss == "mse":
        t = np.asarray(target, dtype=np.float64).reshape(out.shape)
        return float(np.mean((out - t) ** 2))
    z = out - out.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    lab = np.asarray(target).astype(np.int64)
    return float(-np.mean(logp[np.arange(len(lab)), lab]))
