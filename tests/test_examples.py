"""The example commands reach their targets; a missing optional dependency is a one-line
hint; ``clnn bench train`` runs and prints its table."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from clnn.cli import main

pytest.importorskip("sklearn", reason="the examples extra (scikit-learn) is not installed")
pytest.importorskip("matplotlib", reason="the examples extra (matplotlib) is not installed")
pytest.importorskip("tqdm", reason="the examples extra (tqdm) is not installed")


def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_train_digits_reaches_97_percent(device, tmp_path, capsys):
    out = tmp_path / "curves" / "digits.png"
    assert main(["train", "digits", "--device", device.spec, "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    m = re.search(r"^test accuracy: (\d+\.\d)%$", text, re.M)
    assert m, text
    assert float(m.group(1)) >= 97.0
    _png(out)


def test_train_regression_mse_below_1e3(device, tmp_path, capsys):
    out = tmp_path / "reg.png"
    assert main(["train", "regression", "--device", device.spec, "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    m = re.search(r"^test MSE: (\S+)$", text, re.M)
    assert m, text
    assert float(m.group(1)) < 1e-3
    _png(out)


def test_options_epochs_seed(device, tmp_path, capsys):
    out = tmp_path / "d.png"
    argv = ["train", "digits", "--device", device.spec, "--epochs", "2", "--seed", "3",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == first  # a seed reproduces the run
    _png(out)


@pytest.mark.parametrize("name,module", [("digits", "sklearn"), ("regression", "matplotlib")])
def test_missing_dependency_is_a_one_line_hint(name, module):
    code = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # makes 'import {module}' fail\n"
        "from clnn.cli import main\n"
        f"sys.exit(main(['train', {name!r}]))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install" in lines[0] and module in lines[0], r.stderr


@pytest.mark.timing
def test_bench_train_smoke(device, capsys, tmp_path):
    js = tmp_path / "t.json"
    rc = main(["bench", "train", "--device", device.spec, "--batch-sizes", "32", "--repeat",
               "1", "--hidden", "16", "--json", str(js)])
    assert rc in (0, 1)
    text = capsys.readouterr().out
    assert "clnn samples/s" in text and "numpy samples/s" in text
    assert re.search(r"^\s+32\s+[\d,]+\s+[\d,]+\s+\d+\.\d\dx", text, re.M), text
    import json

    data = json.loads(js.read_text())
    assert data["results"][0]["batch"] == 32 and data["results"][0]["clnn_samples_s"] > 0
