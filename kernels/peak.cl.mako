<%doc>
peak.cl.mako -- the device's multiply-add rate: a kernel that does nothing but a*b + c.

fma_peak     each work-item runs NACC independent chains of realV multiply-adds (``acc =
             acc * m + a``, contracted to one fused instruction by -cl-mad-enable, as the gemm
             tile kernels are) for ``iters`` steps, then stores the sum of its chains: no
             memory traffic inside the loop, enough independent chains to cover the latency
             of the multiply-add units. One launch does gsize * iters * NACC * VW
             multiply-adds (2 flops each). ``m`` and ``a`` are arguments, so the compiler
             can fold nothing; with m = 1 and a = 0 every value stays what it was.

Render parameters:
  dtype   "float" | "double"
  VW      vector width of the chains (the packed gemm's, so both use the same instructions)
  NACC    independent chains per work-item (default 12, the gemm's 6 x 2 accumulators)

Kernel arguments:
  fma_peak   global real* out, int iters, real m, real a
</%doc>
<%page args="NACC=12"/>\
<%include file="common.cl.mako"/>
__kernel void fma_peak(__global real* restrict out, const int iters, const real m,
                       const real a)
{
    const real x = (real)get_global_id(0);
%for c in range(NACC):
    realV acc${c} = (realV)(x + ${c});
%endfor
    for (int t = 0; t < iters; ++t) {
%for c in range(NACC):
        acc${c} = acc${c} * m + a;
%endfor
    }
    const realV s = ${" + ".join("acc%d" % c for c in range(NACC))};
    out[get_global_id(0)] = HSUM(s);
}
