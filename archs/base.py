"""One interface for every in-context learner: a memory core plus heads shared by all cores.

A core maps per-step inputs (B, T, D) and a memory to features (B, T, H) and the next memory,
causally in T, so the same module serves acting (T = 1, memory carried) and training (whole
sequences). Memory is a tensor, or a tuple/dict of tensors, with leading dimension B.
With ``memory=False`` a core must make its output at step t depend on the input at t only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

# One copy of the tree utilities and of ``check``: the task generator's (archs may use tasks).
from mesalab.tasks.tree import batch_select, check, tree_map

Memory = Any  # a tensor or a (nested) tuple / dict of tensors with leading B


def check_positive(field: str, value: object) -> None:
    """Fail at construction on an impossible size, naming the field and value."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    check(ok, field, value, "an int >= 1")


#: leaf-wise map over one or more memories of the same structure (tuples, dicts, tensors)
map_memory = tree_map


def select_memory(mask: Tensor, new: Memory, old: Memory) -> Memory:
    """Row-wise ``where(mask, new, old)``: the masked-select reset of PureJaxRL."""
    return batch_select(mask, new, old)


class Core(nn.Module, ABC):
    """The memory mechanism; the only thing that differs between architectures."""

    out_dim: int
    memory: bool  # the memory switch this core was built with (condition 1)
    #: the most steps since a memory reset the core can hold (None: no limit); a run checks it
    #: against the task's length before training
    max_context: int | None = None
    #: whether the architecture has any memory to switch on (False: the no-memory control)
    has_memory: ClassVar[bool] = True
    #: parameter names (fnmatch patterns, relative to the core) that provably get no gradient
    #: with memory off: what only ever multiplies the memory (checked by the contract tests)
    zero_grad_without_memory: ClassVar[tuple[str, ...]] = ()
    #: a second keyword searched after the width to close the remaining parameter gap, or None
    fine_width: ClassVar[str | None] = None

    @classmethod
    def matched_kwargs(cls, width: int) -> dict[str, Any]:
        """Keywords that build this core at ``width`` when matching parameter counts.

        The structure (layers, heads, slots) is fixed here; only the width is searched
        (``mesalab.archs.budget.matched_widths``).
        """
        raise NotImplementedError(f"{cls.__name__} does not say how to scale its width")

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

    def __init__(
        self, core: Core, num_actions: int, input_columns: list[int] | None = None
    ) -> None:
        super().__init__()
        check_positive("num_actions", num_actions)
        check(
            input_columns is None or len(input_columns) >= 1,
            "input_columns",
            input_columns,
            "None (every column) or a non-empty list of column indices",
        )
        self.core = core
        self.num_actions = num_actions
        self.policy_head = nn.Linear(core.out_dim, num_actions)
        self.value_head = nn.Linear(core.out_dim, 1)
        self.mean_head = nn.Linear(core.out_dim, num_actions)
        # Small policy init: near-uniform initial policy, as is usual for actor-critic.
        nn.init.normal_(self.policy_head.weight, std=0.01)
        nn.init.zeros_(self.policy_head.bias)
        # The columns of the shared input this learner sees (condition 1's history switch drops
        # some); a non-persistent buffer, so checkpoints keep their keys and it follows .to().
        cols = None if input_columns is None else torch.tensor(input_columns, dtype=torch.long)
        self.register_buffer("input_columns", cols, persistent=False)

    def select_inputs(self, inputs: Tensor) -> Tensor:
        """(..., D) shared inputs -> (..., D') the columns this learner sees."""
        if self.input_columns is None:
            return inputs
        return inputs.index_select(-1, self.input_columns)

    def initial_memory(self, batch_size: int, device: torch.device | str | None = None) -> Memory:
        """Memory at the start of a sequence, on the learner's device by default."""
        return self.core.initial_memory(batch_size, device or self.device)

    def reset_memory(self, memory: Memory, mask: Tensor) -> Memory:
        """Reset the masked rows of the memory to their initial value."""
        return self.core.reset_memory(memory, mask)

    def forward(self, inputs: Tensor, memory: Memory) -> tuple[LearnerOutput, Memory]:
        """(B, T, D) inputs -> heads at every step and the next memory."""
        feats, memory = self.core(self.select_inputs(inputs), memory)  # (B, T, H)
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
