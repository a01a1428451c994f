"""Python operators on :class:`clnn.Vector` and :class:`clnn.Matrix`, with numpy's meaning.

:class:`clnn.buffer.Array` declares the special methods; this module is their engine and
installs itself there when clnn is imported (the kernels import the arrays, so the arrays do
not import the kernels). It also does the device side of ``copy()`` and of ``fill()`` on a
strided view. Each operator is one launch of an existing kernel,
on the device, and checks its operands first as the named functions do (``ShapeError``,
``DTypeError``, ``RuntimeMismatchError``; ``OperandError`` for a non-clnn operand):

==========================  =====================================================================
``a @ b``, ``a @ x``        :func:`clnn.mm`, :func:`clnn.mv`; ``x @ a`` is ``mv(a.T, x)``;
                            ``x @ y`` is :func:`clnn.dot` (a Python float, numpy's 0-d result)
``x + y`` ``- * /``         elementwise, same shapes; a vector of length n broadcasts over the
                            rows of an (m, n) matrix (numpy's ``a + v``); a Python or numpy real
                            scalar on either side (``2 * v``, ``1 - v``, ``1 / v``)
``x += y`` ``-= *= /=``     the same, written into ``x``: no allocation
``-x``, ``+x``, ``abs(x)``  a new array (``+x`` is a copy, as in numpy)
``x == y`` ``!= < <= > >=``  elementwise, a new array of 1.0 / 0.0 in the operands' dtype (NaN
                            compares unequal to everything, as in numpy)
==========================  =====================================================================

Results keep the operands' dtype (a scalar is rounded to it, as numpy does with a Python
scalar) and the first array operand's layout. An input that shares memory with the output of
an in-place operation without being that very view (``a += a.T``) is copied first, so the
answer is numpy's. Element access (``v[i]``, ``a[i, j]``, assignment through views) is in
:func:`setitem`; reading and views are in :mod:`clnn.array`.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2], [3, 4]])
    ...     v = rt.vector([1, 1])
    ...     v += 1
    ...     print((a @ v).to_numpy(), (2 * v - 1).to_numpy(), v @ v, (a > 2).to_numpy()[1])
    [ 6. 14.] [3. 3.] 8.0 [1. 1.]
"""

from __future__ import annotations

import numbers
import sys
from typing import Any, List, Optional, Union

import numpy as np

from . import checks
from .array import Array, Matrix, Vector
from .blas1 import copy, dot
from .buffer import use_engine
from .dtypes import scalar_value
from .elementwise import BINARY, UNARY, _alloc_like, _map, _Op, _same_view, launch_map
from .errors import OperandError, ShapeError
from .gemm import mm
from .gemv import mv

__all__ = ["binary", "unary", "matmul", "setitem", "copy_array", "fill_view", "ARITH",
           "COMPARE"]

AnyArray = Union[Vector, Matrix]

#: operator name -> (symbol, map over {a} {b})
ARITH = {name: (sym, BINARY[name]) for name, sym in
         (("add", "+"), ("sub", "-"), ("mul", "*"), ("div", "/"))}
#: comparisons: 1 where true, else 0 (the ternary selects per lane in the vector loop)
COMPARE = {name: (sym, "({a} " + sym + " {b} ? ({T})1 : ({T})0)") for name, sym in
           (("eq", "=="), ("ne", "!="), ("lt", "<"), ("le", "<="), ("gt", ">"), ("ge", ">="))}
_UNARY = {"neg": ("-", "-{a}"), "pos": ("+", UNARY["copy"]),
          "abs": ("abs", "CLNN_ABS({a}, {T})")}


def _is_scalar(x: Any) -> bool:
    return (isinstance(x, (numbers.Number, np.generic))
            or (isinstance(x, np.ndarray) and x.ndim == 0))


def _foreign(op: str, x: Any) -> OperandError:
    return OperandError(
        f"{op}: the other operand is a {type(x).__name__}; clnn operators take clnn arrays of "
        "the same runtime and real scalars (copy host data to the device with "
        "rt.vector()/rt.matrix(), or read the array with .to_numpy())")


def _geometry(x: AnyArray, bcast: bool) -> _Op:
    """The kernel's view of ``x``; ``bcast``: a vector repeated on every row of the output."""
    return _Op(x, x.offset, 0, x.stride) if bcast else _Op.of(x)


def _launch(op: str, expr: str, out: AnyArray, inputs: List[tuple], alpha: float = 0.0
            ) -> AnyArray:
    """``out := expr(inputs)``, ``inputs`` as (array, broadcast) pairs; an input that shares
    memory with ``out`` but is not that very view goes through a copy (numpy's answer)."""
    temps = []
    try:
        ops = []
        for x, bcast in inputs:
            if checks.overlaps(out, x) and (bcast or not _same_view(out, x)):
                x = copy(x)
                temps.append(x)
            ops.append(_geometry(x, bcast))
        return launch_map(expr, out, ops, alpha)
    finally:
        for t in temps:  # OpenCL keeps a buffer alive until the commands using it are done
            t.release()


def _broadcast(op: str, mat: Matrix, vec: Vector) -> None:
    if vec.n != mat.n:
        hint = ("; for one value per row (numpy's v[:, None]) use clnn.add_bias(a, v, "
                "axis=0) for a sum, or a matrix of the full shape" if vec.n == mat.m else "")
        raise ShapeError(f"{op}: a vector of length {vec.n} does not broadcast against a "
                         f"matrix of shape {mat.shape}: as in numpy it is repeated on every "
                         f"row, so its length must be {mat.n}{hint}")


