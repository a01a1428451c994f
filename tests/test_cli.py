import json
import subprocess
import sys

import pytest

import clnn
from clnn.cli import main


def test_demo_prints_layer_example(capsys, device):
    assert main(["demo", "--device", device.spec]) == 0
    out = capsys.readouterr().out
    assert "h1 = [0.63 1.83 3.6 0.9]" in out
    assert "y = [1.84]" in out
    assert device.name in out


def test_devices_table_marks_choice(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    chosen = clnn.select_device()
    line = [ln for ln in out.splitlines() if ln.startswith("*")][0]
    assert chosen.spec in line and chosen.name in line


def test_devices_json_and_select(capsys):
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["devices"]) == len(clnn.devices())
    assert {"name", "platform", "fp64", "global_mem", "spec"} <= set(data["devices"][0])
    d = clnn.devices()[0]
    assert main(["devices", "--select", d.spec]) == 0
    assert capsys.readouterr().out.startswith(d.spec)


def test_bad_select_exit_2(capsys):
    assert main(["devices", "--select", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-device" in err


def test_bad_env_one_line_no_traceback():
    env = {"CLNN_DEVICE": "no-such-device", "PATH": ""}
    import os

    env = dict(os.environ, CLNN_DEVICE="no-such-device")
    r = subprocess.run([sys.executable, "-m", "clnn", "demo"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "CLNN_DEVICE" in r.stderr and "no-such-device" in r.stderr


@pytest.mark.parametrize("argv", [["bench", "nonsense"], ["frobnicate"]])
def test_bad_subcommand_usage(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


# ---- device selection from scripts ------------------------------------------------------------
def _clnn_env(**extra: str) -> dict:
    import os
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("CLNN_DEVICE", "PYOPENCL_CTX",
                                                            "PYOPENCL_TEST")}
    env["PYTHONPATH"] = str(Path(clnn.__file__).resolve().parent.parent)
    env.update(extra)
    return env


def _clnn(env: dict, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clnn", *argv], env=env, capture_output=True,
                          text=True, timeout=120)


def test_devices_select_line_and_json(capsys):
    want = clnn.select_device("gpu+fp64,cpu,any")
    assert main(["devices", "--select", "gpu+fp64,cpu,any"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    fields = out.rstrip("\n").split("\t")
    assert fields == [want.spec, want.name, want.platform, want.type,
                      "yes" if want.fp64 else "no", str(want.global_mem)]
    assert main(["devices", "--select", "gpu+fp64,cpu,any", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["spec"] == want.spec and obj["fp64"] == want.fp64
    assert obj["global_mem"] == want.global_mem and "alternative" in obj["rule"]
    # without SPEC: what --device (else the environment) selects
    assert main(["devices", "--device", want.spec, "--select"]) == 0
    assert capsys.readouterr().out.split("\t")[0] == want.spec


@pytest.mark.parametrize("var, value", [("CLNN_DEVICE", "bogus"), ("PYOPENCL_CTX", "xx"),
                                        ("CLNN_DEVICE", "gpu+mem>=1000T")])
@pytest.mark.parametrize("json_out", [False, True], ids=["table", "json"])
def test_devices_exit_2_when_environment_matches_nothing(var, value, json_out):
    r = _clnn(_clnn_env(**{var: value}), "devices", *(["--json"] if json_out else []))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("clnn: error:")
    assert f"{var} {value!r}" in r.stderr and "Traceback" not in r.stderr
    if json_out:
        data = json.loads(r.stdout)
        assert data["selected"] is None and f"{var} {value!r}" in data["error"]
        assert len(data["devices"]) == len(clnn.devices())
    else:
        assert "P:D" in r.stdout and clnn.devices()[0].name in r.stdout


@pytest.mark.parametrize("value", [":", ":0", "0:", "Portable:pthread", "0:0:0"], ids=repr)
def test_pyopencl_ctx_forms_on_the_command_line(monkeypatch, value):
    import pyopencl as cl

    from clnn.devices import cl_device

    monkeypatch.delenv("PYOPENCL_TEST", raising=False)
    monkeypatch.setenv("PYOPENCL_CTX", value)
    try:
        want = next(d for d in clnn.devices()
                    if cl_device(d) == cl.choose_devices(interactive=False)[0])
    except (RuntimeError, cl.Error):
        want = None
    r = _clnn(_clnn_env(PYOPENCL_CTX=value), "devices", "--select")
    if want is None:
        assert r.returncode == 2 and f"PYOPENCL_CTX {value!r}" in r.stderr
    else:
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\t")[0] == want.spec


def test_pyopencl_ctx_colon_runs_the_demo():
    r = _clnn(_clnn_env(PYOPENCL_CTX=":"), "demo")
    assert r.returncode == 0, r.stderr
    assert "y = [1.84]" in r.stdout


# the README's "Device selection" script, with `clnn demo` in place of the training run
README_SCRIPT = r"""
line=$(clnn devices --select 'gpu+fp64,cpu') || exit 2
IFS=$'\t' read -r spec name platform type fp64 mem <<< "$line"
echo "training on $spec: $name ($type, fp64 $fp64, $((mem >> 30)) GiB)"
CLNN_DEVICE=$spec clnn demo
"""


@pytest.mark.parametrize("spec_env", [{}, {"CLNN_DEVICE": "bogus"}], ids=["plain", "bad-env"])
def test_readme_device_script(spec_env):
    want = clnn.select_device("gpu+fp64,cpu")
    prelude = f'clnn() {{ "{sys.executable}" -m clnn "$@"; }}\n'
    r = subprocess.run(["bash", "-c", prelude + README_SCRIPT], env=_clnn_env(**spec_env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    head = f"training on {want.spec}: {want.name} ({want.type}, fp64 "
    assert r.stdout.startswith(head)
    assert f"device: [{want.spec}] {want.name}" in r.stdout and "y = [1.84]" in r.stdout


# ---- command-line conventions: --version, --help, closed pipes, --quick -------------------------
def _cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m clnn ARGV`` in a new process, on this checkout."""
    import os
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(clnn.__file__).resolve().parent.parent))
    return subprocess.run([sys.executable, "-m", "clnn", *argv], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _pyproject_version() -> str:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def test_version():
    r = _cli("--version")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == f"clnn {clnn.__version__}\n"
    assert clnn.__version__ == _pyproject_version()


def test_version_of_a_source_checkout(monkeypatch):
    """Without installed metadata the version comes from pyproject.toml."""
    import importlib.metadata
    from pathlib import Path

    from clnn import _version

    if not (Path(_version.__file__).resolve().parent.parent / "pyproject.toml").exists():
        pytest.skip("clnn is installed (a wheel): no pyproject.toml beside the package")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert _version.version() == _pyproject_version()


COMMAND_NAMES = {"bench": ["gemv", "gemm", "blas1", "batch", "train", "leaks"],
                 "tune": ["gemv", "gemm"], "train": ["digits", "regression"]}


@pytest.mark.parametrize("command", list(COMMAND_NAMES))
def test_help_lists_every_name_with_one_line(command):
    r = _cli(command, "--help")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for name in COMMAND_NAMES[command]:
        line = next((ln for ln in lines if ln.split()[:1] == [name]), None)
        assert line is not None and len(line.split()) > 2, f"{name} missing:\n{r.stdout}"
    assert "--device" in r.stdout


def _defaults(command: str, name: str) -> list:
    """The options of ``clnn COMMAND NAME`` whose default --help should show."""
    import argparse
    import importlib

    from clnn.cli import BENCHES, TRAINERS, TUNERS

    table = {"bench": BENCHES, "tune": TUNERS, "train": TRAINERS}[command]
    try:
        mod = importlib.import_module(table[name][0])
    except ImportError as e:
        pytest.skip(f"clnn {command} {name} needs {e.name}")
    p = argparse.ArgumentParser()
    mod.add_arguments(p, name)
    return [(a.option_strings[-1], a.default) for a in p._actions
            if a.option_strings and a.default not in (None, False, argparse.SUPPRESS)
            and not isinstance(a.default, (list, tuple)) and a.help != argparse.SUPPRESS]


@pytest.mark.parametrize("argv", [["demo"], ["devices"]]
                         + [[c, n] for c, names in COMMAND_NAMES.items() for n in names],
                         ids=" ".join)
def test_help_documents_device_and_defaults(argv):
    import re

    defaults = _defaults(*argv) if len(argv) == 2 else []
    r = _cli(*argv, "--help")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    # one entry per option: "  --opt METAVAR  help text" and its continuation lines
    entries = re.split(r"\n(?=  -)", r.stdout.split("\noptions:\n", 1)[1])
    helps = {}
    for entry in entries:
        names = re.split(r"\s{2,}", entry.strip())[0]  # "-h, --help", "--lr LR"
        for w in names.split():
            if w.startswith("-"):
                helps[w.rstrip(",")] = " ".join(entry.split())
    assert re.search(r"--device DEVICE [a-z(]", helps["--device"]), r.stdout  # not bare
    for opt, value in defaults:
        assert str(value) in helps[opt], f"{opt}: default {value!r} not in {helps[opt]!r}"


@pytest.mark.parametrize("command", ["demo", "devices"])
def test_closed_pipe_ends_quietly(device, command):
    """`clnn demo | head -1`: the first line, then no traceback; a reader gone before clnn
    writes anything gives exit status 141 (as SIGPIPE gives other tools) and no output."""
    import os
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(clnn.__file__).resolve().parent.parent))
    cmd = f'"{sys.executable}" -m clnn {command} --device {device.spec}'
    r = subprocess.run(["bash", "-c", f'{cmd} | head -1; echo "status ${{PIPESTATUS[0]}}" >&2'],
                       env=env, capture_output=True, text=True, timeout=120)
    assert len(r.stdout.splitlines()) == 1
    assert r.stderr.strip() in ("status 0", "status 141"), r.stderr  # 0: all written in time
    p = subprocess.Popen([sys.executable, "-m", "clnn", command, "--device", device.spec],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # nobody reads: the first write fails
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141 and err == "", err


@pytest.mark.timing
def test_bench_gemv_quick_runs_less(device, tmp_path):
    """--quick: op N only, the odd shapes without the raw/floor contenders, one new process
    for the first call (the caches filled in-process); the full run is unchanged (its case
    list is checked in test_gemv.py)."""
    out = tmp_path / "q.json"
    r = _cli("bench", "gemv", "--device", device.spec, "--quick", "--sizes", "64", "--settle",
             "0", "--json", str(out))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    data = json.loads(out.read_text())
    assert data["quick"] and data["repeat"] == 3
    assert [(c["m"], c["n"], c["layout"], c["op"]) for c in data["cases"]] == [
        (m, n, lay, "N") for m, n in [(64, 64), (1023, 1025), (10007, 3), (3, 10007)]
        for lay in ("row", "col")]
    assert all(c["correct"] and "floor_gbs" not in c for c in data["cases"])
    assert data["first_call"]["cold_first_mv_s"] is None
    assert data["first_call"]["first_mv_s"] > 0 and "the read floor" not in r.stdout
