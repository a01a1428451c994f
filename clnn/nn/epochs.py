"""The epoch loop of :meth:`clnn.nn.Network.fit`, one for one-device and data-parallel training.

:func:`run` does, epoch by epoch: the optimizer's epoch start (the learning rate), the shuffle
drawn from the generator, the full steps and the remainder step, the epoch's summary, the
:class:`History`, the divergence guard, the progress bar and ``on_epoch``. What differs
between one device (``Network.fit``) and data-parallel training (:mod:`clnn.nn.parallel`) is a
:class:`Trainer`: how the epoch's samples reach the device(s), how a step runs, how the epoch's
loss and hits are gathered, what a diverged epoch rewinds to, and any check after an epoch.

Example (a trainer that only records what the loop asks of it):
    >>> import numpy as np
    >>> class Log(Trainer):
    ...     def __init__(self):
    ...         self.calls = []
    ...     def start_epoch(self, epoch):
    ...         return 0.1
    ...     def load(self, perm):
    ...         self.calls.append(perm.tolist())
    ...     def step(self, s, last):
    ...         self.calls.append((s, last))
    ...     def gather(self):
    ...         return summary("rmse", 4.0, 0.0, 4)
    >>> t, hist = Log(), History("rmse", False)
    >>> _ = run(t, hist, epochs=1, n=3, steps=2, shuffle=True, rng=np.random.default_rng(0),
    ...         guard=True, on_epoch=None, verbose=False)
    >>> t.calls, hist["loss"], hist["lr"]
    ([[2, 0, 1], (0, False), (1, True)], [1.0], [0.1])
"""

from __future__ import annotations

import contextlib
import sys
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from ..errors import DivergenceError, OperandError

__all__ = ["History", "Trainer", "FitArgs", "run", "batches", "summary", "generator",
           "divergence_guard", "divergence_error", "progress_bar", "ON_DIVERGENCE"]

ON_DIVERGENCE = ("raise", "continue")


class History(dict):
    """Per-epoch records of :meth:`Network.fit`: ``loss``, the metric (``accuracy`` or
    ``rmse``) and, with validation data, ``val_loss`` and ``val_<metric>``; ``lr`` too."""

    def __init__(self, metric: str, validation: bool):
        super().__init__()
        self.metric = metric
        keys = ["loss", metric, "lr"]
        if validation:
            keys += ["val_loss", "val_" + metric]
        for k in keys:
            self[k] = []

    @property
    def epochs(self) -> int:
        return len(self["loss"])


class FitArgs(NamedTuple):
    """fit's arguments once checked (:meth:`Network.fit_args`): host samples and targets in
    the network's dtype, the validation pair (or None), the counts, the optimizer and whether
    the divergence guard is on."""

    x: np.ndarray
    y: np.ndarray
    validation: Optional[Tuple[np.ndarray, np.ndarray]]
    epochs: int
    batch_size: int
    optimizer: Any
    guard: bool


class Trainer:
    """What one kind of training gives :func:`run`. The loop calls, per epoch:
    :meth:`start_epoch`, :meth:`load`, then :meth:`step` for every step inside
    :meth:`stepping`, :meth:`gather`, and (when the loss is finite) :meth:`end_epoch`; a
    non-finite loss under the guard raises :meth:`diverged`'s error instead."""

    #: whether this process draws the shuffles (data-parallel over MPI: only rank 0 does; the
    #: others pass a placeholder to :meth:`load`, which receives rank 0's order)
    draws = True

    def begin(self) -> None:
        """Device work before the first epoch (buffers, launch plans, the optimizer's state)."""

    def start_epoch(self, epoch: int) -> float:
        """Start the optimizer's epoch; returns the epoch's learning rate."""
        raise NotImplementedError

    def load(self, perm: Optional[np.ndarray]) -> None:
        """Put the epoch's samples on the device(s) in the order ``perm`` (None: unshuffled)."""
        raise NotImplementedError

    def stepping(self) -> ContextManager:
        """The context around one epoch's steps."""
        return contextlib.nullcontext()

    def step(self, s: int, last: bool) -> None:
        """Enqueue step ``s`` (``last``: the remainder step) and the optimizer's update."""
        raise NotImplementedError

    def gather(self) -> Dict[str, float]:
        """The epoch's ``loss``, metric and ``val_*`` figures (see :func:`summary`)."""
        raise NotImplementedError

    def diverged(self, epoch: int, epochs: int, loss: float,
                 hist: History) -> DivergenceError:
        """Rewind the weights after a non-finite epoch loss; returns the error to raise."""
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> None:
        """Anything after a finite epoch (data-parallel: the replica check)."""

    def close(self) -> None:
        """Let go of what :meth:`begin` took; the caller calls it after :func:`run`, also
        when that raised."""


