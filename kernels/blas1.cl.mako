<%doc>
blas1.cl.mako -- BLAS level-1 reductions (two stages, on the device) and swap.

  op "dot"   sum_j x[j] * y[j]         Kahan-compensated vector accumulators
  op "sum"   sum_j x[j]                Kahan-compensated
  op "asum"  sum_j |x[j]|              Kahan-compensated
  op "max"   max_j x[j]                (NaN propagates, as numpy's max)
  op "nrm2"  sqrt(sum_j x[j]^2)        never overflows or underflows: one pass sums the
                                       squares (plain within blocks of BLKV vectors, Kahan
                                       across blocks) and finds max |x|; only when that lies
                                       outside [LO, HI] does the work-group rescan its blocks,
                                       each scaled by a power of two 2^-e (exact) taken from its
                                       largest |x|, keeping the sum as S * 2^(2E)
  op "iamax" first j with the largest |x[j]| (NaN entries are skipped, like reference BLAS)
  op "swap"  x <-> y (one stage, no reduction)

Element j of x lies at x[offx + j*incx] (incx >= 1), the same for y.

Stage 1, blas1_partial: work-group g reduces elements [g*chunk, min((g+1)*chunk, n)) (chunk a
multiple of VW*NACC, so vectors stay aligned) into one partial; its WGS work-items take whole
steps of VW*NACC elements round-robin, the tail elements likewise, then a pairwise tree in local
memory. Partials: part[g] (dot/sum/asum/max), part[2g], part[2g+1] = S, E (nrm2), part[g] and
parti[g] = value, index (iamax).
Stage 2, blas1_final: one work-group of WGS2 folds the nparts partials (Kahan for sums) and a
local tree finishes; it writes the result to out[offo] (iamax: also outi[0], the exact index).

Render parameters:
  dtype    "float" | "double"
  op       one of the ops above
  INCX1    x has unit stride (vector loads); false: gathered loads
  INCY1    the same for y (dot, swap)
  ALIGNED  unit-stride operands start VW-aligned: pointer-cast loads (no vloadN: a call on PoCL)
  VW       vector width (tunable; the hot loops call no builtins, so wider than the ISA is
           safe)
  NACC     independent accumulators per work-item (latency hiding; tunable)
  BLKV     vectors per scaling block of nrm2 (tunable; a block should sit in L1)
  WGS      stage-1 work-group size (tunable)
  WGS2     stage-2 work-group size (tunable)

Kernel arguments:
  blas1_partial(int n, int chunk, global real* x, int offx, int incx,
                global real* y, int offy, int incy, global real* part, global int* parti)
  blas1_final(int nparts, global real* part, global int* parti, global real* out, int offo,
              global int* outi)
  blas1_swap(int n, int chunk, global real* x, int offx, int incx, global real* y, int offy,
             int incy)   (global size ceil(n / chunk), one chunk per work-item)
</%doc>
<%include file="common.cl.mako"/>
<%
    def load(p, inc1, j):
        if VW == 1:
            return "%s[%s]" % (p, j) if inc1 else "%s[(size_t)(%s) * inc%s]" % (p, j, p)
        if inc1 and ALIGNED:
            return "(*(__global const realV*)(%s + %s))" % (p, j)
        if inc1:
            return "(realV)(%s)" % ", ".join("%s[%s + %d]" % (p, j, k) for k in range(VW))
        return "(realV)(%s)" % ", ".join("%s[(size_t)(%s + %d) * inc%s]" % (p, j, k, p)
                                         for k in range(VW))
    def sload(p, inc1, j):
        return "%s[%s]" % (p, j) if inc1 else "%s[(size_t)(%s) * inc%s]" % (p, j, p)
    def tree(parts, fn):
        while len(parts) > 1:  # pairwise; an odd one out goes up a level as it is
            parts = [fn(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return parts[0]
    comps = ["s%x" % k for k in range(VW)]
    def hmax(v):
        if VW == 1:
            return v
        return tree(["(%s).%s" % (v, c) for c in comps], lambda a, b: "MAX2(%s, %s)" % (a, b))
    if op == "dot":
        vterm = "(%s * %s)" % (load("x", INCX1, "J"), load("y", INCY1, "J"))
        sterm = "(%s * %s)" % (sload("x", INCX1, "J"), sload("y", INCY1, "J"))
    elif op == "asum":
        vterm = "ABS(%s)" % load("x", INCX1, "J")
        sterm = "ABS(%s)" % sload("x", INCX1, "J")
    else:
        vterm = load("x", INCX1, "J")
        sterm = sload("x", INCX1, "J")
    KAHAN = op in ("dot", "sum", "asum")
    MAXE = 126 if dtype == "float" else 1022
    # nrm2's fast pass is safe for max|x| in [LO, HI]: 2^-30..2^40 (float), 2^-400..2^400
    LO = "9.313225746154785e-10f" if dtype == "float" else "3.872591914849318e-121"
    HI = "1.099511627776e12f" if dtype == "float" else "2.5822498780869086e120"
    STEP = VW * NACC
%>
%if op == "iamax":
%if dtype == "float":
typedef int${"" if VW == 1 else VW} idxV;
%else:
typedef long${"" if VW == 1 else VW} idxV;
%endif
%endif
/* PoCL compiles builtins (fabs, fmax, isnan, ldexp, ...) to calls that are never inlined:
   the hot loops use these expressions instead */
#define ABS(x) ((x) < 0 ? -(x) : (x))
#define MAX2(a, b) ((a) > (b) ? (a) : (b))
%if dtype == "float":
/* the unbiased exponent of a non-negative m (-127 for 0 and subnormals, 128 for inf/NaN), and
   2^k for k <= 127 (0 below the normal range) */
#define EXPO(m) (((as_int(m) >> 23) & 0xff) - 127)
#define POW2(k) ((k) < -126 ? (real)0 : as_float(((k) + 127) << 23))
%else:
#define EXPO(m) ((int)((as_long(m) >> 52) & 0x7ff) - 1023)
#define POW2(k) ((k) < -1022 ? (real)0 : as_double(((long)(k) + 1023) << 52))
%endif
/* Kahan step: add t into s with the running correction c (s - c is the sum). Once s is not
   finite the correction is dropped: it would be inf - inf = NaN and poison every later term */
#define KAHAN_ADD(s, c, t) { const __typeof__(s) y_ = (t) - (c); const __typeof__(s) u_ = (s) + y_; \
                             const __typeof__(s) d_ = (u_ - (s)) - y_; \
                             (c) = ((u_ - u_) == 0) ? d_ : (__typeof__(s))(0); (s) = u_; }
/* nrm2: merge the scaled partial (s2, e2) -- value s2 * 2^(2*e2) -- into (S, E) */
#define NRM2_MERGE(S, E, s2, e2) { if ((e2) > (E)) { (S) = (S) * POW2(2 * ((E) - (e2))) + (s2); \
                                   (E) = (e2); } \
                                   else { (S) += (s2) * POW2(2 * ((e2) - (E))); } }
