<%doc>
nn.cl.mako -- the fused kernels of a dense network: forward, backward, losses, softmax.

All matrices are row-major. A layer maps X (B x K, leading dimension ldX) with weights
W (N x K, contiguous) and bias b (N) to Y = act(X W^T + b) (B x N, leading dimension ldY).
The activation is a run-time code ``act`` (clnn.nn.activations.ACTIVATIONS, read below as
ACT: 0 linear, 1 sigmoid, 2 tanh, 3 relu, 4 softmax) (row-wise: the element-wise kernels treat it as linear and ``nn_softmax_rows`` finishes it).
Derivatives are taken from the activation's output y: sigmoid y(1-y), tanh 1-y^2,
relu [y > 0], linear 1.

Work is cut into tiles; work-item g takes tiles [g*tpi, (g+1)*tpi) (``tpi`` = tiles per item,
a kernel argument), so a CPU runs a few dozen work-groups instead of thousands.

Entry points:
  nn_forward        Y = act(X W^T + b); a tile is RB rows x CB columns of Y: dot products along
                    K in VW-wide vectors, then one transposed reduction turns the CB
                    accumulators of a row into one CB-vector (no per-element horizontal sums)
  nn_forward_t      the same with X given transposed (XT, K x ldX: the data uploaded that
                    way): a tile is FJ columns of Y x FV*VW samples, an outer product along the
                    samples (no reductions); XT rows are read in whole VW-vectors, up to VW-1
                    samples past B (the caller's ldX leaves that room; those lanes are never
                    stored)
  nn_backward       one launch, two kinds of tile:
                    [0, nW):        dW = dZ^T X and db = colsum(dZ): JB rows x KV*VW columns
                                    of dW (db with the first column block), overwritten
                    [nW, nW + nX):  dX = (dZ W) * act'(X), where X holds the previous layer's
                                    output and ``act`` is that layer's activation: XB rows x
                                    KV*VW columns; nX = 0 for the first layer
  nn_xent           softmax + cross-entropy, fused, one row of logits Z at a time with its
                    class label (stored as a real, exact below 2^24):
                    dZ = (softmax(Z) - onehot(label)) * scale; the row's loss and a 0/1
                    "argmax == label" go to loss[offL + i], hit[offH + i]
  nn_mse            squared error: the row's sum((a - t)^2) / N goes to loss[offL + i];
                    dZ = 2 (a - t) * scale * act'(a) (softmax: its Jacobian, in-row)
  nn_softmax_rows   Y = softmax(Y) row by row, in place (inference)
  nn_softmax_bwd    D = A * (D - rowsum(D * A)), in place (softmax under a hidden layer)
  nn_bias_act       y = act(y + b) for one vector (the gemv inference path; softmax: linear)
  nn_gather         an epoch's shuffle on the device: row i of X, column i of XT (unless
                    ldt == 0: no transposed copy) and row i of Y take sample perm[i] (perm
                    holds indices as reals, exact below 2^24)

Render parameters:
  dtype    "float" | "double"
  VW       vector width along K (tunable; 8 float, 4 double: one 256-bit register)
  RB       rows of Y per forward tile (tunable, default 2)
  CB       columns of Y per forward tile, a power of two <= VW (tunable, default 4)
  FJ, FV   columns of Y x sample vectors per nn_forward_t tile (tunables, default 4 x 2)
  JB       rows of dW per backward tile (tunable, default 4)
  XB       rows of dX per backward tile (tunable, default 4)
  KV       VW-wide vectors along K per backward tile (tunable, default 2)

