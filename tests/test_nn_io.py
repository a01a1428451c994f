"""Saving and loading networks: round trip, atomic writes, clear errors for bad files."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

import clnn
from clnn.nn import Dense, Network, NetworkFileError


def make(rt, dtype=np.float32):
    return Network(rt, [Dense(5, 7, "relu"), Dense(7, 6, "tanh"), Dense(6, 3, "softmax")],
                   loss="cross_entropy", dtype=dtype, seed=11)


def test_round_trip(rt, dtype, tmp_path):
    net = make(rt, dtype)
    rng = np.random.default_rng(0)
    net.fit(rng.normal(size=(40, 5)), rng.integers(0, 3, 40), epochs=2, verbose=False)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = clnn.load(path, rt)
    assert loaded.config() == net.config() and loaded.dtype == dtype
    x = rng.normal(size=(9, 5))
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))
    for a, b in zip(loaded.layers, net.layers):
        np.testing.assert_array_equal(a.weights.to_numpy(), b.weights.to_numpy())
        np.testing.assert_array_equal(a.bias.to_numpy(), b.bias.to_numpy())
    # plain numpy can read the weights
    with np.load(path) as z:
        np.testing.assert_array_equal(z["layer1.weights"], net.layers[1].weights.to_numpy())
        assert json.loads(str(z["config"]))["loss"] == "cross_entropy"
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left behind
    net.release()
    loaded.release()


def test_load_into_other_dtype(rt, tmp_path):
    if not rt.device.fp64:
        pytest.skip("needs fp64")
    net = make(rt)
    net.save(tmp_path / "n.npz")
    other = clnn.load(tmp_path / "n.npz", rt, dtype=np.float64)
    assert other.dtype == np.float64
    x = np.ones((2, 5))
    np.testing.assert_allclose(other.predict(x), net.predict(x), rtol=1e-5)


def test_save_is_atomic(rt, tmp_path, monkeypatch):
    net = make(rt)
    path = tmp_path / "net.npz"
    net.save(path)
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    net.layers[0].weights = np.zeros((7, 5))
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == good  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


@pytest.mark.parametrize("kind", ["missing", "garbage", "truncated", "foreign-npz", "other-format",
                                  "newer", "bad-config", "bad-shape", "missing-weights",
                                  "pickled"])
def test_bad_files(rt, tmp_path, kind):
    net = make(rt)
    path = tmp_path / "net.npz"
    net.save(path)
    arrays = dict(np.load(path))
    if kind == "missing":
        path = tmp_path / "nothing.npz"
    elif kind == "garbage":
        path.write_bytes(os.urandom(300))
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "foreign-npz":
        np.savez(path, a=np.arange(3))
    elif kind == "other-format":
        arrays["clnn_format"] = np.array("something.else")
        np.savez(path, **arrays)
    elif kind == "newer":
        arrays["clnn_version"] = np.array(99)
        np.savez(path, **arrays)
    elif kind == "bad-config":
        arrays["config"] = np.array("{not json")
        np.savez(path, **arrays)
    elif kind == "bad-shape":
        arrays["layer1.weights"] = np.zeros((3, 3), np.float32)
        np.savez(path, **arrays)
    elif kind == "missing-weights":
        del arrays["layer2.bias"]
        np.savez(path, **arrays)
    elif kind == "pickled":
        arrays["layer0.weights"] = np.array([object()], dtype=object)
        np.savez(path, **arrays)
    with pytest.raises(NetworkFileError) as e:
        clnn.load(path, rt)
    assert isinstance(e.value, clnn.ClnnError)
    assert str(path) in str(e.value)
    assert "allow_pickle" not in str(e.value)  # load has no such option


@pytest.mark.parametrize("kind", ["text", "npy", "empty", "folder"])
def test_not_npz_files_say_what_they_are(rt, tmp_path, kind):
    path = tmp_path / "net.npz"
    if kind == "text":
        path.write_text("hello, world\n")
        why = "not a .npz file (it starts with b'hello, w')"
    elif kind == "npy":
        np.save(path.with_suffix(".npy"), np.arange(3))
        path = path.with_suffix(".npy")
        why = "a .npy file"
    elif kind == "empty":
        path.write_bytes(b"")
        why = "it is empty"
    else:
        path.mkdir()
        why = "it is a folder"
    with pytest.raises(NetworkFileError) as e:
        clnn.load(path, rt)
    assert why in str(e.value) and str(path) in str(e.value)
    assert "pickle" not in str(e.value)


def test_save_into_a_missing_folder_names_the_path(rt, tmp_path):
    net = make(rt)
    path = tmp_path / "missing" / "net.npz"
    with pytest.raises(NetworkFileError) as e:
        net.save(path)
    msg = str(e.value)
    assert str(path) in msg and "does not exist" in msg
    assert ".clnn-" not in msg and ".tmp" not in msg  # never the temporary file
    with pytest.raises(NetworkFileError, match="is a folder"):
        net.save(tmp_path)
    assert list(tmp_path.iterdir()) == []
    net.release()


def test_saved_file_permissions_follow_umask_and_old_file(rt, tmp_path):
    net = make(rt)
    path = tmp_path / "net.npz"
    old = os.umask(0o022)
    try:
        net.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # as open(path, "wb") gives
        os.chmod(path, 0o640)
        os.umask(0o077)
        net.save(path)  # replacing keeps the file's mode
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        net.save(tmp_path / "new.npz")
        assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o600
    finally:
        os.umask(old)
    net.release()
