"""Hostile input, malformed calls: wrong rank, negative or huge sizes, wrong dtypes, object
arrays, views out of range, released or foreign buffers, bad scalars, overlapping outputs. Each
raises a clnn error, and the output the user passed is left exactly as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
from hostile import runtime_still_works

import clnn


class Outputs:
    """Outputs whose contents are checked to be unchanged after a refused call."""

    def __init__(self, rt, dtype):
        rng = np.random.default_rng(11)
        self.y = rt.vector(rng.standard_normal(5).astype(dtype))
        self.c = rt.matrix(rng.standard_normal((5, 5)).astype(dtype))
        self.s = rt.vector(rng.standard_normal(1).astype(dtype))
        self.snapshot()

    def snapshot(self) -> None:
        self.before = {k: getattr(self, k).to_numpy() for k in ("y", "c", "s")}

    def unchanged(self) -> None:
        for k, v in self.before.items():
            assert np.array_equal(getattr(self, k).to_numpy(), v), f"{k} was written"


def _bad_calls(rt, o: Outputs, dtype):
    """(name, callable, expected error) of every malformed call tried."""
    other = np.float64 if dtype == np.float32 else np.float32
    a = rt.matrix(np.ones((5, 7), dtype))
    x = rt.vector(np.ones(7, dtype))
    x5 = rt.vector(np.ones(5, dtype))
    gone = rt.vector(np.ones(7, dtype))
    gone.release()
    gone_m = rt.matrix(np.ones((5, 7), dtype))
    gone_view = gone_m.T
    gone_m.release()
    xo = rt.vector(np.ones(7, other)) if rt.device.fp64 else None
    foreign = clnn.Runtime(rt.device)
    fa = foreign.matrix(np.ones((5, 7), dtype))
    fx = foreign.vector(np.ones(7, dtype))
    import pyopencl as cl
    import pyopencl.array as cla

    raw = cl.Buffer(rt.ctx, cl.mem_flags.READ_WRITE, 64)
    claa = cla.zeros(rt.queue, 7, dtype)
    E = clnn
    y, c, s = o.y, o.c, o.s
    cases = [
        # wrong rank / wrong kind of operand
        ("mv(vector, vector)", lambda: clnn.mv(x, x, out=y), E.ShapeError),
        ("mv(matrix, matrix)", lambda: clnn.mv(a, a, out=y), E.ShapeError),
        ("mv out=matrix", lambda: clnn.mv(a, x, out=c), E.ShapeError),
        ("mm(vector, matrix)", lambda: clnn.mm(x, a, out=c), E.ShapeError),
        ("mm out=vector", lambda: clnn.mm(a, a.T, out=y), E.ShapeError),
        ("mv numpy matrix", lambda: clnn.mv(np.ones((5, 7), dtype), x, out=y), E.OperandError),
        ("mv numpy vector", lambda: clnn.mv(a, np.ones(7, dtype), out=y), E.OperandError),
        ("mv numpy out", lambda: clnn.mv(a, x, out=np.zeros(5, dtype)), E.OperandError),
        ("mv list", lambda: clnn.mv([[1.0] * 7] * 5, x, out=y), E.OperandError),
        ("mv None", lambda: clnn.mv(None, x, out=y), E.OperandError),
        ("mv str", lambda: clnn.mv("a", x, out=y), E.OperandError),
        ("mv int", lambda: clnn.mv(3, x, out=y), E.OperandError),
        ("mv pyopencl Buffer", lambda: clnn.mv(a, raw, out=y), E.OperandError),
        ("mv pyopencl Array", lambda: clnn.mv(a, claa, out=y), E.OperandError),
        ("add numpy", lambda: clnn.add(np.ones(5, dtype), x5, out=y), E.ClnnError),
        ("dot list", lambda: clnn.dot([1.0] * 5, x5, out=s), E.ClnnError),
        ("sum of numpy", lambda: clnn.sum(np.ones((5, 5)), axis=0, out=y), E.ClnnError),
        # shapes that do not fit
        ("mv x too short", lambda: clnn.mv(a, x5, out=y), E.ShapeError),
        ("mv out too long", lambda: clnn.mv(a, x, out=x), E.ShapeError),
        ("mm inner mismatch", lambda: clnn.mm(a, a, out=c), E.ShapeError),
        ("mm out shape", lambda: clnn.mm(a.T, a, out=c), E.ShapeError),
        ("add shapes", lambda: clnn.add(x5, x, out=y), E.ShapeError),
        ("axpy shapes", lambda: clnn.axpy(1.0, x, y), E.ShapeError),
        ("dot lengths", lambda: clnn.dot(x, y, out=s), E.ShapeError),
        ("dot out length", lambda: clnn.dot(x5, x5, out=y), E.ShapeError),
        ("sum axis 2", lambda: clnn.sum(c, axis=2, out=y), E.ClnnError),
        ("sum axis -3", lambda: clnn.sum(c, axis=-3, out=y), E.ClnnError),
        ("sum axis str", lambda: clnn.sum(c, axis="0", out=y), E.ClnnError),
        ("argmax out wrong", lambda: clnn.argmax(c, axis=1, out=s), E.ShapeError),
        ("add_bias shapes", lambda: clnn.add_bias(c, x, axis=1, out=c), E.ShapeError),
        ("add_bias activation", lambda: clnn.add_bias(c, y, axis=1, activation="nope",
                                                      out=c), E.ClnnError),
        ("rk shapes", lambda: clnn.rk(1.0, x, x5, c), E.ShapeError),
        # overlapping outputs
        ("mv out is x", lambda: clnn.mv(c, c.row(0), out=c.row(1)), E.ShapeError),
        ("mm out is a", lambda: clnn.mm(c, c, out=c), E.ShapeError),
        ("mv out overlaps a", lambda: clnn.mv(c, y, out=c.col(0)), E.ShapeError),
        ("add out overlaps", lambda: clnn.add(c[0:2, :], c[1:3, :], out=c[1:3, :]),
         E.ShapeError),
        ("swap overlapping", lambda: clnn.swap(y, y), E.ShapeError),
        # bad scalars
        ("alpha str", lambda: clnn.mv(a, x, out=y, alpha="2"), E.DTypeError),
        ("alpha None", lambda: clnn.mv(a, x, out=y, alpha=None), E.DTypeError),
        ("alpha complex", lambda: clnn.mv(a, x, out=y, alpha=1j), E.DTypeError),
        ("alpha bool", lambda: clnn.mv(a, x, out=y, alpha=True), E.DTypeError),
        ("alpha array", lambda: clnn.mv(a, x, out=y, alpha=np.ones(2)), E.DTypeError),
        ("beta list", lambda: clnn.mm(c, c.T, out=a[0:5, 0:5], beta=[1]), E.DTypeError),
        ("scal alpha str", lambda: clnn.scal("x", y), E.DTypeError),
        ("axpy alpha None", lambda: clnn.axpy(None, x5, y), E.DTypeError),
        # released and foreign buffers
        ("mv released x", lambda: clnn.mv(a, gone, out=y), E.ReleasedError),
        ("mv released view", lambda: clnn.mv(gone_view, x5, out=x), E.ReleasedError),
        ("add released", lambda: clnn.add(gone, x, out=x), E.ReleasedError),
        ("mv foreign a", lambda: clnn.mv(fa, x, out=y), E.RuntimeMismatchError),
        ("mv foreign x", lambda: clnn.mv(a, fx, out=y), E.RuntimeMismatchError),
        ("mm foreign", lambda: clnn.mm(fa, a.T, out=c), E.RuntimeMismatchError),
        ("add foreign", lambda: clnn.add(fx, x, out=x), E.RuntimeMismatchError),
        ("dot foreign", lambda: clnn.dot(fx, x, out=s), E.RuntimeMismatchError),
        # views out of range
        ("subvector past end", lambda: x.subvector(5, 3), E.ShapeError),
        ("subvector negative", lambda: x.subvector(-1, 3), E.ShapeError),
        ("subvector stride 0", lambda: x.subvector(0, 3, 0), E.ShapeError),
        ("subvector stride -1", lambda: x.subvector(6, 3, -1), E.ShapeError),
        ("subvector float", lambda: x.subvector(0.5, 3), E.ShapeError),
        ("vector slice empty", lambda: x[7:9], E.ShapeError),
        ("vector slice reversed", lambda: x[::-1], E.ShapeError),
        ("vector index past end", lambda: x[7], E.ShapeError),
        ("submatrix past end", lambda: a.submatrix(3, 0, 3, 7), E.ShapeError),
        ("submatrix negative", lambda: a.submatrix(-1, 0, 2, 2), E.ShapeError),
        ("submatrix zero", lambda: a.submatrix(0, 0, 0, 2), E.ShapeError),
        ("matrix slice step", lambda: a[::2, :], E.ShapeError),
        ("matrix row out", lambda: a.row(5), E.ShapeError),
        ("matrix col out", lambda: a.col(-1), E.ShapeError),
        ("matrix row index past end", lambda: a[5], E.ShapeError),
        ("matrix 3 indices", lambda: a[1, 2, 3], E.OperandError),
        ("as_vector strided", lambda: a[0:2, 0:2].as_vector(), E.ShapeError),
        # set() with wrong data: nothing written
        ("set wrong length", lambda: y.set(np.ones(6)), E.ShapeError),
        ("set wrong shape", lambda: c.set(np.ones((5, 4))), E.ShapeError),
        ("set rank", lambda: y.set(np.ones((5, 1))), E.ShapeError),
        ("set complex", lambda: y.set(np.ones(5) * 1j), E.DTypeError),
        ("set objects", lambda: y.set(np.array([1, None, 3, 4, 5], dtype=object)),
         E.DTypeError),
        ("set strings", lambda: y.set(["a"] * 5), E.DTypeError),
        ("set ragged", lambda: c.set([[1.0], [1.0, 2.0]]), E.ShapeError),
        ("set released", lambda: gone.set(np.ones(7)), E.ReleasedError),
    ]
    if xo is not None:
        cases += [
            ("mv mixed dtypes", lambda: clnn.mv(a, xo, out=y), E.DTypeError),
            ("mm mixed dtypes", lambda: clnn.mm(a, rt.matrix(np.ones((7, 5), other)),
                                                out=c), E.DTypeError),
            ("add mixed dtypes", lambda: clnn.add(x, xo, out=x), E.DTypeError),
            ("dot mixed dtypes", lambda: clnn.dot(x, xo, out=s), E.DTypeError),
        ]
    keep = (a, x, x5, gone, gone_m, xo, fa, fx, raw, claa)
    return cases, foreign, keep


def test_malformed_calls_raise_and_write_nothing(rt, dtype):
    o = Outputs(rt, dtype)
    cases, foreign, keep = _bad_calls(rt, o, dtype)
    failures = []
    try:
        for name, call, err in cases:
            o.snapshot()
            try:
                call()
            except err:
                pass
            except Exception as e:  # noqa: BLE001 - collected and reported below
                failures.append(f"{name}: {type(e).__name__}: {e}")
            else:
                failures.append(f"{name}: no error")
            try:
                o.unchanged()
            except AssertionError as e:
                failures.append(f"{name}: {e}")
    finally:
        foreign.release()
    assert not failures, "\n".join(f[:300] for f in failures)
    assert len(cases) >= 70
    runtime_still_works(rt, dtype)
    del keep


BAD_SIZES = [-1, 0, 2**31, 2**63, 2**64, 3.5, True, None, "3", np.int64(-5), np.float32(2),
             1j, [3], (3,)]


@pytest.mark.parametrize("n", BAD_SIZES, ids=[repr(b) for b in BAD_SIZES])
def test_bad_vector_sizes(rt, n):
    before = rt.allocations
    with pytest.raises(clnn.ClnnError):
        if isinstance(n, tuple):  # a 1-tuple is a shape only for zeros(); vector() takes data
            rt.vector((3, 4, 5), dtype="int8")
        else:
            v = rt.vector(n)
            if isinstance(n, list):  # [3] is data, not a size: fine, and one element
                assert v.to_numpy().tolist() == [3.0]
                v.release()
                raise clnn.ShapeError("data")
    assert rt.allocations - before <= 1
    runtime_still_works(rt, np.float32)


BAD_SHAPES = [(-1, 3), (3, 0), (0, 0), (2**31, 2), (2**40, 2**40), (3,), (1, 2, 3), (3.0, 2),
              (True, 2), ("3", 2), (None, 2), (2**64, 1)]


@pytest.mark.parametrize("shape", BAD_SHAPES, ids=[repr(b) for b in BAD_SHAPES])
def test_bad_matrix_shapes(rt, shape):
    with pytest.raises(clnn.ClnnError):
        m = rt.matrix(shape)
        m.release()  # a shape that was taken as data must still be 2-d
    runtime_still_works(rt, np.float32)


BAD_DATA = {
    "objects": np.array([[1, None], [2, 3]], dtype=object),
    "object-floats": np.array([[1.0, 2.0]], dtype=object),
    "strings": np.array([["a", "b"]]),
    "bytes": np.array([[b"a"]]),
    "complex": np.ones((2, 2), complex),
    "datetime": np.array([["2020-01-01"]], dtype="datetime64[D]"),
    "structured": np.zeros((2, 2), dtype=[("a", "f4")]),
    "ragged": [[1.0, 2.0], [3.0]],
    "empty": np.zeros((0, 3)),
    "3-d": np.ones((2, 2, 2)),
    "scalar": np.float32(1.0),
    "dict": {"a": 1},
    "set": {1.0, 2.0},
    "generator": (i for i in range(3)),
}


@pytest.mark.parametrize("what", list(BAD_DATA), ids=list(BAD_DATA))
def test_bad_matrix_data(rt, what):
    with pytest.raises(clnn.ClnnError):
        rt.matrix(BAD_DATA[what]).release()
    runtime_still_works(rt, np.float32)


BAD_DTYPES = [np.int32, np.float16, np.complex64, object, "str", "float128", "nonsense", 3,
              np.dtype([("a", "f4")]), np.bool_]


@pytest.mark.parametrize("dt", BAD_DTYPES, ids=[repr(b) for b in BAD_DTYPES])
def test_bad_dtype_argument(rt, dt):
    for make in (lambda: rt.vector(3, dtype=dt), lambda: rt.matrix((2, 2), dtype=dt),
                 lambda: rt.zeros(3, dtype=dt), lambda: rt.vector([1.0, 2.0], dtype=dt)):
        with pytest.raises(clnn.DTypeError):
            make()


def test_numpy_inputs_of_any_memory_order_are_copied_correctly(rt, dtype):
    """Not malformed, but easy to get wrong: strided, reversed, broadcast, Fortran and
    integer numpy inputs are copied with the right values."""
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    for host in (base[::2, ::3], base[::-1, ::-1], base.T, np.asfortranarray(base),
                 np.broadcast_to(np.arange(4.0), (3, 4)), base.astype(np.int16),
                 base[1:4, 2:9]):
        with rt.matrix(host, dtype=dtype) as m:
            assert np.array_equal(m.to_numpy(), host.astype(dtype))
    for host in (base[0, ::3], base[::-1, 0], np.broadcast_to(np.float32(2), (5,)),
                 base[2], np.arange(5, dtype=np.uint8)):
        with rt.vector(host, dtype=dtype) as v:
            assert np.array_equal(v.to_numpy(), host.astype(dtype))
        with rt.vector(len(host), dtype=dtype) as v:
            v.set(host)
            assert np.array_equal(v.to_numpy(), host.astype(dtype))
