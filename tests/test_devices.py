import dataclasses
import json

import pyopencl as cl
import pytest

import clnn
from clnn.devices import _select_from, cl_device, describe_choice


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
    monkeypatch.delenv("PYOPENCL_CTX")  # set but empty, it is pyopencl's (tested below)
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


# ---- PYOPENCL_CTX: the same device as pyopencl, or a DeviceError naming the value -----------
def _ctx_forms() -> list[str]:
    """Every form pyopencl documents or accepts, made from the devices here: indexes, P:D,
    empty parts, platform and device name parts, device lists, and values it rejects."""
    forms = ["", ":", ":0", "0:", "0", "0:0", "0:0,0", "Portable:pthread", "xx", "0:0:0",
             "99:99", "0:99", "  ", "0:no-such-device", "-1"]
    for d in clnn.devices():
        pi, di = d.platform_index, d.device_index
        forms += [f"{pi}", f"{pi}:", f"{pi}:{di}", d.platform[:5].lower(),
                  f"{d.platform.split()[-1]}:{d.name[-6:].upper()}", f":{d.name[:4]}",
                  f"{pi}:{d.name}", f"{pi}:{di},{di}"]
    return list(dict.fromkeys(forms))


@pytest.mark.parametrize("value", _ctx_forms(), ids=repr)
def test_pyopencl_ctx_is_read_as_pyopencl_reads_it(monkeypatch, value):
    monkeypatch.delenv("CLNN_DEVICE", raising=False)
    monkeypatch.delenv("PYOPENCL_TEST", raising=False)  # it would override PYOPENCL_CTX
    monkeypatch.setenv("PYOPENCL_CTX", value)
    try:
        expected = cl.choose_devices(interactive=False)[0]  # pyopencl reads the variable
    except (RuntimeError, cl.Error):
        expected = None
    if expected is None:
        with pytest.raises(clnn.DeviceError) as e:
            clnn.select_device()
        msg = str(e.value)
        assert f"PYOPENCL_CTX {value!r}" in msg and "\n" not in msg
        assert clnn.devices()[0].name in msg
    else:
        got = clnn.select_device()
        assert cl_device(got) == expected, (value, got, expected)
        with clnn.Runtime() as rt:
            assert rt.device == got


# ---- the spec grammar, on made-up device lists ------------------------------------------------
def _fake(kind: str, fp64: bool = True, mem_gib: float = 4, name: str = "", **kw):
    base = clnn.devices()[0]
    return dataclasses.replace(base, type=kind, fp64=fp64, global_mem=int(mem_gib * 2**30),
                               name=name or f"{kind.lower()}-{'fp64' if fp64 else 'fp32'}",
                               **kw)


def _numbered(*devs):
    return [dataclasses.replace(d, index=i, platform_index=i, device_index=0)
            for i, d in enumerate(devs)]


CPU, GPU32, GPU64 = _fake("CPU", mem_gib=64), _fake("GPU", False, 8), _fake("GPU", True, 16)


@pytest.mark.parametrize("devs, spec, want", [
    ((CPU, GPU32, GPU64), "gpu+fp64,cpu", 2),
    ((CPU, GPU32), "gpu+fp64,cpu", 0),
    ((GPU32, CPU), "gpu+fp64,cpu", 1),
    ((GPU32, CPU), "gpu,cpu", 0),
    ((GPU32, CPU), "cpu,gpu", 1),
    ((GPU32, CPU), " GPU + FP64 , Cpu ", 1),
    ((CPU, GPU32, GPU64), "fp64+mem>=16G", 0),
    ((CPU, GPU32, GPU64), "gpu+mem>=16G", 2),
    ((CPU, GPU32, GPU64), "gpu+mem>=16GiB", 2),
    ((CPU, GPU32, GPU64), "gpu+mem>16G,gpu", 1),
    ((CPU, GPU32, GPU64), "gpu+mem<=8192M", 1),
    ((CPU, GPU32, GPU64), "mem=8G", 1),
    ((CPU, GPU32, GPU64), f"mem<{8 * 2**30}", -1),
    ((CPU, GPU32, GPU64), "mem >= 0.0625T", 0),
    ((CPU, GPU32, GPU64), "gpu+mem>=1.5gb", 1),
    ((CPU, GPU32, GPU64), "gpu+cu>=1+wg>=1+alloc>=1k+local>=1K", 1),
    ((CPU, GPU32, GPU64), "gpu+cu<1,any", 0),
    ((CPU, GPU32, GPU64), "accelerator,2", 2),
    ((CPU, GPU32, GPU64), "accelerator,2:0", 2),
    ((CPU, GPU32, GPU64), "1+fp64,0", 0),
    ((CPU, GPU32, GPU64), "gpu-fp32", 1),
    ((CPU, GPU32, GPU64), "nope,GPU-FP64", 2),
])
def test_spec_requirements_and_fallbacks(devs, spec, want):
    devs = _numbered(*devs)
    if want < 0:
        with pytest.raises(clnn.DeviceError) as e:
            _select_from(spec, devs)
        assert repr(spec) in str(e.value) and devs[0].name in str(e.value)
        return
    got, rule = _select_from(spec, devs)
    assert got == devs[want]
    assert rule.startswith(f"device {spec.strip()!r}")
    if "," in spec:
        assert "alternative" in rule


@pytest.mark.parametrize("spec, why", [
    ("gpu+fp64", "matches no device"), ("accelerator,gpu+mem>=1T", "matches no device"),
    ("foo>=3", "unknown limit 'foo'"), ("mem>=8X", "'8X'"), ("cu>=1.5", "whole number"),
    ("gpu,,cpu", "empty alternative"), (",", "empty alternative"), ("gpu+", "empty term"),
    ("+", "empty term"), ("wg>=", "whole number"), ("mem>=G", "size"), ("", "empty"),
])
def test_spec_errors_name_the_spec_and_list_devices(spec, why):
    devs = _numbered(CPU, GPU32)
    with pytest.raises(clnn.DeviceError) as e:
        _select_from(spec, devs, "CLNN_DEVICE")
    msg = str(e.value)
    assert why in msg and "CLNN_DEVICE" in msg and "\n" not in msg
    assert all(f"[{d.spec}] {d.name}" in msg for d in devs)
    assert "fp64" in msg and "GiB" in msg  # the listing says what each device has


def test_spec_with_fallback_on_real_devices(monkeypatch):
    devs = clnn.devices()
    want = next((d for d in devs if d.type == "GPU" and d.fp64), None)
    want = want or next((d for d in devs if d.type == "CPU"), None)
    if want is None:
        pytest.skip("no GPU with fp64 and no CPU here")
    assert clnn.select_device("gpu+fp64,cpu") == want
    monkeypatch.setenv("CLNN_DEVICE", "gpu+fp64,cpu")
    monkeypatch.setenv("PYOPENCL_CTX", "not-consulted")
    d, rule = describe_choice()
    assert d == want and rule.startswith("CLNN_DEVICE 'gpu+fp64,cpu', alternative")
    big = max(devs, key=lambda x: x.global_mem)
    assert clnn.select_device(f"mem>={big.global_mem}").global_mem == big.global_mem
    with pytest.raises(clnn.DeviceError, match="mem>"):
        clnn.select_device(f"mem>{big.global_mem}")
