import json

import pytest

import clnn
from clnn.devices import _select_from


def test_devices_fields():
    devs = clnn.devices()
    assert devs, "the test machine must have at least one OpenCL device"
    for i, d in enumerate(devs):
        assert d.index == i
        assert d.type in ("CPU", "GPU", "ACCELERATOR", "OTHER")
        assert d.compute_units >= 1 and d.global_mem > 0 and d.max_work_group_size >= 1
        assert isinstance(d.fp64, bool)
        assert d.opencl_version.startswith("OpenCL")
        assert clnn.select_device(d.spec) == d
        json.dumps(d.as_dict())


def test_order_argument_env_ctx(monkeypatch):
    devs = clnn.devices()
    d = devs[-1]
    monkeypatch.setenv("CLNN_DEVICE", "definitely-not-a-device")
    monkeypatch.setenv("PYOPENCL_CTX", "definitely-not-either")
    assert clnn.select_device(d.spec) == d  # argument first
    with pytest.raises(clnn.DeviceError, match="CLNN_DEVICE"):
        clnn.select_device()
    monkeypatch.setenv("CLNN_DEVICE", d.spec)
    assert clnn.select_device() == d  # CLNN_DEVICE before PYOPENCL_CTX
    monkeypatch.delenv("CLNN_DEVICE")
    with pytest.raises(clnn.DeviceError, match="PYOPENCL_CTX"):
        clnn.select_device()
    monkeypatch.setenv("PYOPENCL_CTX", f"{d.platform_index}:{d.device_index}")
    assert clnn.select_device() == d
    monkeypatch.setenv("PYOPENCL_CTX", "")
    monkeypatch.setenv("CLNN_DEVICE", "  ")
    first = clnn.select_device()
    gpus = [x for x in devs if x.type == "GPU"]
    cpus = [x for x in devs if x.type == "CPU"]
    assert first == (gpus or cpus or devs)[0]


def test_specs_by_type_and_substring():
    devs = clnn.devices()
    for d in devs:
        assert clnn.select_device(d.type.lower()).type == d.type
        assert clnn.select_device(d.name.upper()).name == d.name
        assert clnn.select_device(d.platform_vendor.lower()[:6]).platform_vendor
    pocl = [d for d in devs if "pocl" in d.platform_vendor.lower()]
    if not pocl:
        pytest.skip("no PoCL platform on this machine")
    assert clnn.select_device("pocl") == pocl[0]
    assert clnn.select_device("PoCL") == pocl[0]


@pytest.mark.parametrize("spec", ["no-such-device", "99:0", "0:99", "", "gpu-xyz"])
def test_bad_spec_lists_devices(spec):
    with pytest.raises(clnn.DeviceError) as e:
        clnn.select_device(spec)
    assert clnn.devices()[0].name in str(e.value)


def test_bad_spec_types():
    with pytest.raises(clnn.DeviceError):
        clnn.select_device(3.5)
    with pytest.raises(clnn.DeviceError):
        clnn.select_device(10**6)


def test_no_devices_at_all():
    with pytest.raises(clnn.DeviceError, match="no OpenCL device"):
        _select_from(None, [])
