"""A learner seen as a batched policy, so learners and references share one rollout loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from archs.base import Learner
from tasks.base import TaskFamily
from tasks.rollout import Policy, StepContext


def sample_categorical(logits: Tensor, generator: torch.Generator) -> Tensor:
    """One draw per row by inverse CDF: exactly one uniform per row (common random numbers)."""
    probs = torch.softmax(logits.float(), dim=-1)  # (B, A)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)  # (B, 1)
    idx = (probs.cumsum(-1) < u).sum(-1)
    return idx.clamp_max(probs.shape[-1] - 1)


class LearnerPolicy(Policy):
    """Acts step by step with carried memory: sampling its policy (default) or by argmax."""

    name = "learner"

    def __init__(self, learner: Learner, greedy: bool = False) -> None:
        self.learner, self.greedy = learner, greedy
        self.kind = "decision"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Fresh memory for a batch of episodes."""
        self.kind = family.kind
        return self.learner.initial_memory(batch_size, generator.device)

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """One forward step (T = 1) with the carried memory."""
        out, memory = self.learner(ctx.inputs[:, None, :], pstate)  # (B, 1, D) in
        if self.kind == "prediction":
            return out.mean[:, 0], memory  # (B, A): the prediction is the action
        logits = out.logits[:, 0]  # (B, A)
        if self.greedy:
            return logits.argmax(-1), memory
        return sample_categorical(logits, generator), memory