def batches(n: int, batch_size: int) -> Tuple[int, int, int]:
    """``(B, steps, rem)``: the batch (at most ``n``), the steps of an epoch over ``n``
    samples and the rows of the last one.

    Example:
        >>> batches(53, 16), batches(10, 32)
        ((16, 4, 5), (10, 1, 10))
    """
    B = min(batch_size, n)
    steps = -(-n // B)
    return B, steps, n - (steps - 1) * B


def summary(metric: str, loss_sum: float, hit_sum: float, n: int) -> Dict[str, float]:
    """The mean loss and the metric (``accuracy`` from the hits, or ``rmse``) of n samples.

    Example:
        >>> summary("accuracy", 3.0, 2.0, 4), summary("rmse", 9.0, 0.0, 1)
        ({'loss': 0.75, 'accuracy': 0.5}, {'loss': 9.0, 'rmse': 3.0})
    """
    m = float(loss_sum / n)
    if metric == "accuracy":
        return {"loss": m, "accuracy": float(hit_sum / n)}
    return {"loss": m, "rmse": float(np.sqrt(m))}


def generator(own: np.random.Generator,
              seed: Union[int, np.random.Generator, None]) -> np.random.Generator:
    """The generator fit draws its shuffles from: ``seed``'s (a Generator as is), or ``own``
    (the network's) without one."""
    if seed is None:
        return own
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def divergence_guard(on_divergence: Any) -> bool:
    """Whether fit checks each epoch's loss (``on_divergence`` is checked first)."""
    if on_divergence not in ON_DIVERGENCE:
        raise OperandError(f"fit: on_divergence must be 'raise' or 'continue', got "
                           f"{on_divergence!r}")
    return on_divergence == "raise"


def divergence_error(net: Any, starts: Sequence[np.ndarray], epoch: int, epochs: int,
                     loss: float, hist: History) -> DivergenceError:
    """The error for an epoch whose loss is not finite, after putting back the first of
    ``starts`` (the weights at the start of this epoch, then of the one before) that holds
    no NaN or infinity."""
    back = "they hold NaN or infinity: every saved copy had diverged"
    for k, w in enumerate(starts):
        if np.isfinite(w).all():
            net.params.set(w)
            back = f"they are as they were at the start of epoch {epoch + 1 - k}"
            break
    lr = hist["lr"][-1] if hist["lr"] else None
    rate = f" ({lr:.3g})" if isinstance(lr, (int, float)) else ""
    return DivergenceError(
        f"fit: training diverged: the mean training loss is {loss} in epoch {epoch + 1} of "
        f"{epochs}; the learning rate{rate} is probably too large: try a smaller one (a "
        f"tenth) with a new optimizer. The weights were rewound: {back}. "
        "fit(..., on_divergence='continue') trains on regardless.",
        epoch=epoch, loss=loss, history=hist)


def progress_bar(epochs: int, verbose: bool):
    """A tqdm bar over the epochs, or None (not verbose, stderr not a terminal, no tqdm)."""
    if not verbose or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", leave=True, dynamic_ncols=True)


def run(trainer: Trainer, hist: History, *, epochs: int, n: int, steps: int, shuffle: bool,
        rng: np.random.Generator, guard: bool,
        on_epoch: Optional[Callable[[int, dict], Any]], verbose: bool) -> History:
    """Train ``epochs`` epochs of ``steps`` steps over ``n`` samples with ``trainer``,
    appending to ``hist`` (returned). Each epoch draws one permutation of ``n`` from ``rng``
    when ``shuffle`` (after the optimizer's epoch start, as every fit has), so a seed gives
    the same orders on one device and data-parallel."""
    bar = progress_bar(epochs, verbose)
    try:
        trainer.begin()
        for epoch in range(epochs):
            lr = trainer.start_epoch(epoch)
            if shuffle:
                perm = rng.permutation(n) if trainer.draws else np.empty(n, np.int64)
            else:
                perm = None
            trainer.load(perm)
            with trainer.stepping():
                for s in range(steps):
                    trainer.step(s, s == steps - 1)
            logs = trainer.gather()
            logs["lr"] = lr
            for key in hist:
                hist[key].append(logs[key])
            if guard and not np.isfinite(logs["loss"]):
                raise trainer.diverged(epoch, epochs, logs["loss"], hist)
            trainer.end_epoch(epoch)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "lr"},
                                refresh=False)
                bar.update(1)
            if on_epoch is not None:
                on_epoch(epoch, logs)
    finally:
        if bar is not None:
            bar.close()
    return hist
