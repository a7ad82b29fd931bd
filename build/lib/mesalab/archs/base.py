"""One interface for every in-context learner: a memory core plus heads shared by all cores.

A core maps per-step inputs (B, T, D) and a memory to features (B, T, H) and the next memory,
causally in T, so the same module serves acting (T = 1, memory carried) and training (whole
sequences). Memory is a tensor, or a tuple/dict of tensors, with leading dimension B.
With ``memory=False`` a core must make its output at step t depend on the input at t only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

Memory = Any  # a tensor or a (nested) tuple / dict of tensors with leading B


def check(condition: bool, field: str, value: object, allowed: str) -> None:
    """Fail at construction with a message naming the field, the value given and what is allowed."""
    if not condition:
        raise ValueError(f"{field}={value!r} is not allowed: {field} must be {allowed}")


def check_positive(field: str, value: object) -> None:
    """Fail at construction on an impossible size, naming the field and value."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{field}={value!r} is not allowed: {field} must be an int >= 1")


def map_memory(fn, *mems: Memory) -> Memory:
    """Apply ``fn`` leaf-wise over one or more memories of the same structure."""
    first = mems[0]
    if isinstance(first, Tensor):
        return fn(*mems)
    if isinstance(first, tuple):
        return tuple(map_memory(fn, *parts) for parts in zip(*mems, strict=True))
    if isinstance(first, dict):
        return {k: map_memory(fn, *(m[k] for m in mems)) for k in first}
    if first is None:
        return None
    raise TypeError(f"unsupported memory leaf {type(first)}")


def select_memory(mask: Tensor, new: Memory, old: Memory) -> Memory:
    """Row-wise ``where(mask, new, old)``: the masked-select reset of PureJaxRL."""

    def pick(a: Tensor, b: Tensor) -> Tensor:
        return torch.where(mask.reshape(mask.shape + (1,) * (a.dim() - 1)), a, b)

    return map_memory(pick, new, old)


class Core(nn.Module, ABC):
    """The memory mechanism; the only thing that differs between architectures."""

    out_dim: int
    memory: bool

    @abstractmethod
    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """Memory at the start of a sequence."""

    @abstractmethod
    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) inputs and memory -> (B, T, out_dim) features and the next memory."""

    def reset_memory(self, memory: Memory, mask: Tensor) -> Memory:
        """Reset the rows where ``mask`` (B,) is true to the initial memory."""
        b = mask.shape[0]
        return select_memory(mask, self.initial_memory(b, mask.device), memory)


@dataclass
class LearnerOutput:
    """Heads evaluated at every step."""

    logits: Tensor  # (B, T, A) policy logits over discrete actions
    value: Tensor  # (B, T) state value
    mean: Tensor  # (B, T, A) predicted mean for continuous targets
    features: Tensor  # (B, T, H) the core's output (for probes)


class Learner(nn.Module):
    """A core plus the heads every core shares: policy logits, state value, predicted mean."""

    def __init__(self, core: Core, num_actions: int) -> None:
        super().__init__()
        check_positive("num_actions", num_actions)
        self.core = core
        self.num_actions = num_actions
        self.policy_head = nn.Linear(core.out_dim, num_actions)
        self.value_head = nn.Linear(core.out_dim, 1)
        self.mean_head = nn.Linear(core.out_dim, num_actions)
        # Small policy init: near-uniform initial policy, as is usual for actor-critic.
        nn.init.normal_(self.policy_head.weight, std=0.01)
        nn.init.zeros_(self.policy_head.bias)

    def initial_memory(self, batch_size: int, device: torch.device | str | None = None) -> Memory:
        """Memory at the start of a sequence, on the learner's device by default."""
        return self.core.initial_memory(batch_size, device or self.device)

    def reset_memory(self, memory: Memory, mask: Tensor) -> Memory:
        """Reset the masked rows of the memory to their initial value."""
        return self.core.reset_memory(memory, mask)

    def forward(self, inputs: Tensor, memory: Memory) -> tuple[LearnerOutput, Memory]:
        """(B, T, D) inputs -> heads at every step and the next memory."""
        feats, memory = self.core(inputs, memory)  # (B, T, H)
        out = LearnerOutput(
            logits=self.policy_head(feats),
            value=self.value_head(feats)[..., 0],
            mean=self.mean_head(feats),
            features=feats,
        )
        return out, memory

    @property
    def device(self) -> torch.device:
        """Device of the learner's parameters."""
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        """Number of trainable parameters (core plus heads)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
