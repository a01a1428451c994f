<%doc>
nn.cl.mako -- the fused kernels of a dense network: forward, backward, losses, softmax.

All matrices are row-major. A layer maps X (B x K, leading dimension ldX) with weights
W (N x K, contiguous) and bias b (N) to Y = act(X W^T + b) (B x N). The activation is a
run-time code ``act``: 0 linear, 1 sigmoid, 2 tanh, 3 relu, 4 softmax (row-wise: the
element-wise kernels treat it as linear and ``nn_softmax_rows`` finishes it). Derivatives are
taken from the activation's output a: sigmoid a(1-a), tanh 1-a^2, relu [a > 0], linear 1.

Entry points:
  nn_forward        Y = act(X W^T + b); one work-item per RB x CB tile of Y (dot products
                    along K in VW-wide vectors, scalar tail)
  nn_backward       one launch, two jobs split by global id:
                    [0, nW):        dW = dZ^T X and db = colsum(dZ)   (JB rows x KV*VW cols of
                                    dW per work-item, overwritten)
                    [nW, nW + nX):  dX = (dZ W) * act'(X)  where X holds the previous layer's
                                    output and ``act`` is that layer's activation (XB rows x
                                    KV*VW cols per work-item); nX = 0 for the first layer
  nn_xent           softmax + cross-entropy, fused: one work-item per row of the logits Z
                    and its class label (stored as a real, exact below 2^24);
                    dZ = (softmax(Z) - onehot(label)) * scale; per-row loss and a 0/1
                    "argmax == label" are written at loss[offL + i], hit[offH + i]
  nn_mse            squared error: per-row loss sum((a - t)^2) / N written at loss[offL + i],
                    dZ = 2 (a - t) * scale * act'(a) (softmax: its Jacobian, in-row)
  nn_softmax_rows   Y = softmax(Y) row by row, in place (inference)
  nn_softmax_bwd    D = A * (D - rowsum(D * A)), in place (softmax under a hidden layer)
  nn_bias_act       y = act(y + b) for one vector (the gemv inference path; softmax: linear)

Render parameters:
  dtype    "float" | "double"
  VW       vector width along K (tunable; 8 float, 4 double: one 256-bit register)
  RB, CB   rows x columns of Y per work-item in nn_forward (tunables, default 2 x 4)
  JB       rows of dW per work-item (tunable, default 4)
  XB       rows of dX per work-item (tunable, default 4)
  KV       VW-wide vectors along K per backward work-item (tunable, default 2)

Every load is bounds-checked (clamped row indices, guarded tail columns); nothing outside
the operands is read or written.
</%doc>
<%include file="common.cl.mako"/>
<%
    KW = VW * KV
    def vload(p, full=True, lim=None, base=None):
        # (realV)(p[0], ..., p[VW-1]); partial: element t only when base + t < lim
        if VW == 1:
            return "(%s)[0]" % p if full else "((%s) < (%s) ? (%s)[0] : (real)0)" % (base, lim, p)
        if full:
            return "(realV)(" + ", ".join("(%s)[%d]" % (p, t) for t in range(VW)) + ")"
        return "(realV)(" + ", ".join(
            "((%s) + %d < (%s) ? (%s)[%d] : (real)0)" % (base, t, lim, p, t)
            for t in range(VW)) + ")"
    def lane(v, t):
        return v if VW == 1 else "%s.s%x" % (v, t)
%>
#define ACT_F(a, s) ((a) == 1 ? (real)1 / ((real)1 + exp(-(s))) : (a) == 2 ? tanh(s) : \
                     (a) == 3 ? ((s) > (real)0 ? (s) : (real)0) : (s))
/* derivative from the output y of the activation */
#define ACT_D(a, y) ((a) == 1 ? (y) * ((real)1 - (y)) : (a) == 2 ? (real)1 - (y) * (y) : \
                     (a) == 3 ? ((y) > (real)0 ? (real)1 : (real)0) : (real)1)

