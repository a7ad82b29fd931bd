"""Study sweeps: duplicate combinations are dropped, every study config composes."""

from __future__ import annotations

import itertools

import pytest
from hydra.utils import instantiate

from studies.config import memory_flag, validate
from studies.sweep import canonical_job, dedupe_jobs


def test_training_none_keeps_only_related() -> None:
    jobs = [
        ["training=none", "condition.distribution=single"],
        ["training=none", "condition.distribution=related"],
        ["training=rl", "condition.distribution=single"],
    ]
    assert dedupe_jobs(jobs) == [
        ["training=none", "condition.distribution=related"],
        ["training=rl", "condition.distribution=single"],
    ]


def test_memoryless_arch_runs_once(tmp_path) -> None:
    assert canonical_job(["arch=lstm", "condition.memory=true"]) == [
        "arch=lstm",
        "condition.memory=true",
    ]
    jobs = [[f"arch={a}", f"condition.memory={m}"] for a in ("lstm", "ffn") for m in (1, 0)]
    jobs = [[j[0], j[1].replace("=1", "=true").replace("=0", "=false")] for j in jobs]
    out = dedupe_jobs(jobs)
    assert ["arch=ffn", "condition.memory=false"] in out
    assert len(out) == 3


def test_three_conditions_grid_size(make_cfg) -> None:
    cfg = make_cfg("study=three_conditions")
    assert cfg.sweep_name == "three_conditions"
    archs = ["lstm", "slot", "ffn", "transformer"]
    grid = itertools.product(
        ["dependent_bandit", "bernoulli_bandit"],
        archs,
        ["rl", "supervised", "none"],
        ["true", "false"],
        ["related", "single", "trialwise"],
        ["0", "1", "2"],
    )
    jobs = [
        [
            f"task={t}",
            f"arch={a}",
            f"training={tr}",
            f"condition.memory={m}",
            f"condition.distribution={d}",
            f"seed={s}",
        ]
        for t, a, tr, m, d, s in grid
    ]
    # per task and seed: 3 memory archs x (2 trained x 6 + none x 2) + ffn x (2 x 3 + 1)
    assert len(dedupe_jobs(jobs)) == 2 * 3 * (3 * 14 + 7)


@pytest.mark.parametrize("study", ["three_conditions", "three_conditions_quick"])
def test_study_jobs_compose_and_validate(make_cfg, study) -> None:
    """Every deduplicated job of the study composes, validates and builds its objects."""
    cfg = make_cfg(f"study={study}")
    params = cfg.hydra.sweeper.params if "hydra" in cfg else None
    assert params is None or params  # the hydra node is not returned by compose
    from hydra import compose, initialize_config_dir

    from studies.run import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose(config_name="config", overrides=[f"study={study}"], return_hydra_config=True)
    sweep = full.hydra.sweeper.params
    axes = [[f"{k}={v}" for v in str(vals).split(",")] for k, vals in sweep.items()]
    jobs = dedupe_jobs([list(j) for j in itertools.product(*axes)])
    built = set()
    for job in jobs:
        job_cfg = make_cfg(f"study={study}", *job)
        validate(job_cfg)
        key = (job_cfg.task.name, job_cfg.arch.name)
        if key not in built:  # instantiating each task x arch once is enough
            family = instantiate(job_cfg.task.family)
            core = instantiate(job_cfg.arch.core)(
                input_dim=family.input_dim, memory=memory_flag(job_cfg)
            )
            assert core.out_dim > 0
            built.add(key)
    assert len(built) == len(sweep.task.split(",")) * len(sweep.arch.split(","))
