<%doc>
gemv.cl.mako -- y := alpha * A x + beta * y   (BLAS level 2, general matrix-vector product)

A is m x n as the *operation* sees it, stored either
  layout "row": element (i, j) at A[offA + i*ldA + j]   (rows contiguous), or
  layout "col": element (i, j) at A[offA + i + j*ldA]   (columns contiguous).
A transposed view of a row-major matrix is a col-major matrix with the same ldA, so the two
kernels cover all four cases of row/col storage and plain/transposed use. Offsets, ldA and the
strides incx/incy are arguments, so every view works. With beta == 0 the old contents of y are
never read (NaN in y cannot leak into the result). Nothing is ever read out of bounds: rows and
columns past the end are handled by explicit tails.

Entry points (one per render of ``layout``; ``gemv_sum`` is in every render):

gemv_row  rows contiguous: dot products. Work-group g owns a contiguous range of ``bpg`` blocks
          of RPT rows; its WGS work-items stride over the columns in vectors of VW elements,
          each x vector loaded once and used for all RPT rows; RPT*VW accumulators per item;
          WGS > 1 adds a local-memory tree reduction. Columns past the last full vector are a
          scalar tail. Dimension 1 of the grid splits the columns (``cps`` per split) when
          SPLIT: each split writes its partial sums to a workspace (see gemv_sum).
gemv_col  columns contiguous: sums of scaled columns. Two strategies (tunable ACC):
          ACC=1 (CPUs): work-item (rb, s) owns rows [rb*mb, rb*mb + mb) and columns
                 [s*cps, s*cps + cps); it walks its columns CU at a time, streaming each column
                 segment once, and keeps the partial sums of its rows in memory (the workspace,
                 or y itself when not SPLIT and incy == 1; mb rows stay in L1/L2). Row tails
                 past the last full vector are scalar.
          ACC=2 (CPUs): NG persistent work-groups of one work-item take units (bpg rows x
                 cps columns) from a shared counter until none is left, each adding into its
                 own partial vector (W, NG x m); the last group to finish adds the partials
                 into y (alpha, beta) and resets the counters. A thread that starts late takes
                 fewer units instead of delaying the launch. Extra arguments: W, ctr.
          ACC=0 (GPUs): each work-item owns VW*RPT consecutive rows held in registers and walks
                 the columns of its split; neighbouring work-items read neighbouring addresses.
Narrow variants (render parameter NARROW = k > 0, k <= 8): the small dimension is a
compile-time constant, so the inner loops are fully unrolled and, when the matrix is packed
(LDK: ldA == k), VW rows ("row") or VW columns ("col") are read as k contiguous vectors:
"row" de-interleaves them into columns with constant shuffles; "col" multiplies each by x
spread to match its lanes and separates the k row sums once, after the loop:
gemv_row  (n == k) each work-item owns ``bpg`` consecutive rows; results stored as a vector.
gemv_col  (m == k) work-item (0, s) owns columns [s*cps, s*cps + cps), k sums in registers;
          with SPLIT the partial sums go to W (then gemv_sum).
gemv_sum  y[i] := alpha * sum_s W[s*m + i] + beta * y[i], the second pass after a SPLIT
          launch (W holds ``nsplit`` partial vectors of length m).

Render parameters (every one is passed on every render: the template is strict, so a missing
one is a RenderError naming the parameters given):
  dtype    "float" | "double"     element type
  layout   "row" | "col"          which main kernel to emit: gemv_row or gemv_col
  SPLIT    true: the main kernel writes partial sums to W[s*m + i] (alpha 1, beta 0); the host
           then launches gemv_sum. false: it writes y with alpha and beta.
  ALIGNED  true when every vector load is VW-aligned (offsets, ldA and, for "row", the x vector
           and column split): loads are aligned pointer casts (GPU-friendly). false: loads
           through a VW-vector type of element alignment (one unaligned vector load on CPUs;
           never vloadN, which PoCL compiles to a register-spilling call).
  XINC1    true when incx == 1 ("row" then loads x with vector loads, else it gathers)
  NARROW   0, or k > 0: the narrow variants above, for n == k ("row") or m == k ("col")
  LDK      NARROW only: ldA == k, the matrix is packed (false otherwise)
