"""Elementwise maps over vectors and matrices, all rendered from ``elementwise.cl.mako``.

Every function takes clnn arrays of one dtype and one runtime, writes ``out`` when given (and
returns it) or allocates the result (same shape, the first operand's layout). Operands may be
views in any layout -- sub-matrices, transposes, strided vectors: offsets and strides go to the
kernel, nothing is copied. ``out`` may be exactly the same view as an input (in place); any
other overlap between ``out`` and an input raises :class:`clnn.ShapeError`. Nothing is written
when a call is refused.

=========================================  ==================================================
``add(a, b)``, ``sub``, ``mul``, ``div``   ``a + b``, ``a - b``, ``a * b``, ``a / b``
``scale_shift(x, alpha, beta)``            ``alpha * x + beta``
``exp(x)``, ``log(x)``, ``tanh(x)``        the math functions
``sigmoid(x)``, ``relu(x)``                ``1 / (1 + exp(-x))``, ``max(x, 0)`` (NaN stays NaN)
``sigmoid_grad(y, grad=None)``             ``grad * y * (1 - y)`` from the activation output y
``tanh_grad(y, grad=None)``                ``grad * (1 - y * y)``
``relu_grad(y, grad=None)``                ``grad`` where ``y > 0``, else 0
``add_bias(a, bias, axis, activation)``    ``act(a + bias)`` broadcast, one fused pass
``activate(x, name)``                      the activation ``name`` (None/"identity" copies)
``activate_grad(y, name, grad=None)``      its derivative from the output, times ``grad``
=========================================  ==================================================

Without ``grad`` the ``*_grad`` functions return the derivative itself; with it they return
the product ``grad * f'`` in one pass, which is what backpropagation needs.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     z = rt.matrix([[-1, 2], [3, -4]])
    ...     b = rt.vector([10, 20])
    ...     print(clnn.add_bias(z, b, axis=1, activation="relu").to_numpy())
    [[ 9. 22.]
     [13. 16.]]
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Union

import numpy as np

from . import checks
from .array import Array, Matrix, Vector
from .errors import OperandError, ShapeError
from .launch import Plan, build_fitting, check_wgs, real_type, round_up
from .tuning import generation, register_defaults
from .tuning import params as tuned_params

__all__ = ["add", "sub", "mul", "div", "scale_shift", "exp", "log", "tanh", "sigmoid", "relu",
           "sigmoid_grad", "tanh_grad", "relu_grad", "add_bias", "activate", "activate_grad",
           "ACTIVATIONS"]

_I = np.int32
AnyArray = Union[Vector, Matrix]

# The maps, as format strings over {a} {b} {c} (input values), {T} (value type), {FT} {IT}
# (literal float/int type names of that width, for the CLNN_* math macros), alpha, beta.
UNARY = {
    "copy": "{a}",
    "scale_shift": "alpha * {a} + beta",
    "exp": "CLNN_EXP({a}, {T}, {FT}, {IT})",
    "log": "CLNN_LOG({a}, {T}, {FT}, {IT})",
    "tanh": "CLNN_TANH({a}, {T}, {FT}, {IT})",
    "sigmoid": "({T})1 / (({T})1 + CLNN_EXP(-{a}, {T}, {FT}, {IT}))",
    "relu": "({a} < ({T})0 ? ({T})0 : {a})",
    "sigmoid_grad": "{a} * (({T})1 - {a})",
    "tanh_grad": "({T})1 - {a} * {a}",
    "relu_grad": "({a} > ({T})0 ? ({T})1 : ({T})0)",
}
BINARY = {
    "add": "{a} + {b}",
    "sub": "{a} - {b}",
    "mul": "{a} * {b}",
    "div": "{a} / {b}",
    "axpby": "alpha * {a} + beta * {b}",
    # fused backprop: a = activation output y, b = incoming gradient
    "sigmoid_grad": "{b} * {a} * (({T})1 - {a})",
    "tanh_grad": "{b} * (({T})1 - {a} * {a})",
    "relu_grad": "({a} > ({T})0 ? {b} : ({T})0)",
}
#: activation names accepted by :func:`add_bias`, :func:`activate` and :func:`activate_grad`
# the activations, each with the code the nn and gemm kernels take as ``act`` (the one list:
# clnn.nn.activations adds softmax and calls identity "linear", and the templates read it)
ACTIVATION_CODES = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3}
ACTIVATIONS = tuple(sorted(ACTIVATION_CODES))
_MATH = re.compile(r"\b(exp|log|tanh|CLNN_EXP|CLNN_LOG|CLNN_TANH)\(")


def elementwise_defaults(device, variant: str, dtype: str) -> dict:
    """CPUs: one work-item per block of BS contiguous elements with vector loads. VWM is the
    width of maps with math functions: in float they are inline arithmetic (full width); in
    double they call the builtins, so at most 256 bits (PoCL miscompiles wider vectors passed
    to a call). GPUs: one element per work-item, neighbours adjacent."""
    if device.type == "CPU":
        f = dtype == "float"
        return {"WGS": 1, "BS": 16384, "VW": 16 if f else 8, "VWM": 16 if f else 4}
    # a power of two within the device's work-group limit (256 alone broke devices of 64)
    wgs = 1 << (min(256, device.max_work_group_size).bit_length() - 1)
    return {"WGS": wgs, "BS": 1, "VW": 1, "VWM": 1}


def _validate(device, variant: str, dtype: str, p: dict) -> None:
    check_wgs(device, p)


register_defaults("elementwise", elementwise_defaults, _validate)


# ---- operand geometry ------------------------------------------------------------------------
class _Op:
    """One operand as the kernel sees it: buffer, offset and logical strides (si, sj) of
    element (i, j) -- a vector is a 1 x n row; a broadcast operand has a zero stride."""

    __slots__ = ("arr", "off", "si", "sj")

    def __init__(self, arr: Array, off: int, si: int, sj: int):
        self.arr, self.off, self.si, self.sj = arr, off, si, sj

    @classmethod
    def of(cls, x: AnyArray) -> _Op:
        if isinstance(x, Vector):
            return cls(x, x.offset, 0, x.stride)
        if x.layout == "row":
            return cls(x, x.offset, x.ld, 1)
        return cls(x, x.offset, 1, x.ld)

    def key(self) -> tuple:
        return (self.off, self.si, self.sj)


def _same_view(a: Array, b: Array) -> bool:
    return (a._owner is b._owner and type(a) is type(b) and a.shape == b.shape
            and _Op.of(a).key() == _Op.of(b).key())


def _check_operands(op: str, inputs: Sequence[Array], out: Optional[Array]) -> None:
    first = inputs[0]
    if out is not None:
        checks.same_runtime(op, first, *inputs[1:], out)
        checks.same_dtype(op, first, *inputs[1:], out)
    else:
        checks.same_runtime(op, first, *inputs[1:])
        checks.same_dtype(op, first, *inputs[1:])


def _need_array(x, op: str, name: str) -> None:
    if isinstance(x, Vector):
        checks.need(x, Vector, op, name)
    else:
        checks.need(x, Matrix, op, name)


def _check_out(op: str, out: Array, shape: tuple, kind: type, ins: Sequence[Array],
               inplace: Sequence[Array]) -> None:
    """``out`` must have ``shape``; it may be the same view as one of ``inplace`` but must not
    otherwise overlap any input."""
    if not isinstance(out, kind):
        raise ShapeError(f"{op}: out must be a clnn.{kind.__name__} of shape {shape}, got "
                         f"{out._describe()}")
    if out.shape != shape:
        raise ShapeError(f"{op}: out has shape {out.shape}, needs {shape}")
    for x in ins:
        if checks.overlaps(out, x) and not (any(x is y for y in inplace)
                                            and _same_view(out, x)):
            raise ShapeError(f"{op}: out shares memory with an input but is not the very same "
                             "view (in place needs out to be exactly that input); use a "
                             "separate buffer")


def _alloc_like(x: AnyArray) -> AnyArray:
    rt = x.runtime
    if isinstance(x, Matrix):
        return rt.matrix(x.shape, layout=x.layout, dtype=x.dtype)
    return rt.vector(x.n, dtype=x.dtype)


# ---- the launch ------------------------------------------------------------------------------
def _plan(rt, expr: str, dtype: np.dtype, kinds: str, out1: bool, aligned: bool,
          p: dict) -> Plan:
    def make() -> Plan:
        rtype = real_type(dtype)
        d = dtype.type

        def build(q: dict) -> Plan:
            k = rt.programs.kernel("elementwise.cl.mako", "elementwise_map", dtype=rtype,
                                   expr=expr, kinds=kinds, OUT1=out1, ALIGNED=aligned,
                                   VW=q["VW"], BS=q["BS"], WGS=q["WGS"])
            return Plan(rt, k, [_I, _I, d, d, None, _I, _I, _I]
                        + [None, _I, _I, _I] * len(kinds), q)

        return build_fitting(build, p, "WGS")  # launch_map takes WGS from plan.params

    return rt.memo(("elementwise", expr, dtype, kinds, out1, aligned, generation()), make)


def _params(rt, dtype: np.dtype, math: bool) -> dict:
    def make() -> dict:
        p = tuned_params(rt.device, "elementwise", "map", real_type(dtype))
        if math:
            p = dict(p, VW=p["VWM"])
        p["BS"] = round_up(p["BS"], p["VW"])
        return p

    return rt.memo(("elementwise-params", dtype, math, generation()), make)


def launch_map(expr: str, out: AnyArray, ops: Sequence[_Op], alpha: float = 0.0,
               beta: float = 0.0) -> AnyArray:
    """Enqueue ``out := expr(ops...)`` (operands already checked). ``ops`` are :class:`_Op`
    geometries in the logical (i, j) index space of ``out``."""
    rt = out.runtime
    m, n = (1, out.n) if isinstance(out, Vector) else out.shape
    o = _Op.of(out)
    col = isinstance(out, Matrix) and out.layout == "col"
    # (outer, inner) strides: the output's contiguous direction is the inner one
    geo = [(x.off, x.sj, x.si) if col else (x.off, x.si, x.sj) for x in [o, *ops]]
    M, N = (n, m) if col else (m, n)
    if M > 1 and all(io == 1 and so == N for _, so, io in geo):
        M, N = 1, M * N  # one contiguous line
        geo = [(off, 0, 1) for off, _, _ in geo]
    if M == 1:
        geo = [(off, 0, io) for off, _, io in geo]
    kinds = "".join("1" if io == 1 else ("0" if io == 0 else "s") for _, _, io in geo[1:])
    out1 = geo[0][2] == 1
    p = _params(rt, out.dtype, bool(_MATH.search(expr)))
    vw = p["VW"]
    aligned = vw > 1 and all(off % vw == 0 and so % vw == 0
                             for (off, so, io) in geo if io == 1)
    plan = _plan(rt, expr, out.dtype, kinds, out1, aligned, p)
    args = [M, N, alpha, beta, out._owner._buf, geo[0][0], geo[0][1], geo[0][2]]
    for x, (off, so, io) in zip(ops, geo[1:]):
        args += [x.arr._owner._buf, off, so, io]
    wgs = plan.params["WGS"]
    plan.launch((round_up(-(-N // p["BS"]), wgs), M), (wgs, 1), tuple(args))
    return out


def _map(op: str, expr: str, inputs: Sequence[AnyArray], out: Optional[AnyArray],
         alpha: float = 0.0, beta: float = 0.0, inplace: Optional[Sequence[AnyArray]] = None
         ) -> AnyArray:
    """Check same-shape ``inputs`` and ``out``, then ``out := expr(inputs)``."""
    first = inputs[0]
    for k, x in enumerate(inputs):
        _need_array(x, op, "abc"[k] if len(inputs) > 1 else "x")
    for x in inputs[1:]:
        if type(x) is not type(first) or x.shape != first.shape:
            raise ShapeError(f"{op}: operands of shapes {first.shape} and {x.shape} "
                             f"({type(first).__name__} and {type(x).__name__}) do not match")
    if out is not None:
        _need_array(out, op, "out")
    _check_operands(op, inputs, out)
    if out is None:
        out = _alloc_like(first)
    else:
        _check_out(op, out, first.shape, type(first), inputs,
                   inputs if inplace is None else inplace)
    return launch_map(expr, out, [_Op.of(x) for x in inputs], alpha, beta)


# ---- public maps -----------------------------------------------------------------------------
def add(a: AnyArray, b: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := a + b`` (same shapes; any layouts and views).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.add(rt.vector([1, 2]), rt.vector([10, 20])).to_numpy())
        [11. 22.]
    """
    return _map("add", BINARY["add"], (a, b), out)


