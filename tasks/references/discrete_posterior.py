"""Bayes observers for "task location or task learning?": a finite prior, and bandit arm means.

:class:`DiscretePosterior` is the Bayes observer whose prior is a finite set of K candidate
tasks with prior weights: the K tasks of a training pool (uniform weights) is the
*training-prior* observer of a ``pool(K)`` run, which can only ever "locate" one of the tasks
it was trained on. Any family that implements ``log_likelihood`` and ``mixture_mean``
(``TaskFamily.supports_discrete_posterior``) gets it. The posterior is kept in log space,
float64, renormalised every step, (B, K): memory is B x K x 8 bytes, so evaluate large pools
in chunks of tasks.

How it acts: prediction families predict the posterior mean or predictive (Bayes-optimal for
squared error and log loss); decision families are *greedy on the posterior mean reward* of
each arm (ties to the lowest index). For the dependent bandit that is Bayes-optimal under any
prior (every pull is equally informative about p1, see ``bayes_dependent``); for independent
arms it is the myopic rule, not the Bayes-optimal one (the DP), and it is chosen on purpose:
the family-prior observer of a bandit (``family.prior_observer()``) is greedy on its posterior
mean too, so the two observers that the location index compares differ *only* in their prior.

:class:`ArmPosteriorGreedy` is that family-prior observer for independent Bernoulli arms with
p_i ~ U(p_low, p_high): the exact posterior mean of every arm from its counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import repeat
from torch import Tensor

from mesalab.tasks.base import StepOut, TaskFamily, batch_size_of, check, tree_map
from mesalab.tasks.references.arm_counts import ArmCounts, CountPolicy
from mesalab.tasks.references.bayes_dp import predictive_success
from mesalab.tasks.rollout import Policy, StepContext


@dataclass
class PosteriorState:
    """Normalised log posterior over the candidates, (B, K) float64."""

    log_post: Tensor

    @property
    def weights(self) -> Tensor:
        """Posterior probabilities, (B, K)."""
        return self.log_post.exp()


class DiscretePosterior(Policy):
    """Bayes observer over a finite set of candidate tasks (a latent batch of K tasks)."""

    name = "discrete_posterior"

    def __init__(self, candidates: object, log_prior: Tensor | None = None) -> None:
        k = batch_size_of(candidates)
        check(k >= 1, "candidates", k, "at least one task")
        if log_prior is not None:
            check(
                tuple(log_prior.shape) == (k,),
                "log_prior",
                tuple(log_prior.shape),
                f"shape ({k},), one log weight per candidate",
            )
        self.candidates = candidates
        self.num_candidates = k
        lp = torch.zeros(k, dtype=torch.float64) if log_prior is None else log_prior.double()
        self.log_prior = lp - torch.logsumexp(lp, dim=0)
        self.family: TaskFamily | None = None

    def reset(
        self, family: TaskFamily, batch_size: int, generator: torch.Generator
    ) -> PosteriorState:
        """The prior for every episode; moves the candidates to the generator's device."""
        check(
            family.supports_discrete_posterior,
            "task",
            family.name,
            "a family that supports a discrete posterior (supports_discrete_posterior: "
            "bandits, linear regression, Markov chains without drift)",
        )
        dev = generator.device
        self.family = family
        self.candidates = tree_map(lambda x: x.to(dev), self.candidates)
        lp = self.log_prior.to(dev)
        return PosteriorState(repeat(lp, "k -> b k", b=batch_size).clone())  # (B, K)

    def posterior_mean(self, pstate: PosteriorState, ctx: StepContext) -> Tensor:
        """What the observer acts on: each arm's mean reward, or the Bayes prediction, (B, A)."""
        return self.family.mixture_mean(self.candidates, pstate.weights, ctx.state)

    def act(
        self, pstate: PosteriorState, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, PosteriorState]:
        """Greedy on the posterior mean (decisions) or predict it (predictions)."""
        mean = self.posterior_mean(pstate, ctx)
        if self.family.kind == "decision":
            return mean.argmax(dim=1), pstate
        return mean.float(), pstate

    def update(
        self, pstate: PosteriorState, ctx: StepContext, action: Tensor, out: StepOut
    ) -> PosteriorState:
        """Bayes' rule with the family's likelihood of what was revealed."""
        log_post = pstate.log_post + self.family.log_likelihood(
            self.candidates, ctx.state, action, out
        )
        return PosteriorState(log_post - torch.logsumexp(log_post, dim=1, keepdim=True))


def pool_observer(family: TaskFamily, pool: object) -> DiscretePosterior:
    """The training-prior observer of a ``pool(K)`` run: uniform prior over its K tasks."""
    obs = DiscretePosterior(pool)
    obs.name = "train_prior"
    return obs


class ArmPosteriorGreedy(CountPolicy):
    """Greedy on the exact posterior mean of every arm, p_i ~ U(p_low, p_high) independently."""

    name = "family_prior"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> ArmCounts:
        """Table of posterior means by (successes, failures) for this horizon and range."""
        lo, hi = getattr(family, "p_low", 0.0), getattr(family, "p_high", 1.0)
        table = predictive_success(family.num_trials, lo, hi)  # (T + 1, T + 1)
        self.table = torch.as_tensor(table, dtype=torch.float64, device=generator.device)
        return super().reset(family, batch_size, generator)

    def posterior_mean(self, pstate: ArmCounts, ctx: StepContext) -> Tensor:
        """Posterior mean reward probability of every arm, (B, A)."""
        last = self.table.shape[0] - 1
        s = pstate.successes.long().clamp_max(last)
        f = pstate.failures.long().clamp_max(last)
        return self.table[s, f]

    def act(
        self, pstate: ArmCounts, ctx: StepContext, generator: torch.Generator
    ) -> tuple[Tensor, ArmCounts]:
        """The arm with the highest posterior mean (ties to the lowest index)."""
        return self.posterior_mean(pstate, ctx).argmax(dim=1), pstate
