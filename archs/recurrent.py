"""LSTM and GRU cores: torch's recurrent modules (default 48 units, as in Wang et al. 2018).

``memory=False`` resets the hidden state to its initial value before every step, so the
output at t is a function of the input at t alone.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from mesalab.archs.base import Core, Memory, check_positive


class _RecurrentCore(Core):
    rnn_cls: type[nn.RNNBase]
    # the recurrent weights only ever multiply the state, which is the initial zero every step
    zero_grad_without_memory = ("rnn.weight_hh*",)

    @classmethod
    def matched_kwargs(cls, width: int) -> dict[str, Any]:
        """The hidden size is the width."""
        return {"hidden_size": width}

    def __init__(self, input_dim: int, hidden_size: int = 48, memory: bool = True) -> None:
        super().__init__()
        check_positive("input_dim", input_dim)
        check_positive("hidden_size", hidden_size)
        self.rnn = self.rnn_cls(input_dim, hidden_size, batch_first=True)
        self.hidden_size = self.out_dim = hidden_size
        self.memory = memory

    def _zeros(self, batch_size: int, device: torch.device | str) -> Tensor:
        return torch.zeros(1, batch_size, self.hidden_size, device=device)  # (1, B, H)

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) -> (B, T, H); without memory every step starts from the initial state."""
        if self.memory:
            out, state = self.rnn(x, self._to_torch(memory))
            return out, self._from_torch(state)
        b, t, d = x.shape
        flat = rearrange(x, "b t d -> (b t) 1 d")  # each step is its own sequence of length 1
        init = self._to_torch(self.initial_memory(b * t, x.device))
        out, _ = self.rnn(flat, init)
        return rearrange(out, "(b t) 1 h -> b t h", b=b), memory  # (B, T, H)

    # Memory is stored batch-first (B, H) so that masked resets are row-wise.
    def _to_torch(self, memory: Memory) -> Memory:
        raise NotImplementedError

    def _from_torch(self, state: Memory) -> Memory:
        raise NotImplementedError


class LSTMCore(_RecurrentCore):
    """``nn.LSTM``; memory is (h, c), each (B, H).

    ``forget_bias`` is added to the forget gate's input bias at initialisation (Gers et al.
    2000; Jozefowicz et al. 2015 recommend 1): the cell starts out keeping its state. The
    default 0 leaves torch's initialisation, and every earlier run, unchanged.
    """

    rnn_cls = nn.LSTM

    def __init__(
        self, input_dim: int, hidden_size: int = 48, memory: bool = True, forget_bias: float = 0.0
    ) -> None:
        super().__init__(input_dim, hidden_size, memory)
        self.forget_bias = float(forget_bias)
        if self.forget_bias:
            with torch.no_grad():  # torch's gate order: input, forget, cell, output
                self.rnn.bias_ih_l0[hidden_size : 2 * hidden_size] += self.forget_bias

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """Zero hidden and cell state."""
        z = torch.zeros(batch_size, self.hidden_size, device=device)
        return (z, z.clone())

    def _to_torch(self, memory: Memory) -> Memory:
        h, c = memory
        return (h[None].contiguous(), c[None].contiguous())  # (1, B, H) each

    def _from_torch(self, state: Memory) -> Memory:
        h, c = state
        return (h[0], c[0])


class GRUCore(_RecurrentCore):
    """``nn.GRU``; memory is h, (B, H)."""

    rnn_cls = nn.GRU

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """Zero hidden state."""
        return torch.zeros(batch_size, self.hidden_size, device=device)

    def _to_torch(self, memory: Memory) -> Memory:
        return memory[None].contiguous()  # (1, B, H)

    def _from_torch(self, state: Memory) -> Memory:
        return state[0]
