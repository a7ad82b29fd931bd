"""Population versions of the recurrent and feedforward cores: weights with a leading P.

Each class computes the same function as its solo core (``mesalab.archs.recurrent``,
``mesalab.archs.feedforward``) for P members at once: inputs (P, B, T, D), memory with
leading (P, B), and every linear map a batched matmul over P (``pop_linear``). The weights
are read from a dict of the solo ``Learner``'s parameter names to tensors (P, ...), so a
population is P solo learners stacked, and a member's weights load back into a solo learner.

``nn.LSTM``/``nn.GRU`` have no vmap rule (pytorch issue 105982), so the recurrent cells are
written out; tanh is computed as 2 * sigmoid(2x) - 1, which this CPU build runs faster than
``tanh`` (ECOSYSTEM.md), the factor 2 folded into the weights of the tanh gates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from mesalab.archs.base import Core, Memory
from mesalab.archs.recurrence import Tape, gru_cell, gru_layer, lstm_cell, lstm_layer, project

# Torch reshapes, not einops, with shapes in comments: these run at every acting step and
# update, where einops' per-call Python work is not free (the issue 19 report compares).

Params = dict[str, Tensor]  # parameter name (as in the solo module) -> (P, ...) tensor


def pop_linear(x: Tensor, weight_t: Tensor, bias: Tensor) -> Tensor:
    """(P, N, in) @ (P, in, out) + (P, out) -> (P, N, out): one linear map per member."""
    return torch.baddbmm(bias[:, None, :], x, weight_t)


def fold(x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    """(P, B, T, D) -> (P, B*T, D) and the leading shape to unfold with."""
    p, b, t, d = x.shape
    return x.reshape(p, b * t, d), (p, b, t)


class PopulationCore(ABC):
    """A core's computation for P members; holds the solo core for its structure."""

    def __init__(self, core: Core, prefix: str = "core.") -> None:
        self.core, self.prefix = core, prefix
        self.out_dim, self.memory = core.out_dim, core.memory

    def param(self, params: Params, name: str) -> Tensor:
        """The stacked parameter ``name`` of the solo core, (P, ...)."""
        return params[self.prefix + name]

    def prepare(self, params: Params) -> dict[str, Tensor]:
        """Weights in the layout the forward wants (transposed, scaled); once per call site."""
        return dict(params)

    @abstractmethod
    def initial_memory(self, p: int, b: int, device: torch.device | str) -> Memory:
        """Memory at the start of a sequence, leading (P, B)."""

    @abstractmethod
    def forward(
        self, w: dict[str, Tensor], x: Tensor, memory: Memory, tape: Tape | None = None
    ) -> tuple[Tensor, Memory]:
        """(P, B, T, D) and memory -> (P, B, T, out_dim) and the next memory.

        ``tape``: per-step tensors kept while acting, for the training forward on the same
        inputs to reuse (``mesalab.archs.recurrence.Tape``); cores without a use ignore it.
        """


class PopulationFFN(PopulationCore):
    """``FFNCore``: Linear+ReLU layers applied to each step alone; memory (P, B, 0)."""

    def prepare(self, params: Params) -> dict[str, Tensor]:
        """Transposed weights of each Linear of the MLP."""
        out = {}
        for i, layer in enumerate(self.core.mlp):
            if isinstance(layer, torch.nn.Linear):
                out[f"{i}.w"] = self.param(params, f"mlp.{i}.weight").transpose(1, 2)
                out[f"{i}.b"] = self.param(params, f"mlp.{i}.bias")
        return out

    def initial_memory(self, p: int, b: int, device: torch.device | str) -> Memory:
        """Nothing to remember: an empty (P, B, 0) tensor."""
        return torch.zeros(p, b, 0, device=device)

    def forward(
        self, w: dict[str, Tensor], x: Tensor, memory: Memory, tape: Tape | None = None
    ) -> tuple[Tensor, Memory]:
        """Each step on its own; memory passes through."""
        h, (p, b, t) = fold(x)  # (P, B*T, D)
        for i in range(len(self.core.mlp)):  # Linear, ReLU, Linear, ReLU, ...
            h = pop_linear(h, w[f"{i}.w"], w[f"{i}.b"]) if f"{i}.w" in w else torch.relu(h)
        return h.reshape(p, b, t, -1), memory  # (P, B, T, H)


