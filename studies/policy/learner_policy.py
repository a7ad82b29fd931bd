"""A learner seen as a batched policy, so learners and references share one rollout loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesalab.archs.base import Learner
from mesalab.studies.policy.action_heads import DiscreteHead, action_head
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


class LearnerPolicy(Policy):
    """Acts step by step with carried memory.

    Decision tasks: samples its policy by default, as in training (``greedy=True``: argmax).
    Prediction tasks: samples when ``explore`` (training with RL), otherwise predicts the
    mean of its prediction head (the point prediction is what a predictor reports).
    """

    name = "learner"

    def __init__(self, learner: Learner, greedy: bool = False, explore: bool = False) -> None:
        self.learner, self.greedy, self.explore = learner, greedy, explore
        self.head: Any = None
        self.deterministic = greedy
        self.last_output: Any = None  # the heads at the last step acted (for analyses)

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Fresh memory for a batch of episodes."""
        self.head = action_head(family)
        self.deterministic = self.greedy or (family.kind == "prediction" and not self.explore)
        return self.learner.initial_memory(batch_size, generator.device)

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """One forward step (T = 1) with the carried memory."""
        out, memory = self.learner(ctx.inputs[:, None, :], pstate)  # (B, 1, D) in
        step = type(out)(**{k: v[:, 0] for k, v in vars(out).items()})  # drop T
        self.last_output = step
        return self.head.act(step, generator, self.deterministic), memory

    def action_probs(self) -> Tensor | None:
        """Probabilities of the discrete actions at the last step acted, (B, A).

        What the policy sampled from (one-hot of the argmax when greedy); ``None`` for
        prediction families, whose action is the prediction itself.
        """
        if self.last_output is None or not isinstance(self.head, DiscreteHead):
            return None
        logits = self.last_output.logits
        if self.deterministic:
            return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
        return torch.softmax(logits.float(), dim=-1)
