"""Two arms with p2 = 1 - p1 (Wang et al. 2016, "Learning to reinforcement learn").

Variants: ``uniform`` p1 ~ U(0, 1); ``easy`` p1 in {0.1, 0.9}; ``medium`` {0.25, 0.75};
``hard`` {0.4, 0.6}. Test priors: ``full`` p1 ~ U(0, 1) whatever the variant;
``near_chance`` p1 ~ U(0.45, 0.55); ``extreme`` p1 within 0.05 of 0 or 1.
"""

from __future__ import annotations

import torch

from tasks.bandit import BanditLatent, StationaryBandit
from tasks.base import check

VARIANTS: dict[str, tuple[float, float] | None] = {
    "uniform": None,
    "easy": (0.1, 0.9),
    "medium": (0.25, 0.75),
    "hard": (0.4, 0.6),
}


class DependentBandit(StationaryBandit):
    """Two anti-correlated arms: every pull is informative about both."""

    name = "dependent_bandit"
    priors = ("train", "full", "near_chance", "extreme")

    def __init__(self, num_trials: int = 100, variant: str = "uniform", num_arms: int = 2) -> None:
        check(num_arms == 2, "num_arms", num_arms, "2 (the dependent bandit has two arms)")
        check(variant in VARIANTS, "variant", variant, f"one of {list(VARIANTS)}")
        super().__init__(num_arms=2, num_trials=num_trials)
        self.variant = variant

    def sample_p1(self, n: int, generator: torch.Generator, prior: str) -> torch.Tensor:
        """Draw p1 for ``n`` tasks from the named prior."""
        self.check_prior(prior)
        dev = generator.device
        u = torch.rand(n, generator=generator, device=dev)
        if prior == "train" and self.variant != "uniform":
            lo, hi = VARIANTS[self.variant]
            return torch.where(u < 0.5, torch.full_like(u, lo), torch.full_like(u, hi))
        if prior in ("train", "full"):
            return u
        if prior == "near_chance":
            return 0.45 + 0.1 * u
        # extreme: within 0.05 of 0 or 1
        return torch.where(u < 0.5, 0.1 * u, 0.9 + 0.1 * u)

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> BanditLatent:
        """Tasks from the named prior: probs (n, 2) with p2 = 1 - p1."""
        p1 = self.sample_p1(n, generator, prior)
        return BanditLatent(probs=torch.stack([p1, 1.0 - p1], dim=1))
