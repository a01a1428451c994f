"""The data the benchmarks run on: the digits, MNIST-shaped random samples, random matrices.

Example:
    >>> import numpy as np
    >>> x, y = mnist_shaped(8, 784, 10)
    >>> x.shape, x.dtype.name, int(y.max()) < 10
    ((8, 784), 'float32', True)
    >>> normal_matrix(np.random.default_rng(0), (3, 2), np.float32, "col").flags.f_contiguous
    True
"""

from __future__ import annotations

from typing import Tuple

import numpy as np


def digits_data(seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(x, y): scikit-learn's 8x8 digits scaled to [0, 1] (1797 x 64 float32, labels 0-9),
    or random data of that shape without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(seed)
        return rng.random((1797, 64)).astype(np.float32), rng.integers(0, 10, 1797)
    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def mnist_shaped(samples: int, inputs: int, classes: int,
                 seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """(x, y): ``samples`` rows of ``inputs`` float32 values in [0, 1) and labels of
    ``classes`` classes, drawn at random (MNIST's shape when inputs=784, classes=10)."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, inputs), dtype=np.float32),
            rng.integers(0, classes, samples))


def normal_matrix(rng: np.random.Generator, shape: Tuple[int, int], dtype,
                  layout: str = "row") -> np.ndarray:
    """Standard normal values of ``dtype`` stored row-major (``"row"``) or column-major
    (``"col"``)."""
    return np.asarray(rng.standard_normal(shape), dtype, order="C" if layout == "row" else "F")
