"""gemm: ``C := alpha*op(A) op(B) + beta*C`` for every combination of layouts and transposes.

Two paths, chosen by problem size and device (see ``kernels/gemm.cl.mako``):

* ``"packed"`` (CPU devices, all but tiny problems): op(A) and op(B) are copied into
  contiguous row/column panels (workspace buffers kept by the runtime and reused), then one
  work-item per MR x NR register tile multiplies the panels. Every layout and transpose
  becomes the same fast kernel.
* ``"ref"`` (GPUs, and tiny problems anywhere): TS x TS tiles of A and B in local memory,
  WPT elements of C per work-item.

Tunables live in the tuning database (``clnn tune gemm``); the defaults derive from the device.

Example:
    >>> import clnn
    >>> with clnn.Runtime("cpu") as rt:
    ...     a = rt.matrix([[1, 2], [3, 4]])
    ...     print(clnn.mm(a, a.T).to_numpy())
    [[ 5. 11.]
     [11. 25.]]
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional, Tuple

import numpy as np

from . import checks, tuning
from .array import Matrix
from .devices import DeviceInfo
from .errors import ShapeError
from .launch import Plan, real_type, round_up, template_signatures
from .tuning import ANY, register_defaults

__all__ = ["mm", "gemm", "gemm_defaults", "size_class", "choose_variant", "avx512"]


# m*n*k below which the packed path does not pay for its two extra launches (PoCL: 32^3 takes
# about 60 us either way; 48^3 82 us packed, 138 us ref)
PACKED_MIN_WORK = 32 ** 3
# size classes of the tuning database: m*n*k thresholds
_LARGE_WORK = 2 ** 28  # about 645^3: the 1024^3 and 2048^3 class
PACK_A_PANELS = 8
"""Row panels of A per work-item of ``gemm_pack_a``. A column-major A gives MR contiguous
values (24 bytes for 6 floats) per k value and panel; eight panels of one work-item read whole
cache lines while they are in L1 (1024^3 with a transposed A, PoCL: pack_a 0.77-0.93 ms with
one panel per work-item against 0.36-0.39 ms for a row-major A)."""
SIZE_CLASSES = ("medium", "large")
MAX_MR, MAX_NR = 32, 128  # the largest register tile the packed variant accepts
EPILOGUES = ("bias_act", "dact", "rowsum")
"""Store epilogues of the packed tile kernels (kernels/gemm.cl.mako, ``EPI``): used by the
prepared :class:`Product` of the nn plans, never by :func:`mm`."""


@functools.cache
def _local_mem(device: DeviceInfo) -> int:
    return device.local_mem


def gemm_defaults(device: DeviceInfo, variant: str, dtype: str, size_class: str = ANY) -> dict:
    """Built-in gemm tunables derived from the device.

    ``"ref"``: TS x TS tiles with WPT = 4 elements per work-item; TS = 32, halved until the
    TS*TS/WPT work-items fit the device's work-group size and the two tiles its local memory
    (TS = 1 on CPU devices, which use it only for tiny products).

    ``"packed"``: an MR x NR register tile in vectors of VW lanes. A CPU target with AVX2 has
    16 vector registers of 8 floats: a 6 x 16 float tile (12 accumulators, 2 B vectors, 1
    broadcast) is the classic fit; double uses 4 lanes. A target with AVX-512
    (:func:`avx512`) gets an 8 x 32 tile of 16 lanes (8 x 16 of 8 for double). Two tiles per
    work-item (TPW) halve the work-groups PoCL schedules; CACHE KiB of A panels are kept hot
    while B streams. A row-major A is read in place when n <= DIRECTN (packing A is a pass
    over A, which matters when n is small: 10000 x 128 x 784 ran at 1.1x numpy in place, 0.9x
    packed); for larger n the packed, contiguous A panels are kept.
    Measured on PoCL (AVX2 code on a 2-core EPYC), float32, ratio to numpy: 1024^3 0.82 with
    TPW=1, 0.94 with TPW=2; 2048^3 0.94 / 0.99; 4 x 24 and 5 x 16 tiles were slower.
    """
    if variant == "ref":
        if device.type == "CPU":
            # CPU devices run the ref kernel only on tiny products: without work-group
            # barriers it is fastest (a 1 x 1 x 4096 product: 47 us at TS=1, 960 us at 16)
            return {"TS": 1, "WPT": 1}
        item = 8 if dtype == "double" else 4
        ts = 32
        # TS*TS/WPT work-items with WPT = min(4, TS) (TS*TS//4 let TS=2, WPT=2 -- 2 work-items
        # -- through on a device of 1)
        while ts > 1 and (ts * ts // min(4, ts) > device.max_work_group_size
                          or 2 * ts * (ts + 1) * item > _local_mem(device)):
            ts //= 2
        return {"TS": ts, "WPT": min(4, ts)}
    if avx512(device):
        # 32 registers of 16 floats: an 8 x 32 float tile (16 accumulators, 2 B vectors, 1
        # broadcast), 8 x 16 for double. PoCL 3.1 (Debian, skylake-avx512 code) on a 2-core
        # EPYC, 1024^3 side by side: float 165 GFLOP/s against 135 with the 6 x 16 tile
        # (numpy 168); double 78 against 70 (numpy 89)
        vw = 16 if dtype == "float" else 8
        return {"MR": 8, "NR": 2 * vw, "VW": vw, "UK": 4, "KB": 64, "CACHE": 512, "TPW": 2,
                "DIRECTN": 512}
    vw = 8 if dtype == "float" else 4
    return {"MR": 6, "NR": 2 * vw, "VW": vw, "UK": 4, "KB": 64, "CACHE": 512, "TPW": 2,
            "DIRECTN": 512}


# LLVM CPU names with AVX-512, as PoCL puts them in the device name or its HSTR version string
_AVX512_CPUS = ("avx512", "cascadelake", "cooperlake", "icelake", "tigerlake", "rocketlake",
                "sapphirerapids", "graniterapids", "emeraldrapids", "znver4", "znver5", "knl",
                "knm", "cannonlake")


def avx512(device: DeviceInfo) -> bool:
    """True for a CPU device whose compiler targets AVX-512 (judged from the target CPU name
    PoCL reports: ``pthread-skylake-avx512-...``, ``HSTR: ...-znver4``). Other CPU runtimes
    do not say; they get the AVX2-sized defaults, and ``clnn tune gemm`` finds wider tiles."""
    if device.type != "CPU":
        return False
    text = f"{device.name} {device.opencl_version}".lower()
    return any(c in text for c in _AVX512_CPUS)


def _validate(device: DeviceInfo, variant: str, dtype: str, p: dict) -> None:
    if variant == "ref":
        ts, wpt = p["TS"], p["WPT"]
        if ts % wpt:
            raise ValueError(f"WPT={wpt} does not divide TS={ts}")
        if ts * ts // wpt > device.max_work_group_size:
            raise ValueError(f"TS={ts}, WPT={wpt}: {ts * ts // wpt} work-items exceed the "
                             f"device's {device.max_work_group_size}")
        item = 8 if dtype == "double" else 4
        if 2 * ts * (ts + 1) * item > _local_mem(device):
            raise ValueError(f"TS={ts}: the tiles exceed the device's local memory")
        return
    if p["VW"] not in (1, 2, 4, 8, 16):
        raise ValueError(f"VW={p['VW']} is not 1, 2, 4, 8 or 16")
    item = 8 if dtype == "double" else 4
    if p["VW"] * item > 64:
        # wider than 512 bits: PoCL's LLVM aborts (kills the process) on e.g. double16
        raise ValueError(f"VW={p['VW']} {dtype}s are wider than 512 bits")
    if p["NR"] % p["VW"]:
        raise ValueError(f"NR={p['NR']} is not a multiple of VW={p['VW']}")
    if p["MR"] > MAX_MR or p["NR"] > MAX_NR or p["MR"] * p["NR"] > 1024 or p["UK"] > 16:
        raise ValueError(f"register tile {p['MR']}x{p['NR']} (UK={p['UK']}) is too large")


register_defaults("gemm", gemm_defaults, _validate)


def size_class(m: int, n: int, k: int) -> str:
    """The tuning size class of an m x n x k product."""
    return "large" if m * n * k >= _LARGE_WORK else "medium"


def choose_variant(device: DeviceInfo, m: int, n: int, k: int) -> str:
    """``"packed"`` on CPU devices for all but tiny products, ``"ref"`` otherwise."""
    if device.type == "CPU" and m * n * k >= PACKED_MIN_WORK:
        return "packed"
    return "ref"


# ---- plans and workspace -------------------------------------------------------------------
def _render(kind: str, p: dict, epilogue: Optional[str] = None) -> dict:
    """The template parameters (besides dtype) of kernel ``gemm_<kind>`` with tunables ``p``;
    ``EPI`` only when there is an epilogue, so mm's programs render as they always did."""
    if kind == "ref":
        return {"variant": "ref", "TS": p["TS"], "WPT": p["WPT"], "VW": 1}
    render = {"variant": "packed", "MR": p["MR"], "NR": p["NR"], "VW": p["VW"],
              "UK": p["UK"], "KB": p["KB"], "PA": PACK_A_PANELS}
    if epilogue is not None:
        render["EPI"] = epilogue
    return render