class PopulationLSTM(PopulationCore):
    """``LSTMCore`` as a written-out cell (gates i, f, g, o as in ``nn.LSTM``); memory (h, c)."""

    def prepare(self, params: Params) -> dict[str, Tensor]:
        """Input and recurrent weights transposed, biases summed, the g gate scaled by 2."""
        h = self.core.hidden_size
        scale = torch.ones(4 * h, device=params[self.prefix + "rnn.weight_ih_l0"].device)
        scale[2 * h : 3 * h] = 2.0  # tanh(g) = 2 * sigmoid(2 g) - 1
        w_ih = self.param(params, "rnn.weight_ih_l0") * scale[:, None]  # (P, 4H, D)
        w_hh = self.param(params, "rnn.weight_hh_l0") * scale[:, None]  # (P, 4H, H)
        bias = (self.param(params, "rnn.bias_ih_l0") + self.param(params, "rnn.bias_hh_l0")) * scale
        return {"w_ih": w_ih.mT.contiguous(), "w_hh": w_hh.mT.contiguous(), "b": bias}

    def initial_memory(self, p: int, b: int, device: torch.device | str) -> Memory:
        """Zero hidden and cell state, each (P, B, H)."""
        z = torch.zeros(p, b, self.core.hidden_size, device=device)
        return (z, z.clone())

    def forward(
        self, w: dict[str, Tensor], x: Tensor, memory: Memory, tape: Tape | None = None
    ) -> tuple[Tensor, Memory]:
        """Input projections for all steps at once, then one recurrent matmul per step."""
        if not self.memory:  # every step from the zero state: no recurrent term
            return lstm_cell(project(x, w["w_ih"], w["b"]), None)[0], memory
        # in training one Function with a hand-written backward (mesalab.archs.recurrence)
        return lstm_layer(x, w, memory, tape)  # (P, B, T, H), (h, c)


class PopulationGRU(PopulationCore):
    """``GRUCore`` as a written-out cell (gates r, z, n as in ``nn.GRU``); memory h (P, B, H)."""

    def prepare(self, params: Params) -> dict[str, Tensor]:
        """Transposed weights; the n gate's input and recurrent parts scaled by 2 for tanh."""
        h = self.core.hidden_size
        scale = torch.ones(3 * h, device=params[self.prefix + "rnn.weight_ih_l0"].device)
        scale[2 * h :] = 2.0  # tanh(n) = 2 * sigmoid(2 n) - 1; r multiplies the scaled part
        out = {}
        for kind in ("ih", "hh"):
            out[f"w_{kind}"] = (self.param(params, f"rnn.weight_{kind}_l0") * scale[:, None]).mT
            out[f"b_{kind}"] = self.param(params, f"rnn.bias_{kind}_l0") * scale
        return out

    def initial_memory(self, p: int, b: int, device: torch.device | str) -> Memory:
        """Zero hidden state (P, B, H)."""
        return torch.zeros(p, b, self.core.hidden_size, device=device)

    def forward(
        self, w: dict[str, Tensor], x: Tensor, memory: Memory, tape: Tape | None = None
    ) -> tuple[Tensor, Memory]:
        """Input projections for all steps at once, then one recurrent matmul per step."""
        if not self.memory:  # zero state: the recurrent term is its bias alone
            xp = project(x, w["w_ih"], w["b_ih"])  # (P, B, T, 3H)
            return gru_cell(xp, w["b_hh"][:, None, None, :], None)[0], memory
        # in training one Function with a hand-written backward (mesalab.archs.recurrence)
        return gru_layer(x, w, memory, tape)  # (P, B, T, H), h
