"""The tuning database (clnn.tuning) and the tuner (clnn.tune, ``clnn tune NAME``).

Every test points ``CLNN_TUNING_DB`` at a temporary file: the user's own database is never
read or written here.
"""

import importlib
import json
import os
import stat
import warnings

import numpy as np
import pytest
from tolerances import assert_close, ref_mv
from tuningdb import private_db

import clnn
from clnn import tune, tuning
from clnn.cli import main


@pytest.fixture
def db(tmp_path, monkeypatch):
    yield from private_db(tmp_path / "sub" / "tuning.json", monkeypatch)


def test_db_path_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("CLNN_TUNING_DB", str(tmp_path / "x.json"))
    assert tuning.db_path() == tmp_path / "x.json"
    monkeypatch.delenv("CLNN_TUNING_DB")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert tuning.db_path() == tmp_path / "cache" / "clnn" / "tuning.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert tuning.db_path().parts[-3:] == (".cache", "clnn", "tuning.json")


def test_store_is_atomic_private_and_read_back(device, db):
    assert not db.parent.exists()
    tuning.store(device, "gemv", "row", "float", "large", {"RPT": 2, "VW": 8},
                 {"seconds": 1e-3})
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
    data = json.loads(db.read_text())
    assert data["format"] == "clnn-tuning" and data["version"] == tuning.FORMAT_VERSION
    entry = data["devices"][device.key]["entries"]["gemv/row/float/large"]
    assert entry["params"] == {"RPT": 2, "VW": 8} and entry["seconds"] == 1e-3
    assert data["devices"][device.key]["driver"] == device.driver_version
    assert [p.name for p in db.parent.iterdir()] == ["tuning.json"]  # no temporary left
    p, src = tuning.lookup(device, "gemv", "row", "float", "large")
    assert src == "device" and p["RPT"] == 2 and p["VW"] == 8
    d = tuning.defaults(device, "gemv", "row", "float", "large")
    assert set(p) == set(d)  # merged over the defaults
    # a second store keeps the first entry
    tuning.store(device, "gemv", "col", "double", "small", {"VW": 4})
    data = json.loads(db.read_text())
    assert len(data["devices"][device.key]["entries"]) == 2


def test_lookup_fallback_order(device, db):
    """device + size class -> device + any -> vendor/type -> shipped -> derived."""
    derived = tuning._derived(device, "gemv", "row", "float", "large")
    p, src = tuning.lookup(device, "gemv", "row", "float", "large")
    assert src in ("builtin", "derived") and p == tuning.defaults(device, "gemv", "row",
                                                                  "float", "large")
    tuning.store(device, "gemv", "row", "float", "any", {"RPT": 3}, scope="vendor")
    p, src = tuning.lookup(device, "gemv", "row", "float", "large")
    assert (src, p["RPT"]) == ("vendor", 3)
    tuning.store(device, "gemv", "row", "float", "any", {"RPT": 5})
    p, src = tuning.lookup(device, "gemv", "row", "float", "large")
    assert (src, p["RPT"]) == ("device", 5)
    tuning.store(device, "gemv", "row", "float", "large", {"RPT": 6})
    assert tuning.lookup(device, "gemv", "row", "float", "large")[0]["RPT"] == 6
    assert tuning.lookup(device, "gemv", "row", "float", "small")[0]["RPT"] == 5
    assert tuning.lookup(device, "gemv", "row", "double", "small")[1] in ("builtin",
                                                                            "derived")
    assert set(derived) == set(p)


def test_other_driver_version_is_not_used(device, db):
    import dataclasses

    tuning.store(device, "gemv", "row", "float", "any", {"RPT": 7})
    other = dataclasses.replace(device, driver_version=device.driver_version + "-new")
    assert tuning.lookup(other, "gemv", "row", "float")[1] in ("builtin", "derived")
    assert tuning.lookup(device, "gemv", "row", "float")[1] == "device"


def test_shipped_table_and_invalid_shipped_entry(device, db, monkeypatch):
    monkeypatch.setitem(tuning._BUILTIN, "gemv",
                        {tuning.vendor_key(device): {"row/float/any": {"RPT": 2},
                                                     "col/float/any": {"VW": 3}}})
    tuning.clear_cache()
    p, src = tuning.lookup(device, "gemv", "row", "float", "large")
    assert (src, p["RPT"]) == ("builtin", 2)
    with pytest.warns(tuning.TuningWarning, match="VW"):
        p, src = tuning.lookup(device, "gemv", "col", "float", "large")
    assert src == "derived"


def test_params_cached_and_refreshed_when_the_file_changes(device, db):
    gen = tuning.generation()
    a = tuning.params(device, "gemv", "row", "float", "large")
    assert tuning.params(device, "gemv", "row", "float", "large") == a
    tuning.store(device, "gemv", "row", "float", "large", {"RPT": 8})
    assert tuning.generation() > gen
    assert tuning.params(device, "gemv", "row", "float", "large")["RPT"] == 8


def test_old_style_defaults_function_still_works(device):
    tuning.register_defaults("test-family", lambda dev, variant, dtype: {"X": 1})
    try:
        assert tuning.params(device, "test-family", "v", "float") == {"X": 1}
        assert tuning.params(device, "test-family", "v", "float", "large") == {"X": 1}
    finally:
        tuning._DEFAULTS.pop("test-family")


