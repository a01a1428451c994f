"""The built program of kernels/nn.cl.mako for one runtime and dtype, and its call sites.

Every call site (one layer's forward, one loss, ...) is a :class:`clnn.launch.Plan` with its
own ``cl.Kernel`` object, its arguments bound by name when the site is prepared (the names and
types are the template's own declaration), so a training step only re-sets the few that move
(the mini-batch offset, by name), then enqueues.

A layer runs either on the fused kernels of nn.cl.mako or on the packed gemm with its store
epilogues (:class:`clnn.gemm.Product`), chosen by size for the forward and the backward
pass apart: :meth:`Kernels.gemm_forward`, :meth:`Kernels.gemm_backward`.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyopencl as cl

from ..launch import Plan, check_wgs, local_size, real_type, round_up, template_signatures, tiles
from ..tuning import params as tuned_params
from ..tuning import register_defaults

# nn tunables that are not template parameters
_HOST_ONLY = ("WGS", "ITEMS", "GEMM_B", "GEMM_N", "GEMM_BW", "GEMM_MIN")


GEMM_OFF = 1 << 30
"""A GEMM_B (GEMM_BW) that keeps every forward (backward) pass on the fused kernels."""


def nn_defaults(device, variant: str, dtype: str) -> dict:
    """Built-in tunables of the nn kernels. CPUs: one work-item per work-group, each a
    register tile (the OpenCL compiler vectorises within the work-item along K).

    A layer of K inputs and N outputs at batch B runs its forward pass on the packed gemm with
    the bias-and-activation epilogue when B >= ``GEMM_B`` and N >= ``GEMM_N``, and its
    backward pass (dW with db, dX with the derivative) on the packed gemm when B >= ``GEMM_BW``,
    B*K*N >= ``GEMM_MIN`` and N >= ``GEMM_N``; else on the fused kernels. These are host-side
    choices, not template parameters. The forward gemm packs W^T once per step, a cost of
    1/B of its product's, and the NR-wide register tiles waste work on a few outputs, so
    the batch and the width decide there; the fused backward kernel shares its reads of dZ
    between dW and dX and wins on small products. Measured on PoCL 3.0 (2-core EPYC, float32),
    gemm time / fused time per pass: forward 1.1-2.2x faster from B = 64 for K x N of 64x256
    to 1024x512 (0.7-0.9x at B = 32 except K = 64); backward 1.0-1.9x faster from
    B*K*N = 8M (0.4-0.9x below), 0.6-0.97x at N = 10..48 for any batch up to 1024. GPUs keep
    the fused kernels (the packed gemm is the CPU path); ``clnn tune nn`` measures the
    crossings on a device."""
    vw = 8 if dtype == "float" else 4
    if device.type == "CPU":
        return {"VW": vw, "RB": 2, "CB": 4, "FJ": 4, "FV": 2, "JB": 4, "XB": 4, "KV": 2,
                "WGS": 1, "ITEMS": 16, "GEMM_B": 64, "GEMM_N": 64, "GEMM_BW": 16,
                "GEMM_MIN": 1 << 23}
    return {"VW": 1, "RB": 1, "CB": 1, "FJ": 1, "FV": 1, "JB": 1, "XB": 1, "KV": 1,
            "WGS": min(64, device.max_work_group_size), "ITEMS": 1 << 20,
            "GEMM_B": GEMM_OFF, "GEMM_N": 64, "GEMM_BW": GEMM_OFF, "GEMM_MIN": 1 << 23}


def _validate(device, variant: str, dtype: str, p: dict) -> None:
    check_wgs(device, p)


register_defaults("nn", nn_defaults, _validate)


class Kernels:
    """The nn program of one runtime and dtype (built once, cached on the runtime).

    Use :func:`kernels` to get one; ``params`` forces the nn tunables (the tuner's
    candidates: a network takes such a set before its first workspace).
    """

    def __init__(self, rt, dtype: np.dtype, params: Optional[dict] = None):
        self.rt = rt
        self.dtype = np.dtype(dtype)
        rtype = real_type(self.dtype)
        self.p = dict(params) if params is not None else tuned_params(rt.device, "nn",
                                                                      "dense", rtype)
        render = {k: v for k, v in self.p.items() if k not in _HOST_ONLY}
        self._nn = rt.programs.program("nn.cl.mako", dtype=rtype, **render)
        self._sigs = template_signatures("nn.cl.mako", dtype=rtype, **render)
        self.real = self.dtype.type
        self.kw = self.p["VW"] * self.p["KV"]
        self.wgs = local_size(rt, self._nn, self.p["WGS"])

    def site(self, name: str, gsize: tuple, lsize: Optional[tuple], **args: Any) -> Plan:
        """A prepared call of kernel ``name`` with every argument given by name."""
        names, dtypes = self._sigs[name]
        return Plan(self.rt, cl.Kernel(self._nn, name), dtypes, wgs=lsize[0] if lsize else 1,
                    names=names).bind(gsize, lsize, args)

    def gemm_forward(self, b: int, k: int, n: int) -> bool:
        """Whether the forward pass of a layer of ``k`` inputs and ``n`` outputs at batch
        ``b`` runs on the packed gemm (see :func:`nn_defaults`; grows with ``b``)."""
        return b >= self.p["GEMM_B"] and n >= self.p["GEMM_N"]

    def gemm_backward(self, b: int, k: int, n: int) -> bool:
        """Whether its backward pass does (see :func:`nn_defaults`; grows with ``b``)."""
        p = self.p
        return b >= p["GEMM_BW"] and b * k * n >= p["GEMM_MIN"] and n >= p["GEMM_N"]

    # ---- sizes ------------------------------------------------------------------------------
    def tiles(self, nt: int) -> tuple:
        """(tiles per item, gsize, lsize) to cover ``nt`` tiles (:func:`tiles`)."""
        return tiles(self.rt, self.p["ITEMS"], self.wgs, nt)

    def flat(self, n: int) -> tuple:
        """gsize, lsize of a one-work-item-per-element kernel."""
        w = self.wgs
        return (round_up(max(n, 1), w),), (w,)

    def rows(self, n: int) -> tuple:
        """(rows per item, gsize, lsize) of a row-at-a-time kernel."""
        return self.tiles(n)

    def forward_size(self, b: int, n: int) -> tuple:
        p = self.p
        return self.tiles(-(-n // p["CB"]) * -(-b // p["RB"]))

    def forward_t_size(self, b: int, n: int) -> tuple:
        p = self.p
        return self.tiles(-(-n // p["FJ"]) * -(-b // (p["FV"] * p["VW"])))

    def backward_counts(self, b: int, k: int, n: int, input_grad: bool) -> tuple:
        nkb = -(-k // self.kw)
        n_w = -(-n // self.p["JB"]) * nkb
        n_x = -(-b // self.p["XB"]) * nkb if input_grad else 0
        return (n_w, n_x) + self.tiles(n_w + n_x)



def kernels(rt, dtype) -> Kernels:
    """The :class:`Kernels` of ``rt`` for ``dtype`` (built on first use)."""
    return rt.memo(("nn", np.dtype(dtype).name), lambda: Kernels(rt, dtype))
