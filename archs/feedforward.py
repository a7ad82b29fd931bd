"""Feedforward core: an MLP on the current step's input only, the matched "no memory" control.

It has no memory to switch on, so ``memory=True`` is refused at construction. Its memory is an
empty (B, 0) tensor, so code that carries, resets or detaches memory treats it like any other.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mesalab.archs.base import Core, Memory, check, check_positive


class FFNCore(Core):
    """``num_layers`` Linear+ReLU layers of ``hidden_size`` units applied to each step alone."""

    has_memory = False

    @classmethod
    def matched_kwargs(cls, width: int) -> dict[str, Any]:
        """Two hidden layers of ``width`` units."""
        return {"num_layers": 2, "hidden_size": width}

    def __init__(
        self, input_dim: int, hidden_size: int = 64, num_layers: int = 2, memory: bool = False
    ) -> None:
        super().__init__()
        check_positive("input_dim", input_dim)
        check_positive("hidden_size", hidden_size)
        check_positive("num_layers", num_layers)
        check(memory is False, "memory", memory, "False: the ffn core has no memory to switch on")
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [nn.Linear(input_dim if i == 0 else hidden_size, hidden_size), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.hidden_size = self.out_dim = hidden_size
        self.num_layers = num_layers
        self.memory = False

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """Nothing to remember: an empty (B, 0) tensor."""
        return torch.zeros(batch_size, 0, device=device)

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) -> (B, T, H), each step on its own; memory passes through."""
        return self.mlp(x), memory
