<%doc>
reduce.cl.mako -- reductions of a matrix along one axis: out[k] := R_r A(k, r), r < R

  op "sum"     sum_r A(k, r)          Kahan-compensated per lane, then a pairwise tree
  op "max"     max_r A(k, r)          NaN propagates (as numpy's max)
  op "argmax"  first r of max_r A(k, r), stored as a real (NaN wins, first one, as numpy)

Element (k, r) lies at A[offA + k*sk + r*sr]; out[k] at out[offo + k*inco]. Any matrix layout or
view reduces along either axis by choosing (sk, sr): row sums of a "row" matrix have sr = 1.

Variants (render parameter ``variant``):
  "along"   one work-group per output k; its WGS work-items walk r in steps of VW (vector loads
            when sr == 1), then a tree in local memory. Used when sr == 1.
  "across"  one work-item per VW consecutive outputs; it walks r, loading VW neighbouring
            outputs' elements at once (vector loads when sk == 1). Used when sk == 1.

Render parameters:
  dtype    "float" | "double"
  op       "sum" | "max" | "argmax"
  variant  "along" | "across"
  UNIT     the walked ("along": sr) or vectorised ("across": sk) stride is 1
  ALIGNED  vector loads are VW-aligned (offA and the other stride multiples of VW): pointer
           casts; false: built from scalar loads (never vloadN, a call on PoCL)
  VW       vector width (tunable; no builtins are called in the loops)
  WGS      work-group size of "along" (tunable, a power of two); "across" uses 1

Kernel arguments (both variants):
  int K, int R, global real* A, int offA, int sk, int sr, global real* out, int offo, int inco
  "across" also: int rpb, int obs -- work-items (i, g) reduce rows [g*rpb, g*rpb + rpb) and
  write out[offo + g*obs + k*inco]: with rpb < R a first stage writes per-block partials
  (few rows per work-item: few pages, so few TLB misses on long strided walks), which a
  second launch over the small partial matrix reduces (sum, max; rpb = R, obs = 0 is one
  stage).
Global size: "along" K*WGS (local WGS); "across" (ceil(K / VW), ceil(R / rpb)).
</%doc>
<%include file="common.cl.mako"/>
<%
    comps = ["s%x" % k for k in range(VW)]
    def vload(base, step):
        """VW elements base[0], base[step], ... as a realV (step is 1 when UNIT)."""
        if VW == 1:
            return "%s[0]" % base
        if UNIT and ALIGNED:
            return "(*(__global const realV*)(%s))" % base
        if UNIT:
            return "(realV)(%s)" % ", ".join("%s[%d]" % (base, k) for k in range(VW))
        return "(realV)(%s)" % ", ".join("%s[(size_t)%d * %s]" % (base, k, step)
                                         for k in range(VW))
%>
%if op == "argmax":
%if dtype == "float":
typedef int${"" if VW == 1 else VW} idxV;
%else:
typedef long${"" if VW == 1 else VW} idxV;
%endif
%endif
/* Kahan step: add t into s with the running correction c (s - c is the sum). Once s is not
   finite the correction is dropped: it would be inf - inf = NaN and poison every later term */
#define KAHAN_ADD(s, c, t) { const __typeof__(s) y_ = (t) - (c); const __typeof__(s) u_ = (s) + y_; \
                             const __typeof__(s) d_ = (u_ - (s)) - y_; \
                             (c) = ((u_ - u_) == 0) ? d_ : (__typeof__(s))(0); (s) = u_; }
/* NaN-propagating max (numpy): take v when it is larger or NaN */
#define ISNAN(v) ((v) != (v))  /* isnan() is a call on PoCL, never inlined */
#define TAKES(v, m) (((v) > (m)) | ISNAN(v))
/* argmax merge: larger value (NaN counts as largest, first NaN wins), smaller index on ties */
#define ARG_MERGE(m, i, v2, i2) { if ((!ISNAN(m)) && (ISNAN(v2) || (v2) > (m) || \
                                  ((v2) == (m) && (i2) < (i)))) { (m) = (v2); (i) = (i2); } \
                                  else if (ISNAN(m) && ISNAN(v2) && (i2) < (i)) { (i) = (i2); } }

