"""Prepared launches: a kernel is never left bound to a released buffer."""

from __future__ import annotations

import numpy as np
import pyopencl as cl
import pytest
from tolerances import assert_close, ref_dot, ref_mv, ref_sum

import clnn
from clnn.launch import args_changed


@pytest.mark.oclgrind
def test_args_changed_compares_buffers_by_identity(rt):
    a = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, 64)
    twin = cl.Buffer.from_int_ptr(a.int_ptr, retain=True)  # the same cl_mem, another object
    try:
        assert twin == a  # pyopencl compares handles ...
        assert args_changed((twin, 1), (a, 1))  # ... a launch must not
        assert not args_changed((a, np.int32(1)), (a, np.int32(1)))
        assert args_changed((a, 1), (a, 2))
        assert args_changed((a,), (a, 1))
    finally:
        twin.release()
        a.release()


@pytest.mark.oclgrind
def test_release_and_reallocate_in_a_loop(rt, dtype, rng):
    """Buffers released and allocated again (a driver may reuse the handles) feed the same
    kernels each time: every result matches the float64 reference."""
    for it, n in enumerate((17, 1023, 17, 301, 3, 17)):
        hx = rng.standard_normal(3 * n).astype(dtype)
        hm = rng.standard_normal((7, n)).astype(dtype)
        x64 = hx[::3].astype(np.float64)
        with rt.vector(hx) as bx:
            assert_close(clnn.asum(bx[::3]), ref_sum(np.abs(x64)), dtype, k=n)
        with rt.matrix(hm, layout="col" if it % 2 else "row") as m:
            j = min(3, n - 1)
            col = hm[:, j]
            assert_close(clnn.asum(m.col(j)), ref_sum(np.abs(col)), dtype, k=7)
            assert_close(clnn.dot(m.col(j), m.col(j)), ref_dot(col, col), dtype, k=7)
        hv = rng.standard_normal(n).astype(dtype)
        with rt.matrix(hm) as a, rt.vector(hv) as v, rt.vector(7, dtype=dtype) as y:
            clnn.mv(a, v, out=y)
            assert_close(y.to_numpy(), ref_mv(hm, hv), dtype, k=n)