/* max: NaN-propagating (numpy), take v when it is larger or NaN */
#define TAKES(v, m) (((v) > (m)) | ((v) != (v)))
/* iamax: keep the larger value, the smaller index on ties */
#define IAMAX_MERGE(v, i, v2, i2) { if ((v2) > (v) || ((v2) == (v) && (i2) < (i))) \
                                    { (v) = (v2); (i) = (i2); } }

%if op == "swap":
__kernel void blas1_swap(const int n, const int chunk,
                         __global real* x, const int offx, const int incx,
                         __global real* y, const int offy, const int incy)
{
    const int j0 = get_global_id(0) * chunk;
    if (j0 >= n) return;
    const int j1 = j0 + chunk < n ? j0 + chunk : n;
    x += offx; y += offy;
    int J = j0;
%if VW > 1:
    for (; J + ${VW} <= j1; J += ${VW}) {
        const realV a = ${load("x", INCX1, "J")};
        const realV b = ${load("y", INCY1, "J")};
%for name, inc1, val in (("x", INCX1, "b"), ("y", INCY1, "a")):
%if inc1 and ALIGNED:
        *(__global realV*)(${name} + J) = ${val};
%else:
%for k in range(VW):
        ${sload(name, inc1, "J + %d" % k)} = ${val}.s${"%x" % k};
%endfor
%endif
%endfor
    }
%endif
    for (; J < j1; ++J) {
        const real a = ${sload("x", INCX1, "J")};
        ${sload("x", INCX1, "J")} = ${sload("y", INCY1, "J")};
        ${sload("y", INCY1, "J")} = a;
    }
}
%else:

