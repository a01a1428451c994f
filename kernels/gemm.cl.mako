<%doc>
gemm.cl.mako -- C := alpha * A B + beta * C   (BLAS level 3, general matrix-matrix product)

A is m x k, B is k x n, C is m x n, as the operation sees them. Each is addressed through
row and column strides given as arguments: element (i, j) of X is X[offX + i*rsX + j*csX]
(a "row"-layout matrix has rsX = ld, csX = 1; a "col"-layout one rsX = 1, csX = ld; a
transposed view swaps them), so every layout, transpose and sub-matrix view is one program.
With beta == 0 the old C is never read (a NaN there cannot leak).

Two variants, chosen by the render parameter ``variant``:

"ref"     gemm_ref: portable, GPU-friendly. TS x (TS/WPT) work-groups stage TS x TS tiles
          of A and B in local memory; each work-item computes WPT elements of C, TS/WPT
          columns apart (neighbouring work-items touch neighbouring rows).

"packed"  The register-tiled CPU path, three kernels launched in a row:
          gemm_pack_a  copies op(A) into row panels of MR rows: element (i, p) goes to
                       Ap[((i / MR) * k + p) * MR + i % MR]; rows past m are zero.
          gemm_pack_b  copies op(B) into column panels of NR columns: element (p, j) goes to
                       Bp[((j / NR) * k + p) * NR + j % NR]; columns past n are zero.
          gemm_tile    one work-item (local size 1) per MR x NR tile of C. Work-group g maps
                       to tiles in chunks of rb row panels (an argument, sized so a chunk of
                       A panels stays in cache), the row panel fastest within a chunk: the
                       work-groups that run together share one B panel and one A chunk.
                       The tile is held in MR * NR/VW vector accumulators; each step of the
                       k loop loads NR/VW vectors of the B panel (aligned pointer loads, not
                       vloadN) and broadcasts MR scalars of the A panel, with ``a*b + c``
                       (contracted by -cl-mad-enable, not the fma() builtin). Edge tiles
                       compute on the zero padding and mask their stores.
          gemm_tile_direct  the same, reading a row-major A in place (MR row streams, rows
                       past m clamped to row m-1 and never stored) instead of packed panels:
                       packing A costs as much as a pass over A, which matters when n is small.
          Packing makes every layout / transpose combination the same fast kernel and turns
          every load of the inner loop into a contiguous stream. The host computes a
          column-major C as C^T = B^T A^T, so the tile stores are contiguous rows.
          With ``EPI`` the two tile kernels finish each element s = alpha*acc (+ beta*C) at
          its store (no extra pass over any matrix), with an activation code ``act`` (0
          linear, 1 sigmoid, 2 tanh, 3 relu: clnn.elementwise.ACTIVATION_CODES, read as ACT):
            "bias_act"  C(i, j) = act(s + E[offE + j])                   (a layer's forward)
            "dact"      C(i, j) = s * act'(E[offE + i*ldE + j]), the derivative taken from
                        the activation's output y: sigmoid y(1-y), tanh 1-y^2, relu [y > 0]
                        (as a select: a NaN s with y <= 0 gives 0), linear 1 (E not read)
            "rowsum"    C(i, j) = s, and the tiles of the first column panel also store
                        E[offE + i*ldE] = alpha * sum_p A(i, p) (a bias gradient: the row
                        sums of dZ^T, summed from the A panel while it is in cache)

Render parameters (names not used by a variant may be left out):
  dtype        "float" | "double"
  variant      "ref" | "packed"
  TS           ref: side of the C tile of a work-group (tunable; 16, less for small
               work-groups, 1 on CPUs where it only serves tiny products)
  WPT          ref: elements of C per work-item, divides TS (tunable; 1 on CPUs, 4 on GPUs)
  VW           packed: vector width of the accumulators (tunable: 8 floats fill AVX2,
               16 AVX-512; never wider than 512 bits); the ref variant renders with 1
  MR           packed: rows of the register tile (tunable, e.g. 4..8)
  NR           packed: columns of the register tile, a multiple of VW (tunable, 16..32)
  UK           packed: unroll factor of the k loop (tunable, 1..8)
  KB           packed: k values per work-item of the pack kernels (tunable)
  PA           packed: panels of A per work-item of gemm_pack_a (default 1; clnn renders 8)
  EPI          packed: None (default: plain stores) | "bias_act" | "dact" | "rowsum"

Kernel arguments:
  gemm_ref     int m, int n, int k, real alpha, global real* A, int offA, int rsA, int csA,
               global real* B, int offB, int rsB, int csB, real beta,
               global real* C, int offC, int rsC, int csC
  gemm_pack_a  int m, int k, global real* A, int offA, int rsA, int csA, global real* Ap
  gemm_pack_b  int n, int k, global real* B, int offB, int rsB, int csB, global real* Bp
  gemm_tile    int m, int n, int k, real alpha, global real* A, int offA, int ldA,
  (and _direct) global real* Bp, real beta, global real* C, int offC, int rsC, int csC,
               int rb, int tpw   (rb: row groups per chunk; tpw: tiles per work-item)
               with EPI also: global real* E, int offE, int ldE, int act
</%doc>
<%! from clnn.elementwise import ACTIVATION_CODES as ACT %>\
<%page args="TS=None, WPT=None, MR=None, NR=None, UK=None, KB=None, PA=1, EPI=None"/>\
<%include file="common.cl.mako"/>
<%
    def at(name, i, j):
        return "%s[(size_t)(%s) * rs%s + (size_t)(%s) * cs%s]" % (name, i, name, j, name)
%>
%if variant == "ref":
<% RTS = TS // WPT %>\
/* work-group: a TS x TS tile of C; work-item (li, lj) computes C(i, j0 + lj + w*RTS) for
   w < WPT, where RTS = TS / WPT */
__kernel __attribute__((reqd_work_group_size(${TS}, ${RTS}, 1)))
void gemm_ref(const int m, const int n, const int k, const real alpha,
              __global const real* restrict A, const int offA, const int rsA, const int csA,
              __global const real* restrict B, const int offB, const int rsB, const int csB,
              const real beta, __global real* restrict C, const int offC, const int rsC,
              const int csC)
{
    __local real tA[${TS}][${TS} + 1];
    __local real tB[${TS}][${TS} + 1];
    const int li = get_local_id(0), lj = get_local_id(1);
    const int i = get_global_id(0), j0 = get_group_id(1) * ${TS};
    A += offA; B += offB; C += offC;
    real ${", ".join("acc%d = 0" % w for w in range(WPT))};
    for (int p0 = 0; p0 < k; p0 += ${TS}) {
        /* tA[li][c] = A(i, p0 + c); tB[li][c] = B(p0 + li, j0 + c); zero outside */
%for w in range(WPT):
        {
            const int c = lj + ${w * RTS};
            tA[li][c] = (i < m && p0 + c < k) ? ${at("A", "i", "p0 + c")} : (real)0;
            tB[li][c] = (j0 + c < n && p0 + li < k) ? ${at("B", "p0 + li", "j0 + c")}
                                                    : (real)0;
        }
%endfor
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int p = 0; p < ${TS}; ++p) {
            const real a = tA[li][p];
%for w in range(WPT):
            acc${w} += a * tB[p][lj + ${w * RTS}];
%endfor
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
%for w in range(WPT):
    {
        const int j = j0 + lj + ${w * RTS};
        if (i < m && j < n) {
            const real s = alpha * acc${w};
            ${at("C", "i", "j")} = (beta == 0) ? s : s + beta * ${at("C", "i", "j")};
        }
    }
%endfor
}
%else:
/* Ap panels PA*g .. PA*g+PA-1, k values from p0: work-item (pb, g) copies their rows. A
   col-layout A gives MR contiguous values per p and panel, less than a cache line: the PA
   panels of one work-item use each line fully while it is in L1 */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemm_pack_a(const int m, const int k, __global const real* restrict A, const int offA,
                 const int rsA, const int csA, __global real* restrict Ap)
{
    const int p0 = get_global_id(0) * ${KB};
    const int p1 = min(k, p0 + ${KB});
    const int ib1 = min((m + ${MR - 1}) / ${MR}, (int)get_global_id(1) * ${PA} + ${PA});
    for (int ib = get_global_id(1) * ${PA}; ib < ib1; ++ib) {
    const int i0 = ib * ${MR};
    __global real* dst = Ap + ((size_t)ib * k + p0) * ${MR};
    if (i0 + ${MR} <= m && rsA == 1) {  /* col layout: MR contiguous values per p */
        const __global real* src = A + offA + i0 + (size_t)p0 * csA;
        for (int p = p0; p < p1; ++p, dst += ${MR}, src += csA) {
%for r in range(MR):
            dst[${r}] = src[${r}];
%endfor
        }
    } else if (i0 + ${MR} <= m) {  /* MR rows, each a stream along p */
%for r in range(MR):
        const __global real* s${r} = A + offA + (size_t)(i0 + ${r}) * rsA;
%endfor
        for (int p = p0; p < p1; ++p, dst += ${MR}) {
            const size_t q = (size_t)p * csA;
%for r in range(MR):
            dst[${r}] = s${r}[q];
%endfor
        }
    } else {
        for (int p = p0; p < p1; ++p, dst += ${MR}) {
            for (int r = 0; r < ${MR}; ++r)
                dst[r] = (i0 + r < m)
                    ? A[offA + (size_t)(i0 + r) * rsA + (size_t)p * csA] : (real)0;
        }
    }
    }
}

<% CG = 4 if NR % 4 == 0 else (2 if NR % 2 == 0 else 1) %>\
/* Bp panel jb, k values from p0: work-item (pb, jb) copies columns jb*NR .. jb*NR+NR-1 */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemm_pack_b(const int n, const int k, __global const real* restrict B, const int offB,
                 const int rsB, const int csB, __global real* restrict Bp)
{
    const int p0 = get_global_id(0) * ${KB}, jb = get_global_id(1);
    const int p1 = min(k, p0 + ${KB});
    const int j0 = jb * ${NR};
    __global real* dst = Bp + ((size_t)jb * k + p0) * ${NR};
    if (j0 + ${NR} <= n && csB == 1) {  /* row layout: NR contiguous values per p */
        const __global real* src = B + offB + j0 + (size_t)p0 * rsB;
        for (int p = p0; p < p1; ++p, dst += ${NR}, src += rsB) {
            for (int c = 0; c < ${NR}; ++c)
                dst[c] = src[c];
        }
    } else if (j0 + ${NR} <= n && rsB == 1) {
        /* NR columns, each contiguous along p (a transposed row-major B, as W^T): ${CG} columns
           per pass, so that few streams share the cache sets when the column stride is a
           power of two (PoCL, 512 x 1024 W^T: 0.14 ms against 0.38 for all NR at once) */
        const __global real* src = B + offB + (size_t)j0 * csB + p0;
        for (int c = 0; c < ${NR}; c += ${CG}) {
%for g in range(CG):
            const __global real* s${g} = src + (size_t)(c + ${g}) * csB;
%endfor
            for (int p = 0; p < p1 - p0; ++p) {
%for g in range(CG):
                dst[p * ${NR} + c + ${g}] = s${g}[p];
%endfor
            }
        }
    } else if (j0 + ${NR} <= n) {  /* NR columns, each a stream along p */
        const __global real* src = B + offB + (size_t)j0 * csB;
        for (int p = p0; p < p1; ++p, dst += ${NR}) {
            const size_t q = (size_t)p * rsB;
            for (int c = 0; c < ${NR}; ++c)
                dst[c] = src[q + (size_t)c * csB];
        }
    } else {
        B += offB;
        for (int p = p0; p < p1; ++p, dst += ${NR}) {
            for (int c = 0; c < ${NR}; ++c)
                dst[c] = (j0 + c < n) ? ${at("B", "p", "j0 + c")} : (real)0;
        }
    }
}

<%
    NV = NR // VW
    def comp(name, c):
        return name if VW == 1 else "%s.s%x" % (name, c)

    def ldv(p):
        """A realV load from any element address (unaligned)."""
        return "(*(%s))" % p if VW == 1 else "(*(__global const realU*)(%s))" % p
%>
%if EPI is not None:
%if VW > 1:
/* a VW-vector with the alignment of one element: an unaligned vector access */
typedef realV __attribute__((aligned(sizeof(real)))) realU;
%endif
/* the activation applied in place to v (scalar or vector of type T) */
#define EPI_ACT(a, v, T) do { \
        if ((a) == ${ACT["sigmoid"]}) v = (T)1 / ((T)1 + exp(-(v))); \
        else if ((a) == ${ACT["tanh"]}) v = tanh(v); \
        else if ((a) == ${ACT["relu"]}) v = fmax(v, (T)0); \
    } while (0)
/* s *= act'(y), from the activation's output y (scalars) */
#define EPI_DACT(a, y, s) do { \
        if ((a) == ${ACT["sigmoid"]}) s = s * ((y) * ((real)1 - (y))); \
        else if ((a) == ${ACT["tanh"]}) s = s * ((real)1 - (y) * (y)); \
        else if ((a) == ${ACT["relu"]}) s = (y) > (real)0 ? s : (real)0; \
    } while (0)
