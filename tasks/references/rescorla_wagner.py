"""Rescorla-Wagner (delta-rule) values with softmax choice, and its maximum-likelihood fit.

Q_a <- Q_a + alpha * (r - Q_a) for the chosen arm a, all Q starting at ``q0``;
P(a) = softmax(beta * Q)_a. The fit reads off an agent's effective learning rate ``alpha`` and
inverse temperature ``beta`` from its choices and rewards alone (for a frozen network: how
fast does it update, how deterministically does it choose?).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from tasks.base import StepOut, TaskFamily, check
from tasks.rollout import Policy, StepContext

#: inverse temperatures are fitted within [BETA_MIN, BETA_MAX]: choices that never deviate
#: from the higher value would otherwise push the estimate to infinity
BETA_MIN, BETA_MAX = 1e-3, 1e3


class RescorlaWagner(Policy):
    """Delta-rule values, softmax choice with inverse temperature ``beta``."""

    name = "rescorla_wagner"

    def __init__(self, alpha: float = 0.3, beta: float = 8.0, q0: float = 0.5) -> None:
        ok = isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0
        check(ok, "alpha", alpha, "a learning rate in [0, 1]")
        check(isinstance(beta, (int, float)) and beta >= 0, "beta", beta, "a number >= 0")
        self.alpha, self.beta, self.q0 = float(alpha), float(beta), float(q0)

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Tensor:
        """Every value starts at q0, (B, K)."""
        return torch.full((batch_size, family.num_actions), self.q0, device=generator.device)

    def act(
        self, pstate: Tensor, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Sample from softmax(beta * Q)."""
        probs = torch.softmax(self.beta * pstate, dim=1)
        return torch.multinomial(probs, 1, generator=generator)[:, 0], pstate

    def update(self, pstate: Tensor, ctx: StepContext, action: Tensor, out: StepOut) -> Tensor:
        """Move the chosen arm's value toward the reward."""
        return rw_update(pstate, action, out.reward, self.alpha)


def rw_update(q: Tensor, action: Tensor, reward: Tensor, alpha: Tensor | float) -> Tensor:
    """One delta-rule step; ``alpha`` is a float or broadcasts against q's leading dims."""
    hit = torch.nn.functional.one_hot(action.long(), q.shape[-1]).to(q.dtype)  # (..., K)
    chosen = (q * hit).sum(-1, keepdim=True)  # (..., 1)
    if isinstance(alpha, Tensor):
        alpha = alpha[..., None]
    return q + alpha * hit * (reward[..., None].to(q.dtype) - chosen)


def rw_log_likelihood(
    actions: Tensor, rewards: Tensor, num_actions: int, alpha: Tensor, beta: Tensor, q0: float
) -> Tensor:
    """Log-likelihood of each sequence's choices, for parameters of shape (P, N) or (P, 1).

    actions and rewards are (N, T); returns (P, N).
    """
    p, n = alpha.shape[0], actions.shape[0]
    q = torch.full((p, n, num_actions), q0, dtype=alpha.dtype, device=actions.device)
    total = torch.zeros(p, n, dtype=alpha.dtype, device=actions.device)
    for t in range(actions.shape[1]):
        a = actions[:, t].long()
        logp = torch.log_softmax(beta[..., None] * q, dim=-1)  # (P, N, K)
        total = total + logp.gather(-1, a.expand(p, n)[..., None])[..., 0]
        q = rw_update(q, a.expand(p, n), rewards[:, t].expand(p, n), alpha)
    return total


def _to_params(raw: Tensor) -> tuple[Tensor, Tensor]:
    """Unconstrained (logit alpha, log beta) to alpha in (0, 1) and beta in the fit range."""
    alpha = torch.sigmoid(raw[0])
    beta = raw[1].clamp(math.log(BETA_MIN), math.log(BETA_MAX)).exp()
    return alpha, beta


def fit_rescorla_wagner(
    actions: Tensor,
    rewards: Tensor,
    num_actions: int,
    per_sequence: bool = False,
    q0: float = 0.5,
    grid_size: int = 12,
    steps: int = 60,
) -> tuple[Tensor, Tensor]:
    """Maximum-likelihood (alpha, beta) of a Rescorla-Wagner agent from (N, T) choices/rewards.

    Pooled over sequences by default (two 0-d tensors); ``per_sequence=True`` fits every
    sequence on its own ((N,) tensors). A log-spaced grid gives the start, L-BFGS on
    (logit alpha, log beta) refines it.
    """
    check(actions.dim() == 2, "actions", tuple(actions.shape), "a (N, T) tensor")
    check(rewards.shape == actions.shape, "rewards", tuple(rewards.shape), "shaped like actions")
    check(isinstance(num_actions, int) and num_actions >= 2, "num_actions", num_actions, ">= 2")
    acts, rews = actions.long(), rewards.double()
    # Grid start: every (alpha, beta) pair as one parameter row, (P, 1).
    a_grid = torch.logspace(-2.5, 0, grid_size, dtype=torch.float64).clamp(max=0.99)
    b_grid = torch.logspace(-1, 2, grid_size, dtype=torch.float64)
    ga, gb = torch.meshgrid(a_grid, b_grid, indexing="ij")
    ga, gb = ga.reshape(-1, 1), gb.reshape(-1, 1)  # (P, 1)
    ll = rw_log_likelihood(acts, rews, num_actions, ga, gb, q0)  # (P, N)
    score = ll if per_sequence else ll.sum(dim=1, keepdim=True)  # (P, cols)
    best = score.argmax(dim=0)  # (cols,)
    raw = torch.stack([torch.logit(ga[best, 0]), gb[best, 0].log()]).requires_grad_(True)
    opt = torch.optim.LBFGS([raw], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        alpha, beta = _to_params(raw)
        nll = -rw_log_likelihood(acts, rews, num_actions, alpha[None], beta[None], q0).sum()
        nll.backward()
        return nll

    opt.step(closure)
    with torch.no_grad():
        alpha, beta = _to_params(raw)
    alpha, beta = alpha.float(), beta.float()
    return (alpha, beta) if per_sequence else (alpha[0], beta[0])
