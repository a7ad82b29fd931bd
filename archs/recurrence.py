"""The LSTM and GRU layers over a whole sequence, each one Function with a hand-written backward.

Autograd records a dozen nodes per step of a written-out cell and, in the backward, fills a
fresh tensor per node, concatenates the gates' gradients and keeps a (P, B, T, G) input
gradient. At a population's large batches that bookkeeping cost more than the arithmetic
(``benchmarks/train_throughput.py``). Here a layer (input projection and recurrence) is one
``torch.autograd.Function``:

- **forward**: the same per-step kernels, on the same contiguous per-step tensors, as acting
  (``lstm_steps`` / ``gru_steps`` serve both), so the policy the loss re-evaluates is bit for
  bit the one that acted. With a ``Tape`` filled while acting, the forward does not recompute
  at all: it takes the acting steps' tensors (the same bits).
- **backward**: a reverse loop of in-place elementwise kernels into reused (P, B, G) buffers
  of the gates' gradients, one matmul per step for the hidden state's gradient and one each to
  accumulate the weights' gradients. (Accumulating them in one matmul over all steps at the end
  was slower, at P = 27 x 32 rows and at 1 x 1024, measured 2026-12-04.)

Shapes: inputs ``x`` (P, B, T, D); weights laid out as ``PopulationLSTM.prepare`` /
``PopulationGRU.prepare`` do (transposed, ``w_ih`` (P, D, G), ``w_hh`` (P, H, G); the tanh
gates scaled by 2, as the cells compute tanh(a) as 2 sigmoid(2 a) - 1); memory (P, B, H).
G is 4H (LSTM) or 3H (GRU). Each member's rows are computed alone, so a member's gradients do
not depend on the other members. First derivatives only.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


def lstm_cell(gates: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One LSTM step from pre-activations (..., 4H): (h, c, s, tc).

    ``s`` is sigmoid of all four gates (the g quarter holds sigmoid(2 g), so tanh(g) = 2 s - 1),
    ``tc`` is sigmoid(2 c) (tanh(c) = 2 tc - 1): what the backward needs.
    """
    hs = gates.shape[-1] // 4
    s = torch.sigmoid(gates)  # (..., 4H)
    i, f, sg, o = s.split(hs, dim=-1)
    # i * tanh(g) = 2 i sigmoid(2g) - i, and o * tanh(c) = 2 o sigmoid(2c) - o: the sigmoid
    # form of tanh in as few operations as possible (each costs microseconds)
    base = -i if c is None else f * c - i
    c = torch.addcmul(base, i, sg, value=2.0)
    tc = torch.sigmoid(2 * c)
    return torch.addcmul(-o, o, tc, value=2.0), c, s, tc


def project(x: Tensor, w_ih: Tensor, bias: Tensor) -> Tensor:
    """Input projections of every step at once: (P, B, T, D) -> (P, B, T, 4H)."""
    p, b, t, d = x.shape
    return torch.baddbmm(bias[:, None, :], x.reshape(p, b * t, d), w_ih).reshape(p, b, t, -1)


class Tape:
    """The per-step tensors of an acting rollout, for the training forward to reuse.

    Filled by a core called step by step without gradients (``lstm_layer``); read by its next
    call with gradients on the whole sequence of the same shape. It holds no weights: the caller
    guarantees the weights did not change in between (``studies.population.population_step``).
    """

    def __init__(self) -> None:
        self.memory: tuple[Tensor, ...] = ()  # the memory the first step started from
        self.steps: tuple[list[Tensor], ...] = ()  # the core's lists, hidden state first

    def __len__(self) -> int:
        return len(self.steps[0]) if self.steps else 0

    def record(self, memory: tuple[Tensor, ...], steps: tuple[list[Tensor], ...]) -> None:
        """Append one call's steps (started from ``memory`` if it is the first call)."""
        if not self.steps:
            self.memory, self.steps = memory, tuple([] for _ in steps)
        for kept, new in zip(self.steps, steps, strict=True):
            kept.extend(new)

    def fits(self, x: Tensor) -> bool:
        """Whether the tape holds exactly the steps of inputs ``x`` (P, B, T, D)."""
        return len(self) == x.shape[2] and self.steps[0][0].shape[:2] == x.shape[:2]


def lstm_steps(xp: Tensor, w_hh: Tensor, h: Tensor, c: Tensor) -> tuple[list[Tensor], ...]:
    """The recurrence without autograd: per-step lists (h, c, s, tc), each (P, B, ·)."""
    steps: tuple[list[Tensor], ...] = ([], [], [], [])
    for x_t in xp.unbind(dim=2):
        for kept, v in zip(steps, lstm_cell(torch.baddbmm(x_t, h, w_hh), c), strict=True):
            kept.append(v)
        h, c = steps[0][-1], steps[1][-1]
    return steps


