"""Backpropagation through time for the population LSTM, written out (one autograd node).

Autograd through a Python loop over T records some twenty nodes per step; at the batch of a
population their bookkeeping, not their arithmetic, is most of a training update. This
function runs the same forward operations (``PopulationLSTM._cell``'s: the g gate and tanh as
2 * sigmoid(2x) - 1 on pre-scaled pre-activations) and a hand-written backward: per step a
few elementwise operations and one matmul for the recurrent gradient, then the weight
gradient of all steps as one batched matmul over (B*T). Tested against autograd through the
loop (``tests/archs/test_population.py``) and with ``gradcheck``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def lstm_step(z: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pre-activations (..., 4H), g quarter pre-scaled by 2, and c -> h, c, sigmoids, tanh(c)."""
    s = torch.sigmoid(z)  # (..., 4H): i, f, sigmoid(2 g), o
    i, f, g, o = s.chunk(4, dim=-1)
    g = g.mul(2).sub(1)
    c = torch.addcmul(f * c, i, g)
    tc = torch.sigmoid(2 * c).mul(2).sub(1)  # tanh(c)
    return o * tc, c, s, tc


class LSTMSequence(torch.autograd.Function):
    """(xp (P,B,T,4H), w_hh (P,H,4H), h0, c0 (P,B,H)) -> (hs (P,B,T,H), h_T, c_T)."""

    @staticmethod
    def forward(ctx: Any, xp: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor) -> Any:
        """The loop of ``lstm_step`` with one recurrent matmul per step."""
        h, c = h0, c0
        hs, cs, ss, tcs = [], [], [], []
        for x_t in xp.unbind(dim=2):
            h, c, s, tc = lstm_step(torch.baddbmm(x_t, h, w_hh), c)
            hs.append(h)
            cs.append(c)
            ss.append(s)
            tcs.append(tc)
        out = torch.stack(hs, dim=2)  # (P, B, T, H)
        ctx.save_for_backward(
            w_hh,
            h0,
            c0,
            out,
            torch.stack(cs, dim=2),
            torch.stack(ss, dim=2),
            torch.stack(tcs, dim=2),
        )
        return out, h, c

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: Tensor | None, d_h: Tensor | None, d_c: Tensor | None) -> Any:
        """Reverse loop over T, then the recurrent weight gradient of all steps at once."""
        w_hh, h0, c0, out, cs, ss, tcs = ctx.saved_tensors
        p, b, t, hsz = out.shape
        dh_next = torch.zeros_like(h0) if d_h is None else d_h
        dc_next = torch.zeros_like(c0) if d_c is None else d_c
        slope = ss * (1 - ss)  # (P, B, T, 4H): sigmoid' of every gate
        tanh_slope = 1 - tcs * tcs  # (P, B, T, H)
        w_t = w_hh.mT  # (P, 4H, H)
        dzs = []
        for step in range(t - 1, -1, -1):
            i, f, g, o = ss[:, :, step].chunk(4, dim=-1)
            c_prev = cs[:, :, step - 1] if step else c0
            dh = dh_next if d_out is None else d_out[:, :, step] + dh_next
            dc = torch.addcmul(dc_next, dh * o, tanh_slope[:, :, step])
            # d/dz of sigmoid(2g)-scaled g: dg * 2 * sigmoid'(z), the 2 folded in here
            d_s = torch.cat(
                [dc * g.mul(2).sub(1), dc * c_prev, dc * i * 2, dh * tcs[:, :, step]], -1
            )
            dz = d_s * slope[:, :, step]  # (P, B, 4H)
            dzs.append(dz)
            dc_next = dc * f
            dh_next = torch.bmm(dz, w_t)
        dz_all = torch.stack(dzs[::-1], dim=2)  # (P, B, T, 4H)
        h_prev = torch.cat([h0[:, :, None], out[:, :, :-1]], dim=2)  # (P, B, T, H)
        d_w = torch.bmm(h_prev.reshape(p, b * t, hsz).mT, dz_all.reshape(p, b * t, -1))
        return dz_all, d_w, dh_next, dc_next
