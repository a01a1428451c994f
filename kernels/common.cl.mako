<%doc>
common.cl.mako -- shared prelude of every clnn kernel.

Defines the scalar type ``real``, the vector type ``realV`` of width VW, and the macro
``HSUM(v)``, the pairwise horizontal sum of one ``realV``. Enables cl_khr_fp64 when the kernel works in double.

Render parameters:
  dtype   "float" or "double"          the element type
  VW      1, 2, 4, 8 or 16             vector width of ``realV`` (tunable, default per kernel)
</%doc>
%if dtype == "double":
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
%endif
typedef ${dtype} real;
<%
    def _tree(parts):
        while len(parts) > 1:
            parts = ["(%s + %s)" % (parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]
        return parts[0]
%>\
%if VW == 1:
typedef ${dtype} realV;
#define HSUM(v) (v)
%else:
typedef ${dtype}${VW} realV;
/* pairwise horizontal sum as a macro: a function taking a wide vector would cross an ABI
   boundary, which PoCL miscompiles when the vector is wider than the enabled ISA */
#define HSUM(v) ${_tree(["(v).s%x" % k for k in range(VW)])}
%endif