class LSTMLayer(torch.autograd.Function):
    """(x, w_ih, bias, w_hh, h0, c0, tape) -> (hidden states (P, B, T, H), last cell state)."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        w_ih: Tensor,
        bias: Tensor,
        w_hh: Tensor,
        h0: Tensor,
        c0: Tensor,
        tape: Tape | None,
    ) -> tuple[Tensor, Tensor]:
        if tape is not None and tape.fits(x):
            h0, c0 = tape.memory
            steps = tape.steps
        else:
            steps = lstm_steps(project(x, w_ih, bias), w_hh, h0, c0)
        out = torch.stack(steps[0], dim=2)  # (P, B, T, H)
        ctx.save_for_backward(x, w_ih, w_hh, h0, c0, out)
        # Intermediates only: the last cell state is an output, and an output held by its own
        # node outside save_for_backward is a reference cycle that kept every update's tensors
        # alive until Python's cycle collector ran (the backward never reads it).
        ctx.steps = (steps[1][:-1], *steps[2:])
        return out, steps[1][-1]

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor, d_c_last: Tensor) -> tuple[Tensor | None, ...]:
        x, w_ih, w_hh, h0, c0, out = ctx.saved_tensors
        cs, ss, tcs = ctx.steps
        p, b, t, hs = out.shape
        need = ctx.needs_input_grad
        d_x = torch.empty_like(x) if need[0] else None
        d_w_ih, d_w_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        d_bias = out.new_zeros(p, 4 * hs)
        g = out.new_empty(p, b, 4 * hs)  # this step's gate pre-activation gradients
        g_i, g_f, g_g, g_o = g.split(hs, dim=-1)
        dc = d_c_last.clone()  # autograd passes zeros for an unused output (materialize_grads)
        dh = torch.zeros_like(h0)  # from the next step's recurrent matmul
        for k in range(t - 1, -1, -1):
            s, tc = ss[k], tcs[k]
            i, f, sg, o = s.split(hs, dim=-1)
            c_prev, h_prev = (cs[k - 1], out[:, :, k - 1]) if k > 0 else (c0, h0)
            dh_k = dh.add_(d_out[:, :, k])
            # h = o (2 tc - 1): do = dh (2 tc - 1); dc += dh o 4 tc (1 - tc)
            torch.neg(dh_k, out=g_o).addcmul_(dh_k, tc, value=2.0)
            dc.addcmul_(dh_k, torch.addcmul(tc, tc, tc, value=-1.0).mul_(o), value=4.0)
            # c = f c_prev + i (2 sg - 1): di, df, d(sg) = 2 i dc; dc_prev = f dc
            torch.neg(dc, out=g_i).addcmul_(dc, sg, value=2.0)
            torch.mul(dc, c_prev, out=g_f)
            torch.mul(dc, i, out=g_g).mul_(2.0)
            dc.mul_(f)
            g.mul_(torch.addcmul(s, s, s, value=-1.0))  # through the sigmoids: s (1 - s)
            d_w_hh.baddbmm_(h_prev.transpose(1, 2), g)
            d_w_ih.baddbmm_(x[:, :, k].transpose(1, 2), g)
            d_bias.add_(g.sum(dim=1))
            if d_x is not None:
                torch.bmm(g, w_ih.transpose(1, 2), out=d_x[:, :, k])
            dh = torch.bmm(g, w_hh.transpose(1, 2))  # (P, B, H)
        return (
            d_x,
            d_w_ih if need[1] else None,
            d_bias if need[2] else None,
            d_w_hh if need[3] else None,
            dh if need[4] else None,
            dc if need[5] else None,
            None,
        )


def lstm_layer(
    x: Tensor, w: dict[str, Tensor], memory: tuple[Tensor, Tensor], tape: Tape | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Hidden states (P, B, T, H) and the next memory (h, c) of a memory-on LSTM.

    With gradients: the Function (reusing a fitting ``tape``). Without: the recurrence alone,
    appending its steps to ``tape`` if one is given (acting).
    """
    h0, c0 = memory
    if torch.is_grad_enabled() and any(
        v.requires_grad for v in (x, w["w_ih"], w["b"], w["w_hh"], h0, c0)
    ):
        out, c = LSTMLayer.apply(x, w["w_ih"], w["b"], w["w_hh"], h0, c0, tape)
        return out, (out[:, :, -1].contiguous(), c)
    steps = lstm_steps(project(x, w["w_ih"], w["b"]), w["w_hh"], h0, c0)
    if tape is not None:
        tape.record((h0, c0), steps)
    return torch.stack(steps[0], dim=2), (steps[0][-1], steps[1][-1])


