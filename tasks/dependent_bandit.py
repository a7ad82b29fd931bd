"""Two arms with p2 = 1 - p1 (Wang et al. 2016, "Learning to reinforcement learn").

Training prior, by variant::

    uniform  p1 ~ U(p_low, p_high), mirrored to 1 - p1 with probability 1/2 (default range
             [0, 1], where the mirror changes nothing: p1 ~ U(0, 1))
    easy     p1 in {0.1, 0.9}      medium  p1 in {0.25, 0.75}      hard  p1 in {0.4, 0.6}

The mirror keeps every prior symmetric under swapping the arms, so neither arm is better a
priori and a narrowed range such as ``p_low=0, p_high=0.4`` trains on p1 in [0, 0.4] or
[0.6, 1] and holds the band around chance out.

Out-of-distribution test priors::

    full         p1 ~ U(0, 1), whatever the variant or range
    near_chance  p1 ~ U(0.45, 0.55)
    extreme      p1 within 0.05 of 0 or 1
    outside      p1 uniform on [0, 1] minus the (mirrored) training range: never trained on;
                 offered only for the uniform variant with a range narrower than [0, 1]

``near_chance`` and ``extreme`` are never-trained ranges whenever the training range excludes
them (e.g. ``p_low=0.0, p_high=0.4`` for ``near_chance``; ``p_low=0.1, p_high=0.9`` for
``extreme``).

Every prior here is symmetric under p1 -> 1 - p1, which makes the Bayes-optimal policy the
same simple rule for all of them (see :mod:`mesalab.tasks.references.bayes_dependent`).
"""

from __future__ import annotations

import numpy as np
import torch

from mesalab.tasks.bandit import (
    BanditLatent,
    StationaryBandit,
    check_unit_range,
    complement_intervals,
    gauss_legendre,
    merge_intervals,
    sample_intervals,
)
from mesalab.tasks.base import Policy, check
from mesalab.tasks.references import bandit_references
from mesalab.tasks.references.bayes_dependent import DependentBayesOptimal
from mesalab.tasks.references.discrete_posterior import DiscretePosterior

VARIANTS: dict[str, tuple[float, float] | None] = {
    "uniform": None,
    "easy": (0.1, 0.9),
    "medium": (0.25, 0.75),
    "hard": (0.4, 0.6),
}


class DependentBandit(StationaryBandit):
    """Two anti-correlated arms: every pull is informative about both."""

    name = "dependent_bandit"

    def __init__(
        self,
        num_trials: int = 100,
        variant: str = "uniform",
        num_arms: int = 2,
        p_low: float = 0.0,
        p_high: float = 1.0,
    ) -> None:
        check(num_arms == 2, "num_arms", num_arms, "2 (the dependent bandit has two arms)")
        check(variant in VARIANTS, "variant", variant, f"one of {list(VARIANTS)}")
        super().__init__(num_arms=2, num_trials=num_trials)
        check_unit_range(p_low, p_high)
        narrowed = (p_low, p_high) != (0.0, 1.0)
        check(
            variant == "uniform" or not narrowed,
            "p_low/p_high",
            (p_low, p_high),
            f"(0.0, 1.0) for variant={variant!r} (a range applies to variant='uniform' only)",
        )
        self.variant = variant
        self.p_low, self.p_high = float(p_low), float(p_high)
        self.train_intervals = merge_intervals(
            [(self.p_low, self.p_high), (1.0 - self.p_high, 1.0 - self.p_low)]
        )
        self.outside = complement_intervals(self.train_intervals) if narrowed else []
        # An instance attribute: "outside" exists only for a narrowed range.
        self.priors = ("train", "full", "near_chance", "extreme") + (
            ("outside",) if self.outside else ()
        )

    def sample_p1(self, n: int, generator: torch.Generator, prior: str) -> torch.Tensor:
        """Draw p1 for ``n`` tasks from the named prior."""
        self.check_prior(prior)
        dev = generator.device
        if prior == "outside":
            return sample_intervals(self.outside, (n,), generator)
        if prior == "train" and self.variant == "uniform":
            # One uniform for the value and one for the mirror, whatever the range.
            u = torch.rand(n, generator=generator, device=dev)
            mirror = torch.rand(n, generator=generator, device=dev) < 0.5
            p1 = self.p_low + (self.p_high - self.p_low) * u
            return torch.where(mirror, 1.0 - p1, p1)
        u = torch.rand(n, generator=generator, device=dev)
        if prior == "train":
            lo, hi = VARIANTS[self.variant]
            return torch.where(u < 0.5, torch.full_like(u, lo), torch.full_like(u, hi))
        if prior == "full":
            return u
        if prior == "near_chance":
            return 0.45 + 0.1 * u
        # extreme: within 0.05 of 0 or 1
        return torch.where(u < 0.5, 0.1 * u, 0.9 + 0.1 * u)

    def num_distinct_tasks(self, prior: str = "train") -> int | None:
        """Two tasks (p1 = lo or hi) for the easy/medium/hard training priors, else None."""
        self.check_prior(prior)
        return 2 if prior == "train" and self.variant != "uniform" else None

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> BanditLatent:
        """Tasks from the named prior: probs (n, 2) with p2 = 1 - p1."""
        p1 = self.sample_p1(n, generator, prior)
        return BanditLatent(probs=torch.stack([p1, 1.0 - p1], dim=1))

    def prior_quadrature(self) -> tuple[BanditLatent, torch.Tensor]:
        """The training prior as weighted candidate tasks: (latent, log prior weights).

        Exact for the discrete posterior: the two-point variants are their two tasks; the
        uniform variant is Gauss-Legendre quadrature on [p_low, p_high] and on its mirror
        (weight 1/2 each), whose n = T // 2 + 4 nodes integrate the likelihood
        p^k (1 - p)^m (degree <= T) times p exactly.
        """
        if self.variant == "uniform":
            n = self.num_trials // 2 + 4
            ranges = [(self.p_low, self.p_high), (1.0 - self.p_high, 1.0 - self.p_low)]
            if ranges[0] == ranges[1]:
                ranges = ranges[:1]
            parts = [gauss_legendre(lo, hi, n) for lo, hi in ranges]
            p1 = np.concatenate([x for x, _ in parts])
            w = np.concatenate([wt / len(parts) for _, wt in parts])
        else:
            lo, hi = VARIANTS[self.variant]
            p1, w = np.array([lo, hi]), np.array([0.5, 0.5])
        p1_t = torch.as_tensor(p1, dtype=torch.float32)
        latent = BanditLatent(probs=torch.stack([p1_t, 1.0 - p1_t], dim=1))
        return latent, torch.as_tensor(np.log(w), dtype=torch.float64)

    def prior_observer(self) -> Policy:
        """Greedy on the posterior mean of p1 under the training prior (exact quadrature)."""

        obs = DiscretePosterior(*self.prior_quadrature())
        obs.name = "family_prior"
        return obs

    def references(self) -> dict[str, Policy]:
        """Oracle, random, the classic learners, and the exact Bayes-optimal rule."""

        refs = bandit_references()
        refs["bayes_optimal"] = DependentBayesOptimal()
        return refs
