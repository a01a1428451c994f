"""gemv: ``y := alpha*op(A) x + beta*y`` -- checks first, then one kernel launch.

Like every clnn operation it takes ``out=`` (written in place, returned, nothing allocated)
or allocates its result on the operands' runtime when ``out`` is None.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2], [3, 4]])
    ...     y = rt.vector([10, 10])
    ...     print(clnn.mv(a, rt.vector([1, 1]), out=y, alpha=2, beta=1).to_numpy())
    [16. 24.]
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import checks
from .array import Matrix, Vector
from .launch import Plan, real_type, round_up
from .tuning import params as tuned_params
from .tuning import register_defaults

__all__ = ["mv", "gemv"]

_I = np.int32


def gemv_defaults(device, variant: str, dtype: str) -> dict:
    """Built-in gemv tunables: CPU devices want one work-item per block of rows with wide
    vector loads; GPUs want many work-items reading neighbouring addresses."""
    vw = 16 if dtype == "float" else 8
    if device.type == "CPU":
        return {"WGS": 1, "RPT": 4, "VW": vw}
    wgs = min(64, device.max_work_group_size)
    if variant == "row":
        return {"WGS": wgs, "RPT": 1, "VW": 4}
    return {"WGS": wgs, "RPT": 1, "VW": 1}


register_defaults("gemv", gemv_defaults)


def _gemv_plan(rt, layout: str, dtype: np.dtype, a: Matrix, x: Vector) -> tuple:
    rtype = real_type(dtype)
    p = tuned_params(rt.device, "gemv", layout, rtype)
    vw = p["VW"]
    xinc1 = x.stride == 1
    aligned = (a.offset % vw == 0 and a.ld % vw == 0
               and (layout == "col" or (xinc1 and x.offset % vw == 0)))
    key = ("gemv", layout, rtype, aligned, xinc1)
    plan = rt._plans.get(key)
    if plan is None:
        k = rt.programs.kernel("gemv.cl.mako", f"gemv_{layout}", dtype=rtype, layout=layout,
                               ALIGNED=aligned, XINC1=xinc1, **p)
        d = dtype.type
        plan = Plan(rt, k, [_I, _I, d, None, _I, _I, None, _I, _I, d, None, _I, _I], p)
        rt._plans[key] = plan
    return plan, p


def mv(a: Matrix, x: Vector, out: Optional[Vector] = None, alpha: float = 1.0,
       beta: float = 0.0) -> Vector:
    """``out := alpha * a @ x + beta * out`` (BLAS gemv); returns ``out``.

    ``a`` may be a transposed view (``w.T``). With ``beta == 0`` the old contents of ``out``
    are never read. Without ``out`` a new vector is allocated on ``a``'s runtime (and ``beta``
    has nothing to scale).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     w = rt.matrix([[1, 2, 3], [4, 5, 6]])
        ...     print(clnn.mv(w.T, rt.vector([1, 1])).to_numpy())
        [5. 7. 9.]
    """
    checks.need(a, Matrix, "mv", "a")
    checks.need(x, Vector, "mv", "x")
    rt = a.runtime
    m, n = a.m, a.n
    if out is not None:
        checks.need(out, Vector, "mv", "out")
        checks.same_runtime("mv", a, x, out)
        checks.same_dtype("mv", a, x, out)
    else:
        checks.same_runtime("mv", a, x)
        checks.same_dtype("mv", a, x)
    if x.n != n:
        raise checks.ShapeError(f"mv: a has shape {a.shape} but x has length {x.n} "
                                f"(needs {n})")
    alpha = checks.scalar(alpha, "mv", "alpha")
    beta = checks.scalar(beta, "mv", "beta")
    if out is None:
        out = rt.vector(m, dtype=a.dtype)
        beta = 0.0
    else:
        if out.n != m:
            raise checks.ShapeError(f"mv: a has shape {a.shape} but out has length {out.n} "
                                    f"(needs {m})")
        checks.no_overlap("mv", out, a, x)
    plan, p = _gemv_plan(rt, a.layout, a.dtype, a, x)
    wgs = p["WGS"]
    if a.layout == "row":
        gsize = (-(-m // p["RPT"]) * wgs,)
    else:
        gsize = (round_up(-(-m // (p["VW"] * p["RPT"])), wgs),)
    plan.launch(gsize, (wgs,), (m, n, alpha, a._owner._buf, a.offset, a.ld,
                                x._owner._buf, x.offset, x.stride, beta,
                                out._owner._buf, out.offset, out.stride))
    return out


gemv = mv
