"""Simple choice models of a bandit agent, each a distribution over arms given the history.

A :class:`ChoiceModel` says, at every trial, a *target* distribution over the arms computed
from the episode so far; its choice probabilities are that target mixed with a uniform lapse,
``(1 - lapse) * target + lapse / K``. The same object teacher-forces on a recorded history
(:func:`target_probs`, for likelihoods) and acts as a policy (sampling, for known-answer data).

- :class:`BayesChoice`: the family's ideal reference (exact DP, Gittins, the dependent-bandit
  rule, the restless filter) as a one-hot target. A softmax over a one-hot value with inverse
  temperature beta is this lapse model with ``1 - lapse + lapse / K = e^beta / (e^beta + K - 1)``,
  so the fitted lapse is the fitted temperature. Ties are broken as the reference breaks them.
- :class:`ThompsonChoice`: the probability that arm a has the highest posterior draw, each arm's
  prior uniform on the family's range ``U(p_low, p_high)`` (``U(0, 1)``, i.e. Beta(1, 1), when the
  family has none), by quadrature on a grid over that range (exact up to the grid).
- :class:`WinStayLoseShift`: repeat a rewarded arm, leave an unrewarded one (uniformly to
  another arm); uniform on the first trial.
- :class:`LastK`: the arm that gave the most reward in the last ``k`` trials (ties shared
  uniformly; with no reward in the window, uniform): the reader's "pick the arm that gave the
  most reward in the last 10 trials, with 90% probability" is ``LastK(10)`` with
  ``P(that arm) = 1 - lapse + lapse / K = 0.9``.

Rescorla-Wagner is not here: it has its own policy, likelihood and fit in
:mod:`mesalab.tasks.references.rescorla_wagner`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor

from mesalab.tasks.base import Policy, StepContext, StepOut, TaskFamily, check
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.references.arm_counts import ArmCounts, add_outcome
from mesalab.tasks.rollout import Trajectory

#: quadrature points of the Thompson probability on (0, 1)
GRID = 1000


class ChoiceModel(Policy):
    """Target distribution over arms from the history, mixed with a uniform lapse."""

    def __init__(self, lapse: float = 0.0) -> None:
        check(0.0 <= lapse <= 1.0, "lapse", lapse, "a probability in [0, 1]")
        self.lapse = float(lapse)

    @abstractmethod
    def target(self, pstate: Any, ctx: StepContext) -> tuple[Tensor, Any]:
        """Target distribution over arms (B, K) before the lapse, and the policy state."""

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Sample from the lapse mixture of the target."""
        d, pstate = self.target(pstate, ctx)
        probs = (1.0 - self.lapse) * d + self.lapse / d.shape[1]
        return torch.multinomial(probs, 1, generator=generator)[:, 0], pstate


class BayesChoice(ChoiceModel):
    """The family's ideal reference policy as a one-hot target."""

    name = "bayes_optimal"

    def __init__(self, family: TaskFamily, lapse: float = 0.0) -> None:
        super().__init__(lapse)
        refs = family.references()
        ideal = family.ideal_reference
        check(ideal in refs, "ideal_reference", ideal, f"one of the references {list(refs)}")
        self.ref, self.k = refs[ideal], family.num_actions

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """The reference's own state, and a generator for its (deterministic) act."""
        return self.ref.reset(family, batch_size, generator), generator

    def target(self, pstate: Any, ctx: StepContext) -> tuple[Tensor, Any]:
        """One-hot of the reference's choice."""
        inner, gen = pstate
        a, inner = self.ref.act(inner, ctx, gen)
        return torch.nn.functional.one_hot(a.long(), self.k).float(), (inner, gen)

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """The reference learns from the trial as it would from its own choice."""
        inner, gen = pstate
        return self.ref.update(inner, ctx, action, out), gen