def gru_cell(xp: Tensor, hp: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """One GRU step from input and recurrent projections (..., 3H): (h, rz, n).

    The n gate's parts are scaled by 2 (tanh(a) = 2 sigmoid(2 a) - 1); ``rz`` is sigmoid of the
    r and z gates, ``n`` the candidate state: what the backward needs.
    """
    hs = xp.shape[-1] // 3
    rz = torch.sigmoid(xp[..., : 2 * hs] + hp[..., : 2 * hs])
    r, z = rz.split(hs, dim=-1)
    n = torch.sigmoid(torch.addcmul(xp[..., 2 * hs :], r, hp[..., 2 * hs :])).mul(2).sub(1)
    if h is None:  # from the zero state
        return n - z * n, rz, n
    return torch.addcmul(n, z, h - n), rz, n  # (1 - z) n + z h


def gru_steps(xp: Tensor, w_hh: Tensor, b_hh: Tensor, h: Tensor) -> tuple[list[Tensor], ...]:
    """The recurrence without autograd: per-step lists (h, rz, n, hp), each (P, B, ·)."""
    steps: tuple[list[Tensor], ...] = ([], [], [], [])
    for x_t in xp.unbind(dim=2):
        hp = torch.baddbmm(b_hh[:, None, :], h, w_hh)  # (P, B, 3H)
        for kept, v in zip(steps, (*gru_cell(x_t, hp, h), hp), strict=True):
            kept.append(v)
        h = steps[0][-1]
    return steps


class GRULayer(torch.autograd.Function):
    """(x, w_ih, b_ih, w_hh, b_hh, h0, tape) -> hidden states (P, B, T, H)."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        w_ih: Tensor,
        b_ih: Tensor,
        w_hh: Tensor,
        b_hh: Tensor,
        h0: Tensor,
        tape: Tape | None,
    ) -> Tensor:
        if tape is not None and tape.fits(x):
            (h0,) = tape.memory
            steps = tape.steps
        else:
            steps = gru_steps(project(x, w_ih, b_ih), w_hh, b_hh, h0)
        out = torch.stack(steps[0], dim=2)  # (P, B, T, H)
        ctx.save_for_backward(x, w_ih, w_hh, h0, out)
        ctx.steps = steps[1:]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: Tensor) -> tuple[Tensor | None, ...]:
        x, w_ih, w_hh, h0, out = ctx.saved_tensors
        rzs, ns, hps = ctx.steps
        p, b, t, hs = out.shape
        need = ctx.needs_input_grad
        d_x = torch.empty_like(x) if need[0] else None
        d_w_ih, d_w_hh = x.new_zeros(w_ih.shape), x.new_zeros(w_hh.shape)
        d_b_ih, d_b_hh = x.new_zeros(p, 3 * hs), x.new_zeros(p, 3 * hs)
        gx = out.new_empty(p, b, 3 * hs)  # this step's input-projection gradients
        gh = out.new_empty(p, b, 3 * hs)  # and recurrent-projection gradients
        gx_rz, gx_r, gx_z, gx_n = (
            gx[..., : 2 * hs],
            gx[..., :hs],
            gx[..., hs : 2 * hs],
            gx[..., 2 * hs :],
        )
        dh = torch.zeros_like(h0)  # from step k + 1
        for k in range(t - 1, -1, -1):
            rz, n, hpn = rzs[k], ns[k], hps[k][..., 2 * hs :]
            r, z = rz.split(hs, dim=-1)
            h_prev = out[:, :, k - 1] if k > 0 else h0
            dh_k = dh.add_(d_out[:, :, k])
            # h = n + z (h_prev - n): dz = dh (h_prev - n); dn = dh (1 - z); dh_prev = dh z
            torch.sub(h_prev, n, out=gx_z).mul_(dh_k)
            dn = torch.addcmul(dh_k, dh_k, z, value=-1.0)
            # n = tanh(a) with a = xp_n + r hp_n (scaled by 2): da = dn (1 - n^2) / 2
            torch.mul(n, n, out=gx_n).mul_(-0.5).add_(0.5).mul_(dn)
            torch.mul(gx_n, hpn, out=gx_r)  # dr
            gx_rz.mul_(torch.addcmul(rz, rz, rz, value=-1.0))  # through the sigmoid
            gh[..., : 2 * hs] = gx_rz
            torch.mul(gx_n, r, out=gh[..., 2 * hs :])
            d_w_ih.baddbmm_(x[:, :, k].transpose(1, 2), gx)
            d_w_hh.baddbmm_(h_prev.transpose(1, 2), gh)
            d_b_ih.add_(gx.sum(dim=1))
            d_b_hh.add_(gh.sum(dim=1))
            if d_x is not None:
                torch.bmm(gx, w_ih.transpose(1, 2), out=d_x[:, :, k])
            dh = torch.baddbmm(dh_k * z, gh, w_hh.transpose(1, 2))  # (P, B, H)
        grads = (d_x, d_w_ih, d_b_ih, d_w_hh, d_b_hh, dh)
        return (*(g if need[i] else None for i, g in enumerate(grads)), None)


def gru_layer(
    x: Tensor, w: dict[str, Tensor], h0: Tensor, tape: Tape | None = None
) -> tuple[Tensor, Tensor]:
    """Hidden states (P, B, T, H) and the next memory of a memory-on GRU (as ``lstm_layer``)."""
    weights = (w["w_ih"], w["b_ih"], w["w_hh"], w["b_hh"])
    if torch.is_grad_enabled() and any(v.requires_grad for v in (x, *weights, h0)):
        out = GRULayer.apply(x, *weights, h0, tape)
        return out, out[:, :, -1].contiguous()
    steps = gru_steps(project(x, w["w_ih"], w["b_ih"]), w["w_hh"], w["b_hh"], h0)
    if tape is not None:
        tape.record((h0,), steps)
    return torch.stack(steps[0], dim=2), steps[0][-1]