%if VW > 1:
/* the same for realV (relu: the sign mask of y > 0 on s's bits, a select) */
#define EPI_DACTV(a, y, s) do { \
        if ((a) == ${ACT["sigmoid"]}) s = s * ((y) * ((realV)1 - (y))); \
        else if ((a) == ${ACT["tanh"]}) s = s * ((realV)1 - (y) * (y)); \
        else if ((a) == ${ACT["relu"]}) s = ${"as_%s%d(as_%s%d(s) & ((y) > (realV)0))" % (dtype, VW, "int" if dtype == "float" else "long", VW)}; \
    } while (0)
%else:
#define EPI_DACTV EPI_DACT
%endif
%endif
<%def name="epi_s(i, j)">\
%if EPI == "bias_act":
s += E[offE + (${j})]; EPI_ACT(act, s, real);\
%elif EPI == "dact":
if (act != 0) { const real y = E[offE + (size_t)(${i}) * ldE + (${j})]; EPI_DACT(act, y, s); }\
%endif
</%def>\
<%def name="step(u, direct)">\
            {
%for v in range(NV):
                const realV b${v} = pb[${u * NV + v}];
%endfor
%for r in range(MR):
                { const real a = ${("pa[o%d + %d]" % (r, u)) if direct else ("pa[%d]" % (u * MR + r))};
%for v in range(NV):
                  c${r}_${v} = a * b${v} + c${r}_${v};
%endfor
                }
%endfor
            }
