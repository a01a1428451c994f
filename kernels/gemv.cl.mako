<%doc>
gemv.cl.mako -- y := alpha * A x + beta * y   (BLAS level 2, general matrix-vector product)

A is m x n as the *operation* sees it, stored either
  layout "row": element (i, j) at A[offA + i*ldA + j]   (rows contiguous), or
  layout "col": element (i, j) at A[offA + i + j*ldA]   (columns contiguous).
A transposed view of a row-major matrix is a col-major matrix with the same ldA, so these two
kernels cover all four cases of row/col storage and plain/transposed use.
With beta == 0 the old contents of y are never read (NaN in y cannot leak into the result).

Render parameters:
  dtype    "float" | "double"     element type
  layout   "row" | "col"          which kernel to emit: gemv_row or gemv_col
  WGS      work-group size (tunable; CPU default 1, GPU default 64)
  RPT      rows per work-group ("row") or vectors of rows per work-item ("col") (tunable)
  VW       vector width of the loads, 1/2/4/8/16 (tunable)
  ALIGNED  true when every vector load is VW-aligned (offA, ldA, offx multiples of VW, incx 1):
           loads become pointer casts, which PoCL compiles to plain vector loads (vloadN is a
           register-spilling call there). False: vectors built from scalar loads.
  XINC1    true when incx == 1 (x may then be read with vector loads in "row")

Kernel arguments (both kernels):
  int m, int n, real alpha, global real* A, int offA, int ldA,
  global real* x, int offx, int incx, real beta, global real* y, int offy, int incy
</%doc>
<%include file="common.cl.mako"/>
<%
    def loadv(ptr):
        if VW == 1:
            return "(*(%s))" % ptr
        if ALIGNED:
            return "(*(__global const realV*)(%s))" % ptr
        # element-wise construction: compilers merge it into one unaligned vector load, and
        # unlike vloadN it is never a call (a call with a wide vector breaks PoCL's ABI)
        return "(realV)(%s)" % ", ".join("(%s)[%d]" % (ptr, k) for k in range(VW))
%>
%if layout == "row":
__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void gemv_row(const int m, const int n, const real alpha,
              __global const real* restrict A, const int offA, const int ldA,
              __global const real* restrict x, const int offx, const int incx,
              const real beta, __global real* restrict y, const int offy, const int incy)
{
    const int lid = get_local_id(0);
    const int row0 = get_group_id(0) * ${RPT};
    A += offA; x += offx; y += offy;
    /* rows past the end are clamped to the last row: valid reads, results discarded */
%for r in range(RPT):
    __global const real* a${r} = A + (size_t)min(row0 + ${r}, m - 1) * ldA;
    realV acc${r} = (realV)(0);
    real tail${r} = 0;
%endfor
%if XINC1 or VW == 1:
    const int nv = n / ${VW};
%else:
    const int nv = 0;
%endif
    for (int c = lid; c < nv; c += ${WGS}) {
        const int j = c * ${VW};
%if VW == 1:
        const realV xv = x[(size_t)j * incx];
%else:
        const realV xv = ${loadv("x + j")};
%endif
%for r in range(RPT):
        acc${r} += ${loadv("a%d + j" % r)} * xv;
%endfor
    }
    for (int j = nv * ${VW} + lid; j < n; j += ${WGS}) {
        const real xj = x[(size_t)j * incx];
%for r in range(RPT):
        tail${r} += a${r}[j] * xj;
%endfor
    }
%if WGS > 1:
    __local real part[${RPT}][${WGS}];
%for r in range(RPT):
    part[${r}][lid] = HSUM(acc${r}) + tail${r};
%endfor
    for (int s = ${WGS} / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s) {
%for r in range(RPT):
            part[${r}][lid] += part[${r}][lid + s];
%endfor
        }
    }
    if (lid == 0) {
%for r in range(RPT):
        if (row0 + ${r} < m) {
            __global real* yi = y + (size_t)(row0 + ${r}) * incy;
            const real s = alpha * part[${r}][0];
            *yi = (beta == 0) ? s : s + beta * *yi;
        }
%endfor
    }
%else:
%for r in range(RPT):
    if (row0 + ${r} < m) {
        __global real* yi = y + (size_t)(row0 + ${r}) * incy;
        const real s = alpha * (HSUM(acc${r}) + tail${r});
        *yi = (beta == 0) ? s : s + beta * *yi;
    }
%endfor
%endif
}
%else:
__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void gemv_col(const int m, const int n, const real alpha,
              __global const real* restrict A, const int offA, const int ldA,
              __global const real* restrict x, const int offx, const int incx,
              const real beta, __global real* restrict y, const int offy, const int incy)
{
    const int i0 = get_global_id(0) * ${VW * RPT};
    if (i0 >= m) return;
    A += offA; x += offx; y += offy;
    if (i0 + ${VW * RPT} <= m) {
%for r in range(RPT):
        realV acc${r} = (realV)(0);
%endfor
        __global const real* col = A + i0;
        for (int j = 0; j < n; ++j, col += ldA) {
            const real xj = x[(size_t)j * incx];
%for r in range(RPT):
            acc${r} += ${loadv("col + %d" % (r * VW))} * xj;
%endfor
        }
%for r in range(RPT):
%for k in range(VW):
<% comp = "acc%d" % r if VW == 1 else "acc%d.s%x" % (r, k) %>\
        {
            __global real* yi = y + (size_t)(i0 + ${r * VW + k}) * incy;
            const real s = alpha * ${comp};
            *yi = (beta == 0) ? s : s + beta * *yi;
        }
%endfor
%endfor
    } else {
        /* the last, partial block of rows: scalar */
        for (int i = i0; i < m; ++i) {
            real s = 0;
            __global const real* a = A + i;
            for (int j = 0; j < n; ++j)
                s += a[(size_t)j * ldA] * x[(size_t)j * incx];
            __global real* yi = y + (size_t)i * incy;
            s *= alpha;
            *yi = (beta == 0) ? s : s + beta * *yi;
        }
    }
}
%endif