%if variant == "along":
__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void reduce_along(const int K, const int R, __global const real* restrict A, const int offA,
                  const int sk, const int sr, __global real* restrict out, const int offo,
                  const int inco)
{
    const int k = get_group_id(0);
    const int l = get_local_id(0);
    __global const real* a = A + offA + (size_t)k * sk;
    const int nv = R / ${VW};
%if op == "sum":
    realV s = (realV)(0), c = (realV)(0);
    for (int v = l; v < nv; v += ${WGS}) {
        const int r = v * ${VW};
        KAHAN_ADD(s, c, ${vload("(a + (size_t)r * sr)", "sr")});
    }
    real ss = 0, cs = 0;
    for (int r = nv * ${VW} + l; r < R; r += ${WGS})
        KAHAN_ADD(ss, cs, a[(size_t)r * sr]);
    real acc = HSUM(s - c) + (ss - cs);
%elif op == "max":
    realV mv = (realV)(-INFINITY);
    for (int v = l; v < nv; v += ${WGS}) {
        const realV x = ${vload("(a + (size_t)v * %d * sr)" % VW, "sr")};
        mv = TAKES(x, mv) ? x : mv;
    }
    real acc = -INFINITY;
%for cc in (comps if VW > 1 else []):
    acc = TAKES(mv.${cc}, acc) ? mv.${cc} : acc;
%endfor
%if VW == 1:
    acc = mv;
%endif
    for (int r = nv * ${VW} + l; r < R; r += ${WGS}) {
        const real x = a[(size_t)r * sr];
        acc = TAKES(x, acc) ? x : acc;
    }
%else:
    real acc = -INFINITY;
    int idx = 0x7fffffff;
%if VW > 1:
    realV bv = (realV)(-INFINITY);
    idxV bi = (idxV)(0x7fffffff);
    const idxV lanes = (idxV)(${", ".join(str(q) for q in range(VW))});
    for (int v = l; v < nv; v += ${WGS}) {
        const realV x = ${vload("(a + (size_t)v * %d * sr)" % VW, "sr")};
        const idxV upd = ((x > bv) | ISNAN(x)) & ~ISNAN(bv);
        bv = upd ? x : bv;
        bi = upd ? (idxV)(v * ${VW}) + lanes : bi;
    }
%for cc in comps:
    ARG_MERGE(acc, idx, bv.${cc}, (int)bi.${cc});
%endfor
%else:
    for (int v = l; v < nv; v += ${WGS}) {
        const real x = a[(size_t)v * sr];
        ARG_MERGE(acc, idx, x, v);
    }
%endif
    for (int r = nv * ${VW} + l; r < R; r += ${WGS}) {
        const real x = a[(size_t)r * sr];
        ARG_MERGE(acc, idx, x, r);
    }
%endif
%if WGS > 1:
    __local real lv[${WGS}];
%if op == "argmax":
    __local int li[${WGS}];
%endif
    for (int st = ${WGS} / 2; st > 0; st >>= 1) {
        lv[l] = acc;
%if op == "argmax":
        li[l] = idx;
%endif
        barrier(CLK_LOCAL_MEM_FENCE);
        if (l < st) {
            const real o = lv[l + st];
%if op == "sum":
            acc += o;
%elif op == "max":
            acc = TAKES(o, acc) ? o : acc;
%else:
            const int oi = li[l + st];
            ARG_MERGE(acc, idx, o, oi);
%endif
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
%endif
    if (l == 0)
%if op == "argmax":
        out[offo + (size_t)k * inco] = (real)idx;
%else:
        out[offo + (size_t)k * inco] = acc;
%endif
}
%else:
__kernel void reduce_across(const int K, const int R, __global const real* restrict A,
                            const int offA, const int sk, const int sr,
                            __global real* restrict out, const int offo, const int inco,
                            const int rpb, const int obs)
{
    const int k0 = get_global_id(0) * ${VW};
    if (k0 >= K) return;
    /* rows [g*rpb, g*rpb + rpb) of block g; its results go to out + g*obs */
    const int g = get_global_id(1);
    const int rend = R - g * rpb < rpb ? R - g * rpb : rpb;
    __global const real* a = A + offA + (size_t)k0 * sk + (size_t)g * rpb * sr;
    out += (size_t)g * obs;
    if (k0 + ${VW} <= K) {
%if op == "sum":
        realV s = (realV)(0), c = (realV)(0);
        for (int r = 0; r < rend; ++r)
            KAHAN_ADD(s, c, ${vload("(a + (size_t)r * sr)", "sk")});
        const realV res = s - c;
%elif op == "max":
        realV res = (realV)(-INFINITY);
        for (int r = 0; r < rend; ++r) {
            const realV x = ${vload("(a + (size_t)r * sr)", "sk")};
            res = TAKES(x, res) ? x : res;
        }
%else:
        realV bv = (realV)(-INFINITY);
        realV res = (realV)(0);
        for (int r = 0; r < rend; ++r) {
            const realV x = ${vload("(a + (size_t)r * sr)", "sk")};
%if VW > 1:
            const idxV upd = ((x > bv) | ISNAN(x)) & ~ISNAN(bv);
%else:
            const int upd = (x > bv || ISNAN(x)) && !ISNAN(bv);
%endif
            bv = upd ? x : bv;
            res = upd ? (realV)(r) : res;
        }
%endif
%if VW == 1:
        out[offo + (size_t)k0 * inco] = res;
%else:
%for q in range(VW):
        out[offo + (size_t)(k0 + ${q}) * inco] = res.${comps[q]};
%endfor
%endif
    } else {
        /* the last, partial group of outputs: scalar */
        for (int k = k0; k < K; ++k) {
            __global const real* ak = a + (size_t)(k - k0) * sk;
%if op == "sum":
            real s = 0, c = 0;
            for (int r = 0; r < rend; ++r)
                KAHAN_ADD(s, c, ak[(size_t)r * sr]);
            const real res = s - c;
%elif op == "max":
            real res = -INFINITY;
            for (int r = 0; r < rend; ++r) {
                const real x = ak[(size_t)r * sr];
                res = TAKES(x, res) ? x : res;
            }
%else:
            real bv = -INFINITY;
            real res = 0;
            for (int r = 0; r < rend; ++r) {
                const real x = ak[(size_t)r * sr];
                if ((x > bv || ISNAN(x)) && !ISNAN(bv)) { bv = x; res = (real)r; }
            }
%endif
            out[offo + (size_t)k * inco] = res;
        }
    }
}
%endif