def sub(a: AnyArray, b: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := a - b``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.sub(rt.vector([1, 2]), rt.vector([10, 20])).to_numpy())
        [ -9. -18.]
    """
    return _map("sub", BINARY["sub"], (a, b), out)


def mul(a: AnyArray, b: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := a * b`` elementwise (Hadamard product).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.mul(rt.vector([1, 2]), rt.vector([10, 20])).to_numpy())
        [10. 40.]
    """
    return _map("mul", BINARY["mul"], (a, b), out)


def div(a: AnyArray, b: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := a / b`` elementwise (IEEE: x/0 is inf or NaN, as in numpy).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.div(rt.vector([1, 2]), rt.vector([4, 8])).to_numpy())
        [0.25 0.25]
    """
    return _map("div", BINARY["div"], (a, b), out)


def scale_shift(x: AnyArray, alpha: float = 1.0, beta: float = 0.0,
                out: Optional[AnyArray] = None) -> AnyArray:
    """``out := alpha * x + beta`` (scalars alpha and beta).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.scale_shift(rt.vector([1, 2]), 2, 0.5).to_numpy())
        [2.5 4.5]
    """
    alpha = checks.scalar(alpha, "scale_shift", "alpha")
    beta = checks.scalar(beta, "scale_shift", "beta")
    return _map("scale_shift", UNARY["scale_shift"], (x,), out, alpha, beta)


def _unary(name: str, x: AnyArray, out: Optional[AnyArray]) -> AnyArray:
    return _map(name, UNARY[name], (x,), out)


def exp(x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := exp(x)``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.exp(rt.vector([0, 1])).to_numpy())
        [1.        2.7182817]
    """
    return _unary("exp", x, out)


