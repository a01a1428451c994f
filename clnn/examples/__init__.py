"""Runnable examples, also available as commands: ``clnn train digits`` and
``clnn train regression``. They need the optional extra: ``pip install 'clnn[examples]'``
(scikit-learn, matplotlib, tqdm)."""

from __future__ import annotations

import argparse


def add_training_arguments(parser: argparse.ArgumentParser, hidden: int,
                           hidden_help: str) -> None:
    """The training options every example takes: --batch-size, --hidden (``hidden`` units by
    default), --lr, --dtype and --quiet."""
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (32)")
    parser.add_argument("--hidden", type=int, default=hidden,
                        help=f"{hidden_help} ({hidden})")
    parser.add_argument("--lr", type=float, default=3e-3, help="initial Adam learning rate")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
