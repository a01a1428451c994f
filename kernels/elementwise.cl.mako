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
           type: realV in the vector loop, real in the tail), {FT} {IT} (the literal float and
           int type names of that width, for the math macros below), alpha and beta (real
           scalars); it may use CLNN_EXP, CLNN_LOG, CLNN_TANH (x, T, FT, IT) and CLNN_ABS(x, T)
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
/* ---- math as expression macros ----------------------------------------------------------
   PoCL compiles every builtin (exp, log, fabs, isnan, ...) to a call that is never inlined, so
   the float maps are written as plain arithmetic, comparisons and bit casts, type-generic over
   real and realV: T is the value type, FT/IT the literal float/int type names of the same
   width (float8/int8 or float/int) for as_FT/as_IT. A macro, unlike a function, also never
   passes a wide vector across a call boundary (which PoCL miscompiles).
     CLNN_EXP   Cephes expf: n = round(x log2 e) by the 1.5*2^23 trick, r = x - n ln 2 (two
                parts), a degree-6 polynomial, times 2^n built from exponent bits in two halves
                (so that 2^n never leaves the normal range); x is clamped to [-104, 89] first
                (NaN passes), so overflow gives inf and underflow 0. Within 2 ulp.
     CLNN_LOG   Cephes logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)) from the bits (subnormals
                scaled by 2^23 first), a degree-8 polynomial in m - 1; 0 -> -inf, x < 0 or NaN
                -> NaN, inf -> inf. Within 2 ulp.
     CLNN_TANH  float: an odd 13/6 rational minimax fit in x clamped to +-7.9053 (as in Eigen,
                XLA, MLAS), within 6 ulp, exactly +-1 from |x| = 9; double: |x| < 0.625
                Cephes' rational, else 1 - 2 / (exp(2|x|) + 1) with x's sign.
   In double, CLNN_EXP and CLNN_LOG are the builtins (calls on PoCL; VW stays within 256
   bits for them). */
#define CLNN_ABS(x, T) ((x) < (T)0 ? -(x) : (x))
%if dtype == "float":
#define CLNN_POW2(n, FT) as_##FT(((n) + 127) << 23)
#define CLNN_EXPC(x, T) ((x) > (T)89 ? (T)89 : ((x) < (T)-104 ? (T)-104 : (x)))
#define CLNN_EXPT(x) ((x) * 1.44269504088896341f + 12582912.0f)
#define CLNN_EXPR(x, t) (((x) - ((t) - 12582912.0f) * 0.693359375f) \
    + ((t) - 12582912.0f) * 2.12194440e-4f)
#define CLNN_EXPP(r) (((((((1.9875691500E-4f * (r) + 1.3981999507E-3f) * (r) \
    + 8.3334519073E-3f) * (r) + 4.1665795894E-2f) * (r) + 1.6666665459E-1f) * (r) \
    + 5.0000001201E-1f) * (r) * (r) + (r)) + 1.0f)
#define CLNN_EXPS(p, n, FT) ((p) * CLNN_POW2((n) >> 1, FT) * CLNN_POW2((n) - ((n) >> 1), FT))
#define CLNN_EXP2(x, t, FT, IT) CLNN_EXPS(CLNN_EXPP(CLNN_EXPR(x, t)), as_##IT(t) - 0x4B400000, FT)
#define CLNN_EXP(x, T, FT, IT) CLNN_EXP2(CLNN_EXPC(x, T), CLNN_EXPT(CLNN_EXPC(x, T)), FT, IT)

#define CLNN_LOGX(x, T) ((x) < (T)1.17549435e-38f ? (x) * (T)8388608.0f : (x))
#define CLNN_LOGE(x, xs, T, IT) ((((as_##IT(xs) >> 23) & 0xff) - 126) \
    + ((x) < (T)1.17549435e-38f ? (IT)-23 : (IT)0))
#define CLNN_LOGM(xs, FT, IT) as_##FT((as_##IT(xs) & 0x007fffff) | 0x3f000000)
#define CLNN_LOGP(f) ((((((((7.0376836292E-2f * (f) - 1.1514610310E-1f) * (f) \
    + 1.1676998740E-1f) * (f) - 1.2420140846E-1f) * (f) + 1.4249322787E-1f) * (f) \
    - 1.6668057665E-1f) * (f) + 2.0000714765E-1f) * (f) - 2.4999993993E-1f) * (f) \
    + 3.3333331174E-1f)