class CountModel(ChoiceModel):
    """A model whose state is the success/failure counts of every arm."""

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Zero counts."""
        zeros = torch.zeros(batch_size, family.num_actions, device=generator.device)
        return ArmCounts(zeros, zeros.clone())

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """Count the outcome."""
        return add_outcome(pstate, action, out.reward)


def thompson_probs(
    counts: ArmCounts, grid: int = GRID, p_range: tuple[float, float] = (0.0, 1.0)
) -> Tensor:
    """P(arm a's posterior draw is the highest), (B, K), by quadrature on a grid.

    Each arm's prior is uniform on ``p_range`` (``(0, 1)``: Beta(1, 1)), so its posterior after
    s successes and f failures is Beta(1 + s, 1 + f) truncated to that range.
    """
    lo, hi = float(p_range[0]), float(p_range[1])
    check(0.0 <= lo < hi <= 1.0, "p_range", p_range, "0 <= low < high <= 1")
    # Many rows share their counts (every row at trial 0, say): compute each distinct row once.
    rows, inverse = torch.unique(
        torch.cat([counts.successes, counts.failures], dim=1), dim=0, return_inverse=True
    )  # (U, 2K)
    k = counts.successes.shape[1]
    u = (torch.arange(grid, dtype=torch.float64, device=rows.device) + 0.5) / grid
    x = lo + (hi - lo) * u  # midpoints of the grid over the prior's range
    s, f = rows[:, :k].double()[..., None], rows[:, k:].double()[..., None]  # (U, K, 1)
    logpdf = s * x.log() + f * torch.log1p(-x)  # (U, K, G), up to the normalizer
    pmf = torch.softmax(logpdf, dim=-1)  # (U, K, G): the posterior as a grid distribution
    # P(X_b < x) at a grid point, counting half of the point's own mass (a midpoint rule)
    below = pmf.cumsum(-1) - pmf / 2  # (U, K, G)
    out = []
    for a in range(k):
        others = torch.ones_like(pmf[:, 0])  # (U, G)
        for b in range(k):
            if b != a:
                others = others * below[:, b]
        out.append((pmf[:, a] * others).sum(-1))
    p = torch.stack(out, dim=1)  # (U, K)
    return (p / p.sum(1, keepdim=True)).float()[inverse]  # (B, K)


def prior_range(family: TaskFamily) -> tuple[float, float]:
    """The range of each arm's uniform prior: the Bernoulli bandit's ``(p_low, p_high)``.

    Other families give ``(0, 1)``: the dependent bandit's arms are not independent (and a
    narrowed range there is mirrored, so an arm's marginal is not uniform on it either).
    """
    if isinstance(family, BernoulliBandit):
        return family.p_low, family.p_high
    return 0.0, 1.0


class ThompsonChoice(CountModel):
    """Thompson sampling's choice probabilities, each arm's prior uniform on a range.

    ``p_range=None`` (the default) takes the family's range at :meth:`reset`
    (:func:`prior_range`: the Bernoulli bandit's ``U(p_low, p_high)``, else Beta(1, 1)), so the
    model samples from the posterior the family's own prior implies.
    """

    name = "thompson"

    def __init__(self, lapse: float = 0.0, p_range: tuple[float, float] | None = None) -> None:
        super().__init__(lapse)
        self.p_range = p_range

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Zero counts; the prior's range from the family unless given."""
        self._range = self.p_range or prior_range(family)
        return super().reset(family, batch_size, generator)

    def target(self, pstate: Any, ctx: StepContext) -> tuple[Tensor, Any]:
        """The probability that each arm's posterior draw is the highest."""
        return thompson_probs(pstate, p_range=self._range), pstate


class WinStayLoseShift(ChoiceModel):
    """Stay after a reward, shift (uniformly to another arm) after none."""

    name = "win_stay_lose_shift"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """No previous trial: (last action, last reward) = (-1, 0)."""
        last = torch.full((batch_size,), -1, dtype=torch.long, device=generator.device)
        return last, torch.zeros(batch_size, device=generator.device), family.num_actions

    def target(self, pstate: Any, ctx: StepContext) -> tuple[Tensor, Any]:
        """One-hot on the last arm after a win; uniform over the others after a loss."""
        last, reward, k = pstate
        hit = torch.nn.functional.one_hot(last.clamp(min=0), k).float()  # (B, K)
        win = (reward > 0.5).float()[:, None]
        d = win * hit + (1.0 - win) * (1.0 - hit) / (k - 1)
        first = (last < 0)[:, None]
        return torch.where(first, torch.full_like(d, 1.0 / k), d), pstate

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """Remember the trial."""
        return action.long(), out.reward.float(), pstate[2]


class LastK(ChoiceModel):
    """The arm with the most reward in the last ``k`` trials; ties (and no reward) shared."""

    name = "last_k"

    def __init__(self, k: int = 10, lapse: float = 0.0) -> None:
        super().__init__(lapse)
        check(isinstance(k, int) and k >= 1, "k", k, "an int >= 1")
        self.k = k

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """An empty window: rewards per arm of the last k trials, (B, k, K) zeros."""
        return torch.zeros(batch_size, self.k, family.num_actions, device=generator.device)

    def target(self, pstate: Any, ctx: StepContext) -> tuple[Tensor, Any]:
        """Uniform over the arms with the most reward in the window."""
        total = pstate.sum(dim=1)  # (B, K)
        best = (total >= total.max(dim=1, keepdim=True).values).float()
        return best / best.sum(dim=1, keepdim=True), pstate

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """Slide the window: drop the oldest trial, append this one's reward on its arm."""
        hit = torch.nn.functional.one_hot(action.long(), pstate.shape[2]).float()  # (B, K)
        return torch.cat([pstate[:, 1:], (hit * out.reward.float()[:, None])[:, None]], dim=1)


def target_probs(model: ChoiceModel, family: TaskFamily, latent: Any, traj: Trajectory) -> Tensor:
    """The model's target distribution at every trial of recorded episodes, (N, T, K).

    Teacher-forced: the model sees the recorded choices and rewards, never its own.
    """
    n, t_len = traj.actions.shape
    gen = torch.Generator(device=traj.actions.device).manual_seed(0)
    pstate = model.reset(family, n, gen)
    out = []
    for t in range(t_len):
        state = family.reset(latent, gen, t=torch.full((n,), t, device=traj.actions.device))
        ctx = StepContext(
            obs=family.observe(latent, state), inputs=traj.inputs[:, t], latent=latent, state=state
        )
        d, pstate = model.target(pstate, ctx)
        out.append(d)
        step = StepOut(
            reward=traj.rewards[:, t],
            expected_reward=traj.expected_rewards[:, t],
            optimal_expected_reward=traj.optimal_expected_rewards[:, t],
            feedback=traj.feedback[:, t],
        )
        pstate = model.update(pstate, ctx, traj.actions[:, t], step)
    return torch.stack(out, dim=1)  # (N, T, K)
