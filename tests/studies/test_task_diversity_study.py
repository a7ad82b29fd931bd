"""The task-diversity studies: their grids, and a sample of their jobs composes and validates."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from hydra_plugins.mesalab_sweeper.dedup_sweeper import expand
from mesalab.studies.load import build_objects
from mesalab.studies.sweep import canonical_job, dedupe_jobs, group_jobs
from mesalab.studies.validation import check_config
from tests.studies.conftest import CONFIG_DIR
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
        ("task_diversity_regression", 16, 2, 3),
        ("task_diversity_regression_anchor", 16, 1, 3),
        ("task_diversity_regression_wide", 16, 1, 3),
        ("task_diversity_bernoulli_low", 11, 4, 3),
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
    if study.startswith("task_diversity_regression") and "quick" not in study:
        assert (family.dim, family.num_trials, family.noise) == (8, 16, 0.5)
        assert family.pair_feedback == (study != "task_diversity_regression_anchor")
        assert sizes[-1] == 2**15 and cfg.training.name == "supervised"
    if study == "task_diversity_bernoulli_low":
        assert (family.num_arms, family.p_low, family.p_high) == (5, 0.0, 0.3)
        assert sizes[-1] == 2**10 and cfg.training.name == "rl"
    if study == "task_diversity_bandit":
        assert sizes[-1] == 2**10 and cfg.training.name == "rl"


def test_regression_sweep_adds_archs() -> None:
    # a quoted list is one value (not a sweep over it); the sweeper reads it composed
    archs = 'study.archs="lstm,gru,slot,ffn,transformer"'
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose(
            config_name="config",
            overrides=["study=task_diversity_regression", archs],
            return_hydra_config=True,
        )
    sweep = full.hydra.sweeper
    jobs = dedupe_jobs(expand(sweep.params, sweep.blocks, [archs], OverridesParser.create()))
    assert len(jobs) == 5 * 17 * 3
    default = _sweep_jobs("task_diversity_regression")
    assert {o for j in default for o in j if o.startswith("arch=")} == {
        "arch=lstm",
        "arch=transformer",
    }
    # pool size and seed are member keys: each arch's 51 runs train as 7 populations
    assert len(group_jobs(default, 8)) == 2 * 7


def test_anchor_preset_builds_the_anchors_model_on_cpu(make_cfg) -> None:
    cfg = make_cfg("study=task_diversity_regression_anchor", "condition.distribution=pool")
    cfg.condition.pool_size = 2**13
    check_config(cfg)  # device: auto, so it validates here without a GPU
    assert (cfg.training.updates, cfg.training.batch_size) == (500_000, 256)
    assert cfg.training.optimizer.lr == pytest.approx(1e-3)
    family, _, learner = build_objects(cfg, "cpu")
    assert (family.dim, family.num_trials, family.noise) == (8, 16, 0.5)
    gpt = learner.core.config
    assert (gpt.n_layer, gpt.n_embd, gpt.n_head, gpt.n_inner) == (8, 128, 2, 512)
    # 8 blocks of 12 x 128^2 weights, about 1.6M parameters, as in the anchor
    assert 1.5e6 < sum(p.numel() for p in learner.parameters()) < 1.8e6


def test_wide_preset_is_the_measured_cpu_recipe(make_cfg) -> None:
    # the recipe the study README measured at 1.17x ridge: 4 x 64 transformer, 3000 x 512
    cfg = make_cfg("study=task_diversity_regression_wide", "condition.distribution=related")
    check_config(cfg)
    assert (cfg.training.updates, cfg.training.batch_size) == (3000, 512)
    assert cfg.training.optimizer.lr == pytest.approx(2e-3)
    assert cfg.training.lr_final_fraction == pytest.approx(0.05)
    assert cfg.population.max_size == 2
    family, _, learner = build_objects(cfg, "cpu")
    assert family.pair_feedback and family.dim == 8
    gpt = learner.core.config
    assert (gpt.n_layer, gpt.n_embd, gpt.n_head, gpt.n_inner) == (4, 64, 4, 128)


def test_anchor_preset_composes_with_the_slurm_launcher() -> None:
    overrides = [
        "study=task_diversity_regression_anchor",
        "hydra/launcher=slurm",
        "device=cuda",
        "hydra.launcher.gpus_per_node=1",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    assert cfg.hydra.launcher.gpus_per_node == 1 and cfg.device == "cuda"
    assert "submitit" in cfg.hydra.launcher._target_
    assert cfg.hydra.sweeper.params.arch == "transformer"
