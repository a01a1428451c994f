"""Learning-rate schedules: plain callables ``epoch -> lr`` that an optimizer takes as ``lr``.

Example:
    >>> from clnn.schedules import StepLR, CosineLR
    >>> s = StepLR(0.1, step=10, gamma=0.5)
    >>> s(0), s(10), s(25)
    (0.1, 0.05, 0.025)
    >>> c = CosineLR(0.1, epochs=10)
    >>> round(c(0), 6), round(c(5), 6), round(c(10), 6)
    (0.1, 0.05, 0.0)
"""

from __future__ import annotations

import math

from .errors import OperandError

__all__ = ["StepLR", "CosineLR"]


def _pos(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise OperandError(f"schedule: {what}={v!r} must be a finite number >= 0")
    return float(v)


def _count(v, owner: str, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise OperandError(f"{owner}: {what}={v!r} must be an integer >= 1")
    return v


class StepLR:
    """``lr * gamma ** (epoch // step)``."""

    def __init__(self, lr: float, step: int, gamma: float = 0.1):
        self.lr = _pos(lr, "lr")
        self.step = _count(step, "StepLR", "step")
        self.gamma = _pos(gamma, "gamma")

    def __call__(self, epoch: int) -> float:
        return self.lr * self.gamma ** (epoch // self.step)

    def __repr__(self) -> str:
        return f"StepLR({self.lr}, step={self.step}, gamma={self.gamma})"


class CosineLR:
    """Cosine annealing from ``lr`` at epoch 0 to ``min_lr`` at epoch ``epochs`` (and
    after): ``min_lr + (lr - min_lr) * (1 + cos(pi * epoch / epochs)) / 2``."""

    def __init__(self, lr: float, epochs: int, min_lr: float = 0.0):
        self.lr = _pos(lr, "lr")
        self.epochs = _count(epochs, "CosineLR", "epochs")
        self.min_lr = _pos(min_lr, "min_lr")

    def __call__(self, epoch: int) -> float:
        e = min(max(epoch, 0), self.epochs)
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * e
                                                                           / self.epochs))

    def __repr__(self) -> str:
        return f"CosineLR({self.lr}, epochs={self.epochs}, min_lr={self.min_lr})"