def binary(name: str, x: AnyArray, y: Any, reflected: bool = False, inplace: bool = False
           ) -> Any:
    """``x <name> y`` (or ``y <name> x`` when ``reflected``; into ``x`` when ``inplace``).

    ``name`` is one of :data:`ARITH` or :data:`COMPARE`. Comparisons with an object that is
    neither an array nor a number return ``NotImplemented`` (so ``v == None`` is False).
    """
    sym, expr = ARITH[name] if name in ARITH else COMPARE[name]
    op = repr(sym + "=" if inplace else sym)
    x._live()
    if isinstance(y, Array):
        y._live()
        checks.same_runtime(op, x, y)
        checks.same_dtype(op, x, y)
        if type(x) is type(y):
            if x.shape != y.shape:
                raise ShapeError(f"{op}: operands of shapes {x.shape} and {y.shape} do not "
                                 "match")
            out = x if inplace else _alloc_like(x)
            return _launch(op, expr, out, [(x, False), (y, False)])
        if isinstance(x, Matrix):
            _broadcast(op, x, y)
            out = x if inplace else _alloc_like(x)
            return _launch(op, expr, out, [(x, False), (y, True)])
        _broadcast(op, y, x)
        if inplace:
            raise ShapeError(f"{op}: the result has the matrix's shape {y.shape}, which does "
                             f"not fit in the vector of length {x.n} on the left")
        return _launch(op, expr, _alloc_like(y), [(x, True), (y, False)])
    if _is_scalar(y):
        alpha = checks.scalar(y, op, "the scalar operand")
        if reflected:
            expr = expr.replace("{a}", "alpha").replace("{b}", "{a}")
        else:
            expr = expr.replace("{b}", "alpha")
        return _map(op, expr, (x,), x if inplace else None, alpha)
    if name in COMPARE and not isinstance(y, (np.ndarray, list, tuple)):
        return NotImplemented
    raise _foreign(op, y)


def unary(name: str, x: AnyArray) -> AnyArray:
    """``-x``, ``+x`` (a copy) or ``abs(x)`` as a new array."""
    sym, expr = _UNARY[name]
    return _map(repr(sym), expr, (x,), None)


def matmul(x: AnyArray, y: Any, reflected: bool = False) -> Union[AnyArray, float]:
    """``x @ y``: ``mm``, ``mv`` (``vector @ matrix`` is ``mv(matrix.T, vector)``) or ``dot``
    (a Python float, like numpy's 0-d result)."""
    if reflected or not isinstance(y, Array):
        raise _foreign("'@'", y)
    x._live()
    y._live()
    k1 = x.n
    k2 = y.n if isinstance(y, Vector) else y.m
    if k1 != k2:
        raise ShapeError(f"'@': shapes {x.shape} and {y.shape} do not align ({k1} != {k2})")
    if isinstance(x, Matrix):
        return mm(x, y) if isinstance(y, Matrix) else mv(x, y)
    return mv(y.T, x) if isinstance(y, Matrix) else dot(x, y)


def _host_data(op: str, value: Any, shape: tuple) -> np.ndarray:
    arr = checks.host_numbers(value, op, "the value")
    try:
        return np.broadcast_to(arr, shape)
    except ValueError:
        raise ShapeError(f"{op}: a value of shape {arr.shape} does not fit a target of shape "
                         f"{shape}") from None


def setitem(arr: AnyArray, key: Any, value: Any) -> None:
    """``arr[key] = value``: one element, or a view (``v[2:5]``, ``a[1:3, :]``, ``a[0]``) set
    from a scalar (``fill``, on the device), a clnn array (one copy launch; a vector of length
    n fills every row of an (m, n) view) or host data (numpy broadcasting, written through the
    view). Values follow the conversion rules of host data.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.zeros((2, 3))
        ...     a[0, 2] = 7
        ...     a[1] = rt.vector([1, 2, 3])
        ...     a[:, 0] = 9
        ...     print(a.to_numpy())
        [[9. 0. 7.]
         [9. 2. 3.]]
    """
    op = f"{type(arr).__name__}[]="
    target = arr._resolve(key, op)
    if isinstance(target, int):  # one element, with the conversion rules of host data
        arr._write_at(target, scalar_value(value, arr.dtype, op))
        return
    if isinstance(value, Array):
        value._live()
        checks.same_runtime(op, target, value)
        checks.same_dtype(op, target, value)
        if type(value) is type(target) and value.shape == target.shape:
            if not _same_view(target, value):  # v[2:5] += 1 sets the view to itself
                _launch(op, "{a}", target, [(value, False)])
            return
        if isinstance(target, Matrix) and isinstance(value, Vector):
            _broadcast(op, target, value)
            _launch(op, "{a}", target, [(value, True)])
            return
        raise ShapeError(f"{op}: a {type(value).__name__} of shape {value.shape} does not fit "
                         f"a target of shape {target.shape}")
    if _is_scalar(value):
        target.fill(value)
        return
    target.set(_host_data(op, value, target.shape))


def copy_array(arr: AnyArray, layout: Optional[str]) -> AnyArray:
    """``arr.copy(layout)``: a new owner with ``arr``'s values, copied on the device (a matrix
    in ``layout``, its own unless given)."""
    rt = arr.runtime
    if isinstance(arr, Matrix):
        out = rt.matrix(arr.shape, layout=layout or arr.layout, dtype=arr.dtype)
    else:
        out = rt.vector(arr.n, dtype=arr.dtype)
    try:
        return copy(arr, out=out)
    except BaseException:
        out.release()
        raise


def fill_view(arr: AnyArray, value: Any) -> None:
    """``arr.fill(value)`` for a view whose elements are not one stretch: one launch."""
    launch_map("beta", arr, [], beta=value)


use_engine(sys.modules[__name__])
