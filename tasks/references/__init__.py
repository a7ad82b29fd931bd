"""Reference policies, batched, on the same rollout API as learners."""

from __future__ import annotations

from tasks.base import check
from tasks.references.simple import OraclePolicy, RandomPolicy
from tasks.rollout import Policy

POLICIES: dict[str, type[Policy]] = {
    "oracle": OraclePolicy,
    "random": RandomPolicy,
}


def make_policy(name: str, **kwargs: object) -> Policy:
    """Build a reference policy by name."""
    check(name in POLICIES, "policy", name, f"one of {sorted(POLICIES)}")
    return POLICIES[name](**kwargs)
