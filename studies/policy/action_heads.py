"""How a learner's outputs become actions, for each kind of action space.

One small class per action space keeps the rollout loop and the training signals free of
special cases: acting (sampled or deterministic), the log-probability and entropy that
policy gradients need, and the supervised loss.

- ``discrete`` (decision tasks): a categorical policy over the logits; the supervised target
  is the oracle's action (as in the Decision-Pretrained Transformer).
- ``real`` (regression): a Gaussian policy around the predicted mean with a fixed standard
  deviation; the deterministic action is the mean; the supervised target is the revealed one.
- ``simplex`` (sequence prediction): a Dirichlet policy over probability vectors whose
  concentrations come from the logits; the deterministic action is its mean; the supervised
  loss is the cross-entropy of softmax(logits) to the revealed next state. Since log-loss is a
  proper scoring rule, reward-maximising Dirichlet policies concentrate on the true predictive
  distribution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from mesalab.archs.base import LearnerOutput
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.rollout import Trajectory
from mesalab.tasks.sampling import sample_dirichlet


def categorical_from_uniform(logits: Tensor, u: Tensor) -> Tensor:
    """Inverse-CDF draw per row from (N, A) logits with one uniform (N, 1) per row."""
    probs = torch.softmax(logits.float(), dim=-1)  # (N, A)
    return (probs.cumsum(-1) < u).sum(-1).clamp_max(probs.shape[-1] - 1)


def sample_categorical(logits: Tensor, generator: torch.Generator) -> Tensor:
    """One draw per row by inverse CDF: exactly one uniform per row (common random numbers)."""
    u = torch.rand(logits.shape[0], 1, generator=generator, device=logits.device)  # (B, 1)
    return categorical_from_uniform(logits, u)


class DiscreteHead:
    """Categorical policy over discrete actions."""

    def act(self, out: LearnerOutput, generator: torch.Generator, deterministic: bool) -> Tensor:
        """Sample (or argmax) one action per row from (B, A) logits."""
        return out.logits.argmax(-1) if deterministic else sample_categorical(out.logits, generator)

    def log_prob_entropy(self, out: LearnerOutput, actions: Tensor) -> tuple[Tensor, Tensor]:
        """log pi(a_t | h_t) and the policy entropy, each (B, T)."""
        logp_all = F.log_softmax(out.logits, dim=-1)  # (B, T, A)
        logp = logp_all.gather(-1, actions.long()[..., None])[..., 0]
        return logp, -(logp_all.exp() * logp_all).sum(-1)

    def supervised_loss(self, out: LearnerOutput, traj: Trajectory) -> Tensor:
        """Cross-entropy to the oracle's action."""
        logits = rearrange(out.logits, "b t a -> (b t) a")
        return F.cross_entropy(logits, rearrange(traj.oracle_actions.long(), "b t -> (b t)"))


class RealHead:
    """Gaussian policy N(mean, std^2) around the predicted mean."""

    def __init__(self, std: float = 0.5) -> None:
        self.std = std

    def act(self, out: LearnerOutput, generator: torch.Generator, deterministic: bool) -> Tensor:
        """The mean, plus Gaussian noise when sampling, (B, A)."""
        mean = out.mean
        if deterministic:
            return mean
        return mean + self.std * torch.randn(mean.shape, generator=generator, device=mean.device)

    def log_prob_entropy(self, out: LearnerOutput, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Gaussian log-density of the taken actions and the (constant) entropy, (B, T)."""
        z = (actions - out.mean) / self.std  # (B, T, A)
        const = math.log(self.std) + 0.5 * math.log(2 * math.pi)
        logp = (-0.5 * z.pow(2) - const).sum(-1)
        ent = torch.full_like(logp, out.mean.shape[-1] * (0.5 + const))
        return logp, ent

    def supervised_loss(self, out: LearnerOutput, traj: Trajectory) -> Tensor:
        """Squared error to the revealed target: the feedback's first A columns (a family may
        reveal more after it, such as linear regression's ``pair_feedback`` input)."""
        target = traj.feedback[..., : out.mean.shape[-1]]
        return (out.mean - target).pow(2).sum(-1).mean()


class SimplexHead:
    """Dirichlet policy over probability vectors; concentration = softplus(logits) + floor."""

    def __init__(self, floor: float = 0.05, eps: float = 1e-6) -> None:
        self.floor, self.eps = floor, eps

    def _alpha(self, out: LearnerOutput) -> Tensor:
        return F.softplus(out.logits) + self.floor  # (..., S)

    def act(self, out: LearnerOutput, generator: torch.Generator, deterministic: bool) -> Tensor:
        """The Dirichlet mean, or a draw from it, (B, S)."""
        alpha = self._alpha(out)
        if deterministic:
            return alpha / alpha.sum(-1, keepdim=True)
        return sample_dirichlet(alpha, generator)

    def log_prob_entropy(self, out: LearnerOutput, actions: Tensor) -> tuple[Tensor, Tensor]:
        """Dirichlet log-density of the taken probability vectors and the entropy, (B, T)."""
        dist = torch.distributions.Dirichlet(self._alpha(out))
        q = actions.clamp_min(self.eps)
        q = q / q.sum(-1, keepdim=True)
        return dist.log_prob(q), dist.entropy()

    def supervised_loss(self, out: LearnerOutput, traj: Trajectory) -> Tensor:
        """Cross-entropy of softmax(logits) to the revealed next state (one-hot feedback)."""
        target = rearrange(traj.feedback.argmax(-1), "b t -> (b t)")
        return F.cross_entropy(rearrange(out.logits, "b t s -> (b t) s"), target)


ActionHead = DiscreteHead | RealHead | SimplexHead


def action_head(family: TaskFamily) -> ActionHead:
    """The head for the family's action space (``family.action_space``)."""
    heads = {"discrete": DiscreteHead, "real": RealHead, "simplex": SimplexHead}
    space = getattr(family, "action_space", "discrete")
    check(space in heads, "action_space", space, f"one of {list(heads)}")
    return heads[space]()