Tunables (UPPERCASE, chosen by clnn/gemv.py from the tuning database, the shipped table or
the device limits of clnn/gemv_tunables.py):
  WGS      work-items per work-group ("row", and "col" with ACC=0; CPU 1, GPU 32..256)
  RPT      "row": rows per block; "col" ACC=0: vectors of rows per work-item
  VW       vector width of loads and accumulators: 1, 2, 4, 8 or 16
  ACC      "col": 1 = memory accumulation (CPU), 2 = the same with persistent work-groups
           and a work counter (CPU), 0 = register accumulation (GPU; and every "row")
  CU       "col" ACC=1/2 only: columns per step of the column walk (1..8; 1 otherwise)
Host-side tunables (not rendered): NG (target number of parallel work-items/groups), MB
(rows per work-item, "col" ACC=1), KMIN (fewest columns per split), SMIN (fewest elements for
a split at all: below it the second launch costs more than the parallelism gains), AL (1: use
ALIGNED loads when the operands allow; CPUs 0, as unaligned vector loads cost the same there),
NVW (VW of the narrow variants), PAN (columns per unit, "col" ACC=2; there NG is the number of
persistent work-groups and MB the rows per unit).

Kernel arguments of gemv_row / gemv_col (five: PoCL's cost per launch grows with the number
of arguments, about 1 us from 15 to 5, which a 120 KB gemv notices):
  global real* A, global real* x, global real* y,
  real2 ab = (alpha, beta),
  int16 P = (m, n, offA, ldA, offx, incx, offy, incy,
             bpg (row: row blocks per group; col ACC=1: rows per work-item),
             cps (columns per split), 0, 0, 0, 0, 0, 0)
gemv_col with ACC=2 takes two more: global real* W (NG x m partial sums), volatile global
int* ctr (two counters, {0, 0} before the first launch and again after every launch).
With SPLIT, y/offy/incy are ignored for output: the partial sums go to W (argument ``y``,
offset 0) as described above.
</%doc>
<%include file="common.cl.mako"/>
<%
    def loadv(ptr):
        if VW == 1:
            return "(*(%s))" % ptr
        if ALIGNED:
            return "(*(__global const realV*)(%s))" % ptr
        return "(*(__global const realU*)(%s))" % ptr

    def store_y(idx, val, indent):
        pad = " " * indent
        return (pad + "{\n" + pad + "    __global real* yi = y + (size_t)(%s) * incy;\n" % idx
                + pad + "    const real s_ = alpha * (%s);\n" % val
                + pad + "    *yi = (beta == 0) ? s_ : s_ + beta * *yi;\n" + pad + "}")
%>
<%def name="main_params()">__global const real* restrict A, __global const real* restrict x,
              __global real* restrict y, const ${dtype}2 ab, const int16 P</%def>
<%def name="unpack()">\
    /* the scalars travel packed in two arguments (PoCL's cost per launch grows with the
       number of arguments): see "Kernel arguments" in the header */
    const int m = P.s0, n = P.s1, offA = P.s2, ldA = P.s3, offx = P.s4, incx = P.s5;
    const int offy = P.s6, incy = P.s7, bpg = P.s8, cps = P.s9;
    const real alpha = ab.s0, beta = ab.s1;
</%def>
%if VW > 1:
/* a VW-vector with the alignment of one element: an unaligned vector load */
typedef realV __attribute__((aligned(sizeof(real)))) realU;
%endif

%if NARROW and layout == "row":
<%
    K = NARROW
    def comp(v, flat):
        q, lane = divmod(flat, VW)
        return "v%d.s%x" % (q, lane)
%>
/* narrow rows: n == ${K} columns (compile time); bpg rows per work-item */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemv_row(${main_params()})
{
${unpack()}    const int i0 = get_global_id(0) * bpg;
    const int i1 = min(m, i0 + bpg);
    A += offA; x += offx; y += offy;
%for c in range(K):
    const real x${c} = x[${c} * incx];
%endfor
    int i = i0;
%if LDK and VW > 1:
    /* ${VW} rows at a time: ${K} contiguous vector loads, de-interleaved into columns */
    const int iv = i0 + (i1 - i0) / ${VW} * ${VW};
<%def name="narrow_rows(K, comp)">
        __global const real* a = A + (size_t)i * ${K};
%for q in range(K):
        const realV v${q} = *(__global const realU*)(a + ${q * VW});
%endfor
        realV s = ${" + ".join("(realV)(%s) * x%d" % (", ".join(comp(None, u * K + c) for u in range(VW)), c) for c in range(K))};
        s *= alpha;
</%def>
    if (incy == 1 && beta == 0) {  /* the common case, without tests in the loop */
        for (; i < iv; i += ${VW}) {
${narrow_rows(K, comp)}
            *(__global realU*)(y + i) = s;
        }
    }
    for (; i < iv; i += ${VW}) {
${narrow_rows(K, comp)}
        if (incy == 1) {
            __global realU* yp = (__global realU*)(y + i);
            *yp = (beta == 0) ? s : s + beta * *yp;
        } else {
%for u in range(VW):
            {
                __global real* yi = y + (size_t)(i + ${u}) * incy;
                *yi = (beta == 0) ? s.s${"%x" % u} : s.s${"%x" % u} + beta * *yi;
            }
%endfor
        }
    }
%endif
    for (; i < i1; ++i) {
        __global const real* a = A + (size_t)i * ${K if LDK else "ldA"};
        const real t = ${" + ".join("a[%d] * x%d" % (c, c) for c in range(K))};
${store_y("i", "t", 8)}
    }
}

