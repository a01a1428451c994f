"""``clnn tune gemm``: the candidates and the timing of :func:`clnn.mm` (the contract is in
:mod:`clnn.tune`).

CPUs measure register tiles of the packed kernel (MR x NR, vector width, unroll, row groups
per chunk) per size class; other devices measure the reference kernel's tile and work per
thread. Each candidate is checked once against numpy, then timed on a problem typical of its
class.

Example:
    >>> import clnn
    >>> from clnn.tune import gemm
    >>> cands = list(gemm.candidates(clnn.select_device("cpu"), "float", quick=True))
    >>> all(set(p) >= {"MR", "NR", "VW"} for _, _, p in cands)
    True
"""

from __future__ import annotations

from typing import Any, Iterator, Tuple

import numpy as np

from ..bench.timing import interleaved
from ..devices import DeviceInfo
from ..gemm import SIZE_CLASSES, _mm, _validate
from ..tuning import ANY

__all__ = ["candidates", "bench"]


def _problem(size_class_: str, quick: bool) -> tuple:
    """(m, n, k) of the problem a candidate of ``size_class_`` is timed on."""
    if size_class_ == "large":
        return (512, 512, 512) if quick else (1024, 1024, 1024)
    if size_class_ == "medium":
        return (64, 392, 256) if quick else (128, 784, 512)
    return (128, 128, 128) if quick else (256, 256, 256)


def candidates(device: DeviceInfo, dtype: str, quick: bool
               ) -> Iterator[Tuple[str, str, dict]]:
    """Candidates for ``clnn tune gemm`` (see :mod:`clnn.tune` for the contract)."""
    if device.type != "CPU":
        for ts in (8, 16, 32, 64):
            for wpt in (1, 2, 4, 8):
                p = {"TS": ts, "WPT": wpt}
                try:
                    _validate(device, "ref", dtype, p)
                except ValueError:
                    continue
                yield "ref", ANY, p
        return
    # (MR, NR, VW): register tiles for 16 AVX2 registers first, then for 32 AVX-512 ones
    if dtype == "float":
        shapes = [(6, 16, 8), (5, 16, 8), (4, 24, 8), (4, 16, 8), (3, 32, 8), (8, 8, 8),
                  (8, 32, 16), (6, 32, 16), (4, 48, 16), (4, 64, 16)]
    else:
        shapes = [(6, 8, 4), (4, 12, 4), (3, 16, 4), (4, 8, 4), (8, 16, 8), (6, 16, 8),
                  (4, 24, 8), (4, 32, 8)]
    uks, tpws = ((4,), (2,)) if quick else ((2, 4, 8), (1, 2, 4))
    for sc in SIZE_CLASSES:
        for mr, nr, vw in (shapes[:3] if quick else shapes):
            for uk in uks:
                for tpw in tpws:
                    yield "packed", sc, {"MR": mr, "NR": nr, "VW": vw, "UK": uk, "KB": 64,
                                         "CACHE": 512, "TPW": tpw, "DIRECTN": 512}


def bench(rt: Any, variant: str, dtype: str, size_class_: str, params: dict,
          quick: bool = False) -> float:
    """Median seconds of one mm with ``params`` on a problem typical of ``size_class_``;
    raises AssertionError when the result is wrong."""
    m, n, k = _problem(size_class_, quick)
    dt = np.float32 if dtype == "float" else np.float64
    rng = np.random.default_rng(7)
    A = rng.standard_normal((m, k)).astype(dt)
    B = rng.standard_normal((k, n)).astype(dt)
    with rt.matrix(A) as a, rt.matrix(B) as b, rt.matrix((m, n), dtype=dt) as c:
        _mm(a, b, c, 1.0, 0.0, variant=variant, params=params)
        got = c.to_numpy()
        ref = A.astype(np.float64) @ B.astype(np.float64)
        tol = (1e-4 if dt == np.float32 else 1e-12) * np.sqrt(k)
        err = np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref))))
        assert err <= tol, f"gemm {variant} {params}: relative error {err:.3g} > {tol:.3g}"
        reps = 5 if m * n * k < 2 ** 26 else 3

        def run() -> None:
            for _ in range(3):
                _mm(a, b, c, 1.0, 0.0, variant=variant, params=params)
            rt.finish()

        return interleaved({"mm": run}, repeat=reps, number={"mm": 1}, warmup=0)["mm"] / 3
