"""Learning-curve plots for the examples (matplotlib, Agg backend: no display needed).

Example:
    >>> import os, tempfile
    >>> from clnn.examples.plotting import learning_curves
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> learning_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, path, "demo")
    >>> os.path.getsize(path) > 0
    True
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from ..atomic import atomic_write  # noqa: E402

__all__ = ["learning_curves"]


def learning_curves(history: Mapping[str, Sequence[float]], path: str, title: str,
                    metric: Optional[str] = None, log_loss: bool = True) -> None:
    """Write a PNG with the loss (and ``metric``) per epoch, train and validation, to
    ``path`` (atomically: a temporary file renamed over it, with the permissions a plain
    ``open(path, "wb")`` gives: those of the file it replaces, or 0o666 less the umask)."""
    panels = ["loss"] + ([metric] if metric else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, key in zip(axes[0], panels):
        for name, style in ((key, "-"), ("val_" + key, "--")):
            vals = history.get(name)
            if vals:
                ax.plot(range(1, len(vals) + 1), vals, style,
                        label="validation" if name.startswith("val_") else "training")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        if key == "loss" and log_loss:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    try:
        with atomic_write(path, "wb", prefix=".clnn-plot-") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