%elif NARROW:
<% K = NARROW %>
/* narrow columns: m == ${K} rows (compile time); work-item (0, s) owns columns
   [s*cps, s*cps + cps) and keeps its ${K} sums in registers */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemv_col(${main_params()})
{
${unpack()}    const int j0 = get_global_id(1) * cps;
    const int j1 = min(n, j0 + cps);
    if (j0 >= n) return;
    A += offA; x += offx;
%for r in range(K):
    real t${r} = 0;
%endfor
    int j = j0;
%if LDK and VW > 1:
    /* ${VW} columns at a time: ${K} contiguous vector loads v_q, each multiplied by x spread to
       match it (lane l of v_q is element q*VW + l of the block: column (q*VW + l) / K, row
       (q*VW + l) % K; one single-source shuffle of x per load) and added into acc_q. The
       rows are separated once, after the loop (a de-interleave of A per step cost ~1.5x). */
%for q in range(K):
    realV acc${q} = (realV)(0);
%endfor
    const int jv = j0 + (j1 - j0) / ${VW} * ${VW};
    for (; j < jv; j += ${VW}) {
        __global const real* a = A + (size_t)j * ${K};
%if XINC1:
        const realV xv = *(__global const realU*)(x + j);
%else:
        __global const real* xj = x + (size_t)j * incx;
        const realV xv = (realV)(${", ".join("xj[%d * incx]" % u for u in range(VW))});
%endif
%for q in range(K):
        acc${q} += *(__global const realU*)(a + ${q * VW}) * xv.s${"".join("%x" % ((q * VW + u) // K) for u in range(VW))};
%endfor
    }
%for r in range(K):
    t${r} = ${" + ".join("acc%d.s%x" % divmod(f, VW) for f in range(r, K * VW, K))};
%endfor
%endif
    for (; j < j1; ++j) {
        __global const real* a = A + (size_t)j * ${K if LDK else "ldA"};
        const real xj = x[(size_t)j * incx];
%for r in range(K):
        t${r} += a[${r}] * xj;
%endfor
    }
%if SPLIT:
    y += (size_t)get_global_id(1) * m;
%for r in range(K):
    y[${r}] = t${r};
%endfor
%else:
    y += offy;
%for r in range(K):
${store_y(str(r), "t%d" % r, 4)}
%endfor
%endif
}

%elif layout == "row":
__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void gemv_row(${main_params()})
{
${unpack()}    const int lid = get_local_id(0);
    const int nblk = (m + ${RPT - 1}) / ${RPT};
    int blk = get_group_id(0) * bpg;
    const int bend = min(blk + bpg, nblk);
%if SPLIT:
    const int j0 = get_group_id(1) * cps;
    const int j1 = min(n, j0 + cps);
    y += (size_t)get_group_id(1) * m;
%else:
    const int j0 = 0, j1 = n;
    y += offy;
%endif
    A += offA; x += offx;
    const int nv = (j1 - j0) / ${VW};
%if WGS > 1:
    __local real part[${RPT}][${WGS}];
%endif
    for (; blk < bend; ++blk) {
        const int row0 = blk * ${RPT};
        /* rows past the end are clamped to the last row: valid reads, results discarded */
%for r in range(RPT):
        __global const real* a${r} = A + (size_t)min(row0 + ${r}, m - 1) * ldA + j0;
        realV acc${r} = (realV)(0);
%endfor
        __global const real* xp = x + (size_t)j0 * incx;
        for (int c = lid; c < nv; c += ${WGS}) {
            const int j = c * ${VW};
%if VW == 1:
            const real xv = xp[(size_t)j * incx];
%elif XINC1:
            const realV xv = ${loadv("xp + j")};
%else:
            __global const real* xj = xp + (size_t)j * incx;
            const realV xv = (realV)(${", ".join("xj[%d * incx]" % k for k in range(VW))});
%endif
%for r in range(RPT):
            acc${r} += ${loadv("a%d + j" % r)} * xv;
%endfor
        }
%for r in range(RPT):
        real s${r} = HSUM(acc${r});
%endfor
        for (int j = nv * ${VW} + lid; j < j1 - j0; j += ${WGS}) {
            const real xj = xp[(size_t)j * incx];
%for r in range(RPT):
            s${r} += a${r}[j] * xj;
%endfor
        }
%if WGS > 1:
%for r in range(RPT):
        part[${r}][lid] = s${r};
%endfor
        for (int h = ${WGS} / 2; h > 0; h >>= 1) {
            barrier(CLK_LOCAL_MEM_FENCE);
            if (lid < h) {
%for r in range(RPT):
                part[${r}][lid] += part[${r}][lid + h];
%endfor
            }
        }
        if (lid == 0) {
%for r in range(RPT):
            s${r} = part[${r}][0];
%endfor
%else:
        {
%endif
%for r in range(RPT):
            if (row0 + ${r} < m) {
%if SPLIT:
                y[row0 + ${r}] = s${r};
%else:
${store_y("row0 + %d" % r, "s%d" % r, 16)}
%endif
            }
%endfor
        }
%if WGS > 1:
        barrier(CLK_LOCAL_MEM_FENCE);  /* part[] is reused by the next block */
%endif
    }
}

%elif ACC in (1, 2):
<%def name="colpass(loadv, C, indent, scaled)">
<%
    pad = " " * indent
    vsum = " + ".join("%s * x%d" % (loadv("a%d + i" % k), k) for k in range(C))
    ssum = " + ".join("a%d[i] * x%d" % (k, k) for k in range(C))
    if scaled:  # alpha times this pass's sum, not alpha * x: alpha * x_j may underflow to
        vsum, ssum = "alpha * (%s)" % vsum, "alpha * (%s)" % ssum  # 0 (then 0 * inf = NaN)
%>\
${pad}{   /* one pass over rows [i0, i1) adding ${C} column(s) j .. j+${C - 1} into w */
${pad}    __global const real* a0 = A + (size_t)j * ldA;
%for k in range(1, C):
${pad}    __global const real* a${k} = a${k - 1} + ldA;
%endfor
%for k in range(C):
${pad}    const real x${k} = x[(size_t)(j + ${k}) * incx];
%endfor
${pad}    int i = i0;
%if VW > 1:
${pad}    for (; i < iv; i += ${VW}) {
${pad}        __global realU* wp = (__global realU*)(w + i);
${pad}        *wp = *wp + ${vsum};
${pad}    }
%endif
${pad}    for (; i < i1; ++i)
${pad}        w[i] += ${ssum};
${pad}}
</%def>
<%def name="colwalk(loadv, scaled=False)">
    /* rows [i0, i1) of columns [j0, j1), CU columns per pass, added into w[i0..i1); the last
       j1 - j0 mod CU columns in one pass too (a matrix of 3 columns is read in one pass) */
    const int iv = i0 + (i1 - i0) / ${VW} * ${VW};
    int j = j0;
    for (; j + ${CU} <= j1; j += ${CU})
${colpass(loadv, CU, 8, scaled)}
%if CU > 1:
    switch (j1 - j) {
%for c in range(1, CU):
    case ${c}:
${colpass(loadv, c, 8, scaled)}
        break;
%endfor
    default:
        break;
    }
%endif
</%def>
%if ACC == 1:
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemv_col(${main_params()})
{
${unpack()}    /* bpg: rows per work-item */
    const int i0 = get_global_id(0) * bpg;
    const int i1 = min(m, i0 + bpg);
    const int j0 = get_global_id(1) * cps;
    const int j1 = min(n, j0 + cps);
    if (i0 >= m || j0 >= n) return;
    A += offA; x += offx;
%if SPLIT:
    __global real* w = y + (size_t)get_global_id(1) * m;
    for (int i = i0; i < i1; ++i) w[i] = 0;
${colwalk(loadv)}
%else:
    /* direct: incy == 1 (the host splits otherwise); y starts as beta*y, each pass adds alpha
       times its sum */
    __global real* w = y + offy;
    if (beta == 0) { for (int i = i0; i < i1; ++i) w[i] = 0; }
    else { for (int i = i0; i < i1; ++i) w[i] *= beta; }
${colwalk(loadv, True)}
%endif
}
%else:
/* ACC=2: G = get_num_groups(0) work-groups of one work-item each take units (a block of bpg
   rows x a panel of cps columns) from the shared counter ctr[0] until none is left, adding
   into their own partial vector W[g*m .. g*m + m); the last group to finish (counter ctr[1])
   writes y := alpha * sum_g W[g] + beta * y and resets both counters for the next launch.
   A late-starting thread (an idle core waking up) takes fewer units instead of delaying the
   whole launch. ctr must be {0, 0} before the first launch; launches of one counter must not
   overlap (they share an in-order queue). */
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void gemv_col(${main_params()}, __global real* W, volatile __global int* ctr)
{
${unpack()}    const int G = get_num_groups(0);
    const int nrb = (m + bpg - 1) / bpg;
    const int nunits = nrb * ((n + cps - 1) / cps);
    A += offA; x += offx;
    __global real* w = W + (size_t)get_group_id(0) * m;
    for (int i = 0; i < m; ++i) w[i] = 0;
    for (;;) {
        const int u = atomic_inc(&ctr[0]);
        if (u >= nunits) break;
        const int i0 = (u % nrb) * bpg;
        const int i1 = min(m, i0 + bpg);
        const int j0 = (u / nrb) * cps;
        const int j1 = min(n, j0 + cps);
${colwalk(loadv)}
    }
    mem_fence(CLK_GLOBAL_MEM_FENCE);
    if (atomic_inc(&ctr[1]) != G - 1) return;
    mem_fence(CLK_GLOBAL_MEM_FENCE);
    y += offy;
    for (int i = 0; i < m; ++i) {
        real s = 0;
        for (int g = 0; g < G; ++g)
            s += W[(size_t)g * m + i];
${store_y("i", "s", 8)}
    }
    atomic_xchg(&ctr[0], 0);
    atomic_xchg(&ctr[1], 0);
}
%endif

%else:
__kernel __attribute__((reqd_work_group_size(${WGS}, 1, 1)))
void gemv_col(${main_params()})
{
${unpack()}    const int i0 = get_global_id(0) * ${VW * RPT};
    const int j0 = get_global_id(1) * cps;
    const int j1 = min(n, j0 + cps);
    if (i0 >= m) return;
    A += offA; x += offx;
%if SPLIT:
    y += (size_t)get_global_id(1) * m;
%else:
    y += offy;
%endif
    if (i0 + ${VW * RPT} <= m) {
%for r in range(RPT):
        realV acc${r} = (realV)(0);
%endfor
        __global const real* col = A + (size_t)j0 * ldA + i0;
        for (int j = j0; j < j1; ++j, col += ldA) {
            const real xj = x[(size_t)j * incx];
%for r in range(RPT):
            acc${r} += ${loadv("col + %d" % (r * VW))} * xj;
%endfor
        }
%for r in range(RPT):
%for k in range(VW):
<% comp = "acc%d" % r if VW == 1 else "acc%d.s%x" % (r, k) %>\
%if SPLIT:
        y[i0 + ${r * VW + k}] = ${comp};
%else:
${store_y("i0 + %d" % (r * VW + k), comp, 8)}
%endif
%endfor
%endfor
    } else {
        /* the last, partial block of rows: scalar */
        for (int i = i0; i < m; ++i) {
            real s = 0;
            __global const real* a = A + (size_t)j0 * ldA + i;
            for (int j = j0; j < j1; ++j, a += ldA)
                s += *a * x[(size_t)j * incx];
%if SPLIT:
            y[i] = s;
%else:
${store_y("i", "s", 12)}
%endif
        }
    }
}
%endif

/* second pass of a SPLIT launch: y := alpha * (sum of the nsplit partials) + beta * y;
   work-item i owns rows [i*chunk, i*chunk + chunk) (chunk 1 with work-groups > 1 on GPUs) */
__kernel void gemv_sum(const int m, const int nsplit, const int chunk, const real alpha,
              __global const real* restrict W, const real beta,
              __global real* restrict y, const int offy, const int incy)
{
    const int i0 = get_global_id(0) * chunk;
    const int i1 = min(m, i0 + chunk);  /* empty past the end (global size rounded up) */
    y += offy;
    for (int i = i0; i < i1; ++i) {
        real s = 0;
        for (int k = 0; k < nsplit; ++k)
            s += W[(size_t)k * m + i];
${store_y("i", "s", 8)}
    }
}
