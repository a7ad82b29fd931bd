"""Reference policies, batched, on the same rollout API as learners.

``POLICIES`` holds the family-agnostic ones (built by name with :func:`make_policy`). The
Bayes-optimal policy is specific to each family: get it, with the rest of a family's set,
from ``family.references()``.

The count-based learners (thompson, ucb1, epsilon_greedy, gittins) and rescorla_wagner treat
arms as independent on every family, the dependent and restless bandits included: they are
the classic learners of the literature, and the gap between them and ``bayes_optimal``
(which does use p2 = 1 - p1 and the jumps) measures what that structure is worth.
"""

from __future__ import annotations

from mesalab.tasks.base import OraclePolicy, RandomPolicy, check
from mesalab.tasks.references.epsilon_greedy import EpsilonGreedy
from mesalab.tasks.references.gittins import GittinsIndex
from mesalab.tasks.references.rescorla_wagner import RescorlaWagner, fit_rescorla_wagner
from mesalab.tasks.references.thompson import ThompsonSampling
from mesalab.tasks.references.ucb import UCB1
from mesalab.tasks.rollout import Policy

POLICIES: dict[str, type[Policy]] = {
    "oracle": OraclePolicy,
    "random": RandomPolicy,
    "thompson": ThompsonSampling,
    "ucb1": UCB1,
    "epsilon_greedy": EpsilonGreedy,
    "gittins": GittinsIndex,
    "rescorla_wagner": RescorlaWagner,
}


def make_policy(name: str, **kwargs: object) -> Policy:
    """Build a reference policy by name."""
    check(name in POLICIES, "policy", name, f"one of {sorted(POLICIES)}")
    return POLICIES[name](**kwargs)


def bandit_references() -> dict[str, Policy]:
    """The family-agnostic references of every Bernoulli bandit, default parameters."""
    return {name: cls() for name, cls in POLICIES.items()}


__all__ = ["POLICIES", "bandit_references", "fit_rescorla_wagner", "make_policy"]
