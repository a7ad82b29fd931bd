"""A population: P learners of one structure as stacked weights and one batched computation.

``PopulationLearner.stack(learners)`` copies P solo learners' parameters into tensors with a
leading P (new leaves, for one optimizer over the population); ``PopulationLearner.view(
learner)`` is a population of one whose weights are views of the solo learner's own
parameters, so gradients and optimizer steps land on the solo module (a solo run is a
population of one). ``write_back`` copies each member's weights into a solo learner (for
checkpoints and evaluation).

Inputs are (P, B, T, D); every output and memory leaf has leading (P, B). The heads are one
batched matmul over the concatenated policy, value and mean weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mesalab.archs.base import Core, Learner, LearnerOutput, Memory, check
from mesalab.archs.feedforward import FFNCore
from mesalab.archs.population_attention import PopulationSlot, PopulationTransformer
from mesalab.archs.population_cores import (
    Params,
    PopulationCore,
    PopulationFFN,
    PopulationGRU,
    PopulationLSTM,
    pop_linear,
)
from mesalab.archs.recurrence import Tape
from mesalab.archs.recurrent import GRUCore, LSTMCore
from mesalab.archs.slot_memory import SlotCore
from mesalab.archs.transformer import TransformerCore

HEADS = ("policy_head", "value_head", "mean_head")

#: the population computation of each solo core class (a core without one trains alone)
POPULATION_CORES: dict[type[Core], type[PopulationCore]] = {
    FFNCore: PopulationFFN,
    LSTMCore: PopulationLSTM,
    GRUCore: PopulationGRU,
    SlotCore: PopulationSlot,
    TransformerCore: PopulationTransformer,
}


def supports(learner: Learner) -> bool:
    """Whether the learner's core has a population computation."""
    return type(learner.core) in POPULATION_CORES


