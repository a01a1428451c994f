"""What the tuning tests share: a private tuning database for one test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from clnn import tuning


def private_db(path: Path, monkeypatch) -> Iterator[Path]:
    """Point ``CLNN_TUNING_DB`` at ``path`` and reset the in-memory lookups around the test;
    the body of a fixture (``yield from private_db(tmp_path / "tuning.json", monkeypatch)``),
    so the user's own database is never read or written."""
    monkeypatch.setenv("CLNN_TUNING_DB", str(path))
    tuning.clear_cache()
    tuning._warned.clear()
    yield path
    monkeypatch.delenv("CLNN_TUNING_DB")
    tuning.clear_cache()
    tuning._warned.clear()
