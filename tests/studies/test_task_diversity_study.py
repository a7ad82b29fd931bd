"""The task-diversity studies: their grids, and a sample of their jobs composes and validates."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from mesalab.studies.sweep import canonical_job
from mesalab.studies.validation import check_config
from tests.studies.test_sweep import _sweep_jobs


def test_related_ignores_pool_size() -> None:
    assert canonical_job(["condition.distribution=related", "condition.pool_size=8"]) == [
        "condition.distribution=related"
    ]
    assert "condition.pool_size=8" in canonical_job(
        ["condition.distribution=pool", "condition.pool_size=8"]
    )


@pytest.mark.parametrize(
    "study,ks,archs,seeds",
    [
        ("task_diversity_bandit", 11, 5, 3),
        ("task_diversity_regression", 16, 5, 3),
        ("task_diversity_quick", 5, 1, 2),
        ("task_diversity_regression_quick", 8, 1, 1),
    ],
)
def test_grid(study: str, ks: int, archs: int, seeds: int, make_cfg) -> None:
    jobs = _sweep_jobs(study)
    assert len(jobs) == archs * (ks + 1) * seeds  # every K, plus related once
    sizes = sorted({int(o.split("=")[1]) for j in jobs for o in j if "pool_size" in o})
    assert sizes[0] == 1 and all(k & (k - 1) == 0 for k in sizes)  # powers of 2 from 1
    # the smallest and the largest pool, and related, of the first arch compose and validate
    arch = jobs[0][[o.startswith("arch=") for o in jobs[0]].index(True)]
    picks = [j for j in jobs if arch in j and "seed=0" in j]
    picks = [picks[0], picks[-2], picks[-1]] if len(picks) > 2 else picks
    for job in picks:
        cfg = make_cfg(f"study={study}", *job)
        check_config(cfg)
        family = instantiate(cfg.task.family)
        assert family.supports_discrete_posterior and family.prior_observer() is not None
    if study == "task_diversity_regression":
        assert (family.dim, family.num_trials, family.noise) == (8, 16, 0.5)
        assert sizes[-1] == 2**15 and cfg.training.name == "supervised"
    if study == "task_diversity_bandit":
        assert sizes[-1] == 2**10 and cfg.training.name == "rl"