class PopulationLearner:
    """P members with weights ``params`` (name -> (P, ...)) and the structure of ``template``."""

    def __init__(
        self, template: Learner, params: Params, leaves: list[Tensor] | None = None
    ) -> None:
        cls = type(template.core)
        check(
            cls in POPULATION_CORES,
            "arch.core",
            cls.__name__,
            f"one with a population computation ({[c.__name__ for c in POPULATION_CORES]})",
        )
        self.template, self.params = template, params
        self.core: PopulationCore = POPULATION_CORES[cls](template.core)
        self.size = next(iter(params.values())).shape[0]
        self.num_actions = template.num_actions
        # What the optimizer holds: the stacked weights, or the solo learner's own parameters.
        self._leaves = (
            leaves if leaves is not None else [p for p in params.values() if p.requires_grad]
        )
        self._views = leaves is not None
        self._rows: dict[int, list[Tensor]] = {}

    @classmethod
    def stack(cls, learners: list[Learner]) -> PopulationLearner:
        """P solo learners of one structure -> a population with its own (P, ...) leaves."""
        check(len(learners) >= 1, "learners", len(learners), "a non-empty list")
        names = [n for n, _ in learners[0].named_parameters()]
        for i, m in enumerate(learners[1:], 1):
            shapes = {n: p.shape for n, p in m.named_parameters()}
            ref = {n: p.shape for n, p in learners[0].named_parameters()}
            check(shapes == ref, f"learners[{i}]", type(m.core).__name__, "of member 0's shapes")
        params = {}
        for n in names:
            rows = [dict(m.named_parameters())[n] for m in learners]
            stacked = torch.stack([r.detach() for r in rows])  # (P, ...)
            params[n] = stacked.requires_grad_(rows[0].requires_grad)
        return cls(learners[0], params)

    @classmethod
    def view(cls, learner: Learner) -> PopulationLearner:
        """A population of one whose weights are views (1, ...) of the learner's parameters."""
        leaves = [p for p in learner.parameters() if p.requires_grad]
        return cls(learner, {n: p[None] for n, p in learner.named_parameters()}, leaves)

    def leaves(self) -> list[Tensor]:
        """The trainable tensors of the population, each with leading P (or the solo's own)."""
        return list(self._leaves)

    def member_parameters(self, i: int) -> list[Tensor]:
        """Member i's trainable weights as leaf tensors sharing storage with its rows.

        One optimizer per member over these updates the population in place, with tensors of
        the member's own shapes, exactly as its solo run's optimizer: any optimizer works
        (not only elementwise ones: a per-tensor norm over stacked weights would mix members),
        a member has its own state (checkpoints, learning rate) and a stopped member is
        simply not stepped. One Adam over the stacked weights gives the same bits (tested).
        """
        check(0 <= i < self.size, "member", i, f"in [0, {self.size})")
        if self._views:
            return list(self._leaves)
        if i not in self._rows:
            self._rows[i] = [leaf.detach()[i].requires_grad_() for leaf in self._leaves]
        return self._rows[i]

    def scale_grads(self, coef: Tensor) -> None:
        """Multiply member i's gradients by ``coef[i]``, (P,), out of place.

        Out of place because two leaves may hold one gradient's storage (the two LSTM biases
        are summed, and through views both keep the same gradient): in place would scale twice.
        """
        for leaf in self._leaves:
            if leaf.grad is not None:
                c = coef if self._views else coef.reshape(self.size, *[1] * (leaf.dim() - 1))
                leaf.grad = leaf.grad * (c[0] if self._views else c)

    def attach_grads(self, i: int) -> None:
        """Point member i's leaves' ``grad`` at its rows of the stacked gradients."""
        if self._views:
            return
        for row, leaf in zip(self.member_parameters(i), self._leaves, strict=True):
            row.grad = None if leaf.grad is None else leaf.grad[i]

    def grads(self) -> list[Tensor]:
        """Their gradients, each with leading P (views: writes change the gradients)."""
        grads = [leaf.grad for leaf in self._leaves if leaf.grad is not None]
        return [g[None] for g in grads] if self._views else grads

    def write_back(self, learners: list[Learner]) -> None:
        """Copy member i's weights into ``learners[i]``."""
        check(len(learners) == self.size, "learners", len(learners), f"{self.size} learners")
        with torch.no_grad():
            for i, m in enumerate(learners):
                for n, p in m.named_parameters():
                    p.copy_(self.params[n][i])

    def prepare(self) -> dict[str, Tensor]:
        """Weights in the forward's layout; reuse across the steps of one rollout."""
        w = self.core.prepare(self.params)
        heads = [(self.params[f"{h}.weight"], self.params[f"{h}.bias"]) for h in HEADS]
        w["heads.w"] = torch.cat([hw for hw, _ in heads], dim=1).transpose(1, 2)  # (P, H, 2A+1)
        w["heads.b"] = torch.cat([hb for _, hb in heads], dim=1)
        return w

    def initial_memory(self, batch_size: int, device: torch.device | str | None = None) -> Memory:
        """Memory at the start of a sequence, leading (P, B)."""
        device = device or next(iter(self.params.values())).device
        return self.core.initial_memory(self.size, batch_size, device)

    def forward(
        self,
        inputs: Tensor,
        memory: Memory,
        prepared: dict[str, Tensor] | None = None,
        tape: Tape | None = None,
    ) -> tuple[LearnerOutput, Memory]:
        """(P, B, T, D) inputs -> heads (P, B, T, ...) at every step and the next memory.

        ``tape``: filled while acting step by step, reused by the training forward on the
        whole sequence (``mesalab.archs.recurrence.Tape``; the weights must not change between).
        """
        w = self.prepare() if prepared is None else prepared
        inputs = self.template.select_inputs(inputs)  # (P, B, T, D') the columns it sees
        feats, memory = self.core.forward(w, inputs, memory, tape)  # (P, B, T, H)
        p, b, t, h = feats.shape
        heads = pop_linear(feats.reshape(p, b * t, h), w["heads.w"], w["heads.b"])
        heads = heads.reshape(p, b, t, -1)  # (P, B, T, 2A+1)
        a = self.num_actions
        out = LearnerOutput(
            logits=heads[..., :a],
            value=heads[..., a],
            mean=heads[..., a + 1 :],
            features=feats,
        )
        return out, memory

    __call__ = forward
