"""Reference predictors of the Markov-chain family, acting from the episode's history only.

They read the prior's constants (Dirichlet alpha, change-point hazard) from the latent: the
same for every task of a prior, the structure a Bayes-optimal predictor knows. None reads the
task's transition matrix; only the oracle does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


def _dirichlet_predictive(counts: Tensor, alpha: Tensor) -> Tensor:
    """(alpha + c_j) / (S alpha + sum c) over the last dimension; alpha broadcasts from (B,)."""
    # reshape: one unit axis per trailing axis of counts, a count einops cannot name
    a = alpha.reshape(alpha.shape + (1,) * (counts.dim() - 1)).to(counts.dtype)
    return (counts + a) / (counts.sum(dim=-1, keepdim=True) + counts.shape[-1] * a)


class UniformPolicy(Policy):
    """The uninformed prediction, uniform over states (the prediction family's "random")."""

    name = "uniform"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> int:
        """Only the number of states is needed."""
        return family.num_actions

    def act(self, pstate: int, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, int]:
        """1/S for every state."""
        return ctx.obs.new_full((ctx.obs.shape[0], pstate), 1.0 / pstate), pstate


class UnigramPolicy(Policy):
    """Dirichlet-multinomial over how often each state has been visited, ignoring order."""

    name = "unigram"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """Visit counts (B, S), float64."""
        return torch.zeros(
            batch_size, family.num_actions, dtype=torch.float64, device=generator.device
        )

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Predict from the counts including the current state."""
        counts = pstate + ctx.obs.double()
        return _dirichlet_predictive(counts, ctx.latent.alpha).float(), pstate

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Count the current state (the next one is counted when it is shown)."""
        return pstate + ctx.obs.double()


class BigramPolicy(Policy):
    """Bayesian bigram: Dirichlet(alpha) prior per row, transition counts; exact without drift."""

    name = "bigram"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """Transition counts (B, S, S), float64."""
        s = family.num_actions
        return torch.zeros(batch_size, s, s, dtype=torch.float64, device=generator.device)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Posterior predictive of the current state's row."""
        row_counts = (ctx.obs.double()[:, :, None] * pstate).sum(dim=1)  # (B, S)
        return _dirichlet_predictive(row_counts, ctx.latent.alpha).float(), pstate

    def posterior_mean(self, pstate: Tensor, ctx: StepContext) -> Tensor:
        """Posterior mean of the whole transition matrix, flattened row-major, (B, S*S)."""
        return rearrange(_dirichlet_predictive(pstate, ctx.latent.alpha), "b s t -> b (s t)")

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Count the transition current -> revealed next state."""
        return pstate + ctx.obs.double()[:, :, None] * out.feedback.double()[:, None, :]


@dataclass
class RunLengthPosterior:
    """Posterior over the run length r (transitions since the last change point), r = 0..t."""

    weights: Tensor  # (B, t + 1) float64, sums to 1
    counts: Tensor  # (B, t + 1, S, S) float64: transition counts of the last r transitions


class ChangePointBigramPolicy(Policy):
    """Exact Bayes predictor with change points (Adams and MacKay 2007 run-length filter).

    After each trial the matrix is redrawn with probability h; the predictive is the bigram
    predictive of each run length, weighted by the run length's posterior. With h = 0 all
    mass stays on r = t and this is the Bayesian bigram. Cost O(t) per trial.
    """

    name = "bayes_optimal"

    def reset(
        self, family: TaskFamily, batch_size: int, generator: torch.Generator
    ) -> RunLengthPosterior:
        """Run length 0 with certainty."""
        s, dev = family.num_actions, generator.device
        return RunLengthPosterior(
            weights=torch.ones(batch_size, 1, dtype=torch.float64, device=dev),
            counts=torch.zeros(batch_size, 1, s, s, dtype=torch.float64, device=dev),
        )

    def _per_run_length(self, post: RunLengthPosterior, ctx: StepContext) -> Tensor:
        """Bigram predictive of the current state's row for every run length, (B, R, S)."""
        s = ctx.obs.argmax(dim=1)
        rows = post.counts[torch.arange(s.shape[0], device=s.device), :, s]  # (B, R, S)
        return _dirichlet_predictive(rows, ctx.latent.alpha)

    def act(
        self, pstate: RunLengthPosterior, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, RunLengthPosterior]:
        """Mix the run lengths' predictives."""
        pred = (pstate.weights[:, :, None] * self._per_run_length(pstate, ctx)).sum(dim=1)
        return pred.float(), pstate

    def update(
        self, pstate: RunLengthPosterior, ctx: StepContext, action: Tensor, out: StepOut
    ) -> RunLengthPosterior:
        """Weight by the transition's likelihood, count it, then allow a change point."""
        nxt = out.feedback.double()  # (B, S) one-hot
        like = (self._per_run_length(pstate, ctx) * nxt[:, None, :]).sum(dim=2)  # (B, R)
        w = pstate.weights * like
        w = w / w.sum(dim=1, keepdim=True)
        counts = pstate.counts + (ctx.obs.double()[:, :, None] * nxt[:, None, :])[:, None]
        h = ctx.latent.hazard.double()[:, None]  # (B, 1)
        # Run length r -> r + 1 without a change; a change starts run length 0 afresh.
        return RunLengthPosterior(
            weights=torch.cat([h, (1 - h) * w], dim=1),
            counts=torch.cat([torch.zeros_like(counts[:, :1]), counts], dim=1),
        )