</%def>
<%def name="stores()">\
%for r in range(MR):
%for c in range(NR):
<% v, e = divmod(c, VW) %>\
%if EPI is None:
        { __global real* d = &${at("C", "i0 + %d" % r, "j0 + %d" % c)};
          const real s = alpha * ${comp("c%d_%d" % (r, v), e)};
          *d = (beta == 0) ? s : s + beta * *d; }
%else:
        { __global real* d = &${at("C", "i0 + %d" % r, "j0 + %d" % c)};
          real s = alpha * ${comp("c%d_%d" % (r, v), e)};
          if (beta != 0) s += beta * *d;
          ${epi_s("i0 + %d" % r, "j0 + %d" % c)}
          *d = s; }
%endif
%endfor
%endfor
</%def>
<%def name="row_stores(scaled)">\
%if EPI is None:
${plain_row_stores(scaled)}\
%else:
%if EPI == "bias_act":
%for v in range(NV):
        const realV bv${v} = ${ldv("E + offE + j0 + %d" % (v * VW))};
%endfor
%endif
%for r in range(MR):
        {   /* row i0 + ${r}: the epilogue on whole vectors, then lane by lane stores */
            __global real* d = C + (size_t)(i0 + ${r}) * rsC + j0;
%for v in range(NV):
            {
                realV s = alpha * c${r}_${v};
%if scaled:
                s += beta * ${ldv("d + %d" % (v * VW))};
%endif
%if EPI == "bias_act":
                s += bv${v};
                EPI_ACT(act, s, realV);
%elif EPI == "dact":
                if (act != 0) {
                    const realV y = ${ldv("E + offE + (size_t)(i0 + %d) * ldE + j0 + %d" % (r, v * VW))};
                    EPI_DACTV(act, y, s);
                }
%endif
%for e in range(VW):
                d[${v * VW + e}] = ${comp("s", e)};
%endfor
            }
%endfor
        }
