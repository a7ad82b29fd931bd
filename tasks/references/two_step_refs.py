"""Reference agents of the two-step task: model-free and model-based TD, the Bayes-optimal agent.

All three act from the history only (the trial's feedback ``[reward, reached A, reached B]``).
The model-based and Bayes-optimal agents also know the task's *structure*, i.e. the prior's
constants stored in the latent (transition, reward and swap probabilities, identical for
every task of a prior); none of them reads the task itself (which state is good).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext


def _softmax_choice(values: Tensor, beta: float, generator: torch.Generator) -> Tensor:
    """Sample one of two actions with probability softmax(beta * values), (B,) long."""
    p1 = torch.sigmoid(beta * (values[:, 1] - values[:, 0]))
    u = torch.rand(values.shape[0], generator=generator, device=values.device)
    return (u < p1).long()


def _outcome(out: StepOut) -> tuple[Tensor, Tensor]:
    """Reward (B,) and reached second-stage state (B,) long from the trial's feedback."""
    return out.feedback[:, 0], out.feedback[:, 1:3].argmax(dim=1)


@dataclass
class TDValues:
    """First-stage (B, 2) and second-stage (B, 2) action values."""

    q1: Tensor
    q2: Tensor


class ModelFreePolicy(Policy):
    """SARSA(lambda) on first-stage values with a softmax (Daw et al. 2011's model-free agent).

    With lambda = 1 (the default) the first-stage value of the chosen action moves toward the
    reward whatever the transition was: the stay pattern is a main effect of reward only.
    """

    name = "model_free"

    def __init__(self, alpha: float = 0.5, beta: float = 5.0, lam: float = 1.0) -> None:
        self.alpha, self.beta, self.lam = alpha, beta, lam

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> TDValues:
        """Values start at 0.5 (the prior mean reward)."""
        dev = generator.device
        return TDValues(
            q1=torch.full((batch_size, 2), 0.5, device=dev),
            q2=torch.full((batch_size, 2), 0.5, device=dev),
        )

    def act(
        self, pstate: TDValues, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, TDValues]:
        """Softmax over first-stage values."""
        return _softmax_choice(pstate.q1, self.beta, generator), pstate

    def update(self, pstate: TDValues, ctx: StepContext, action: Tensor, out: StepOut) -> TDValues:
        """delta1 = Q2(s) - Q1(a), delta2 = r - Q2(s); Q1(a) += alpha (delta1 + lambda delta2)."""
        r, s = _outcome(out)
        a = action.long()[:, None]
        q2_s = pstate.q2.gather(1, s[:, None])[:, 0]
        delta1 = q2_s - pstate.q1.gather(1, a)[:, 0]
        delta2 = r - q2_s
        q1 = pstate.q1.scatter_add(1, a, (self.alpha * (delta1 + self.lam * delta2))[:, None])
        q2 = pstate.q2.scatter_add(1, s[:, None], (self.alpha * delta2)[:, None])
        return TDValues(q1=q1, q2=q2)


class ModelBasedPolicy(Policy):
    """Learns second-stage values by TD and plans through the known transition probabilities."""

    name = "model_based"

    def __init__(self, alpha: float = 0.5, beta: float = 5.0) -> None:
        self.alpha, self.beta = alpha, beta

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """Second-stage values (B, 2) start at 0.5."""
        return torch.full((batch_size, 2), 0.5, device=generator.device)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Q_MB(a) = sum_s P(s | a) Q2(s), then a softmax."""
        c = ctx.latent.p_common[:, None]  # (B, 1) the known structure
        q_mb = c * pstate + (1 - c) * pstate.flip(1)  # action a leads commonly to state a
        return _softmax_choice(q_mb, self.beta, generator), pstate

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Q2(s) += alpha (r - Q2(s)) for the reached state only."""
        r, s = _outcome(out)
        delta = r - pstate.gather(1, s[:, None])[:, 0]
        return pstate.scatter_add(1, s[:, None], (self.alpha * delta)[:, None])


class BayesTwoStepPolicy(Policy):
    """Exact filter over which second-stage state is good, acting greedily on it.

    The belief b = P(state A is good) is updated by the reward's likelihood in the reached
    state, then diffused by the swap hazard. Because the low reward probability is 1 - the
    high one, the distribution of the next belief does not depend on the action, so no action
    buys more information and greedy is Bayes-optimal. Ties (b = 0.5) are broken by a coin.
    """

    name = "bayes_optimal"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """The good state starts as a fair coin: b = 0.5."""
        return torch.full((batch_size,), 0.5, device=generator.device, dtype=torch.float64)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Choose the action whose common transition leads to the more probably good state."""
        coin = torch.rand(pstate.shape[0], generator=generator, device=pstate.device) < 0.5
        greedy = (pstate < 0.5).long()  # b < 0.5: state B (action 1) is more probably good
        return torch.where(pstate == 0.5, coin.long(), greedy), pstate

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Bayes rule on (reached state, reward), then the swap hazard."""
        r, s = _outcome(out)
        p = ctx.latent.p_reward.double()
        h = ctx.latent.p_swap.double()
        r = r.double()
        like_hi = p * r + (1 - p) * (1 - r)  # P(r | reached state is the good one)
        like_lo = (1 - p) * r + p * (1 - r)
        like_a = torch.where(s == 0, like_hi, like_lo)  # P(r | A good)
        like_b = torch.where(s == 1, like_hi, like_lo)  # P(r | B good)
        post = pstate * like_a / (pstate * like_a + (1 - pstate) * like_b)
        return post * (1 - h) + (1 - post) * h
