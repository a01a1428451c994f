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
