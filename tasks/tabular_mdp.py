"""Random tabular MDPs (Duan et al. 2016, RL^2, section 3.2): several episodes per task.

A task is an MDP with 10 states and 5 actions: transition rows P(. | s, a) ~ Dirichlet(1)
(flat), mean rewards mu(s, a) ~ N(1, 1), rewards ~ N(mu(s, a), 1). One task runs
``num_trials`` trials cut into episodes of ``horizon`` steps (default 100 = 10 episodes of
10); every episode starts in a uniformly drawn state (we did not find the start rule stated in
RL^2; a random start makes every episode informative). The learner's memory is never reset:
the episode boundary is an input, a flag in the observation, ``[one-hot state | first step of
an episode]`` (obs_dim = S + 1). The feedback is the sampled reward.

``num_trials`` is the length of the whole task, as in every family (so a run config can
shorten any task the same way). When it is not a multiple of ``horizon`` the last episode is
cut short: it is then simply an episode with fewer steps, and the oracle, the regret and PSRL
all plan for the steps actually left (``steps_left``), which the learner can read from the
trial index it is shown.

Regret: ``expected_reward`` is mu(s_t, a_t); ``optimal_expected_reward`` is
mu(s_t, a_t) + V*_h(s_t) - Q*_h(s_t, a_t), with h the steps left in the episode. Their
difference, the optimal policy's advantage loss, is >= 0 and sums over an episode, in
expectation, to V*(s_0) minus the policy's return (the performance-difference lemma), so the
rollout's per-trial regret adds up to the true regret even though the states visited depend
on the policy. For the oracle it is zero at every step.

Priors (constants in the latent, so PSRL knows the prior): ``train``; ``sparse`` transitions
Dirichlet(0.1) (near-deterministic dynamics); ``shifted`` mean rewards ~ N(0, 1);
``noisy`` reward noise standard deviation 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.tasks.base import State, StepOut, TaskFamily, check
from mesalab.tasks.references.mdp_refs import PSRLPolicy, finite_horizon_q
from mesalab.tasks.sampling import sample_dirichlet


@dataclass
class MDPLatent:
    """The MDP, plus the prior's constants."""

    trans: Tensor  # (B, S, A, S)
    mean_reward: Tensor  # (B, S, A)
    trans_alpha: Tensor  # (B,) Dirichlet concentration of the transition rows
    reward_mean: Tensor  # (B,) prior mean of mu(s, a)
    reward_std: Tensor  # (B,) prior standard deviation of mu(s, a)
    noise_std: Tensor  # (B,) standard deviation of a reward around mu(s, a)


@dataclass
class MDPState(State):
    """Trial index, current state, and Q*_h of the true MDP for every steps-left h."""

    s: Tensor  # (B,) long
    q_star: Tensor  # (B, H, S, A): q_star[:, h - 1] is the optimal Q with h steps left