%endfor
%endif
</%def>\
<%def name="plain_row_stores(scaled)">\
%for r in range(MR):
        {   /* row i0 + ${r}: NR contiguous elements, stored lane by lane from the vectors */
            __global real* d = C + (size_t)(i0 + ${r}) * rsC + j0;
%for v in range(NV):
            {
                const realV s = alpha * c${r}_${v};
%for e in range(VW):
%if scaled:
                d[${v * VW + e}] = ${comp("s", e)} + beta * d[${v * VW + e}];
%else:
                d[${v * VW + e}] = ${comp("s", e)};
%endif
%endfor
            }
%endfor
        }
%endfor
</%def>
%for direct in (False, True):
%if direct:
/* C tiles (ib .. ib + tpw - 1, jb) = alpha * A . Bp panel jb + beta * C, reading the rows of
   a row-major A in place (offset offA, leading dimension ldA) */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemm_tile_direct(const int m, const int n, const int k, const real alpha,
%else:
/* C tiles (ib .. ib + tpw - 1, jb) = alpha * A panels . Bp panel jb + beta * C, the A panels
   packed by gemm_pack_a (offA and ldA are unused) */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemm_tile(const int m, const int n, const int k, const real alpha,
%endif
               __global const real* restrict A, const int offA, const int ldA,
               __global const real* restrict Bp,
               const real beta, __global real* restrict C, const int offC, const int rsC,
%if EPI is None:
               const int csC, const int rb, const int tpw)
%else:
               const int csC, const int rb, const int tpw,
               __global real* restrict E, const int offE, const int ldE, const int act)
