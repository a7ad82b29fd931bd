"""Rescorla-Wagner (delta-rule) values with softmax choice, and its maximum-likelihood fit.

Q_a <- Q_a + alpha * (r - Q_a) for the chosen arm a, all Q starting at ``q0``;
P(a) = softmax(beta * Q)_a. The fit reads off an agent's effective learning rate ``alpha`` and
inverse temperature ``beta`` from its choices and rewards alone (for a frozen network: how
fast does it update, how deterministically does it choose?).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily, check
from mesalab.tasks.rollout import Policy, StepContext

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


def _nll(
    raw: Tensor, acts: Tensor, rews: Tensor, num_actions: int, q0: float, per_sequence: bool
) -> Tensor:
    """Negative log-likelihood of every fitted column at parameters ``raw`` (2, S, C), (S, C).

    A column is one sequence (``per_sequence``) or all sequences pooled (C = 1).
    """
    alpha, beta = _to_params(raw)  # (S, C) each
    ll = rw_log_likelihood(acts, rews, num_actions, alpha, beta, q0)  # (S, N)
    return -ll if per_sequence else -ll.sum(dim=1, keepdim=True)


def _newton_step(g: Tensor, h: Tensor) -> Tensor:
    """Direction -(H + shift I)^-1 g per column, shifted so that it always descends, (2, C).

    ``g`` is (2, C), ``h`` (2, 2, C). The closed-form 2x2 inverse keeps every column separate.
    """
    a, c = h[0, 0], h[1, 1]
    b = (h[0, 1] + h[1, 0]) / 2
    min_eig = (a + c) / 2 - torch.sqrt(((a - c) / 2) ** 2 + b**2)
    # Beyond the beta clamp the curvature is zero: a small floor keeps the solve defined.
    shift = (-min_eig).clamp(min=0) + 1e-6 * (a.abs() + c.abs()) + 1e-9
    a, c = a + shift, c + shift
    det = a * c - b**2
    return -torch.stack([c * g[0] - b * g[1], a * g[1] - b * g[0]]) / det


def fit_rescorla_wagner(
    actions: Tensor,
    rewards: Tensor,
    num_actions: int,
    per_sequence: bool = False,
    q0: float = 0.5,
    grid_size: int = 12,
    steps: int = 50,
    grad_tol: float = 1e-6,
) -> tuple[Tensor, Tensor]:
    """Maximum-likelihood (alpha, beta) of a Rescorla-Wagner agent from (N, T) choices/rewards.

    Pooled over sequences by default (two 0-d tensors); ``per_sequence=True`` fits every
    sequence on its own ((N,) tensors), with the same answer as fitting each one alone.
    A log-spaced grid gives the start; Newton steps on (logit alpha, log beta) refine it.

    Why Newton and not L-BFGS: the per-sequence problem is N separate 2-parameter problems.
    One L-BFGS over all of them shares one line search and one curvature memory, so a single
    badly conditioned sequence stalls the others short of their optimum. Here every column
    gets its exact 2x2 Hessian and its own step length, for pooled and per-sequence alike.
    """
    check(actions.dim() == 2, "actions", tuple(actions.shape), "a (N, T) tensor")
    check(rewards.shape == actions.shape, "rewards", tuple(rewards.shape), "shaped like actions")
    check(isinstance(num_actions, int) and num_actions >= 2, "num_actions", num_actions, ">= 2")
    acts, rews = actions.long(), rewards.double()
    dev = acts.device

    def nll(raw: Tensor) -> Tensor:
        return _nll(raw, acts, rews, num_actions, q0, per_sequence)

    # Grid start: every (alpha, beta) pair as one parameter row, (P, 1).
    a_grid = torch.logspace(-2.5, 0, grid_size, dtype=torch.float64, device=dev).clamp(max=0.99)
    b_grid = torch.logspace(-1, 2, grid_size, dtype=torch.float64, device=dev)
    mesh = torch.meshgrid(a_grid, b_grid, indexing="ij")
    ga, gb = (rearrange(g, "i j -> (i j) 1") for g in mesh)  # (P, 1) each, P = grid_size^2
    grid = torch.stack([torch.logit(ga), gb.log()])  # (2, P, 1)
    with torch.no_grad():
        best = nll(grid).argmin(dim=0)  # (C,)
    raw = grid[:, best, 0]  # (2, C)
    # Candidate step lengths 1, 1/2, ..., 1/512 and 0 (stay): the best is kept per column.
    lengths = torch.cat([2.0 ** -torch.arange(10.0), torch.zeros(1)]).to(dev, torch.float64)
    for _ in range(steps):
        r = raw.detach().requires_grad_(True)
        f = nll(r[:, None])[0]  # (C,)
        (g,) = torch.autograd.grad(f.sum(), r, create_graph=True)  # (2, C)
        if float(g.detach().abs().max()) < grad_tol:
            break
        # Columns are independent, so d(sum_c g_i,c)/d raw is row i of every column's Hessian.
        rows = [torch.autograd.grad(g[i].sum(), r, retain_graph=i == 0)[0] for i in range(2)]
        direction = _newton_step(g.detach(), torch.stack(rows))  # (2, C)
        cand = raw[:, None] + lengths[None, :, None] * direction[:, None]  # (2, S, C)
        with torch.no_grad():
            best_f, pick = nll(cand).min(dim=0)  # (C,)
        raw = cand.gather(1, repeat(pick, "c -> two 1 c", two=2))[:, 0]  # (2, C)
        gain = f.detach() - best_f  # >= 0: staying put is a candidate
        if float(gain.max()) <= 1e-12 * (1.0 + float(best_f.abs().max())):
            break  # converged to rounding in every column
    alpha, beta = _to_params(raw.detach())
    alpha, beta = alpha.float(), beta.float()
    return (alpha, beta) if per_sequence else (alpha[0], beta[0])
