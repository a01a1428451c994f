<%doc>
optim.cl.mako -- optimizer updates, in place, one launch for a whole parameter vector.

Work-item g updates the chunks [g*cpi, (g+1)*cpi) of VW consecutive elements (``cpi``, chunks
per item, is a kernel argument; the last chunk guards the tail, n % VW), so a network whose
parameters live in one buffer takes one launch per step. P and G start at offP and offG.

Entry points (g = G + wd * P, the L2-decayed gradient):
  optim_sgd        P -= lr * g                                          (no state)
  optim_momentum   V = mu V + g;  P -= lr * (nesterov ? g + mu V : V)   (PyTorch's convention)
  optim_adam       M = b1 M + (1 - b1) g;  S = b2 S + (1 - b2) g^2;
                   P -= lr * (M c1) / (sqrt(S c2) + eps),  c1 = 1/(1 - b1^t), c2 = 1/(1 - b2^t)

Render parameters:
  dtype   "float" | "double"
  VW      elements per chunk (tunable; 8 float, 4 double)
</%doc>
<%include file="common.cl.mako"/>
<%
    def ld(p):
        if VW == 1:
            return "(%s)[0]" % p
        return "(realV)(" + ", ".join("(%s)[%d]" % (p, t) for t in range(VW)) + ")"
    def st(p, v):
        if VW == 1:
            return "(%s)[0] = %s;" % (p, v)
        return " ".join("(%s)[%d] = (%s).s%x;" % (p, t, v, t) for t in range(VW))
%>
/* BODY(k): the update of element(s) at offset k, typed T (realV for full blocks, real) */
<%def name="each(body)">\
    const int nchunk = (n + ${VW - 1}) / ${VW};
    int c = get_global_id(0) * cpi;
    const int cend = min(c + cpi, nchunk);
    P += offP; G += offG;
    for (; c < cend; ++c) {
        const int i0 = c * ${VW};
        if (i0 + ${VW} <= n) {
${body("realV", True)}
        } else {
            for (int i = i0; i < n; ++i) {
${body("real", False)}
            }
        }
    }
</%def>
<%def name="get(name, vec)">${ld(name + " + i0") if vec else name + "[i]"}</%def>
<%def name="put(name, val, vec)">${st(name + " + i0", val) if vec else name + "[i] = " + val + ";"}</%def>

<%def name="sgd_body(T, vec)">\
        const ${T} g = ${get("G", vec)} + wd * ${get("P", vec)};
        const ${T} p = ${get("P", vec)} - lr * g;
        ${put("P", "p", vec)}
</%def>
__kernel void optim_sgd(const int n, __global real* restrict P, const int offP,
                        __global const real* restrict G, const int offG,
                        const real lr, const real wd, const int cpi)
{
${each(sgd_body)}
}

<%def name="mom_body(T, vec)">\
        const ${T} g = ${get("G", vec)} + wd * ${get("P", vec)};
        const ${T} v = mu * ${get("V", vec)} + g;
        ${put("V", "v", vec)}
        const ${T} p = ${get("P", vec)} - lr * (nesterov ? g + mu * v : v);
        ${put("P", "p", vec)}
</%def>
__kernel void optim_momentum(const int n, __global real* restrict P, const int offP,
                             __global const real* restrict G, const int offG,
                             __global real* restrict V,
                             const real lr, const real wd, const real mu, const int nesterov,
                             const int cpi)
{
${each(mom_body)}
}

<%def name="adam_body(T, vec)">\
        const ${T} g = ${get("G", vec)} + wd * ${get("P", vec)};
        const ${T} m = b1 * ${get("M", vec)} + ((real)1 - b1) * g;
        const ${T} s = b2 * ${get("S", vec)} + ((real)1 - b2) * g * g;
        ${put("M", "m", vec)}
        ${put("S", "s", vec)}
        const ${T} p = ${get("P", vec)} - lr * (m * c1) / (sqrt(s * c2) + eps);
        ${put("P", "p", vec)}
</%def>
__kernel void optim_adam(const int n, __global real* restrict P, const int offP,
                         __global const real* restrict G, const int offG,
                         __global real* restrict M, __global real* restrict S,
                         const real lr, const real wd, const real b1, const real b2,
                         const real eps, const real c1, const real c2, const int cpi)
{
${each(adam_body)}
}