class TabularMDP(TaskFamily):
    """RL^2's random MDPs, several episodes per task, episode boundaries as inputs."""

    name = "tabular_mdp"
    kind = "decision"
    priors = ("train", "sparse", "shifted", "noisy")
    ideal_reference = "psrl"

    def __init__(
        self,
        num_trials: int = 100,
        horizon: int = 10,
        num_states: int = 10,
        num_actions: int = 5,
    ) -> None:
        for field, value, low in (
            ("num_trials", num_trials, 1),
            ("horizon", horizon, 1),
            ("num_states", num_states, 1),
            ("num_actions", num_actions, 2),
        ):
            check(isinstance(value, int) and value >= low, field, value, f"an int >= {low}")
        self.num_trials = num_trials
        self.horizon = horizon
        self.num_states = num_states
        self.num_actions = num_actions
        self.obs_dim = num_states + 1
        self.feedback_dim = 1

    @property
    def num_episodes(self) -> int:
        """Episodes per task, the last one possibly cut short."""
        return -(-self.num_trials // self.horizon)

    def prior_constants(self, prior: str) -> tuple[float, float, float, float]:
        """(transition alpha, reward prior mean, reward prior std, reward noise std)."""
        self.check_prior(prior)
        return (
            0.1 if prior == "sparse" else 1.0,
            0.0 if prior == "shifted" else 1.0,
            1.0,
            2.0 if prior == "noisy" else 1.0,
        )

    def sample_latent(self, n: int, generator: torch.Generator, prior: str = "train") -> MDPLatent:
        """Transition rows from a Dirichlet, mean rewards from a normal."""
        alpha, m0, s0, noise = self.prior_constants(prior)
        dev = self.device_of(generator)
        s, a = self.num_states, self.num_actions
        trans = sample_dirichlet(torch.full((n, s, a, s), alpha, device=dev), generator)
        mu = m0 + s0 * torch.randn(n, s, a, generator=generator, device=dev)
        full = lambda v: torch.full((n,), v, device=dev)
        return MDPLatent(
            trans=trans,
            mean_reward=mu,
            trans_alpha=full(alpha),
            reward_mean=full(m0),
            reward_std=full(s0),
            noise_std=full(noise),
        )

    def _start_state(self, n: int, generator: torch.Generator) -> Tensor:
        """A uniformly drawn start state per row."""
        return torch.randint(
            0, self.num_states, (n,), generator=generator, device=self.device_of(generator)
        )

    def reset(
        self, latent: MDPLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> MDPState:
        """Draw a start state; solve the true MDP once for the oracle and the regret."""
        b = latent.mean_reward.shape[0]
        if t is None:
            t = torch.zeros(b, dtype=torch.long, device=latent.mean_reward.device)
        q = finite_horizon_q(latent.trans, latent.mean_reward, self.horizon)
        return MDPState(t=t, s=self._start_state(b, generator), q_star=q)

    def steps_left(self, t: Tensor) -> Tensor:
        """Steps left in the episode including the current one, (B,) in 1..H.

        The task ends after ``num_trials`` trials, which may cut the last episode short.
        """
        return torch.minimum(self.horizon - t % self.horizon, self.num_trials - t).clamp(min=1)

    def observe(self, latent: MDPLatent, state: MDPState) -> Tensor:
        """``[one-hot state | first step of an episode]``, (B, S + 1)."""
        onehot = torch.nn.functional.one_hot(state.s, self.num_states).float()
        boundary = (state.t % self.horizon == 0).float()[:, None]
        return torch.cat([onehot, boundary], dim=1)

    def _q_now(self, state: MDPState) -> Tensor:
        """Q*_h(s_t, .) for the current steps left, (B, A)."""
        h = self.steps_left(state.t) - 1
        b = torch.arange(state.s.shape[0], device=state.s.device)
        return state.q_star[b, h, state.s]

    def step(
        self, latent: MDPLatent, state: MDPState, action: Tensor, generator: torch.Generator
    ) -> tuple[MDPState, StepOut]:
        """Gaussian reward, Dirichlet-drawn transition; a new start state after an episode."""
        # reshape, not einops: runs every trial, where einops' per-call work showed in an A/B
        a = action.long().reshape(-1)  # (B,)
        b = a.shape[0]
        rows = torch.arange(b, device=a.device)
        # Same draws whatever the action: reward noise, transition uniform, next start state.
        eps = torch.randn(b, generator=generator, device=a.device)
        u = torch.rand(b, generator=generator, device=a.device)
        restart = self._start_state(b, generator)
        mu = latent.mean_reward[rows, state.s, a]
        reward = mu + latent.noise_std * eps
        row = latent.trans[rows, state.s, a]  # (B, S)
        nxt = (row.cumsum(dim=1) < u[:, None]).sum(dim=1).clamp_max(self.num_states - 1)
        t_next = state.t + 1
        nxt = torch.where(t_next % self.horizon == 0, restart, nxt)
        q = self._q_now(state)  # (B, A)
        advantage_loss = q.max(dim=1).values - q[rows, a]
        out = StepOut(
            reward=reward,
            expected_reward=mu,
            optimal_expected_reward=mu + advantage_loss,
            feedback=reward[:, None],
            info={"episode": state.t // self.horizon},
        )
        return MDPState(t=t_next, s=nxt, q_star=state.q_star), out

    def oracle_action(self, latent: MDPLatent, state: MDPState) -> Tensor:
        """The optimal action of the true MDP given the steps left in the episode."""
        return self._q_now(state).argmax(dim=1)

    def references(self) -> dict:
        """Oracle, random, and posterior sampling for RL (PSRL)."""

        refs = super().references()
        refs["psrl"] = PSRLPolicy()
        return refs