#define CLNN_I2F(i, FT) (as_##FT((i) + 0x4B400000) - 12582912.0f)
#define CLNN_LOG3(f, ef) ((f) + (((f) * ((f) * (f)) * CLNN_LOGP(f) + (ef) * -2.12194440e-4f) \
    - 0.5f * ((f) * (f))) + (ef) * 0.693359375f)
#define CLNN_LOG2(m, e, T, FT) CLNN_LOG3(((m) < (T)0.707106781186547524f ? (m) + (m) - (T)1 \
    : (m) - (T)1), CLNN_I2F(((m) < (T)0.707106781186547524f ? (e) - 1 : (e)), FT))
#define CLNN_LOG1(x, xs, T, FT, IT) CLNN_LOG2(CLNN_LOGM(xs, FT, IT), CLNN_LOGE(x, xs, T, IT), \
    T, FT)
#define CLNN_LOG(x, T, FT, IT) ((x) == (T)0 ? (T)(-INFINITY) : ((((x) < (T)0) | ((x) != (x))) \
    ? (T)(NAN) : ((x) == (T)(INFINITY) ? (x) : CLNN_LOG1(x, CLNN_LOGX(x, T), T, FT, IT))))

/* tanh: an odd rational of degrees 13/6 in x clamped to +-7.90531110763549805 (the minimax
   fit Eigen, XLA and MLAS use), within 6 ulp; exactly +-1 from |x| = 9, where tanh rounds to
   +-1 in float */
#define CLNN_TANH_C(x, T) ((x) > (T)7.90531110763549805f ? (T)7.90531110763549805f \
    : ((x) < (T)-7.90531110763549805f ? (T)-7.90531110763549805f : (x)))
#define CLNN_TANH_N(z) ((((((-2.76076847742355e-16f * (z) + 2.00018790482477e-13f) * (z) \
    - 8.60467152213735e-11f) * (z) + 5.12229709037114e-08f) * (z) + 1.48572235717979e-05f) \
    * (z) + 6.37261928875436e-04f) * (z) + 4.89352455891786e-03f)
#define CLNN_TANH_D(z) (((1.19825839466702e-06f * (z) + 1.18534705686654e-04f) * (z) \
    + 2.26843463243900e-03f) * (z) + 4.89352518554385e-03f)
#define CLNN_TANH2(c) ((c) * CLNN_TANH_N((c) * (c)) / CLNN_TANH_D((c) * (c)))
#define CLNN_TANH(x, T, FT, IT) ((x) >= (T)9 ? (T)1 : ((x) <= (T)-9 ? (T)-1 \
    : CLNN_TANH2(CLNN_TANH_C(x, T))))
%else:
#define CLNN_EXP(x, T, FT, IT) exp(x)
#define CLNN_LOG(x, T, FT, IT) log(x)
#define CLNN_TANH_P(z) ((((real)-9.64399179425052238628E-1 * (z) \
    - (real)9.92877231001918586564E1) * (z) - (real)1.61468768441708447952E3) \
    / ((((z) + (real)1.12811678491632931402E2) * (z) + (real)2.23548839060100448583E3) * (z) \
    + (real)4.84406305325125486048E3))
#define CLNN_TANH_BIG(ax, T, FT, IT) ((T)1 - (T)2 / (CLNN_EXP((T)2 * (ax), T, FT, IT) + (T)1))
#define CLNN_TANH(x, T, FT, IT) (CLNN_ABS(x, T) < (T)0.625 \
    ? (x) + (x) * ((x) * (x)) * CLNN_TANH_P((x) * (x)) \
    : ((x) < (T)0 ? -CLNN_TANH_BIG(CLNN_ABS(x, T), T, FT, IT) \
                  : CLNN_TANH_BIG(CLNN_ABS(x, T), T, FT, IT)))
%endif
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
        vec = T == "realV" and VW > 1
        FT = dtype + (str(VW) if vec else "")
        IT = ("int" if dtype == "float" else "long") + (str(VW) if vec else "")
        return "(" + expr.format(T=T, FT=FT, IT=IT, **vals) + ")"
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
    const int j1 = j0 + ${BS} < N ? j0 + ${BS} : N;  /* min() is a call on PoCL */
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
