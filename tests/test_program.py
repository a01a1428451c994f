import pytest

import clnn
from clnn.program import ProgramCache, kernel_dir, render


def test_templates_found_and_have_headers():
    d = kernel_dir()
    names = sorted(p.name for p in d.glob("*.cl.mako"))
    assert "gemv.cl.mako" in names and "common.cl.mako" in names
    for p in d.glob("*.cl.mako"):
        text = p.read_text()
        assert text.lstrip().startswith("<%doc>"), f"{p.name} lacks its header"


def test_render_error_lists_parameters():
    with pytest.raises(clnn.RenderError) as e:
        render("gemv.cl.mako", dtype="float", layout="row", WGS=1)
    msg = str(e.value)
    assert "gemv.cl.mako" in msg and "WGS=1" in msg and "layout='row'" in msg


def test_missing_template():
    with pytest.raises(clnn.RenderError, match="nope.cl.mako"):
        render("nope.cl.mako", dtype="float")


def test_build_error_has_log(rt):
    pc = ProgramCache(rt.ctx, rt._cl_device)
    from clnn.program import build

    with pytest.raises(clnn.BuildError) as e:
        build(rt.ctx, rt._cl_device, "__kernel void f(__global float* a) { a[0] = b; }",
              list(pc._options), "broken.cl", {"X": 1})
    msg = str(e.value)
    assert "broken.cl" in msg and "X=1" in msg and "b" in msg


def test_program_cached_per_parameters(rt):
    p = dict(dtype="float", layout="col", WGS=1, RPT=1, VW=1, ALIGNED=False, XINC1=True,
             SPLIT=False, ACC=0, CU=1, NARROW=0, LDK=False)
    a = rt.programs.program("gemv.cl.mako", **p)
    assert rt.programs.program("gemv.cl.mako", **p) is a
    p["RPT"] = 2
    assert rt.programs.program("gemv.cl.mako", **p) is not a
