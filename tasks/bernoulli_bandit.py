"""k independent Bernoulli arms, p_i ~ U(p_low, p_high) i.i.d. (default U(0, 1)).

Priors (the first trains, the others are named out-of-distribution tests)::

    train    p_i ~ U(p_low, p_high), independently per arm
    full     p_i ~ U(0, 1), whatever the training range
    close    c ~ U(0.05, 0.95), p_i ~ U(c - 0.05, c + 0.05): all arms within 0.1 of each
             other, so telling them apart takes many pulls
    low      p_i ~ U(0, 0.25): a poor environment, most pulls fail
    high     p_i ~ U(0.75, 1): a rich environment, most pulls succeed
    outside  p_i uniform on [0, 1] minus [p_low, p_high]: a range never trained on (only
             offered when the training range is narrower than [0, 1])

``low`` and ``high`` are subsets of the default training range; they become never-trained
ranges when the family is built with, say, ``p_low=0.25, p_high=0.75``.

"More arms than trained" is not a prior of this family: a learner's input and output widths
are fixed by ``num_actions`` when it is built, so testing a k-arm learner on k + 1 arms needs a
second family (``BernoulliBandit(num_arms=k + 1)``) and a learner whose input layout can
take it, which is a study design choice rather than a prior.

The exact Bayes-optimal policy (finite-horizon dynamic programming over success/failure
counts) is tractable for two arms only; with more arms the ideal reference is Gittins.
"""

from __future__ import annotations

import torch

from mesalab.tasks.bandit import (
    BanditLatent,
    StationaryBandit,
    check_unit_range,
    complement_intervals,
    sample_intervals,
)
from mesalab.tasks.base import Policy
from mesalab.tasks.references import bandit_references
from mesalab.tasks.references.bayes_dp import TwoArmDynamicProgramming
from mesalab.tasks.references.discrete_posterior import ArmPosteriorGreedy
from mesalab.tasks.references.gittins import GittinsIndex

CLOSE_HALF_WIDTH = 0.05


class BernoulliBandit(StationaryBandit):
    """k independent arms with reward probabilities drawn uniformly from a training range."""

    name = "bernoulli_bandit"

    def __init__(
        self, num_arms: int = 2, num_trials: int = 100, p_low: float = 0.0, p_high: float = 1.0
    ) -> None:
        super().__init__(num_arms=num_arms, num_trials=num_trials)
        check_unit_range(p_low, p_high)
        self.p_low, self.p_high = float(p_low), float(p_high)
        self.outside = complement_intervals([(self.p_low, self.p_high)])
        # Instance attributes on purpose: both depend on the constructor's arguments.
        self.priors = ("train", "full", "close", "low", "high") + (
            ("outside",) if self.outside else ()
        )
        self.ideal_reference = "bayes_optimal" if num_arms == 2 else "gittins"

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> BanditLatent:
        """Tasks from the named prior: probs (n, num_arms)."""
        self.check_prior(prior)
        shape = (n, self.num_arms)
        if prior == "outside":
            return BanditLatent(probs=sample_intervals(self.outside, shape, generator))
        u = torch.rand(shape, generator=generator, device=generator.device)
        if prior == "close":
            w = CLOSE_HALF_WIDTH
            c = w + (1 - 2 * w) * torch.rand(n, 1, generator=generator, device=generator.device)
            return BanditLatent(probs=c + w * (2 * u - 1))
        lo, hi = {
            "train": (self.p_low, self.p_high),
            "full": (0.0, 1.0),
            "low": (0.0, 0.25),
            "high": (0.75, 1.0),
        }[prior]
        return BanditLatent(probs=lo + (hi - lo) * u)

    def prior_observer(self) -> Policy:
        """Greedy on every arm's exact posterior mean under the training prior."""

        return ArmPosteriorGreedy()

    def references(self) -> dict[str, Policy]:
        """Oracle, random, the classic learners, and the exact DP policy when k = 2.

        Gittins, the ideal reference from 3 arms on, knows the family's range: its prior is
        U(p_low, p_high) per arm (Thompson, UCB and the rest keep their textbook form).
        """

        refs = bandit_references()
        refs["gittins"] = GittinsIndex(p_low=self.p_low, p_high=self.p_high)
        if self.num_arms == 2:
            refs["bayes_optimal"] = TwoArmDynamicProgramming()
        return refs