__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void blas1_partial(const int n, const int chunk,
                   __global const real* restrict x, const int offx, const int incx,
                   __global const real* restrict y, const int offy, const int incy,
                   __global real* restrict part, __global int* restrict parti)
{
    const int g = get_group_id(0);
    const int l = get_local_id(0);
    const int start = g * chunk;
    const int end = start + chunk < n ? start + chunk : n;
    x += offx; y += offy;
%if KAHAN:
    /* ---- compensated sum of the terms ---- */
%for a in range(NACC):
    realV s${a} = (realV)(0), c${a} = (realV)(0);
%endfor
    real ss = 0, cs = 0;
    const int nv = (end - start) / ${STEP};
    for (int k = l; k < nv; k += ${WGS}) {
        const int j = start + k * ${STEP};
%for a in range(NACC):
        KAHAN_ADD(s${a}, c${a}, ${vterm.replace("J", "(j + %d)" % (a * VW))});
%endfor
    }
    for (int J = start + nv * ${STEP} + l; J < end; J += ${WGS})
        KAHAN_ADD(ss, cs, ${sterm});
    const realV sv = ${tree(["(s%d - c%d)" % (a, a) for a in range(NACC)],
                            lambda p, q: "(%s + %s)" % (p, q))};
    real acc = HSUM(sv) + (ss - cs);
<% COMB = "acc += o_acc;" %>\
%elif op == "max":
    realV m0 = (realV)(-INFINITY);
    real acc = -INFINITY;
    const int nv = (end - start) / ${VW};
    for (int k = l; k < nv; k += ${WGS}) {
        const int J = start + k * ${VW};
        const realV v = ${vterm};
        m0 = TAKES(v, m0) ? v : m0;
    }
%if VW == 1:
    acc = m0;
%endif
%for c in (comps if VW > 1 else []):
    acc = TAKES(m0.${c}, acc) ? m0.${c} : acc;
%endfor
    for (int J = start + nv * ${VW} + l; J < end; J += ${WGS}) {
        const real v = ${sterm};
        acc = TAKES(v, acc) ? v : acc;
    }
<% COMB = "acc = TAKES(o_acc, acc) ? o_acc : acc;" %>\
%elif op == "nrm2":
    /* ---- fast pass: per block of BLKV vectors a plain sum of squares (pairwise-ish), the
       blocks' sums Kahan-compensated, and the largest |x| ---- */
    const int nb = (end - start + ${BLKV * VW - 1}) / ${BLKV * VW};
    realV S = (realV)(0), C = (realV)(0);
%for a in range(NACC):
    realV m${a} = (realV)(0);
%endfor
    real ss = 0, ms = 0;
    for (int b = l; b < nb; b += ${WGS}) {
        const int b0 = start + b * ${BLKV * VW};
        const int b1 = b0 + ${BLKV * VW} < end ? b0 + ${BLKV * VW} : end;
%for a in range(NACC):
        realV q${a} = (realV)(0);
%endfor
        int j = b0;
        for (; j + ${STEP} <= b1; j += ${STEP}) {
%for a in range(NACC):
            {
                const realV v = ${vterm.replace("J", "(j + %d)" % (a * VW))};
                q${a} += v * v;
                m${a} = MAX2(m${a}, ABS(v));
            }
%endfor
        }
        KAHAN_ADD(S, C, ${tree(["q%d" % a for a in range(NACC)], lambda p, q: "(%s + %s)" % (p, q))});
        for (int J = j; J < b1; ++J) {
            const real v = ${sterm};
            ss += v * v;
            ms = MAX2(ms, ABS(v));
        }
    }
    const realV mv = ${tree(["m%d" % a for a in range(NACC)], lambda p, q: "MAX2(%s, %s)" % (p, q))};
    const real m = MAX2(${hmax("mv")}, ms);
    real acc;
    int E;
    if (m == 0) {
        /* nothing but zeros: the smallest exponent, so that a merge never rescales another
           partial's (possibly tiny) sum towards this one's scale */
        acc = 0;
        E = ${-MAXE - 1};
    } else if (m >= ${LO} && m <= ${HI}) {
        /* squares can neither overflow nor lose what matters to underflow */
        acc = HSUM(S - C) + ss;
        E = 0;
    } else {
        /* ---- rare: rescan the same blocks, each scaled by a power of two 2^-e taken from
           its largest |x|, the running sum kept as acc * 2^(2E) ---- */
        acc = 0;
        E = ${-MAXE - 1};
        for (int b = l; b < nb; b += ${WGS}) {
            const int b0 = start + b * ${BLKV * VW};
            const int b1 = b0 + ${BLKV * VW} < end ? b0 + ${BLKV * VW} : end;
            int J = b0;
%if VW > 1:
            realV bmv = (realV)(0);
            for (; J + ${VW} <= b1; J += ${VW})
                bmv = MAX2(bmv, ABS(${vterm}));
            real bm = ${hmax("bmv")};
%else:
            real bm = 0;
%endif
            for (; J < b1; ++J)
                bm = MAX2(bm, ABS(${sterm}));
            const int e0 = EXPO(bm);
            const int e = e0 < ${-MAXE} ? ${-MAXE} : (e0 > ${MAXE} ? ${MAXE} : e0);
            const real sc = POW2(-e);
            real blk = 0;
            J = b0;
%if VW > 1:
            realV q = (realV)(0);
            for (; J + ${VW} <= b1; J += ${VW}) {
                const realV t = ${vterm} * sc;
                q += t * t;
            }
            blk = HSUM(q);
%endif
            for (; J < b1; ++J) {
                const real t = ${sterm} * sc;
                blk += t * t;
            }
            NRM2_MERGE(acc, E, blk, e);
        }
    }
<% COMB = "NRM2_MERGE(acc, E, o_acc, o_E);" %>\
%elif op == "iamax":
    real acc = -1;
    int idx = start;
%if VW > 1:
    realV bv = (realV)(-1);
    idxV bi = (idxV)(start);
    const idxV lanes = (idxV)(${", ".join(str(k) for k in range(VW))});
    const int nv = (end - start) / ${VW};
    for (int k = l; k < nv; k += ${WGS}) {
        const int J = start + k * ${VW};
        const realV v = ABS(${vterm});
        const idxV upd = v > bv;
        bv = upd ? v : bv;
        bi = upd ? (idxV)(J) + lanes : bi;
    }
%for c in comps:
    IAMAX_MERGE(acc, idx, bv.${c}, (int)bi.${c});
%endfor
%else:
    const int nv = 0;
%endif
    for (int J = start + nv * ${VW} + l; J < end; J += ${WGS}) {
        const real v = ABS(${sterm});
        if (v > acc) { acc = v; idx = J; }
    }
<% COMB = "IAMAX_MERGE(acc, idx, o_acc, o_idx);" %>\
%endif
%if WGS > 1:
    __local real lv[${WGS}];
%if op in ("nrm2", "iamax"):
    __local int li[${WGS}];
%endif
    for (int s = ${WGS} / 2; s > 0; s >>= 1) {
        lv[l] = acc;
%if op == "nrm2":
        li[l] = E;
%elif op == "iamax":
        li[l] = idx;
%endif
        barrier(CLK_LOCAL_MEM_FENCE);
        if (l < s) {
            const real o_acc = lv[l + s];
%if op == "nrm2":
            const int o_E = li[l + s];
%elif op == "iamax":
            const int o_idx = li[l + s];
%endif
            ${COMB}
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
%endif
    if (l == 0) {
%if op == "nrm2":
        part[2 * g] = acc;
        part[2 * g + 1] = (real)E;
%elif op == "iamax":
        part[g] = acc;
        parti[g] = idx;
%else:
        part[g] = acc;
%endif
    }
}

__kernel __attribute__((reqd_work_group_size(${WGS2}, 1, 1)))
void blas1_final(const int nparts, __global const real* restrict part,
                 __global const int* restrict parti, __global real* restrict out,
                 const int offo, __global int* restrict outi)
{
    const int l = get_local_id(0);
%if KAHAN:
    real acc = 0, c = 0;
    for (int k = l; k < nparts; k += ${WGS2})
        KAHAN_ADD(acc, c, part[k]);
    acc -= c;
%elif op == "max":
    real acc = -INFINITY;
    for (int k = l; k < nparts; k += ${WGS2}) {
        const real v = part[k];
        acc = TAKES(v, acc) ? v : acc;
    }
%elif op == "nrm2":
    real acc = 0;
    int E = ${-MAXE - 1};
    for (int k = l; k < nparts; k += ${WGS2}) {
        const real s2 = part[2 * k];
        const int e2 = (int)part[2 * k + 1];
        NRM2_MERGE(acc, E, s2, e2);
    }
%elif op == "iamax":
    real acc = -1;
    int idx = 0x7fffffff;
    for (int k = l; k < nparts; k += ${WGS2}) {
        const real v2 = part[k];
        const int i2 = parti[k];
        IAMAX_MERGE(acc, idx, v2, i2);
    }
%endif
%if WGS2 > 1:
    __local real lv[${WGS2}];
%if op in ("nrm2", "iamax"):
    __local int li[${WGS2}];
%endif
    for (int s = ${WGS2} / 2; s > 0; s >>= 1) {
        lv[l] = acc;
%if op == "nrm2":
        li[l] = E;
%elif op == "iamax":
        li[l] = idx;
%endif
        barrier(CLK_LOCAL_MEM_FENCE);
        if (l < s) {
            const real o_acc = lv[l + s];
%if op == "nrm2":
            const int o_E = li[l + s];
%elif op == "iamax":
            const int o_idx = li[l + s];
%endif
            ${COMB}
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
%endif
    if (l == 0) {
%if op == "nrm2":
        out[offo] = ldexp(sqrt(acc), E);
%elif op == "iamax":
        out[offo] = (real)idx;
        outi[0] = idx;
%else:
        out[offo] = acc;
%endif
    }
}
%endif
