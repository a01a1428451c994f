"""Optimizers (one launch per step, in place) against numpy references; schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

import clnn
from clnn.schedules import CosineLR, StepLR

SIZES = [1, 3, 17, 1023, 10007]


def ref_sgd(p, g, steps, lr, mom=0.0, nesterov=False, wd=0.0):
    p = p.astype(np.float64).copy()
    v = np.zeros_like(p)
    for _ in range(steps):
        gg = g + wd * p
        if mom:
            v = mom * v + gg
            p -= lr * (gg + mom * v if nesterov else v)
        else:
            p -= lr * gg
    return p


def ref_adam(p, g, steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    s = np.zeros_like(p)
    for t in range(1, steps + 1):
        gg = g + wd * p
        m = b1 * m + (1 - b1) * gg
        s = b2 * s + (1 - b2) * gg * gg
        p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(s / (1 - b2 ** t)) + eps)
    return p


CASES = {
    "sgd": (lambda: clnn.optim.SGD(0.1), lambda p, g, n: ref_sgd(p, g, n, 0.1)),
    "sgd-wd": (lambda: clnn.optim.SGD(0.1, weight_decay=0.01),
               lambda p, g, n: ref_sgd(p, g, n, 0.1, wd=0.01)),
    "momentum": (lambda: clnn.optim.SGD(0.05, momentum=0.9),
                 lambda p, g, n: ref_sgd(p, g, n, 0.05, 0.9)),
    "nesterov-wd": (lambda: clnn.optim.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
                    lambda p, g, n: ref_sgd(p, g, n, 0.05, 0.8, True, 0.1)),
    "adam": (lambda: clnn.optim.Adam(0.01), lambda p, g, n: ref_adam(p, g, n, 0.01)),
    "adam-wd": (lambda: clnn.optim.Adam(0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
                lambda p, g, n: ref_adam(p, g, n, 0.02, 0.8, 0.99, 1e-6, 0.05)),
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", list(CASES))
def test_update_matches_numpy(rt, dtype, case, n):
    rng = np.random.default_rng(n)
    p0 = rng.normal(size=n)
    g = rng.normal(size=n).astype(dtype)
    make, ref = CASES[case]
    opt = make()
    with rt.vector(p0, dtype=dtype) as p, rt.vector(g) as gd:
        for _ in range(4):
            opt.step(p, gd)
        expect = ref(p0.astype(dtype), g.astype(np.float64), 4)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(p.to_numpy(), expect, rtol=tol, atol=tol)
    assert opt.t == 4


@pytest.mark.oclgrind
def test_views_with_offsets_only_touch_their_range(rt):
    with rt.vector(np.zeros(50)) as p, rt.vector(np.ones(50)) as g:
        opt = clnn.optim.SGD(0.5)
        opt.step(p.subvector(7, 20), g.subvector(30, 20))
        out = p.to_numpy()
        np.testing.assert_array_equal(out[7:27], -0.5)
        assert not out[:7].any() and not out[27:].any()


def test_one_launch_per_step_and_state_allocated_once(rt):
    with rt.vector(np.zeros(1000)) as p, rt.vector(np.ones(1000)) as g:
        opt = clnn.optim.Adam(0.1)
        opt.step(p, g)
        a = rt.allocations
        for _ in range(5):
            opt.step(p, g)
        assert rt.allocations == a
        st = opt.state()
        assert set(st) == {"m", "s"} and st["m"].shape == (1000,)


def test_optimizer_errors(rt, device):
    with pytest.raises(clnn.OperandError):
        clnn.optim.SGD(-1.0)
    with pytest.raises(clnn.OperandError):
        clnn.optim.SGD(0.1, nesterov=True)
    with pytest.raises(clnn.OperandError):
        clnn.optim.Adam(0.1, betas=(1.0, 0.9))
    with pytest.raises(clnn.OperandError):
        clnn.optim.SGD(0.1, momentum=2.0)
    with rt.vector(np.zeros(4)) as p, rt.vector(np.zeros(5)) as g:
        with pytest.raises(clnn.ShapeError):
            clnn.optim.SGD(0.1).step(p, g)
        with pytest.raises(clnn.ShapeError):
            clnn.optim.SGD(0.1).step(p, p)
        with pytest.raises(clnn.OperandError):
            clnn.optim.SGD(0.1).step(np.zeros(4), g)
        opt = clnn.optim.SGD(0.1)
        opt.step(p, g.subvector(0, 4))
        with rt.vector(np.zeros(4)) as p2, pytest.raises(clnn.OperandError, match="other"):
            opt.step(p2, g.subvector(0, 4))
        with clnn.Runtime(device) as other:
            q, q2 = other.vector(np.zeros(4)), other.vector(np.zeros(4))
            with pytest.raises(clnn.RuntimeMismatchError):
                clnn.optim.SGD(0.1).step(q, g.subvector(0, 4))
            with pytest.raises(clnn.RuntimeMismatchError):
                opt.step(q, q2)


def test_schedules():
    s = StepLR(1.0, step=3, gamma=0.1)
    assert [s(e) for e in range(7)] == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    c = CosineLR(0.5, epochs=4, min_lr=0.1)
    assert c(0) == pytest.approx(0.5) and c(4) == pytest.approx(0.1) and c(9) == pytest.approx(0.1)
    assert c(2) == pytest.approx(0.1 + 0.4 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert all(c(e) >= c(e + 1) for e in range(6))
    with pytest.raises(clnn.OperandError):
        StepLR(0.1, step=0)
    with pytest.raises(clnn.OperandError):
        CosineLR(-1, 5)
    opt = clnn.optim.SGD(s)
    assert opt.lr_at(4) == pytest.approx(0.1)
    bad = clnn.optim.SGD(lambda e: float("nan"))
    with pytest.raises(clnn.OperandError):
        bad.lr_at(0)
