<%doc>
gemm.cl.mako -- C := alpha * A B + beta * C   (BLAS level 3, general matrix-matrix product)

A is m x k, B is k x n, C is m x n, as the operation sees them; each is stored in its own
layout ("row": element (i, j) at X[offX + i*ldX + j]; "col": at X[offX + i + j*ldX]), so a
transposed operand is just the other layout. With beta == 0 the old C is never read.

This is the portable reference kernel: one work-item per element of C, TS x TS work-groups
staging tiles of A and B in local memory.

Render parameters:
  dtype        "float" | "double"
  la, lb, lc   "row" | "col"         layouts of A, B and C
  TS           tile side = work-group side (tunable; default 16, or 8 for small work-groups)
  VW           unused by this kernel (common prelude), 1

Kernel arguments:
  int m, int n, int k, real alpha, global real* A, int offA, int ldA,
  global real* B, int offB, int ldB, real beta, global real* C, int offC, int ldC
</%doc>
<%include file="common.cl.mako"/>
<%
    def at(layout, name, i, j):
        if layout == "row":
            return "%s[(size_t)(%s) * ld%s + (%s)]" % (name, i, name, j)
        return "%s[(size_t)(%s) + (size_t)(%s) * ld%s]" % (name, i, j, name)
%>
__kernel __attribute__((reqd_work_group_size(${TS}, ${TS}, 1)))
void gemm_ref(const int m, const int n, const int k, const real alpha,
              __global const real* restrict A, const int offA, const int ldA,
              __global const real* restrict B, const int offB, const int ldB,
              const real beta, __global real* restrict C, const int offC, const int ldC)
{
    __local real tA[${TS}][${TS} + 1];
    __local real tB[${TS}][${TS} + 1];
    const int li = get_local_id(0), lj = get_local_id(1);
    const int i = get_global_id(0), j = get_global_id(1);
    A += offA; B += offB; C += offC;
    real acc = 0;
    for (int p0 = 0; p0 < k; p0 += ${TS}) {
        /* tA[li][lj] = A(i, p0 + lj); tB[li][lj] = B(p0 + li, j); zero outside */
        tA[li][lj] = (i < m && p0 + lj < k) ? ${at(la, "A", "i", "p0 + lj")} : (real)0;
        tB[li][lj] = (j < n && p0 + li < k) ? ${at(lb, "B", "p0 + li", "j")} : (real)0;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int p = 0; p < ${TS}; ++p)
            acc += tA[li][p] * tB[p][lj];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (i < m && j < n) {
        const real s = alpha * acc;
        ${at(lc, "C", "i", "j")} = (beta == 0) ? s : s + beta * ${at(lc, "C", "i", "j")};
    }
}
