"""clnn.transfer.read: a blocking read that polls before it sleeps."""
import numpy as np
import pytest

import clnn
from clnn import transfer


@pytest.mark.parametrize("spin", [0.0, transfer.SPIN_S, 1.0], ids=["wait", "default", "spin"])
def test_read_offsets_and_paths(rt, dtype, monkeypatch, spin):
    """Every byte offset and both ways of waiting (polling only, polling then the driver's
    wait) give the buffer's values, complete when read returns."""
    monkeypatch.setattr(transfer, "SPIN_S", spin)
    data = np.arange(1, 1 + 1023).astype(dtype)
    with rt.vector(data) as v:
        for off in (0, 1, 17, 1000):
            host = np.zeros(1023 - off, dtype)
            transfer.read(rt.queue, host, v._buf, off * host.itemsize)
            np.testing.assert_array_equal(host, data[off:])


def test_read_after_queued_work(rt):
    """A read behind many queued kernels waits for them (the spin budget runs out first)."""
    n = 1 << 16
    with rt.vector(np.ones(n, np.float32)) as x, rt.vector(np.zeros(n, np.float32)) as y:
        for _ in range(200):
            clnn.axpy(1.0, x, y)
        got = y.to_numpy()
        np.testing.assert_array_equal(got, np.full(n, 200.0, np.float32))
