"""The launches of one training or inference pass of a :class:`~clnn.nn.Network` at one
batch size (package-internal): :class:`BatchPlan`, and :func:`products`, the shapes a layer
runs on the packed gemm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from ..gemm import Product
from ..launch import Plan
from . import activations

if TYPE_CHECKING:
    from .buffers import Data, Workspace
    from .network import Network

__all__ = ["BatchPlan", "products"]

LIN = 0
SOFTMAX = activations.SOFTMAX


def products(k, B: int, K: int, N: int, train: bool) -> List[Tuple[int, int, int]]:
    """The (m, n, k) of the products a layer runs on the packed gemm at batch B (kernels
    ``k`` choose): the forward, then (train) the weight and the input gradients."""
    out = [(B, N, K)] if k.gemm_forward(B, K, N) else []
    if train and k.gemm_backward(B, K, N):
        out += [(N, K, B), (B, K, N)]
    return out


class BatchPlan:
    """The launches of one forward (+ loss (+ backward)) pass at batch size B.

    Each layer's forward and backward pass runs on the fused kernels or, when
    ``Kernels.gemm_forward`` / ``gemm_backward`` say so, on prepared packed products
    (:class:`clnn.gemm.Product`): the forward ``Y = act(X W^T + b)`` with the
    bias-and-activation epilogue, the weight gradient ``dW = dZ^T X`` with the bias gradient
    summed from the packed dZ^T panels, and the input gradient ``dX = (dZ W) * act'(Y_prev)``
    with the derivative epilogue.

    :meth:`point` aims the launches that read samples at row ``row0`` of the data, and
    :meth:`run` enqueues every launch (the caller holds the runtime lock)."""

    def __init__(self, net: Network, ws: Workspace, B: int, data: Optional[Data],
                 mode: str, input_grad: bool = False):
        # mode: "predict" (forward only, softmax applied), "eval" (forward + loss),
        # "train" (forward + loss + backward)
        k = net._k
        lay = net.layers
        L = len(lay)
        pbuf, gbuf, wbuf = net.params._buf, net.grads._buf, ws.buf
        xent = net.loss == "cross_entropy"
        self.sites: List[Callable[[], None]] = []
        self.data = data
        self.B = B
        # the launches that read the samples: the first layer's forward (x_site) and its
        # weight gradient (bx_site): launch Plans or Products
        self.x_site: Any = None
        self.bx_site: Any = None
        self.loss_site: Optional[Plan] = None
        for i, layer in enumerate(lay):
            K, N = layer.in_features, layer.out_features
            gemm = k.gemm_forward(B, K, N)
            entry = "nn_forward"
            if i > 0:
                xb, xo, ldx = wbuf, ws.act[i - 1], K
            elif data is not None and gemm:  # the samples' rows, read in place or packed
                xb, xo, ldx = data.buf, data.x_off, K
            elif data is not None:  # the samples' transposed copy: the outer-product kernel
                xb, xo, ldx = data.buf, data.xt_off, data.ldt
                entry = "nn_forward_t"
            else:  # forward(Matrix) sets the input
                xb, xo, ldx = wbuf, 0, K
            a = activations.code(layer.activation)
            last = i == L - 1
            row_softmax = a == SOFTMAX and not (last and xent and mode != "predict")
            act = LIN if a == SOFTMAX else a
            if gemm:
                s: Any = Product(net.runtime, net.dtype, B, N, K, (xb, xo, ldx, 1),
                                 (pbuf, layer.w_off, 1, K), (wbuf, ws.act[i], N, 1),
                                 ws.panel_bufs, "bias_act", (pbuf, layer.b_off, 0), act)
            else:
                tpi, g, l_ = (k.forward_t_size if entry == "nn_forward_t"
                              else k.forward_size)(B, N)
                s = k.site(entry, g, l_, B=B, K=K, N=N, **{"XT" if entry == "nn_forward_t"
                           else "X": xb}, offX=xo, ldX=ldx, W=pbuf, offW=layer.w_off,
                           bias=pbuf, offb=layer.b_off, Y=wbuf, offY=ws.act[i], ldY=N, act=act,
                           tpi=tpi)
            self.sites.append(s)
            if i == 0:
                self.x_site = s
            if row_softmax:
                rpi, g, l_ = k.rows(B)
                self.sites.append(k.site("nn_softmax_rows", g, l_, B=B, N=N, Y=wbuf,
                                         offY=ws.act[i], ldY=N, rpi=rpi))
        self.out_off = ws.act[L - 1]
        if mode == "predict":
            return
        last = lay[-1]
        C = last.out_features
        rpi, g, l_ = k.rows(-(-B // k.p["VW"])) if xent else k.rows(B)
        self._xent = xent
        if xent:
            self.loss_site = k.site("nn_xent", g, l_, B=B, N=C, Z=wbuf, offZ=ws.act[L - 1],
                                    label=data.buf, offlab=data.y_off, dZ=wbuf,
                                    offdZ=ws.delta[0], scale=k.real(1.0 / B), loss=data.buf,
                                    offL=data.loss_off, hit=data.buf, offH=data.hit_off,
                                    rpi=rpi)
        else:
            self.loss_site = k.site("nn_mse", g, l_, B=B, N=C, A=wbuf, offA=ws.act[L - 1],
                                    T=data.buf, offT=data.y_off, dZ=wbuf, offdZ=ws.delta[0],
                                    scale=k.real(1.0 / (B * C)), loss=data.buf,
                                    offL=data.loss_off, act=activations.code(last.activation),
                                    rpi=rpi)
        self.sites.append(self.loss_site)
        if mode == "eval":
            return
        cur = 0
        for i in range(L - 1, -1, -1):
            layer = lay[i]
            K, N = layer.in_features, layer.out_features
            want_dx = i > 0 or input_grad
            if i == 0:
                xb, xo, ldx = data.buf, data.x_off, K
                act_prev = LIN
            else:
                xb, xo, ldx = wbuf, ws.act[i - 1], K
                act_prev = activations.code(lay[i - 1].activation)
            dact = LIN if act_prev == SOFTMAX else act_prev
            dz, dx = ws.delta[cur], ws.delta[1 - cur]
            if k.gemm_backward(B, K, N):
                s = Product(net.runtime, net.dtype, N, K, B, (wbuf, dz, 1, N), (xb, xo, ldx, 1),
                            (gbuf, layer.w_off, K, 1), ws.panel_bufs, "rowsum",
                            (gbuf, layer.b_off, 1))
                self.sites.append(s)
                if want_dx:
                    self.sites.append(Product(
                        net.runtime, net.dtype, B, K, N, (wbuf, dz, N, 1),
                        (pbuf, layer.w_off, K, 1), (wbuf, dx, K, 1), ws.panel_bufs, "dact",
                        (xb, xo, ldx) if i > 0 else (wbuf, 0, 0), dact))
            else:
                n_w, n_x, tpi, g, l_ = k.backward_counts(B, K, N, want_dx)
                s = k.site("nn_backward", g, l_, B=B, K=K, N=N, X=xb, offX=xo, ldX=ldx,
                           W=pbuf, offW=layer.w_off, dZ=wbuf, offdZ=dz, dW=gbuf,
                           offdW=layer.w_off, db=gbuf, offdb=layer.b_off, dX=wbuf, offdX=dx,
                           nW=n_w, nX=n_x, act=dact, tpi=tpi)
                self.sites.append(s)
            if i == 0:
                self.bx_site = s
            if want_dx and act_prev == SOFTMAX:
                rpi, g2, l2 = k.rows(B)
                self.sites.append(k.site("nn_softmax_bwd", g2, l2, B=B, N=K, A=wbuf,
                                         offA=ws.act[i - 1], ldA=K, D=wbuf, offD=dx,
                                         rpi=rpi))
            cur = 1 - cur
        self.dx_off = ws.delta[cur]  # input gradient (when input_grad)

    def set_input(self, buf: Any, off: int, ld: int) -> None:
        """Read the first layer's input from row-major ``buf`` (forward on device data)."""
        s = self.x_site
        if isinstance(s, Product):
            s.point(a=(buf, off, ld, 1))
        else:
            s.update(X=buf, offX=off, ldX=ld)

    def point(self, row0: int) -> None:
        """Aim the data-reading launches at sample ``row0`` of the data."""
        d = self.data
        xrow = d.x_off + row0 * d.in_features
        s = self.x_site
        if isinstance(s, Product):
            s.point(a=xrow)
        else:
            s.update(offX=d.xt_off + row0)
        s = self.bx_site
        if isinstance(s, Product):
            s.point(b=xrow)
        elif s is not None:
            s.update(offX=xrow)
        if self.loss_site is not None:
            yrow, lrow = d.y_off + row0 * d.y_width, d.loss_off + row0
            if self._xent:
                self.loss_site.update(offlab=yrow, offL=lrow, offH=d.hit_off + row0)
            else:
                self.loss_site.update(offT=yrow, offL=lrow)

    def run(self) -> None:
        for s in self.sites:
            s()