%endif
{
    /* work-group g -> tpw tiles (ib.., jb): groups of tpw row panels in chunks of rb groups,
       the group fastest within a chunk, so a chunk of A stays in cache while the B panels
       stream past it */
    const int mb = (m + ${MR - 1}) / ${MR}, nb = (n + ${NR - 1}) / ${NR};
    const int mg = (mb + tpw - 1) / tpw;
    const int g = get_global_id(0), chunk = g / (rb * nb), rest = g - chunk * rb * nb;
    const int groups = min(rb, mg - chunk * rb);
    const int jb = rest / groups, grp = chunk * rb + rest % groups;
    const int j0 = jb * ${NR}, ib1 = min(mb, (grp + 1) * tpw);
    C += offC;
    for (int ib = grp * tpw; ib < ib1; ++ib) {  /* the tiles of this work-item */
    const int i0 = ib * ${MR};
%if direct:
    /* row r of the tile is a stream pa[o_r + p]; rows past m re-read row m-1 (not stored) */
    const __global real* pa = A + offA + (size_t)i0 * ldA;
%for r in range(MR):
    const size_t o${r} = (size_t)(min(i0 + ${r}, m - 1) - i0) * ldA;
%endfor
%else:
    const __global real* pa = A + (size_t)ib * k * ${MR};
%endif
    const __global realV* pb = (const __global realV*)(Bp + (size_t)jb * k * ${NR});
%for r in range(MR):
    realV ${", ".join("c%d_%d = 0" % (r, v) for v in range(NV))};
%endfor
    int p = 0;
%if UK > 1:
    for (; p + ${UK} <= k; p += ${UK}, pa += ${UK * (1 if direct else MR)},
                                       pb += ${UK * NV}) {
%for u in range(UK):
${step(u, direct)}\
%endfor
    }
%endif
    for (; p < k; ++p, pa += ${1 if direct else MR}, pb += ${NV}) {
${step(0, direct)}\
    }
    if (i0 + ${MR} <= m && j0 + ${NR} <= n && csC == 1) {  /* clnn makes C row-major */
        if (beta == 0) {
${row_stores(False)}\
        } else {
${row_stores(True)}\
        }
    } else if (i0 + ${MR} <= m && j0 + ${NR} <= n) {
${stores()}\
    } else {  /* edge tile: spill the accumulators, store what lies inside C */
        realV t[${MR * NV}];
%for r in range(MR):
%for v in range(NV):
        t[${r * NV + v}] = c${r}_${v};
%endfor
%endfor
        const real* ts = (const real*)t;
        const int mr = min(${MR}, m - i0), nr = min(${NR}, n - j0);
        for (int r = 0; r < mr; ++r)
            for (int c = 0; c < nr; ++c) {
                __global real* d = &${at("C", "i0 + r", "j0 + c")};
%if EPI is None:
                const real s = alpha * ts[r * ${NR} + c];
                *d = (beta == 0) ? s : s + beta * *d;
%else:
                real s = alpha * ts[r * ${NR} + c];
                if (beta != 0) s += beta * *d;
                ${epi_s("i0 + r", "j0 + c")}
                *d = s;
%endif
            }
    }
%if EPI == "rowsum":
    if (jb == 0) {  /* E[i] = alpha * sum_p A(i, p) for the rows of this tile */
%for r in range(MR):
        real rs${r} = 0;
%endfor
%if direct:
        const __global real* q = A + offA + (size_t)i0 * ldA;
        for (int p = 0; p < k; ++p) {
%for r in range(MR):
            rs${r} += q[o${r} + p];
%endfor
        }
%else:
        const __global real* q = A + (size_t)ib * k * ${MR};
        for (int p = 0; p < k; ++p, q += ${MR}) {
%for r in range(MR):
            rs${r} += q[${r}];
%endfor
        }
%endif
%for r in range(MR):
        if (i0 + ${r} < m) E[offE + (size_t)(i0 + ${r}) * ldE] = alpha * rs${r};
%endfor
    }
%endif
    }
}

%endfor
%endif