__kernel void nn_forward(const int B, const int K, const int N,
                         __global const real* restrict X, const int offX, const int ldX,
                         __global const real* restrict W, const int offW,
                         __global const real* restrict bias, const int offb,
                         __global real* restrict Y, const int offY, const int ldY,
                         const int act)
{
    const int j0 = get_global_id(0) * ${CB};
    const int i0 = get_global_id(1) * ${RB};
    if (j0 >= N || i0 >= B) return;
    X += offX; W += offW; bias += offb; Y += offY;
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
    const int kv = K - K % ${VW};
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
%for r in range(RB):
%for c in range(CB):
    real s${r}_${c} = HSUM(a${r}_${c});
%endfor
%endfor
    for (int k = kv; k < K; ++k) {
%for r in range(RB):
%for c in range(CB):
        s${r}_${c} += x${r}[k] * w${c}[k];
%endfor
%endfor
    }
%for c in range(CB):
    const real b${c} = bias[min(j0 + ${c}, N - 1)];
%endfor
%for r in range(RB):
    if (i0 + ${r} < B) {
        __global real* y = Y + (size_t)(i0 + ${r}) * ldY + j0;
%for c in range(CB):
        if (j0 + ${c} < N) y[${c}] = ACT_F(act, s${r}_${c} + b${c});
%endfor
    }
%endfor
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
                if (kb == 0) {
%for c in range(JB):
                    gb${c} += d${c};
%endfor
                }
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
                          const int nW, const int nX, const int act)
{
    const int gid = get_global_id(0);
    const int nkb = (K + ${KW - 1}) / ${KW};
    X += offX; W += offW; dZ += offdZ; dW += offdW; db += offdb; dX += offdX;
    if (gid < nW) {
        /* ---- dW[j0 .. j0+JB, k0 .. k0+KW] and db[j0 .. j0+JB] ---- */
        const int jb = gid / nkb, kb = gid - jb * nkb;
        const int j0 = jb * ${JB}, k0 = kb * ${KW};
%for c in range(JB):
%for q in range(KV):
        realV g${c}_${q} = (realV)0;
%endfor
        real gb${c} = 0;
%endfor
        const bool full = k0 + ${KW} <= K;
        if (full) {
${dw_body(True)}
        } else {
${dw_body(False)}
        }
%for c in range(JB):
        if (j0 + ${c} < N) {
            __global real* o = dW + (size_t)(j0 + ${c}) * K + k0;
%for q in range(KV):
%for t in range(VW):
            if (full || k0 + ${q * VW + t} < K) o[${q * VW + t}] = ${lane("g%d_%d" % (c, q), t)};
%endfor
%endfor
            if (kb == 0) db[j0 + ${c}] = gb${c};
        }
%endfor
    } else if (gid < nW + nX) {
        /* ---- dX[i0 .. i0+XB, k0 .. k0+KW] = (dZ W) * act'(X) ---- */
        const int id = gid - nW;
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
%for q in range(KV):
%for t in range(VW):
            if (full || k0 + ${q * VW + t} < K)
                o[${q * VW + t}] = ${lane("h%d_%d" % (r, q), t)} * ACT_D(act, a[${q * VW + t}]);
%endfor
%endfor
        }
%endfor
    }
}

__kernel void nn_xent(const int B, const int N,
                      __global const real* restrict Z, const int offZ,
                      __global const real* restrict label, const int offlab,
                      __global real* restrict dZ, const int offdZ, const real scale,
                      __global real* restrict loss, const int offL,
                      __global real* restrict hit, const int offH)
{
    const int i = get_global_id(0);
    if (i >= B) return;
    __global const real* z = Z + offZ + (size_t)i * N;
    __global real* d = dZ + offdZ + (size_t)i * N;
    const int y = (int)label[offlab + i];
    real mx = z[0];
    int arg = 0;
    for (int j = 1; j < N; ++j)
        if (z[j] > mx) { mx = z[j]; arg = j; }
    real s = 0;
    for (int j = 0; j < N; ++j) s += exp(z[j] - mx);
    const real inv = (real)1 / s;
    for (int j = 0; j < N; ++j)
        d[j] = (exp(z[j] - mx) * inv - (j == y ? (real)1 : (real)0)) * scale;
    loss[offL + i] = log(s) - (z[y] - mx);
    hit[offH + i] = arg == y ? (real)1 : (real)0;
}

__kernel void nn_mse(const int B, const int N,
                     __global const real* restrict A, const int offA,
                     __global const real* restrict T, const int offT,
                     __global real* restrict dZ, const int offdZ, const real scale,
                     __global real* restrict loss, const int offL, const int act)
{
    const int i = get_global_id(0);
    if (i >= B) return;
    __global const real* a = A + offA + (size_t)i * N;
    __global const real* t = T + offT + (size_t)i * N;
    __global real* d = dZ + offdZ + (size_t)i * N;
    real s = 0, dot = 0;
    for (int j = 0; j < N; ++j) {
        const real e = a[j] - t[j];
        s += e * e;
        const real g = (real)2 * e * scale;
        dot += g * a[j];
        d[j] = act == 4 ? g : g * ACT_D(act, a[j]);
    }
    if (act == 4)
        for (int j = 0; j < N; ++j) d[j] = a[j] * (d[j] - dot);
    loss[offL + i] = s / N;
}

__kernel void nn_softmax_rows(const int B, const int N, __global real* restrict Y,
                              const int offY, const int ldY)
{
    const int i = get_global_id(0);
    if (i >= B) return;
    __global real* y = Y + offY + (size_t)i * ldY;
    real mx = y[0];
    for (int j = 1; j < N; ++j) mx = fmax(mx, y[j]);
    real s = 0;
    for (int j = 0; j < N; ++j) { const real e = exp(y[j] - mx); y[j] = e; s += e; }
    const real inv = (real)1 / s;
    for (int j = 0; j < N; ++j) y[j] *= inv;
}

__kernel void nn_softmax_bwd(const int B, const int N, __global const real* restrict A,
                             const int offA, const int ldA, __global real* restrict D,
                             const int offD)
{
    const int i = get_global_id(0);
    if (i >= B) return;
    __global const real* a = A + offA + (size_t)i * ldA;
    __global real* d = D + offD + (size_t)i * N;
    real dot = 0;
    for (int j = 0; j < N; ++j) dot += d[j] * a[j];
    for (int j = 0; j < N; ++j) d[j] = a[j] * (d[j] - dot);
}

__kernel void nn_bias_act(const int N, __global real* restrict Y, const int offY,
                          const int incY, __global const real* restrict bias, const int offb,
                          const int act)
{
    const int j = get_global_id(0);
    if (j >= N) return;
    __global real* y = Y + offY + (size_t)j * incY;
    *y = ACT_F(act, *y + bias[offb + j]);
}
