"""Data-parallel training over MPI ranks (clnn.distributed), run for real under ``mpiexec``.

Each test starts ``mpiexec -n N python tests/mpi_worker.py ...`` (or ``python -m
clnn.distributed``) in a child process, so MPI never starts inside pytest. They need mpi4py
and an ``mpiexec`` (``pip install ".[mpi]"``: the MPICH wheel puts one in the environment's
bin); without them they are skipped, saying so. The tox test env installs the extra, so in CI
they run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import clnn
from clnn.nn import Dense, Network

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(clnn.__file__)))  # where clnn lives


def _mpiexec():
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.access(local, os.X_OK) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(
    not (MPIEXEC and HAVE_MPI4PY),
    reason="MPI tests need mpi4py and mpiexec: pip install '.[mpi]' (mpi4py "
           f"{'found' if HAVE_MPI4PY else 'missing'}, mpiexec "
           f"{'found' if MPIEXEC else 'missing'})")


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("CLNN_MPI_TIMEOUT", "60")  # a bug must not hang the test run
    env.update(extra)
    return env


def _run(args, n=None, timeout=120, **env):
    cmd = ([MPIEXEC, "-n", str(n)] if n else []) + [sys.executable] + args
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=_env(**env), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r, time.perf_counter() - t0


def _worker(n, tmp_path, *args, **kw):
    out = str(tmp_path / f"rank0-of-{n}.npz")
    r, dt = _run([WORKER, "--out", out, *args], n=n, **kw)
    return r, dt, out


@needs_mpi
def test_one_and_two_ranks_give_the_same_weights(tmp_path):
    """Same seed, same global batch: 1 rank and 2 ranks (and plain fit in this process)
    end an epoch with the same weights, within float32 reduction tolerance."""
    runs = {}
    for n in (1, 2):
        r, _, out = _worker(n, tmp_path, "--epochs", "1", "--batch-size", "32")
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.count("done:") == 1, r.stdout  # printed by rank 0 only
        runs[n] = np.load(out)
        assert int(runs[n]["ranks"]) == n
    import mpi_worker

    x, y = mpi_worker.data()
    with clnn.Runtime() as rt:
        net = Network(rt, [Dense(12, 17, "tanh"), Dense(17, 3, "softmax")],
                      loss="cross_entropy", seed=0)
        h = net.fit(x, y, epochs=1, batch_size=32, optimizer=clnn.optim.Adam(0.01),
                    verbose=False)
        ref = net.params.to_numpy()
    one, two = runs[1]["params"], runs[2]["params"]
    scale = np.abs(ref).max()
    # one rank computes exactly what fit computes (the allreduce of one rank is a copy)
    np.testing.assert_allclose(one, ref, rtol=0, atol=1e-6 * scale)
    # two ranks re-order the sums (half a batch each, then the allreduce): float32 rounding
    np.testing.assert_allclose(two, one, rtol=0, atol=2e-5 * scale)
    assert not np.array_equal(two, np.zeros_like(two))
    np.testing.assert_allclose(runs[2]["loss"], h["loss"], rtol=1e-5)
    assert int(runs[2]["allreduce_calls"]) == -(-len(x) // 32)  # one allreduce per step


@needs_mpi
def test_launch_check_command():
    r, _ = _run(["-m", "clnn.distributed"], n=2)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("rank ")]
    assert len(lines) == 2 and all(ln.endswith(" ok") for ln in lines), r.stdout
    assert lines[0].startswith("rank 0/2") and lines[1].startswith("rank 1/2")


@needs_mpi
def test_a_rank_that_raises_stops_every_rank(tmp_path):
    r, dt, _ = _worker(2, tmp_path, "--epochs", "50", "--fault", "raise", timeout=60)
    assert r.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: injected fault; stopping all ranks" in r.stderr
    assert "done:" not in r.stdout
    assert dt < 30


@needs_mpi
def test_a_rank_that_is_killed_stops_every_rank(tmp_path):
    r, dt, _ = _worker(2, tmp_path, "--epochs", "50", "--fault", "kill", timeout=60)
    assert r.returncode != 0
    assert "done:" not in r.stdout
    assert "signal 9" in r.stdout + r.stderr or "Killed" in r.stdout + r.stderr, r.stdout
    assert dt < 30


@needs_mpi
def test_a_rank_that_hangs_is_caught_by_the_deadline(tmp_path):
    r, dt, _ = _worker(2, tmp_path, "--epochs", "50", "--fault", "hang", "--timeout", "2",
                       timeout=60)
    assert r.returncode != 0
    assert "rank 0 of 2: no reply from the other ranks within 2 s" in r.stderr, r.stderr
    assert "epoch 2" in r.stderr  # it names where it was waiting
    assert dt < 30


@needs_mpi
def test_bad_rank_count_is_one_line_from_rank_0(tmp_path):
    r, dt, _ = _worker(3, tmp_path, "--batch-size", "2")
    assert r.returncode == 2, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == ["clnn: error: fit: a global batch of 2 samples cannot be split across "
                     "3 workers (3 ranks x 1 device); use batch_size >= 3 or fewer ranks"], \
        r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def _without_mpi4py(tmp_path):
    fake = tmp_path / "nompi"
    fake.mkdir()
    (fake / "mpi4py.py").write_text("raise ImportError('No module named mpi4py')\n")
    return str(fake) + os.pathsep + ROOT


def test_missing_mpi4py_is_one_line(tmp_path):
    r, _ = _run(["-m", "clnn.distributed"], PYTHONPATH=_without_mpi4py(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip() == ("clnn: error: distributed training needs mpi4py and an MPI "
                                "library: pip install 'clnn[mpi]'"), r.stderr


@pytest.mark.skipif(not MPIEXEC, reason="needs an mpiexec to launch 2 ranks")
def test_missing_mpi4py_under_mpiexec_is_said_once(tmp_path):
    r, _ = _run(["-m", "clnn.distributed"], n=2, PYTHONPATH=_without_mpi4py(tmp_path))
    assert r.returncode == 2
    assert r.stderr.count("needs mpi4py") == 1, r.stderr


HAVE_EXAMPLES = all(importlib.util.find_spec(m) is not None
                    for m in ("sklearn", "matplotlib", "tqdm"))


@needs_mpi
@pytest.mark.skipif(not HAVE_EXAMPLES, reason="the examples extra (scikit-learn, matplotlib, "
                    "tqdm) is not installed")
def test_train_digits_on_two_ranks_reaches_97_percent(tmp_path):
    out = tmp_path / "digits.png"
    r, _ = _run(["-m", "clnn", "train", "digits", "--distributed", "--quiet", "--out",
                 str(out)], n=2, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout
    assert text.count("test accuracy:") == 1, text  # rank 0 prints, alone
    assert "data-parallel over 2 MPI ranks" in text
    acc = float(text.split("test accuracy:")[1].split("%")[0])
    assert acc >= 97.0, text
    assert out.read_bytes()[:4] == b"\x89PNG"


@needs_mpi
def test_bench_train_distributed_reports_1_and_2_ranks(tmp_path):
    js = tmp_path / "dist.json"
    r, _ = _run(["-m", "clnn", "bench", "train", "--distributed", "--rounds", "1",
                 "--repeat", "1", "--batch-sizes", "256", "--json", str(js)], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    res = json.loads(js.read_text())["results"]
    assert [x["ranks"] for x in res] == [1, 2]
    assert all(x["samples_s"] > 0 for x in res)
    assert res[1]["allreduce_s"] > 0 and res[1]["allreduce_alone_s"] > 0
    assert "allreduce ms/epoch" in r.stdout


def test_rank_devices_follow_the_device_spec_grammar():
    """Ranks spread over every device the first satisfiable alternative allows."""
    from clnn.distributed import matching_devices

    devs = clnn.devices()
    cpus = [d for d in devs if d.type == "CPU"]
    if not cpus:
        pytest.skip("no CPU device to match")
    assert matching_devices("accelerator+fp64,cpu") == (
        [d for d in devs if d.type == "ACCELERATOR" and d.fp64] or cpus)
    assert matching_devices(cpus[0].spec) == [cpus[0]]
    assert matching_devices("cpu+cu>=1") == cpus
    with pytest.raises(clnn.DeviceError, match="matches no device"):
        matching_devices("cpu+cu>=100000")
