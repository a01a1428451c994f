"""What the hostile-input tests share: after a refused call the runtime still works."""

from __future__ import annotations

import numpy as np

import clnn


def runtime_still_works(rt, dtype) -> None:
    """A small mv on ``rt`` gives the exact answer."""
    a = np.arange(12, dtype=dtype).reshape(3, 4)
    with rt.matrix(a) as da, rt.vector(np.ones(4, dtype)) as x, clnn.mv(da, x) as y:
        assert np.array_equal(y.to_numpy(), a.sum(axis=1))
