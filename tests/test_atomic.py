"""Atomic writes (clnn.atomic): the permissions a plain ``open()`` gives, the mode of a replaced
file kept, nothing left behind on failure, and errors that name the caller's path."""

from __future__ import annotations

import os
import stat

import pytest

from clnn.atomic import atomic_write


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
def test_new_file_gets_what_open_gives(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    with atomic_write(tmp_path / "atomic", "w") as f:
        f.write("x")
    assert _mode(tmp_path / "atomic") == _mode(tmp_path / "plain") == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic", "plain"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o664, 0o444])
def test_replacing_keeps_the_mode(tmp_path, umask, mode):
    umask(0o077)  # would give 0o600 to a new file
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_missing_folder_names_the_callers_path(tmp_path):
    path = tmp_path / "no" / "such" / "net.npz"
    with pytest.raises(FileNotFoundError) as e:
        with atomic_write(path) as f:
            f.write(b"x")
    msg = str(e.value)
    assert str(path) in msg and "does not exist" in msg and ".tmp" not in msg
    assert list(tmp_path.iterdir()) == []


def test_folder_without_write_permission(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into any folder")
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(PermissionError) as e:
            with atomic_write(folder / "f.txt", "w") as f:
                f.write("x")
        assert str(folder / "f.txt") in str(e.value) and ".tmp" not in str(e.value)
    finally:
        os.chmod(folder, 0o755)


def test_learning_curve_png_permissions(tmp_path, umask):
    pytest.importorskip("matplotlib")
    from clnn.examples.plotting import learning_curves

    umask(0o022)
    path = tmp_path / "curves.png"
    learning_curves({"loss": [1.0, 0.5]}, str(path), "t")
    assert _mode(path) == 0o644
    os.chmod(path, 0o640)
    learning_curves({"loss": [1.0, 0.4]}, str(path), "t")
    assert _mode(path) == 0o640
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
