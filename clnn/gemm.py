"""gemm: ``C := alpha*op(A) op(B) + beta*C`` for every combination of layouts and transposes.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2], [3, 4]])
    ...     print(clnn.mm(a, a.T).to_numpy())
    [[ 5. 11.]
     [11. 25.]]
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import checks
from .array import Matrix
from .launch import Plan, real_type, round_up
from .tuning import params as tuned_params
from .tuning import register_defaults

__all__ = ["mm", "gemm"]

_I = np.int32


def gemm_defaults(device, variant: str, dtype: str) -> dict:
    """Built-in gemm tunables (reference kernel): TS x TS work-groups."""
    ts = 16 if device.max_work_group_size >= 256 else 8
    return {"TS": ts}


register_defaults("gemm", gemm_defaults)


def _plan(rt, a: Matrix, b: Matrix, c: Matrix) -> tuple:
    rtype = real_type(a.dtype)
    variant = a.layout[0] + b.layout[0] + c.layout[0]
    p = tuned_params(rt.device, "gemm", variant, rtype)
    key = ("gemm", variant, rtype)
    plan = rt._plans.get(key)
    if plan is None:
        k = rt.programs.kernel("gemm.cl.mako", "gemm_ref", dtype=rtype, la=a.layout,
                               lb=b.layout, lc=c.layout, VW=1, **p)
        d = a.dtype.type
        plan = Plan(rt, k, [_I, _I, _I, d, None, _I, _I, None, _I, _I, d, None, _I, _I], p)
        rt._plans[key] = plan
    return plan, p


def mm(a: Matrix, b: Matrix, out: Optional[Matrix] = None, alpha: float = 1.0,
       beta: float = 0.0) -> Matrix:
    """``out := alpha * a @ b + beta * out`` (BLAS gemm); returns ``out``.

    ``a`` and ``b`` may be transposed views. With ``beta == 0`` the old ``out`` is never read.
    Without ``out`` a new row-layout matrix is allocated on the operands' runtime.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.mm(rt.matrix([[1, 2]]), rt.matrix([[3], [4]])).to_numpy())
        [[11.]]
    """
    checks.need(a, Matrix, "mm", "a")
    checks.need(b, Matrix, "mm", "b")
    if out is not None:
        checks.need(out, Matrix, "mm", "out")
        checks.same_runtime("mm", a, b, out)
        checks.same_dtype("mm", a, b, out)
    else:
        checks.same_runtime("mm", a, b)
        checks.same_dtype("mm", a, b)
    m, k = a.shape
    if b.m != k:
        raise checks.ShapeError(f"mm: a has shape {a.shape} but b has shape {b.shape} "
                                f"(needs {k} rows)")
    n = b.n
    alpha = checks.scalar(alpha, "mm", "alpha")
    beta = checks.scalar(beta, "mm", "beta")
    rt = a.runtime
    if out is None:
        out = rt.matrix((m, n), dtype=a.dtype)
        beta = 0.0
    else:
        if out.shape != (m, n):
            raise checks.ShapeError(f"mm: a @ b has shape {(m, n)} but out has shape "
                                    f"{out.shape}")
        checks.no_overlap("mm", out, a, b)
    plan, p = _plan(rt, a, b, out)
    ts = p["TS"]
    plan.launch((round_up(m, ts), round_up(n, ts)), (ts, ts),
                (m, n, k, alpha, a._owner._buf, a.offset, a.ld, b._owner._buf, b.offset, b.ld,
                 beta, out._owner._buf, out.offset, out.ld))
    return out


gemm = mm
