"""Reference rollouts shared by the analysis tests (no training needed)."""

from __future__ import annotations

from typing import Any

import torch

from mesalab.studies.policy.metrics import rollout_stats
from mesalab.tasks import TaskDistribution, make_family, stream_generator
from mesalab.tasks.rollout import Policy, Trajectory


def reference_trajectories(
    name: str,
    num_tasks: int,
    seed: int = 0,
    policies: dict[str, Policy] | None = None,
    **family_kwargs: Any,
) -> tuple[Any, dict[str, Trajectory]]:
    """The family and every reference's (or ``policies``') rollouts on the same tasks."""
    family = make_family(name, **family_kwargs)
    latent = TaskDistribution(family, "related").heldout(num_tasks, stream_generator(seed, "eval"))
    pols = policies if policies is not None else family.references()
    trajs = {}
    with torch.no_grad():
        for key, pol in pols.items():
            trajs[key] = rollout_stats(family, latent, pol, seed, keep_trajectory=True)[1]
    return family, trajs