def log(x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := log(x)`` (natural logarithm; log(0) = -inf, log(x<0) = NaN, as in numpy).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.log(rt.vector([1, 4])).to_numpy())
        [0.        1.3862944]
    """
    return _unary("log", x, out)


def tanh(x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := tanh(x)``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.tanh(rt.vector([0, 100])).to_numpy())
        [0. 1.]
    """
    return _unary("tanh", x, out)


def sigmoid(x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := 1 / (1 + exp(-x))``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.sigmoid(rt.vector([0, -200])).to_numpy())
        [0.5 0. ]
    """
    return _unary("sigmoid", x, out)


def relu(x: AnyArray, out: Optional[AnyArray] = None) -> AnyArray:
    """``out := max(x, 0)`` (NaN stays NaN).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.relu(rt.vector([-1, 2])).to_numpy())
        [0. 2.]
    """
    return _unary("relu", x, out)


def _grad(name: str, y: AnyArray, grad: Optional[AnyArray], out: Optional[AnyArray]
          ) -> AnyArray:
    if grad is None:
        return _map(name, UNARY[name], (y,), out)
    return _map(name, BINARY[name], (y, grad), out)


def sigmoid_grad(y: AnyArray, grad: Optional[AnyArray] = None,
                 out: Optional[AnyArray] = None) -> AnyArray:
    """The sigmoid's derivative from its output ``y``: ``y * (1 - y)``, times ``grad`` when
    given (one pass; ``out`` may be ``grad`` or ``y`` itself).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     y = clnn.sigmoid(rt.vector([0.0]))
        ...     g = rt.vector([2])
        ...     print(clnn.sigmoid_grad(y).to_numpy(), clnn.sigmoid_grad(y, g).to_numpy())
        [0.25] [0.5]
    """
    return _grad("sigmoid_grad", y, grad, out)


def tanh_grad(y: AnyArray, grad: Optional[AnyArray] = None,
              out: Optional[AnyArray] = None) -> AnyArray:
    """tanh's derivative from its output ``y``: ``1 - y*y``, times ``grad`` when given.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.tanh_grad(rt.vector([0.5])).to_numpy())
        [0.75]
    """
    return _grad("tanh_grad", y, grad, out)


def relu_grad(y: AnyArray, grad: Optional[AnyArray] = None,
              out: Optional[AnyArray] = None) -> AnyArray:
    """relu's derivative from its output (or input) ``y``: 1 where ``y > 0`` else 0; with
    ``grad``: ``grad`` where ``y > 0`` else 0.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.relu_grad(rt.vector([0, 3]), rt.vector([5, 5])).to_numpy())
        [0. 5.]
    """
    return _grad("relu_grad", y, grad, out)


def _act_name(activation: Optional[str], op: str) -> str:
    name = "identity" if activation is None else activation
    if name not in ACTIVATIONS:
        raise OperandError(f"{op}: activation {activation!r} is not one of {ACTIVATIONS}")
    return name


def activate(x: AnyArray, activation: Optional[str], out: Optional[AnyArray] = None
             ) -> AnyArray:
    """Apply the activation ``activation`` ("relu", "sigmoid", "tanh", "identity"/None).

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.activate(rt.vector([-1, 1]), "relu").to_numpy())
        [0. 1.]
    """
    name = _act_name(activation, "activate")
    return _map(name, UNARY["copy" if name == "identity" else name], (x,), out)


def activate_grad(y: AnyArray, activation: Optional[str], grad: Optional[AnyArray] = None,
                  out: Optional[AnyArray] = None) -> AnyArray:
    """The derivative of ``activation`` from its output ``y`` (times ``grad`` when given);
    for "identity" that is ``grad`` itself (copied) or ones.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.activate_grad(rt.vector([0.5]), "tanh", rt.vector([2])).to_numpy())
        [1.5]
    """
    name = _act_name(activation, "activate_grad")
    if name == "identity":
        if grad is None:
            return _map("activate_grad", UNARY["scale_shift"], (y,), out, 0.0, 1.0)
        return _map("activate_grad", "{b}", (y, grad), out)
    return _grad(name + "_grad", y, grad, out)


def add_bias(a: Matrix, bias: Vector, axis: Optional[int] = None,
             activation: Optional[str] = None, out: Optional[Matrix] = None) -> Matrix:
    """``out := act(a + bias)`` with the vector ``bias`` broadcast over the matrix ``a``, in
    one pass (no temporary).

    ``axis`` names the axis of ``a`` that ``bias`` runs along: ``axis=1`` adds ``bias[j]`` to
    column j of every row (``len(bias) == a.shape[1]``, numpy's ``a + bias``); ``axis=0`` adds
    ``bias[i]`` to every element of row i (``len(bias) == a.shape[0]``, numpy's
    ``a + bias[:, None]``). ``axis=None`` infers it from the length, refusing square ``a``.
    ``activation`` is None/"identity", "relu", "sigmoid" or "tanh". ``out`` may be ``a``.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     a = rt.matrix([[0, 0, 0], [1, 1, 1]])
        ...     print(clnn.add_bias(a, rt.vector([1, 2]), axis=0).to_numpy())
        [[1. 1. 1.]
         [3. 3. 3.]]
    """
    op = "add_bias"
    checks.need(a, Matrix, op, "a")
    checks.need(bias, Vector, op, "bias")
    if out is not None:
        checks.need(out, Matrix, op, "out")
    _check_operands(op, (a, bias), out)
    name = _act_name(activation, op)
    if axis is None:
        if a.m == a.n:
            raise ShapeError(f"{op}: a is square {a.shape}; say axis=0 (bias per row) or "
                             "axis=1 (bias per column)")
        axis = 0 if bias.n == a.m else 1
    if axis not in (0, 1):
        raise ShapeError(f"{op}: axis {axis!r} must be 0 or 1")
    if bias.n != a.shape[axis]:
        raise ShapeError(f"{op}: bias of length {bias.n} does not fit axis {axis} of a matrix "
                         f"of shape {a.shape} (needs {a.shape[axis]})")
    if out is None:
        out = _alloc_like(a)
    else:
        _check_out(op, out, a.shape, Matrix, (a, bias), (a,))
    inner = "({a} + {b})"
    expr = inner if name == "identity" else UNARY[name].format(T="{T}", FT="{FT}", IT="{IT}",
                                                               a=inner)
    b = (_Op(bias, bias.offset, bias.stride, 0) if axis == 0
         else _Op(bias, bias.offset, 0, bias.stride))
    return launch_map(expr, out, [_Op.of(a), b])