def test_flags_may_be_zero_other_tunables_not(device, db):
    tuning.store(device, "gemv", "col", "float", "any", {"ACC": 0, "AL": 0})
    p, src = tuning.lookup(device, "gemv", "col", "float")
    assert src == "device" and p["ACC"] == 0
    tuning.store(device, "gemv", "row", "float", "any", {"RPT": 0})
    with pytest.warns(tuning.TuningWarning, match="RPT"):
        assert tuning.lookup(device, "gemv", "row", "float")[1] != "device"


def test_mv_with_a_database_entry_is_right(rt, db):
    tuning.store(rt.device, "gemv", "row", "float", "any",
                 {"RPT": 2, "VW": 4, "NG": 3, "KMIN": 16})
    tuning.store(rt.device, "gemv", "col", "float", "any",
                 {"VW": 2, "CU": 1, "NG": 3, "KMIN": 16, "MB": 24} if rt.device.type == "CPU"
                 else {"RPT": 2, "VW": 2})
    rng = np.random.default_rng(5)
    A = rng.standard_normal((70, 90)).astype(np.float32)
    x = rng.standard_normal(90).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tuning.TuningWarning)
        for layout in ("row", "col"):
            with rt.matrix(A, layout=layout) as a, rt.vector(x) as xv, clnn.mv(a, xv) as y:
                assert_close(y.to_numpy(), ref_mv(A, x), np.float32, k=90)


# ---- the tuner ------------------------------------------------------------------------------
def test_tuner_registry_contract():
    t = tune.tuners()
    assert "gemv" in t
    dev = clnn.select_device(os.environ.get("CLNN_TEST_DEVICES", "").split(",")[0] or None)
    cands = list(t["gemv"].candidates(dev, "float", True))
    assert cands and all(isinstance(v, str) and isinstance(sc, str) and isinstance(p, dict)
                         for v, sc, p in cands)
    assert {v for v, _, _ in cands} == {"row", "col"}


def test_families_listed_once():
    """clnn tune's sub-commands are clnn.tune.FAMILIES, each a module with the two hooks."""
    from clnn.cli import TUNERS

    names = [name for name, _ in tune.FAMILIES]
    assert list(TUNERS) == names and len(set(names)) == len(names)
    for name in names:
        mod = importlib.import_module(f"clnn.tune.{name}")
        assert tune.tuners()[name] == tune.Tuner(name, mod.candidates, mod.bench)
    with pytest.raises(clnn.ClnnError, match="no tuner for kernel family 'nope'"):
        tune.tune(None, "nope", ["float"])


@pytest.mark.timing
def test_tune_stores_winners_never_slower_than_defaults(rt, db, monkeypatch):
    """A fake bench: the candidate with RPT == 2 is fastest, the defaults are timed too."""
    seen = []

    def cands(device, dtype, quick):
        yield "row", "large", dict(tuning.defaults(device, "gemv", "row", dtype, "large"),
                                   RPT=2)
        yield "row", "large", dict(tuning.defaults(device, "gemv", "row", dtype, "large"),
                                   RPT=16)

    def bench(rt_, variant, dtype, sc, p):
        seen.append(p["RPT"])
        if p["RPT"] == 16:
            raise clnn.BuildError("simulated")
        return 1.0 if p["RPT"] == 2 else 2.0

    monkeypatch.setitem(tune._TUNERS, "fake", tune.Tuner("fake", cands, bench))
    monkeypatch.setitem(tuning._DEFAULTS, "fake", tuning._DEFAULTS["gemv"])
    monkeypatch.setitem(tuning._FLAGS, "fake", tuning._FLAGS["gemv"])
    logs = []
    res = tune.tune(rt, "fake", ["float"], log=logs.append)
    base = tuning.defaults(rt.device, "fake", "row", "float", "large")["RPT"]
    assert set(seen) == {2, 16, base}  # (finalists are timed three times)
    assert res[0]["params"]["RPT"] == 2 and res[0]["seconds"] == 1.0
    assert any("skip" in ln for ln in logs)
    assert tuning.lookup(rt.device, "fake", "row", "float", "large")[0]["RPT"] == 2


@pytest.mark.timing
def test_clnn_tune_gemv_cli_quick(device, db, tmp_path, capsys):
    out = tmp_path / "tune.json"
    assert main(["tune", "gemv", "--device", device.spec, "--quick", "--dtype", "float32",
                 "--variant", "row", "--size-class", "small", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "gemv/row/float/small" in text
    res = json.loads(out.read_text())["results"]
    assert res and res[0]["seconds"] <= res[0]["default_seconds"]
    p, src = tuning.lookup(device, "gemv", "row", "float", "small")
    assert src == "device" and p == res[0]["params"]


def test_clnn_tune_dry_run_writes_nothing(device, db, capsys):
    assert main(["tune", "gemv", "--device", device.spec, "--quick", "--dtype", "float32",
                 "--variant", "col", "--size-class", "small", "--dry-run"]) == 0
    assert not db.exists()


def test_clnn_tune_unknown_variant_or_size_class_is_refused(device, db, capsys):
    """A --variant or --size-class that the family does not have is named, with the ones it
    has, instead of tuning nothing; the database is not written."""
    assert main(["tune", "gemv", "--device", device.spec, "--quick", "--variant", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "no variant bogus" in err and "col, row" in err
    assert main(["tune", "gemv", "--device", device.spec, "--quick", "--size-class",
                 "huge"]) == 2
    assert "no size class huge" in capsys.readouterr().err
    assert not db.exists()
