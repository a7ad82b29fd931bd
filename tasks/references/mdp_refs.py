"""Posterior sampling for reinforcement learning (PSRL; Strens 2000, Osband et al. 2013).

At the first step of every episode PSRL draws one MDP from its posterior (conjugate: a
Dirichlet per transition row, a normal per mean reward) and then follows that MDP's optimal
finite-horizon policy for the whole episode. It acts from the history only (states from the
observation, rewards from the feedback) and knows the prior's constants, read from the latent
(the same for every task of a prior). It is the standard near-Bayes-optimal reference where
the Bayes-optimal policy (a POMDP over all MDPs) is intractable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from einops import rearrange
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily
from mesalab.tasks.rollout import Policy, StepContext
from mesalab.tasks.sampling import sample_dirichlet


# Here, beside the planner that needs it, rather than in tabular_mdp.py: the family imports its
# references, so they must not import the family.
def finite_horizon_q(trans: Tensor, reward: Tensor, horizon: int) -> Tensor:
    """Optimal Q for 1..horizon steps left by backward induction, (B, H, S, A)."""
    b, s, a = reward.shape
    flat = rearrange(trans, "b s a s2 -> b (s a) s2")  # (B, S*A, S)
    qs = []
    v = reward.new_zeros(b, s)  # (B, S) value with 0 steps left
    for _ in range(horizon):
        q = reward + rearrange(flat @ v[:, :, None], "b (s a) 1 -> b s a", s=s)  # (B, S, A)
        qs.append(q)
        v = q.max(dim=2).values
    return torch.stack(qs, dim=1)


@dataclass
class PSRLState:
    """Sufficient statistics, the last state-action pair and the sampled MDP's Q."""

    trans_counts: Tensor  # (B, S, A, S)
    reward_sum: Tensor  # (B, S, A)
    reward_count: Tensor  # (B, S, A)
    last_s: Tensor  # (B,) long
    last_a: Tensor  # (B,) long
    has_last: Tensor  # (B,) bool: a transition is waiting for its next state
    q: Tensor  # (B, H, S, A) optimal Q of the sampled MDP


class PSRLPolicy(Policy):
    """Sample an MDP from the posterior at each episode start; act optimally in it."""

    name = "psrl"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> PSRLState:
        """No data yet; the first step samples from the prior."""
        s, a, h = family.num_states, family.num_actions, family.horizon
        self.family, self.num_states, self.horizon = family, s, h
        dev = generator.device
        zeros = lambda *shape: torch.zeros(batch_size, *shape, device=dev)
        return PSRLState(
            trans_counts=zeros(s, a, s),
            reward_sum=zeros(s, a),
            reward_count=zeros(s, a),
            last_s=torch.zeros(batch_size, dtype=torch.long, device=dev),
            last_a=torch.zeros(batch_size, dtype=torch.long, device=dev),
            has_last=torch.zeros(batch_size, dtype=torch.bool, device=dev),
            q=zeros(h, s, a),
        )

    def sample_q(self, p: PSRLState, latent: object, generator: torch.Generator) -> Tensor:
        """Draw an MDP from the posterior and solve it, (B, H, S, A)."""
        alpha = latent.trans_alpha[:, None, None, None] + p.trans_counts
        trans = sample_dirichlet(alpha, generator)
        prec0 = latent.reward_std[:, None, None] ** -2
        noise_prec = latent.noise_std[:, None, None] ** -2
        prec = prec0 + p.reward_count * noise_prec
        mean = (latent.reward_mean[:, None, None] * prec0 + p.reward_sum * noise_prec) / prec
        z = torch.randn(mean.shape, generator=generator, device=mean.device)
        return finite_horizon_q(trans, mean + z / prec.sqrt(), self.horizon)

    def act(
        self, pstate: PSRLState, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, PSRLState]:
        """Record the transition that led here, resample at an episode start, act greedily."""
        s_now = ctx.obs[:, : self.num_states].argmax(dim=1)
        start = ctx.obs[:, self.num_states] > 0.5
        b = torch.arange(s_now.shape[0], device=s_now.device)
        # The last step of an episode never shows its next state (the next episode restarts).
        seen = (pstate.has_last & ~start).float()
        counts = pstate.trans_counts.index_put(
            (b, pstate.last_s, pstate.last_a, s_now), seen, accumulate=True
        )
        q = pstate.q
        if bool(start.any()):
            fresh = self.sample_q(replace(pstate, trans_counts=counts), ctx.latent, generator)
            q = torch.where(start[:, None, None, None], fresh, q)
        h = self.family.steps_left(ctx.state.t) - 1  # index of the steps left
        action = q[b, h, s_now].argmax(dim=1)
        new = PSRLState(
            trans_counts=counts,
            reward_sum=pstate.reward_sum,
            reward_count=pstate.reward_count,
            last_s=s_now,
            last_a=action,
            has_last=torch.zeros_like(pstate.has_last),
            q=q,
        )
        return action, new

    def update(
        self, pstate: PSRLState, ctx: StepContext, action: Tensor, out: StepOut
    ) -> PSRLState:
        """Add the reward to (s, a)'s statistics; the next state is seen at the next step."""
        b = torch.arange(action.shape[0], device=action.device)
        a = action.long()
        ones = torch.ones_like(out.feedback[:, 0])
        return PSRLState(
            trans_counts=pstate.trans_counts,
            reward_sum=pstate.reward_sum.index_put(
                (b, pstate.last_s, a), out.feedback[:, 0].float(), accumulate=True
            ),
            reward_count=pstate.reward_count.index_put(
                (b, pstate.last_s, a), ones, accumulate=True
            ),
            last_s=pstate.last_s,
            last_a=a,
            has_last=torch.ones_like(pstate.has_last),
            q=pstate.q,
        )
