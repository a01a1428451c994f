"""``clnn bench train``: the network option, the contenders (numpy, PyTorch, clnn.mm on the
step's products) and the targets; the timing itself is only smoke-run here."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from tolerances import assert_close, f64, ref_mm

from clnn.bench import train
from clnn.bench.mlp import NumpyMLP, StepProducts, TorchMLP, parse_network, step_flops
from clnn.cli import main
from clnn.errors import ShapeError

SIZES = [17, 3, 5]  # awkward sizes: one relu hidden layer of 3, 5 classes
N = 33


def _torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch not installed (an optional contender)")


@pytest.mark.parametrize("spec, sizes", [("784-1024-512-10", [784, 1024, 512, 10]),
                                         ("1-1", [1, 1]), ("17-301-3", [17, 301, 3])])
def test_parse_network_gives_the_layer_sizes(spec, sizes):
    assert parse_network(spec) == sizes


@pytest.mark.parametrize("spec, what", [("784-0-10", "at least 1"),
                                        ("784-x-10", "'x' is not a whole number"),
                                        ("784", "give the inputs"),
                                        ("784--10", "'' is not a whole number"),
                                        ("784-1.5-10", "'1.5' is not"),
                                        ("784-+3-10", "'+3' is not")])
def test_parse_network_refuses_bad_specs(spec, what):
    with pytest.raises(ShapeError, match=what.replace("+", r"\+").replace(".", r"\.")):
        parse_network(spec)


@pytest.mark.parametrize("argv", [["--network", "784-0-10"], ["--network", "784-x-10"],
                                  ["--network", "784"], ["--network", "digits", "8-"],
                                  ["--batch-sizes", "0"], ["--repeat", "0"],
                                  ["--network", "784-1000000000-10"]],
                         ids=" ".join)
def test_bench_train_bad_input_is_one_line_exit_2(device, capsys, argv):
    """Refused before any training: one line on stderr, exit status 2, no traceback."""
    assert main(["bench", "train", "--device", device.spec, *argv]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("clnn: error: ") and cap.err.count("\n") == 1, cap.err
    assert "samples/s" not in cap.out


def test_rounds_more_for_cases_with_targets():
    assert train._rounds(None, False, {"torch": 1.3}) == train.TARGET_REPEAT == 15
    assert train._rounds(None, False, {}) == train.REPEAT == 9
    assert train._rounds(None, True, {"torch": 1.3}) == train.QUICK_REPEAT
    assert train._rounds(4, False, {"torch": 1.3}) == train._rounds(4, True, {}) == 4


def test_step_flops_counts_every_product():
    # forward and weight gradient of both layers, input gradient of the second only
    B = 7
    want = 2 * B * (17 * 3 + 3 * 5) + 2 * B * (17 * 3 + 3 * 5) + 2 * B * 3 * 5
    assert step_flops(SIZES, B) == want


def test_targets_by_network_and_batch():
    def case(spec):
        return train._Case(spec, argparse.Namespace(hidden=256, optimizer=None))

    digits, big, other = case("digits"), case("784-1024-512-10"), case("784-100-10")
    assert digits.sizes == [64, 256, 10] and digits.optimizers == ["adam"]
    assert big.optimizers == ["sgd", "adam"]
    assert [digits.targets(b) for b in (32, 128, 512)] == [{"numpy": 1.0}] * 3
    assert big.targets(32) == {"torch": 1.5}
    assert big.targets(128) == {"torch": 1.3, "numpy": 1.3}
    assert big.targets(512) == {"torch": 1.3, "numpy": 1.3, "gemm": 0.8}
    assert other.targets(512) == {} and big.targets(64) == {}
    met = train._verdicts({"torch": 1.2, "numpy": 1.4, "gemm": None}, big.targets(512))
    assert met == {"torch": False, "numpy": True}
    assert train._goal_text(big.targets(512), met) == \
        "torch >= 1.3x MISSED, numpy >= 1.3x ok"


def test_step_products_are_the_steps_products(rt):
    """StepProducts multiplies exactly the training step's shapes: X W^T and dZ^T X per
    layer, dZ W past the first."""
    B = 3
    prod = StepProducts(rt, SIZES, B)
    try:
        shapes = [(a.shape, b.shape) for a, b, _ in prod.products]
        assert shapes == [((B, 17), (17, 3)), ((3, B), (B, 17)),
                          ((B, 3), (3, 5)), ((5, B), (B, 3)), ((B, 5), (5, 3))]
        flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in prod.products)
        assert flops == prod.flops
        prod.run(2)
        for a, b, c in prod.products:
            assert_close(c.to_numpy(), ref_mm(a.to_numpy(), b.to_numpy()), np.float32,
                         k=a.shape[1])
    finally:
        prod.release()


def _weights(rng):
    return [(rng.uniform(-1, 1, (o, i)).astype(np.float32),
             rng.uniform(-0.1, 0.1, o).astype(np.float32))
            for i, o in zip(SIZES[:-1], SIZES[1:])]


def _after_steps(who: str, opt: str, weights, x, y, steps: int, rt=None):
    """The parameters after ``steps`` full-batch epochs (one step each: the order of the
    rows within a batch does not change the step)."""
    if who == "clnn":
        import clnn
        from clnn.nn import Dense, Network

        net = Network(rt, [Dense(17, 3, "relu"), Dense(3, 5, "softmax")],
                      loss="cross_entropy")
        for la, (w, b) in zip(net.layers, weights):
            la.weights, la.bias = w, b
        o = clnn.optim.Adam(1e-3) if opt == "adam" else clnn.optim.SGD(0.01, momentum=0.9)
        net.fit(x, y, epochs=steps, batch_size=len(x), optimizer=o, verbose=False)
        got = [a for la in net.layers for a in (la.weights.to_numpy(), la.bias.to_numpy())]
        net.release()
        return got
    if who == "torch":
        m = TorchMLP(weights, opt, seed=1)
        xt, yt = m.tensors(x, y)
        for _ in range(steps):
            m.epoch(xt, yt, len(x))
        return [p.detach().numpy() for p in m.model.parameters()]
    m = NumpyMLP(weights, opt, seed=1, dtype=np.float64 if who == "numpy64" else np.float32)
    for _ in range(steps):
        m.epoch(x, y, len(x))
    return m.p


@pytest.mark.parametrize("who", ["clnn", "numpy", "torch"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_contenders_take_the_same_steps(rt, rng, who, opt):
    """From the same weights, two full-batch steps of clnn, the numpy reference and PyTorch
    land where float64 numpy does: the same network, loss and optimizer."""
    if who == "torch":
        _torch_or_skip()
    weights = _weights(rng)
    x = rng.random((N, 17), dtype=np.float32)
    y = rng.integers(0, 5, N)
    want = _after_steps("numpy64", opt, weights, f64(x), y, 2)
    got = _after_steps(who, opt, weights, x, y, 2, rt)
    p0 = [f64(a) for wb in weights for a in wb]
    checked = 0
    for g, w, p in zip(got, want, p0):
        if opt == "sgd":
            # p - 0.01 (g1 + 0.9 g0 + g1): the steps are sums over the batch and the layers
            step = np.abs(p - w).max()
            assert_close(g, w, np.float32, k=N * 17, scale=np.abs(p) + step)
        else:
            # an Adam step is lr * sign(g) to first order; where |g| is far from 0 the
            # two steps agree with the reference to float32's precision of the step
            far = np.abs(p - w) > 1e-3
            assert np.all(np.abs(f64(g) - w)[far] <= 1e-6), (g, w)
            checked += far.sum()
    if opt == "adam":
        assert checked > 0.5 * sum(p.size for p in p0)  # most parameters moved by ~2 lr


@pytest.mark.timing
@pytest.mark.parametrize("torch_flag", [[], ["--no-torch"]], ids=["torch", "no-torch"])
def test_bench_train_network_runs_every_contender(device, tmp_path, capsys, torch_flag):
    js = tmp_path / "t.json"
    rc = main(["bench", "train", "--device", device.spec, "--network", "17-3-5",
               "--samples", "33", "--batch-sizes", "8", "--repeat", "1", "--optimizer", "sgd",
               "adam", "--json", str(js), *torch_flag])
    assert rc == 0  # no target for a network of this size
    out = capsys.readouterr().out
    data = json.loads(js.read_text())
    try:
        import torch  # noqa: F401

        with_torch = not torch_flag
    except ImportError:
        with_torch = False
    assert [(r["network"], r["optimizer"], r["batch"]) for r in data["results"]] == [
        ("17-3-5", "sgd", 8), ("17-3-5", "adam", 8)]
    for r in data["results"]:
        assert r["clnn_samples_s"] > 0 and r["numpy_samples_s"] > 0
        assert r["step_gflops"] > 0 and r["gemm_gflops"] > 0 and r["gemm_ratio"] > 0
        assert r["peak_gflops"] > 0 and 0 < r["peak_ratio"]
        assert set(r["ceilings"]) == ({"numpy", "torch"} if with_torch else {"numpy"})
        assert (r["torch_samples_s"] is not None) == with_torch
        assert len(r["round_ratios"]["numpy"]) == r["rounds"] == 1
        assert r["targets"] == {} and r["ok"]
    (p,) = data["predict"]
    assert p["rows"] == 1024 and p["max_abs_err"] < 1e-5
    assert p["peak_ratio"] > 0 and p["ceilings"]["numpy"] > 0
    assert (data["torch"] is not None) == with_torch
    assert ("clnn/torch" in out) == with_torch
    if not with_torch:
        assert "its columns and targets are skipped" in out
