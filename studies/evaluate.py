"""Freeze and evaluate: the learner and every reference on the same held-out tasks.

Every policy is rolled out through ``analysis.metrics.rollout_stats`` with the same seed, so
all of them face the same tasks and the same environment noise: the comparison is paired.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from analysis.metrics import evaluate_references, normalized_improvement, rollout_stats, summarize
from archs.base import Learner
from studies.checkpoint import weights_digest
from studies.learner_policy import LearnerPolicy
from tasks.base import TaskFamily
from tasks.distributions import TaskDistribution, stream_generator


def curve_of(summary: dict[str, Any]) -> np.ndarray:
    """The per-trial curve of a summary (reward, or loss for prediction tasks)."""
    return np.asarray(summary.get("reward_curve", summary.get("loss_curve")))


def heldout_tasks(distribution: TaskDistribution, n: int, seed: int, device: torch.device) -> Any:
    """Held-out latents from the evaluation stream of ``seed`` (never a training pool task)."""
    return distribution.heldout(n, stream_generator(seed, "eval", device))


def evaluate_learner(
    learner: Learner,
    family: TaskFamily,
    latent: Any,
    seed: int,
    greedy: bool,
    ideal_improvement: float | None = None,
) -> dict[str, Any]:
    """Frozen rollout of the learner under ``torch.inference_mode``, summarised."""
    was_training = learner.training
    learner.eval()
    with torch.inference_mode():
        stats, _ = rollout_stats(family, latent, LearnerPolicy(learner, greedy=greedy), seed)
    learner.train(was_training)
    out = summarize(stats, family.kind, seed=seed)
    out["normalized_improvement"] = normalized_improvement(out["improvement"], ideal_improvement)
    return out


def freeze_and_evaluate(
    learner: Learner,
    family: TaskFamily,
    distribution: TaskDistribution,
    num_tasks: int,
    seed: int,
    greedy: bool,
    device: torch.device,
) -> dict[str, Any]:
    """The post-freeze evaluation of DESIGN.md: learner, references, and the frozen check."""
    for p in learner.parameters():
        p.requires_grad_(False)
    before = weights_digest(learner)
    latent = heldout_tasks(distribution, num_tasks, seed, device)
    with torch.inference_mode():
        refs, _ = evaluate_references(family, latent, seed, keep_trajectories=False)
    ideal = refs.get(family.ideal_reference, {}).get("improvement")
    ev = evaluate_learner(learner, family, latent, seed, greedy, ideal)
    after = weights_digest(learner)
    return {
        "eval": ev,
        "references": refs,
        "frozen": {"digest_before": before, "digest_after": after, "verified": before == after},
    }
