<%doc>
elementwise.cl.mako -- out(i, j) := EXPR(a(i, j), b(i, j), c(i, j), alpha, beta)

One template renders every map clnn has: unary maps (copy, scale+shift, exp, log, tanh, sigmoid,
relu and their derivatives), binary maps (add, sub, mul, div, alpha*a + beta*b, fused
gradient * derivative), bias broadcasting with a fused activation, and the rank-1 update
a + alpha * x y^T (three inputs). The Python side (clnn/elementwise.py) builds EXPR.

The index space is M x N: M "outer" lines of N "inner" elements (a vector is one line; a matrix
is m rows of n in "row" layout or n columns of m in "col" layout, chosen by the output's layout;
a contiguous operand set is flattened to one line). Operand X's element (o, i) lies at
X[offX + o*soX + i*ioX]; a broadcast operand has ioX == 0 (or soX == 0) -- nothing is copied.
Work-item (g, o) computes elements [g*BS, g*BS + BS) of line o; the part that fills whole
vectors of VW runs on realV values, the tail on scalars. Stores go only to in-range elements;
loads never leave the operands' extents. The output may be the very same view as an input
(in place): each element is read before it is written, by the same work-item.

Render parameters:
  dtype    "float" | "double"         element type
  expr     the map as a Python format string over {a} {b} {c} (input values), {T} (the value
           type: realV in the vector loop, real in the tail), alpha and beta (real scalars);
           it may use the macro CLNN_TANH(x, T) defined below
  kinds    one letter per input: "1" unit inner stride (vector loads), "s" strided inner
           stride (gathered), "0" constant along the line (loaded once per line)
  OUT1     true when the output has unit inner stride (vector stores), false: scalar stores
  ALIGNED  true when every unit-stride operand and the output are VW-aligned at every vector
           (offsets and outer strides multiples of VW): loads and stores become pointer casts;
           false: vectors are built from scalar loads (never vloadN, a call on PoCL)
  VW       vector width, 1/2/4/8/16 (tunable)
  BS       elements of a line per work-item, a multiple of VW (tunable)
  WGS      work-group size along dimension 0 (tunable)

Kernel arguments:
  int M, int N, real alpha, real beta, global real* out, int offo, int soo, int ioo,
  then for each input X: global const real* X, int offX, int soX, int ioX
Entry point: elementwise_map; global size (ceil(N / BS) rounded up to WGS, M).
</%doc>
<%include file="common.cl.mako"/>
/* tanh as an expression on real or realV values (a macro: type-generic, never a call with a
   wide vector): an odd polynomial/rational below |x| = 0.625 (Cephes tanhf / tanh), else
   1 - 2 / (exp(2|x|) + 1) with x's sign -- within 2 ulp, and exactly +-1 when saturated */
%if dtype == "float":
#define CLNN_TANH_P(z) (((((real)-5.70498872745E-3 * (z) + (real)2.06390887954E-2) * (z) \
    - (real)5.37397155531E-2) * (z) + (real)1.33314422036E-1) * (z) - (real)3.33332819422E-1)
%else:
#define CLNN_TANH_P(z) ((((real)-9.64399179425052238628E-1 * (z) \
    - (real)9.92877231001918586564E1) * (z) - (real)1.61468768441708447952E3) \
    / ((((z) + (real)1.12811678491632931402E2) * (z) + (real)2.23548839060100448583E3) * (z) \
    + (real)4.84406305325125486048E3))
%endif
#define CLNN_TANH(x, T) (fabs(x) < (T)0.625 ? (x) + (x) * ((x) * (x)) * CLNN_TANH_P((x) * (x)) \
    : copysign((T)1 - (T)2 / (exp((T)2 * fabs(x)) + (T)1), (x)))
<%
    names = "abc"[:len(kinds)]
    def vload(x, kind, j):
        if kind == "0":
            return "(realV)(%s0)" % x
        if VW == 1:
            return "%sp[%s]" % (x, j) if kind == "1" else "%sp[(size_t)(%s) * io%s]" % (x, j, x)
        if kind == "1":
            if ALIGNED:
                return "(*(__global const realV*)(%sp + %s))" % (x, j)
            return "(realV)(%s)" % ", ".join("%sp[%s + %d]" % (x, j, k) for k in range(VW))
        return "(realV)(%s)" % ", ".join("%sp[(size_t)(%s + %d) * io%s]" % (x, j, k, x)
                                         for k in range(VW))
    def sload(x, kind, j):
        if kind == "0":
            return "%s0" % x
        if kind == "1":
            return "%sp[%s]" % (x, j)
        return "%sp[(size_t)(%s) * io%s]" % (x, j, x)
    def ex(T, vals):
        return "(" + expr.format(T=T, **vals) + ")"
%>
__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void elementwise_map(const int M, const int N, const real alpha, const real beta,
                     __global real* out, const int offo, const int soo, const int ioo
%for x in names:
                     , __global const real* ${x}, const int off${x}, const int so${x},
                     const int io${x}
%endfor
                     )
{
    const int o = get_global_id(1);
    const int j0 = get_global_id(0) * ${BS};
    if (j0 >= N) return;
    const int j1 = min(j0 + ${BS}, N);
    __global real* op = out + offo + (size_t)o * soo;
%for x, kind in zip(names, kinds):
    __global const real* ${x}p = ${x} + off${x} + (size_t)o * so${x};
%if kind == "0":
    const real ${x}0 = ${x}p[0];
%endif
%endfor
    int j = j0;
%if VW > 1:
    for (; j + ${VW} <= j1; j += ${VW}) {
<% vals = {x: "v%s" % x for x in names} %>\
%for x, kind in zip(names, kinds):
        const realV v${x} = ${vload(x, kind, "j")};
%endfor
        const realV r = ${ex("realV", vals)};
%if OUT1 and ALIGNED:
        *(__global realV*)(op + j) = r;
%elif OUT1:
%for k in range(VW):
        op[j + ${k}] = r.s${"%x" % k};
%endfor
%else:
%for k in range(VW):
        op[(size_t)(j + ${k}) * ioo] = r.s${"%x" % k};
%endfor
%endif
    }
%endif
    for (; j < j1; ++j) {
<% vals = {x: "s%s" % x for x in names} %>\
%for x, kind in zip(names, kinds):
        const real s${x} = ${sload(x, kind, "j")};
%endfor
%if OUT1:
        op[j] = ${ex("real", vals)};
%else:
        op[(size_t)j * ioo] = ${ex("real", vals)};
%endif
    }
}
