"""Freeze and evaluate: the learner and every reference on the same held-out tasks.

Every policy is rolled out through ``mesalab.studies.policy.metrics.rollout_stats`` with the same
seed, so all of them face the same tasks and the same environment noise: the comparison is paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mesalab.archs.base import Learner
from mesalab.studies.checkpoint import weights_digest
from mesalab.studies.policy.learner_policy import LearnerPolicy
from mesalab.studies.policy.location import location_metrics
from mesalab.studies.policy.metrics import evaluate_references, rollout_stats, summarize
from mesalab.studies.record import Frozen, Location, OODEntry, Summary, from_dict
from mesalab.tasks.base import TaskFamily, index_batch
from mesalab.tasks.distributions import TaskDistribution, stream_generator


@dataclass
class Evaluation:
    """The post-freeze evaluation of one learner: the record's eval-side fields."""

    eval: Summary
    references: dict[str, Summary]
    frozen: Frozen
    location: Location | None
    ood: dict[str, OODEntry]


def curve_of(summary: Summary) -> np.ndarray:
    """The per-trial curve of a summary (reward, or loss for prediction tasks)."""
    return np.asarray(summary.curve)


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
) -> Summary:
    """Frozen rollout of the learner under ``torch.inference_mode``, summarised."""
    was_training = learner.training
    learner.eval()
    with torch.inference_mode():
        stats, _ = rollout_stats(family, latent, LearnerPolicy(learner, greedy=greedy), seed)
    learner.train(was_training)
    return from_dict(
        Summary, summarize(stats, family.kind, seed=seed, ideal_improvement=ideal_improvement)
    )


def _ratio(value: float, base: float, base_lo: float) -> float | None:
    """``value / base`` where the base improvement is clearly positive (interval above 0)."""
    if not (np.isfinite(base) and base_lo > 0):
        return None
    return float(value / base)


def evaluate_ood(
    learner: Learner,
    family: TaskFamily,
    distribution: TaskDistribution,
    num_tasks: int,
    seed: int,
    greedy: bool,
    device: torch.device,
    in_dist: Summary,
    ideal_in: Summary | None,
) -> dict[str, OODEntry]:
    """The learner and the family's ideal reference on every named out-of-distribution prior.

    Per prior (``family.priors[1:]``, tasks from the ``ood`` seed stream, never a pool task):
    the learner's improvement, the ideal's, their ratio (``normalized_improvement``), and what
    is kept of the in-distribution improvement: ``kept`` = OOD / in-distribution improvement
    of the learner, ``ideal_kept`` the same for the ideal (some priors leave less to learn:
    near-chance arms), ``kept_vs_ideal`` = kept / ideal_kept (1 = keeps as much as an ideal
    observer would). A ratio is ``None`` where its in-distribution improvement's 95%
    interval does not lie above 0 (there is nothing to keep).
    """
    gen = stream_generator(seed, "ood", device)
    ideal_policy = family.references().get(family.ideal_reference)
    out: dict[str, OODEntry] = {}
    for prior in family.priors[1:]:
        latent = distribution.heldout(num_tasks, gen, prior=prior)
        ideal_imp = None
        if ideal_policy is not None:
            with torch.inference_mode():
                stats, _ = rollout_stats(family, latent, ideal_policy, seed)
            ideal_imp = float(stats.improvement.mean())
        ev = evaluate_learner(learner, family, latent, seed, greedy, ideal_imp)
        kept = _ratio(ev.improvement, in_dist.improvement, in_dist.improvement_ci95[0])
        ideal_kept = None
        if ideal_in is not None and ideal_imp is not None:
            ideal_kept = _ratio(ideal_imp, ideal_in.improvement, ideal_in.improvement_ci95[0])
        out[prior] = OODEntry(
            num_tasks=ev.num_tasks,
            improvement=ev.improvement,
            improvement_ci95=ev.improvement_ci95,
            regret=ev.regret,
            ideal_improvement=ideal_imp,
            normalized_improvement=ev.normalized_improvement,
            kept=kept,
            ideal_kept=ideal_kept,
            kept_vs_ideal=(
                kept / ideal_kept if kept is not None and ideal_kept not in (None, 0.0) else None
            ),
        )
    return out


def evaluate_location(
    learner: Learner,
    family: TaskFamily,
    distribution: TaskDistribution,
    latent: Any,
    seed: int,
    greedy: bool,
) -> Location | None:
    """The location-learning index of the frozen learner (``None`` without a training pool)."""
    was_training = learner.training
    learner.eval()
    with torch.inference_mode():
        out = location_metrics(
            LearnerPolicy(learner, greedy=greedy), family, distribution, latent, seed
        )
    learner.train(was_training)
    return None if out is None else from_dict(Location, out)


def summary_scalars(location: Location | None, ood: dict[str, OODEntry]) -> dict[str, float]:
    """Location and OOD numbers for the W&B run summary (``location/*``, ``ood/<prior>/*``)."""
    out: dict[str, float] = {}
    if location is not None and location.index is not None:
        out["location/index"] = location.index
        out["location/index_lo"], out["location/index_hi"] = location.index_ci95 or (None, None)
    for prior, m in ood.items():
        for key in ("improvement", "normalized_improvement", "kept", "kept_vs_ideal"):
            if getattr(m, key) is not None:
                out[f"ood/{prior}/{key}"] = getattr(m, key)
    return out


def freeze_and_evaluate(
    learner: Learner,
    family: TaskFamily,
    distribution: TaskDistribution,
    num_tasks: int,
    seed: int,
    greedy: bool,
    device: torch.device,
    ood_tasks: int = 0,
    location_tasks: int = 0,
) -> Evaluation:
    """The post-freeze evaluation of DESIGN.md: learner, references, and the frozen check.

    Also, with ``location_tasks`` > 0, the location-learning index on the first of the same
    held-out tasks (``mesalab.studies.policy.location``; ``None`` without a pool), and with
    ``ood_tasks`` > 0 the evaluation on the family's out-of-distribution priors
    (:func:`evaluate_ood`).
    """
    for p in learner.parameters():
        p.requires_grad_(False)
    before = weights_digest(learner)
    latent = heldout_tasks(distribution, num_tasks, seed, device)
    with torch.inference_mode():
        refs, _ = evaluate_references(family, latent, seed, keep_trajectories=False)
    references = {k: from_dict(Summary, v) for k, v in refs.items()}
    ideal_in = references.get(family.ideal_reference)
    ideal = ideal_in.improvement if ideal_in is not None else None
    ev = evaluate_learner(learner, family, latent, seed, greedy, ideal)
    location = None
    if location_tasks > 0:
        part = index_batch(latent, slice(0, min(location_tasks, num_tasks)))
        location = evaluate_location(learner, family, distribution, part, seed, greedy)
    ood = {}
    if ood_tasks > 0:
        ood = evaluate_ood(
            learner, family, distribution, ood_tasks, seed, greedy, device, ev, ideal_in
        )
    after = weights_digest(learner)
    frozen = Frozen(digest_before=before, digest_after=after, verified=before == after)
    return Evaluation(ev, references, frozen, location, ood)
