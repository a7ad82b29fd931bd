"""Study sweeps: duplicate combinations are dropped, every study config composes."""

from __future__ import annotations

import itertools

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mesalab.studies.config import memory_flag
from mesalab.studies.load import build_core
from mesalab.studies.run import CONFIG_DIR
from mesalab.studies.sweep import canonical_job, dedupe_jobs
from mesalab.studies.validation import check_config


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


def _sweep_jobs(study: str) -> list[list[str]]:
    """The deduplicated jobs of a study, from its Hydra sweeper params."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose(config_name="config", overrides=[f"study={study}"], return_hydra_config=True)
    sweep = full.hydra.sweeper.params
    axes = [[f"{k}={v}" for v in str(vals).split(",")] for k, vals in sweep.items()]
    return dedupe_jobs([list(j) for j in itertools.product(*axes)])


def test_quick_study_is_the_full_grid_with_fewer_seeds() -> None:
    full = {tuple(j) for j in _sweep_jobs("three_conditions")}
    quick = _sweep_jobs("three_conditions_quick")
    assert quick and {tuple(j) for j in quick} <= full
    assert len(quick) < len(full)


def test_study_jobs_compose_and_validate() -> None:
    """Every distinct job of the study composes, validates and builds its objects.

    Seeds do not change the composition, so each job is composed once, for seed 0.
    """
    jobs = {
        tuple(j for j in job if not j.startswith("seed="))
        for job in _sweep_jobs("three_conditions")
    }
    built = set()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for job in sorted(jobs):
            cfg = compose(config_name="config", overrides=["study=three_conditions", *job])
            check_config(cfg)  # every check a run makes before training
            key = (cfg.task.name, cfg.arch.name)
            if key not in built:  # instantiating each task x arch once is enough
                family = instantiate(cfg.task.family)
                core = build_core(cfg.arch, family.input_dim, family.num_actions, memory_flag(cfg))
                assert core.out_dim > 0
                built.add(key)
    assert len(built) == 2 * 4


def test_study_budget_is_per_task_shared_by_signals_and_rl_keeps_its_name() -> None:
    """Within a task rl and supervised get the same budget; the study's A2C is still `rl`."""
    budgets = {"dependent_bandit": (600, 32), "bernoulli_bandit": (1000, 64)}
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        default = compose("config", overrides=["training=rl"])
        for task, budget in budgets.items():
            study = ["study=three_conditions", f"task={task}"]
            rl = compose("config", overrides=[*study, "training=rl_short_horizon"])
            sup = compose("config", overrides=[*study, "training=supervised"])
            for cfg in (rl, sup):
                assert (cfg.training.updates, cfg.training.batch_size) == budget
            assert rl.training.name == "rl" and "_lstm_rl_mem-on_" in rl.run_name
            signal = instantiate(rl.training.signal)
            assert signal.gamma == 0.7
            assert signal.entropy_coef == default.training.signal.entropy_coef
    assert instantiate(default.training.signal).gamma == 0.9  # the default run is unchanged
    assert (default.training.updates, default.training.batch_size) == (2000, 128)


def test_no_history_study_adds_one_ablation_to_the_same_sweep() -> None:
    """Memory off and history inputs off, RL on related tasks: every task x arch x seed."""
    for study, base in (
        ("three_conditions_no_history", "three_conditions"),
        ("three_conditions_no_history_quick", "three_conditions_quick"),
    ):
        jobs = _sweep_jobs(study)
        base_jobs = _sweep_jobs(base)
        assert len(jobs) == 2 * 4 * len({j[-1] for j in base_jobs})  # tasks x archs x seeds
        assert all("condition.history_inputs=false" in j for j in jobs)
        assert all("condition.memory=false" in j for j in jobs)
        assert not {tuple(j) for j in jobs} & {tuple(j) for j in base_jobs}
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"study={study}", *jobs[0]])
            base_cfg = compose(config_name="config", overrides=[f"study={base}"])
        check_config(cfg)
        assert cfg.sweep_name == base_cfg.sweep_name  # one report reads both