def _new_plan(rt, kind: str, rtype: str, p: dict, epilogue: Optional[str] = None) -> Plan:
    """A new Plan (its own kernel object) of kernel ``gemm_<kind>`` rendered with tunables
    ``p``, its argument names and types read from the template's declaration."""
    render = _render(kind, p, epilogue)
    names, dtypes = template_signatures("gemm.cl.mako", dtype=rtype, **render)[f"gemm_{kind}"]
    k = rt.programs.kernel("gemm.cl.mako", f"gemm_{kind}", dtype=rtype, **render)
    # the local size it is launched with (see _launch): TS x TS/WPT for "ref", else 1
    wgs = p["TS"] * (p["TS"] // p["WPT"]) if kind == "ref" else 1
    return Plan(rt, k, dtypes, render, wgs=wgs, names=names)


def _kernel_plan(rt, kind: str, rtype: str, p: dict, epilogue: Optional[str] = None) -> Plan:
    """The shared Plan of kernel ``gemm_<kind>`` with tunables ``p`` (cached on the runtime).
    Layouts are kernel arguments, so one program serves every combination."""
    key = ("gemm", kind, rtype, tuple(sorted(_render(kind, p, epilogue).items())))
    return rt.memo(key, lambda: _new_plan(rt, kind, rtype, p, epilogue))


def _strides(x: Matrix) -> tuple:
    """(row stride, column stride) of ``x``'s elements."""
    return (x.ld, 1) if x.layout == "row" else (1, x.ld)


class _Kernels:
    """The built kernels of one (variant, dtype, tunables, epilogue): what a call launches."""

    __slots__ = ("variant", "params", "epilogue", "ref", "pack_a", "pack_b", "tile",
                 "tile_direct")

    def __init__(self, rt, variant: str, dtype: np.dtype, p: dict,
                 epilogue: Optional[str] = None):
        rtype = real_type(dtype)
        self.variant = variant
        self.params = dict(p)
        self.epilogue = epilogue
        if variant == "ref":
            self.ref = _kernel_plan(rt, "ref", rtype, p)
            return
        for kind in ("pack_a", "pack_b", "tile", "tile_direct"):
            setattr(self, kind, _kernel_plan(rt, kind, rtype, p, epilogue))


def _kernels(rt, variant: str, dtype: np.dtype, sc: str,
             forced: Optional[dict] = None, epilogue: Optional[str] = None) -> _Kernels:
    """The kernels for a call: forced tunables, or the looked-up ones (a tuned value the
    driver refuses falls back to the defaults with a warning), cached on the runtime."""
    if forced is not None:
        return _Kernels(rt, variant, dtype, forced, epilogue)
    cache = rt.memo(("gemm",), dict)
    key = (variant, dtype.char, sc, tuning.generation(), epilogue)
    ks = cache.get(key)
    if ks is None:
        if len(cache) > 64:  # the tuning database changed many times: start over
            cache.clear()
        ks, _ = tuning.build_with_fallback(rt.device, "gemm", variant, real_type(dtype), sc,
                                           lambda p: _Kernels(rt, variant, dtype, p, epilogue))
        cache[key] = ks
    return ks


class _Geometry(NamedTuple):
    """How a packed m x n x k product is launched (see :func:`_geometry`)."""

    direct: bool  # a row-major A is read in place by gemm_tile_direct (no pack_a)
    a_elems: int  # elements of the packed A panels (0 when direct)
    b_elems: int  # elements of the packed B panels
    pack_a: tuple  # global sizes of gemm_pack_a, gemm_pack_b and the tile kernel
    pack_b: tuple
    tile: tuple
    rb: int  # row groups per chunk
    tpw: int  # tiles per work-item


def _geometry(p: dict, m: int, n: int, k: int, a_row: bool, itemsize: int) -> _Geometry:
    """The launch geometry of a packed product with tunables ``p``; ``a_row``: op(A) is
    row-major (column stride 1)."""
    mr, nr, kb = p["MR"], p["NR"], p["KB"]
    mb, nb, kblocks = -(-m // mr), -(-n // nr), -(-k // kb)
    tpw = p["TPW"]
    mg = -(-mb // tpw)
    # row groups (of TPW panels) per chunk: as many as fit CACHE KiB of A panels (at least 1)
    rb = max(1, min(mg, p["CACHE"] * 1024 // (tpw * mr * k * itemsize)))
    direct = a_row and n <= p["DIRECTN"]
    return _Geometry(direct, 0 if direct else mb * mr * k, nb * nr * k,
                     (kblocks, -(-mb // PACK_A_PANELS)), (kblocks, nb), (mg * nb,), rb, tpw)


def _launch(rt, ks: _Kernels, a: Matrix, b: Matrix, c: Matrix, alpha: float,
            beta: float) -> None:
    if c.layout == "col" and ks.variant == "packed":
        # C = A B  <=>  C^T = B^T A^T: the tile kernel then stores contiguous rows of C^T
        # (a column-major C cost 10% at 1024^3 in scattered stores)
        a, b, c = b.T, a.T, c.T
    m, k = a.shape
    n = b.n
    d = a.dtype.type
    p = ks.params
    sa, sb, sc = _strides(a), _strides(b), _strides(c)
    if ks.variant == "ref":
        ts, wpt = p["TS"], p["WPT"]
        ks.ref.launch((round_up(m, ts), round_up(n, ts) // wpt), (ts, ts // wpt),
                      (m, n, k, d(alpha), a._owner._buf, a.offset, *sa, b._owner._buf,
                       b.offset, *sb, d(beta), c._owner._buf, c.offset, *sc))
        return
    geo = _geometry(p, m, n, k, a.layout == "row", a.dtype.itemsize)
    # the lock spans the three launches: another thread must not repack the workspace
    # between this call's packing and its multiplication
    with rt._lock:
        if geo.direct:
            # row-major A is read in place: MR row streams (rows past m re-read row m-1)
            tile, asrc = ks.tile_direct, (a._owner._buf, a.offset, a.ld)
        else:
            wa = rt.scratch("gemm-a", geo.a_elems, a.dtype)
            ks.pack_a.launch(geo.pack_a, (1, 1), (m, k, a._owner._buf, a.offset, *sa, wa._buf))
            tile, asrc = ks.tile, (wa._buf, 0, 0)
        wb = rt.scratch("gemm-b", geo.b_elems, a.dtype)
        ks.pack_b.launch(geo.pack_b, (1, 1), (n, k, b._owner._buf, b.offset, *sb, wb._buf))
        tile.launch(geo.tile, (1,), (m, n, k, d(alpha), *asrc, wb._buf, d(beta),
                                     c._owner._buf, c.offset, *sc, geo.rb, geo.tpw))


# ---- prepared products (the nn plans) -------------------------------------------------------
Operand = Tuple[Any, int, int, int]
"""A matrix operand of a :class:`Product`: (cl.Buffer, element offset, row stride, column
stride); element (i, j) is at offset + i * row stride + j * column stride."""


def panel_bound(m: int, n: int, k: int) -> Tuple[int, int]:
    """Elements of A-panel and B-panel scratch that hold the packed operands of an
    m x n x k :class:`Product` whatever the (valid) tunables."""
    return (m + MAX_MR - 1) * k, (n + MAX_NR - 1) * k


class Product:
    """``C := epi(alpha * op(A) op(B) + beta * C)`` of fixed shape and operands on the packed
    kernels, prepared once and enqueued many times (package-internal: the nn plans hold one
    per product of a layer).

    ``a``, ``b``, ``c`` are :data:`Operand` tuples (``c`` row-major: column stride 1);
    ``panels`` = (A-panel buffer or None, B-panel buffer): scratch the caller owns (sized by
    :func:`panel_bound`; the A buffer is not used when a row-major A is read in place), so a
    prepared product never points at a buffer that :func:`mm` may release and regrow.
    ``epilogue`` is one of :data:`EPILOGUES` or None, with ``e`` = (buffer, offset, ld) and
    the activation code ``act`` (see kernels/gemm.cl.mako). The launch geometry and tunables
    are :func:`mm`'s for the same shape (:func:`_geometry`; ``params`` forces the tunables, as
    for tests and tuners); every kernel object is this
    product's own, so :meth:`enqueue` only enqueues, and :meth:`point` re-sets just the
    arguments that move.

    Example:
        >>> import clnn, numpy as np
        >>> from clnn.gemm import Product, panel_bound
        >>> with clnn.Runtime("cpu", dtype=np.float32) as rt:
        ...     a, b = rt.ones((3, 4)), rt.ones((4, 2))
        ...     c, bias = rt.matrix((3, 2)), rt.vector([1.0, -9.0])
        ...     pa, pb = (rt.vector(x) for x in panel_bound(3, 2, 4))
        ...     op = lambda x: (x._owner._buf, x.offset, x.ld, 1)
        ...     prod = Product(rt, np.float32, 3, 2, 4, op(a), op(b), op(c),
        ...                    (pa._buf, pb._buf), "bias_act", (bias._buf, 0, 0), act=3)
        ...     prod.enqueue()
        ...     print(c.to_numpy()[0])
        [5. 0.]
    """

    __slots__ = ("m", "n", "k", "epilogue", "geometry", "params", "_plans", "_where")

    def __init__(self, rt, dtype: Any, m: int, n: int, k: int, a: Operand, b: Operand,
                 c: Operand, panels: Tuple[Any, Any], epilogue: Optional[str] = None,
                 e: Optional[Tuple[Any, int, int]] = None, act: int = 0, alpha: float = 1.0,
                 beta: float = 0.0, params: Optional[dict] = None):
        dtype = np.dtype(dtype)
        if min(m, n, k) < 1:
            raise ShapeError(f"Product: needs m, n, k >= 1, got {(m, n, k)}")
        if epilogue is not None and (epilogue not in EPILOGUES or e is None):
            raise ShapeError(f"Product: epilogue {epilogue!r} needs one of {EPILOGUES} and e")
        if c[3] != 1:
            raise ShapeError("Product: C must be row-major (column stride 1)")
        ks = _kernels(rt, "packed", dtype, size_class(m, n, k), params, epilogue)
        p = ks.params
        geo = _geometry(p, m, n, k, a[3] == 1, dtype.itemsize)
        pa, pb = panels
        small = [name for name, buf, need in (("A", pa, geo.a_elems), ("B", pb, geo.b_elems))
                 if need and (buf is None or buf.size < need * dtype.itemsize)]
        if small:
            raise ShapeError(f"Product: the {' and '.join(small)} panel scratch is smaller "
                             f"than the {m} x {n} x {k} product needs")
        self.m, self.n, self.k = m, n, k
        self.epilogue, self.geometry, self.params = epilogue, geo, p
        rtype, d = real_type(dtype), dtype.type

        def plan(kind: str, gsize: tuple, args: dict) -> Plan:
            # a Plan of its own (not mm's shared one): its arguments stay bound to this product
            return _new_plan(rt, kind, rtype, p, epilogue).bind(gsize, (1,) * len(gsize), args)

        # operand -> (the plan that reads it, the names of its buffer, offset and strides)
        self._plans, self._where = [], {}
        if geo.direct:  # tile_direct reads a row-major A in place: A, offA, ldA
            asrc = dict(zip(("A", "offA", "ldA"), a[:3]))
        else:
            self._plans.append(plan("pack_a", geo.pack_a, dict(
                m=m, k=k, A=a[0], offA=a[1], rsA=a[2], csA=a[3], Ap=pa)))
            self._where["a"] = (self._plans[-1], ("A", "offA", "rsA", "csA"))
            asrc = {"A": pa, "offA": 0, "ldA": 0}
        self._plans.append(plan("pack_b", geo.pack_b, dict(
            n=n, k=k, B=b[0], offB=b[1], rsB=b[2], csB=b[3], Bp=pb)))
        self._where["b"] = (self._plans[-1], ("B", "offB", "rsB", "csB"))
        targs = dict(asrc, m=m, n=n, k=k, alpha=d(alpha), Bp=pb, beta=d(beta), C=c[0],
                     offC=c[1], rsC=c[2], csC=c[3], rb=geo.rb, tpw=geo.tpw)
        if epilogue is not None:
            targs.update(E=e[0], offE=e[1], ldE=e[2], act=act)
        tile = plan("tile_direct" if geo.direct else "tile", geo.tile, targs)
        self._plans.append(tile)
        if geo.direct:
            self._where["a"] = (tile, ("A", "offA", "ldA"))
        self._where["c"] = (tile, ("C", "offC", "rsC", "csC"))
        self._where["e"] = (tile, ("E", "offE", "ldE"))

    def point(self, a: Any = None, b: Any = None, c: Any = None, e: Any = None) -> None:
        """Re-point operands: each an element offset (same buffer and strides) or a whole
        operand tuple (a row-major A stays row-major when it is read in place)."""
        for name, v in (("a", a), ("b", b), ("c", c), ("e", e)):
            if v is None:
                continue
            plan, names = self._where[name]
            if not isinstance(v, tuple):
                plan.update(**{names[1]: v})
                continue
            if name == "a" and self.geometry.direct and v[3] != 1:
                raise ShapeError("Product: A is read in place and must stay row-major")
            if name == "c" and v[3] != 1:
                raise ShapeError("Product: C must be row-major (column stride 1)")
            plan.update(**dict(zip(names, v)))

    def enqueue(self) -> None:
        """Enqueue the product's launches (the caller holds the runtime's lock)."""
        for plan in self._plans:
            plan()

    __call__ = enqueue


def _check(a: Matrix, b: Matrix, out: Optional[Matrix], alpha, beta) -> tuple:
    checks.need(a, Matrix, "mm", "a")
    checks.need(b, Matrix, "mm", "b")
    if out is not None:
        checks.need(out, Matrix, "mm", "out")
        checks.same_runtime("mm", a, b, out)
        checks.same_dtype("mm", a, b, out)
    else:
        checks.same_runtime("mm", a, b)
        checks.same_dtype("mm", a, b)
    m, k = a.shape
    if b.m != k:
        raise checks.ShapeError(f"mm: a has shape {a.shape} but b has shape {b.shape} "
                                f"(needs {k} rows)")
    n = b.n
    alpha = checks.scalar(alpha, "mm", "alpha")
    beta = checks.scalar(beta, "mm", "beta")
    if out is not None:
        if out.shape != (m, n):
            raise checks.ShapeError(f"mm: a @ b has shape {(m, n)} but out has shape "
                                    f"{out.shape}")
        checks.no_overlap("mm", out, a, b)
    return m, n, k, alpha, beta


def _mm(a: Matrix, b: Matrix, out: Optional[Matrix], alpha, beta,
        variant: Optional[str] = None, params: Optional[dict] = None) -> Matrix:
    """:func:`mm` with the path and tunables forced (tests and the tuner use this)."""
    m, n, k, alpha, beta = _check(a, b, out, alpha, beta)
    rt = a.runtime
    if variant is None:
        variant = choose_variant(rt.device, m, n, k)
    sc = size_class(m, n, k) if variant == "packed" else ANY
    ks = _kernels(rt, variant, a.dtype, sc, params)
    if out is None:
        out = rt.matrix((m, n), dtype=a.dtype)
        beta = 0.0
    _launch(rt, ks, a, b, out, alpha, beta)
    return out


def mm(a: Matrix, b: Matrix, out: Optional[Matrix] = None, alpha: float = 1.0,
       beta: float = 0.0) -> Matrix:
    """``out := alpha * a @ b + beta * out`` (BLAS gemm); returns ``out``.

    ``a`` and ``b`` may be transposed views or sub-matrix views, in either layout. With
    ``beta == 0`` the old ``out`` is never read. Without ``out`` a new row-layout matrix is
    allocated on the operands' runtime. Bad arguments raise before anything is written.

    Example:
        >>> import clnn
        >>> with clnn.Runtime("cpu") as rt:
        ...     print(clnn.mm(rt.matrix([[1, 2]]), rt.matrix([[3], [4]])).to_numpy())
        [[11.]]
    """
    return _mm(a, b, out, alpha, beta)


gemm = mm