Every load is bounds-checked (clamped row indices, guarded tail columns) except the documented
XT over-read of nn_forward_t; nothing is written outside the outputs. Vector loads and stores go through a VW-vector type with the
alignment of one element (one unaligned vector access on CPUs; never vloadN, which PoCL
compiles to a register-spilling call).
</%doc>
<%! from clnn.nn.activations import ACTIVATIONS as ACT %>\
<%include file="common.cl.mako"/>
<%
    KW = VW * KV
    assert CB & (CB - 1) == 0 and CB <= VW, "CB must be a power of two <= VW"

    def vt(w):
        return "real" if w == 1 else "%s%d" % (dtype, w)

    def vload(p, full=True, lim=None, base=None):
        if VW == 1:
            return "(%s)[0]" % p if full else "((%s) < (%s) ? (%s)[0] : (real)0)" % (base, lim, p)
        if full:
            return "(*(__global const realU*)(%s))" % p
        return "(realV)(" + ", ".join(
            "((%s) + %d < (%s) ? (%s)[%d] : (real)0)" % (base, t, lim, p, t)
            for t in range(VW)) + ")"

    def lane(v, t, w=VW):
        return v if w == 1 else "%s.s%x" % (v, t)

    _uid = [0]

    def treduce(names):
        """Statements reducing CB realV accumulators (VW partial sums each) to one CB-vector
        of their sums; returns (lines, name of the result)."""
        lines = []
        cur = list(names)
        w = VW
        while len(cur) > 1:
            nxt = []
            for a, b in zip(cur[0::2], cur[1::2]):
                _uid[0] += 1
                t = "tr%d" % _uid[0]
                lines.append("const realV %s = (realV)((%s).even + (%s).odd, (%s).even + (%s).odd);"
                             % (t, a, a, b, b))
                nxt.append(t)
            cur = nxt
        v = cur[0]
        while w > len(names):
            _uid[0] += 1
            t = "tr%d" % _uid[0]
            lines.append("const %s %s = (%s).even + (%s).odd;" % (vt(w // 2), t, v, v))
            v, w = t, w // 2
        return lines, v
%>
%if VW > 1:
/* a VW-vector with the alignment of one element: an unaligned vector access */
typedef realV __attribute__((aligned(sizeof(real)))) realU;
%endif
%if CB > 1:
typedef ${vt(CB)} realC;
typedef realC __attribute__((aligned(sizeof(real)))) realCU;
%else:
typedef real realC;
%endif

/* the activation applied in place to v (scalar or vector) */
#define ACT_APPLY(a, v, T) do { \
        if ((a) == ${ACT["sigmoid"]}) v = (T)1 / ((T)1 + exp(-(v))); \
        else if ((a) == ${ACT["tanh"]}) v = tanh(v); \
        else if ((a) == ${ACT["relu"]}) v = fmax(v, (T)0); \
    } while (0)
/* derivative from the output y of the activation (scalars) */
#define ACT_D(a, y) ((a) == ${ACT["sigmoid"]} ? (y) * ((real)1 - (y)) : (a) == ${ACT["tanh"]} ? (real)1 - (y) * (y) : \
                     (a) == ${ACT["relu"]} ? ((y) > (real)0 ? (real)1 : (real)0) : (real)1)

__kernel void nn_forward(const int B, const int K, const int N,
                         __global const real* restrict X, const int offX, const int ldX,
                         __global const real* restrict W, const int offW,
                         __global const real* restrict bias, const int offb,
                         __global real* restrict Y, const int offY, const int ldY,
                         const int act, const int tpi)
{
    const int ncb = (N + ${CB - 1}) / ${CB};
    const int nt = ncb * ((B + ${RB - 1}) / ${RB});
    int t = get_global_id(0) * tpi;
    const int tend = min(t + tpi, nt);
    X += offX; W += offW; bias += offb; Y += offY;
    const int kv = K - K % ${VW};
    for (; t < tend; ++t) {
        const int rb = t / ncb;
        const int i0 = rb * ${RB}, j0 = (t - rb * ncb) * ${CB};
%for r in range(RB):
        __global const real* x${r} = X + (size_t)min(i0 + ${r}, B - 1) * ldX;
%endfor
%for c in range(CB):
        __global const real* w${c} = W + (size_t)min(j0 + ${c}, N - 1) * K;
%endfor
%for r in range(RB):
%for c in range(CB):
        realV a${r}_${c} = (realV)0;
%endfor
%endfor
        for (int k = 0; k < kv; k += ${VW}) {
%for r in range(RB):
            const realV xv${r} = ${vload("x%d + k" % r)};
%endfor
%for c in range(CB):
            {
                const realV wv = ${vload("w%d + k" % c)};
%for r in range(RB):
                a${r}_${c} += xv${r} * wv;
%endfor
            }
%endfor
        }
        const bool full = j0 + ${CB} <= N;
        realC bv;
%if CB > 1:
        if (full) bv = *(__global const realCU*)(bias + j0);
        else bv = (realC)(${", ".join("bias[min(j0 + %d, N - 1)]" % c for c in range(CB))});
%else:
        bv = bias[j0];
%endif
%for r in range(RB):
        {
<% lines, res = treduce(["a%d_%d" % (r, c) for c in range(CB)]) %>\
%for ln in lines:
            ${ln}
%endfor
            realC v = ${res} + bv;
            for (int k = kv; k < K; ++k) {
%if CB > 1:
                v += x${r}[k] * (realC)(${", ".join("w%d[k]" % c for c in range(CB))});
%else:
                v += x${r}[k] * w0[k];
%endif
            }
            ACT_APPLY(act, v, realC);
            if (i0 + ${r} < B) {
                __global real* y = Y + (size_t)(i0 + ${r}) * ldY + j0;
%if CB > 1:
                if (full) *(__global realCU*)y = v;
                else {
%for c in range(CB):
                    if (j0 + ${c} < N) y[${c}] = ${lane("v", c, CB)};
%endfor
                }
%else:
                y[0] = v;
%endif
            }
        }
%endfor
    }
}

/* Y = act(X W^T + b) with X given transposed (XT: K x ldXT, samples along rows), so the
   product is an outer product along the samples: no reductions, W read as broadcasts. */
__kernel void nn_forward_t(const int B, const int K, const int N,
                           __global const real* restrict XT, const int offX, const int ldX,
                           __global const real* restrict W, const int offW,
                           __global const real* restrict bias, const int offb,
                           __global real* restrict Y, const int offY, const int ldY,
                           const int act, const int tpi)
{
    const int njb = (N + ${FJ - 1}) / ${FJ};
    const int nt = njb * ((B + ${FV * VW - 1}) / ${FV * VW});
    int t = get_global_id(0) * tpi;
    const int tend = min(t + tpi, nt);
    XT += offX; W += offW; bias += offb; Y += offY;
    for (; t < tend; ++t) {
        const int ib = t / njb;
        const int i0 = ib * ${FV * VW}, j0 = (t - ib * njb) * ${FJ};
%for r in range(FJ):
        __global const real* w${r} = W + (size_t)min(j0 + ${r}, N - 1) * K;
%endfor
%for r in range(FJ):
%for v in range(FV):
        realV a${r}_${v} = (realV)0;
%endfor
%endfor
        for (int k = 0; k < K; ++k) {
            __global const real* xt = XT + (size_t)k * ldX + i0;
%for v in range(FV):
            const realV x${v} = ${vload("xt + %d" % (v * VW))};
%endfor
%for r in range(FJ):
            {
                const real w = w${r}[k];
%for v in range(FV):
                a${r}_${v} += w * x${v};
%endfor
            }
%endfor
        }
%for r in range(FJ):
        if (j0 + ${r} < N) {
            const real b = bias[j0 + ${r}];
%for v in range(FV):
            {
                realV y = a${r}_${v} + b;
                ACT_APPLY(act, y, realV);
                __global real* o = Y + (size_t)(i0 + ${v * VW}) * ldY + j0 + ${r};
                if (i0 + ${(v + 1) * VW} <= B) {
%for u in range(VW):
                    o[(size_t)${u} * ldY] = ${lane("y", u)};
%endfor
                } else {
%for u in range(VW):
                    if (i0 + ${v * VW + u} < B) o[(size_t)${u} * ldY] = ${lane("y", u)};
%endfor
                }
            }
%endfor
        }
%endfor
    }
}

<%def name="dw_body(full)">\
                for (int i = 0; i < B; ++i) {
                    __global const real* dz = dZ + (size_t)i * N;
                    __global const real* x = X + (size_t)i * ldX + k0;
%for c in range(JB):
                    const real d${c} = dz[min(j0 + ${c}, N - 1)];
%endfor
%for q in range(KV):
                    {
                        const realV xv = ${vload("x + %d" % (q * VW), full, "K", "k0 + %d" % (q * VW))};
%for c in range(JB):
                        g${c}_${q} += d${c} * xv;
%endfor
                    }
%endfor
                }
</%def>
<%def name="dx_body(full)">\
                for (int j = 0; j < N; ++j) {
                    __global const real* w = W + (size_t)j * K + k0;
%for r in range(XB):
                    const real d${r} = dZ[(size_t)min(i0 + ${r}, B - 1) * N + j];
%endfor
%for q in range(KV):
                    {
                        const realV wv = ${vload("w + %d" % (q * VW), full, "K", "k0 + %d" % (q * VW))};
%for r in range(XB):
                        h${r}_${q} += d${r} * wv;
%endfor
                    }
%endfor
                }
</%def>

__kernel void nn_backward(const int B, const int K, const int N,
                          __global const real* restrict X, const int offX, const int ldX,
                          __global const real* restrict W, const int offW,
                          __global const real* restrict dZ, const int offdZ,
                          __global real* restrict dW, const int offdW,
                          __global real* restrict db, const int offdb,
                          __global real* restrict dX, const int offdX,
                          const int nW, const int nX, const int act, const int tpi)
{
    const int nkb = (K + ${KW - 1}) / ${KW};
    int t = get_global_id(0) * tpi;
    const int tend = min(t + tpi, nW + nX);
    X += offX; W += offW; dZ += offdZ; dW += offdW; db += offdb; dX += offdX;
    for (; t < tend; ++t) {
        if (t < nW) {
            /* ---- dW[j0 .. j0+JB, k0 .. k0+KW] (and db[j0 .. j0+JB] when kb == 0) ---- */
            const int jb = t / nkb, kb = t - jb * nkb;
            const int j0 = jb * ${JB}, k0 = kb * ${KW};
%for c in range(JB):
%for q in range(KV):
            realV g${c}_${q} = (realV)0;
%endfor
%endfor
            const bool full = k0 + ${KW} <= K;
            if (full) {
${dw_body(True)}
            } else {
${dw_body(False)}
            }
            if (kb == 0) {
                /* db: a separate pass keeps the main loop's registers for dW */
%for c in range(JB):
                real gb${c} = 0;
%endfor
                for (int i = 0; i < B; ++i) {
                    __global const real* dz = dZ + (size_t)i * N;
%for c in range(JB):
                    gb${c} += dz[min(j0 + ${c}, N - 1)];
%endfor
                }
%for c in range(JB):
                if (j0 + ${c} < N) db[j0 + ${c}] = gb${c};
%endfor
            }
%for c in range(JB):
            if (j0 + ${c} < N) {
                __global real* o = dW + (size_t)(j0 + ${c}) * K + k0;
                if (full) {
%for q in range(KV):
%if VW > 1:
                    *(__global realU*)(o + ${q * VW}) = g${c}_${q};
%else:
                    o[${q}] = g${c}_${q};
%endif
%endfor
                } else {
%for q in range(KV):
%for u in range(VW):
                    if (k0 + ${q * VW + u} < K) o[${q * VW + u}] = ${lane("g%d_%d" % (c, q), u)};
%endfor
%endfor
                }
            }
%endfor
        } else {
            /* ---- dX[i0 .. i0+XB, k0 .. k0+KW] = (dZ W) * act'(X) ---- */
            const int id = t - nW;
            const int ib = id / nkb, kb = id - ib * nkb;
            const int i0 = ib * ${XB}, k0 = kb * ${KW};
%for r in range(XB):
%for q in range(KV):
            realV h${r}_${q} = (realV)0;
%endfor
%endfor
            const bool full = k0 + ${KW} <= K;
            if (full) {
${dx_body(True)}
            } else {
${dx_body(False)}
            }
%for r in range(XB):
            if (i0 + ${r} < B) {
                __global const real* a = X + (size_t)(i0 + ${r}) * ldX + k0;
                __global real* o = dX + (size_t)(i0 + ${r}) * K + k0;
                if (act == ${ACT["linear"]} && full) {
%for q in range(KV):
%if VW > 1:
                    *(__global realU*)(o + ${q * VW}) = h${r}_${q};
%else:
                    o[${q}] = h${r}_${q};
%endif
%endfor
                } else if (act == ${ACT["relu"]} && full) {
%for q in range(KV):
%if VW > 1:
                    *(__global realU*)(o + ${q * VW}) = select((realV)0, h${r}_${q},
                        isgreater(*(__global const realU*)(a + ${q * VW}), (realV)0));
%else:
                    o[${q}] = a[${q}] > (real)0 ? h${r}_${q} : (real)0;
%endif
%endfor
                } else {
%for q in range(KV):
%for u in range(VW):
                    if (full || k0 + ${q * VW + u} < K)
                        o[${q * VW + u}] = ${lane("h%d_%d" % (r, q), u)} * ACT_D(act, a[${q * VW + u}]);
%endfor
%endfor
                }
            }
%endfor
        }
    }
}

<%
    LANES = VW
    def gat(ptr, col):
        if LANES == 1:
            return "%s[o0 + %s]" % (ptr, col)
        return "(realV)(" + ", ".join("%s[o%d + %s]" % (ptr, t, col) for t in range(LANES)) + ")"
%>
/* VW rows at a time, one per vector lane, so exp and log run as vector code */
__kernel void nn_xent(const int B, const int N,
                      __global const real* restrict Z, const int offZ,
                      __global const real* restrict label, const int offlab,
                      __global real* restrict dZ, const int offdZ, const real scale,
                      __global real* restrict loss, const int offL,
                      __global real* restrict hit, const int offH, const int rpi)
{
    int i0 = get_global_id(0) * rpi * ${LANES};
    const int iend = min(i0 + rpi * ${LANES}, B);
    Z += offZ; dZ += offdZ; label += offlab; loss += offL; hit += offH;
    for (; i0 < iend; i0 += ${LANES}) {
%for t in range(LANES):
        const int o${t} = min(i0 + ${t}, B - 1) * N;
        const int y${t} = (int)label[min(i0 + ${t}, B - 1)];
%endfor
        realV mx = ${gat("Z", "0")};
        realV arg = (realV)0;
        for (int j = 1; j < N; ++j) {
            const realV z = ${gat("Z", "j")};
%if LANES == 1:
            if (z > mx) { mx = z; arg = (real)j; }
%else:
            arg = select(arg, (realV)(real)j, isgreater(z, mx));
            mx = fmax(mx, z);
%endif
        }
        realV s = (realV)0;
        for (int j = 0; j < N; ++j) {
            const realV e = exp(${gat("Z", "j")} - mx);
            s += e;
%for t in range(LANES):
            dZ[o${t} + j] = ${lane("e", t, LANES)};
%endfor
        }
        const realV zy = (realV)(${", ".join("Z[o%d + y%d]" % (t, t) for t in range(LANES))});
        const realV l = log(s) - (zy - mx);
        const realV f = scale / s;
%for t in range(LANES):
        if (i0 + ${t} < iend) {
            __global real* d = dZ + o${t};
            const real ft = ${lane("f", t, LANES)};
            for (int j = 0; j < N; ++j) d[j] *= ft;
            d[y${t}] -= scale;
            loss[i0 + ${t}] = ${lane("l", t, LANES)};
            hit[i0 + ${t}] = ${lane("arg", t, LANES)} == (real)y${t} ? (real)1 : (real)0;
        }
%endfor
    }
}

__kernel void nn_mse(const int B, const int N,
                     __global const real* restrict A, const int offA,
                     __global const real* restrict T, const int offT,
                     __global real* restrict dZ, const int offdZ, const real scale,
                     __global real* restrict loss, const int offL, const int act, const int rpi)
{
    int i = get_global_id(0) * rpi;
    const int iend = min(i + rpi, B);
    for (; i < iend; ++i) {
        __global const real* a = A + offA + (size_t)i * N;
        __global const real* t = T + offT + (size_t)i * N;
        __global real* d = dZ + offdZ + (size_t)i * N;
        real s = 0, dot = 0;
        for (int j = 0; j < N; ++j) {
            const real e = a[j] - t[j];
            s += e * e;
            const real g = (real)2 * e * scale;
            dot += g * a[j];
            d[j] = act == ${ACT["softmax"]} ? g : g * ACT_D(act, a[j]);
        }
        if (act == ${ACT["softmax"]})
            for (int j = 0; j < N; ++j) d[j] = a[j] * (d[j] - dot);
        loss[offL + i] = s / N;
    }
}

__kernel void nn_softmax_rows(const int B, const int N, __global real* restrict Y,
                              const int offY, const int ldY, const int rpi)
{
    int i = get_global_id(0) * rpi;
    const int iend = min(i + rpi, B);
    for (; i < iend; ++i) {
        __global real* y = Y + offY + (size_t)i * ldY;
        real mx = y[0];
        for (int j = 1; j < N; ++j) mx = fmax(mx, y[j]);
        real s = 0;
        for (int j = 0; j < N; ++j) { const real e = exp(y[j] - mx); y[j] = e; s += e; }
        const real inv = (real)1 / s;
        for (int j = 0; j < N; ++j) y[j] *= inv;
    }
}

__kernel void nn_softmax_bwd(const int B, const int N, __global const real* restrict A,
                             const int offA, const int ldA, __global real* restrict D,
                             const int offD, const int rpi)
{
    int i = get_global_id(0) * rpi;
    const int iend = min(i + rpi, B);
    for (; i < iend; ++i) {
        __global const real* a = A + offA + (size_t)i * ldA;
        __global real* d = D + offD + (size_t)i * N;
        real dot = 0;
        for (int j = 0; j < N; ++j) dot += d[j] * a[j];
        for (int j = 0; j < N; ++j) d[j] = a[j] * (d[j] - dot);
    }
}

/* one epoch's shuffle on the device: sample i of (X, XT, Y) is sample perm[i] of (SX, SY) */
__kernel void nn_gather(const int n, const int K, const int C,
                        __global const real* restrict perm, const int offP,
                        __global const real* restrict SX, const int offSX,
                        __global const real* restrict SY, const int offSY,
                        __global real* restrict X, const int offX,
                        __global real* restrict XT, const int offXT, const int ldt,
                        __global real* restrict Y, const int offY, const int rpi)
{
    int i = get_global_id(0) * rpi;
    const int iend = min(i + rpi, n);
    perm += offP; SX += offSX; SY += offSY; X += offX; XT += offXT; Y += offY;
    /* rows first (contiguous copies), then XT from the rows just written (still in cache),
       one XT row segment at a time so its stores are contiguous; ldt == 0: no XT */
    const int i0 = i;
    for (; i < iend; ++i) {
        const int p = (int)perm[i];
        __global const real* sx = SX + (size_t)p * K;
        __global real* x = X + (size_t)i * K;
        for (int k = 0; k < K; ++k) x[k] = sx[k];
        for (int c = 0; c < C; ++c) Y[(size_t)i * C + c] = SY[(size_t)p * C + c];
    }
    for (int k = 0; ldt > 0 && k < K; ++k) {
        __global real* xt = XT + (size_t)k * ldt;
        for (i = i0; i < iend; ++i) xt[i] = X[(size_t)i * K + k];
    }
}

__kernel void nn_bias_act(const int N, __global real* restrict Y, const int offY,
                          const int incY, __global const real* restrict bias, const int offb,
                          const int act)
{
    const int j = get_global_id(0);
    if (j >= N) return;
    __global real* y = Y + offY + (size_t)j * incY;
    real v = *y + bias[offb + j];
    ACT_APPLY(act, v, real);
    *y = v;
}
