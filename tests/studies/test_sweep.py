"""Study sweeps: duplicate combinations are dropped, every study config composes."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from hydra_plugins.mesalab_sweeper.dedup_sweeper import expand
from mesalab.studies import sweep as sweep_module
from mesalab.studies.config import memory_flag
from mesalab.studies.load import build_core
from mesalab.studies.run import CONFIG_DIR
from mesalab.studies.sweep import canonical_job, dedupe_jobs, group_jobs
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


def test_dedupe_reads_each_option_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Expanding a large study reads each arch and training option once, not once per job
    (the three_conditions study's 884 jobs took 16 s of YAML parsing before)."""
    reads: Counter[tuple[str, str]] = Counter()
    real = sweep_module.group_option

    def counted(group: str, name: str) -> dict:
        reads[group, name] += 1
        return real(group, name)

    monkeypatch.setattr(sweep_module, "group_option", counted)
    jobs = [
        [f"arch={a}", f"training={t}", "condition.memory=true", f"seed={s}"]
        for a in ("lstm", "ffn")
        for t in ("rl", "none")
        for s in range(5)
    ]
    assert len(dedupe_jobs(jobs)) == 20
    assert reads == {
        (g, n): 1
        for g, n in [("arch", "lstm"), ("arch", "ffn"), ("training", "rl"), ("training", "none")]
    }


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
    # as Hydra's sweeper writes booleans
    hydra_style = [["arch=ffn", "condition.memory=True"], ["arch=ffn", "condition.memory=False"]]
    assert dedupe_jobs(hydra_style) == [["arch=ffn", "condition.memory=false"]]


def test_three_conditions_grid_size(make_cfg) -> None:
    cfg = make_cfg("study=three_conditions")
    assert cfg.sweep_name == "three_conditions"
    archs = ["lstm", "gru", "slot", "ffn", "transformer"]
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
    assert len(dedupe_jobs(jobs)) == 2 * 3 * (4 * 14 + 7)


def _sweep_jobs(study: str, arguments: tuple[str, ...] = ()) -> list[list[str]]:
    """The deduplicated jobs of a study, expanded as its sweeper expands them."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        full = compose(config_name="config", overrides=[f"study={study}"], return_hydra_config=True)
    sweep = full.hydra.sweeper
    return dedupe_jobs(
        expand(sweep.params, sweep.blocks, list(arguments), OverridesParser.create())
    )


def _seed_counts(jobs: list[list[str]]) -> dict[tuple[str, ...], int]:
    """How many seeds each condition (a job without its seed) has."""
    return Counter(tuple(sorted(o for o in j if not o.startswith("seed="))) for j in jobs)


VERDICT_CONDITIONS = [  # the full condition and its one-factor ablations
    {"training=rl", "condition.memory=true", "condition.distribution=related"},
    {"training=rl", "condition.memory=true", "condition.distribution=single"},
    {"training=rl", "condition.memory=true", "condition.distribution=trialwise"},
    {"training=rl", "condition.memory=false", "condition.distribution=related"},
    {"training=rl", "condition.memory=false", "condition.history_inputs=false"},
    {"training=supervised", "condition.memory=true", "condition.distribution=related"},
    {"training=none", "condition.memory=true", "condition.distribution=related"},
]


def _is_verdict(condition: tuple[str, ...]) -> bool:
    """Whether a study condition is one the verdicts use (ffn counts as memory on and off)."""
    c = {o.replace("rl_short_horizon", "rl").replace("ppo", "rl") for o in condition}
    if "arch=ffn" in c:  # no memory to switch: its memory-off runs stand for the full condition
        c = {o.replace("condition.memory=false", "condition.memory=true") for o in c} | c
    return any(v <= c for v in VERDICT_CONDITIONS)


@pytest.mark.parametrize(
    ("study", "verdict", "rest"), [("three_conditions", 10, 3), ("three_conditions_quick", 2, 1)]
)
def test_verdict_conditions_get_more_seeds(study: str, verdict: int, rest: int) -> None:
    """The full condition and each one-factor ablation at ten seeds (quick: two), the rest of the
    cross product at three (quick: one): a union of products, each run once."""
    counts = _seed_counts(_sweep_jobs(study))
    got = {c: n for c, n in counts.items()}
    assert {n for c, n in got.items() if _is_verdict(c)} == {verdict}
    assert {n for c, n in got.items() if not _is_verdict(c)} == {rest}
    archs = {o for c in got for o in c if o.startswith("arch=")}
    assert archs == {f"arch={a}" for a in ("lstm", "gru", "slot", "ffn", "transformer")}
    # memory and history off exists at every task x arch
    no_history = [c for c in got if "condition.history_inputs=false" in c]
    assert len(no_history) == 2 * 5
    assert all("condition.memory=false" in c for c in no_history)


def test_command_line_arguments_win_over_every_block() -> None:
    """`seed=0 arch=lstm` on the command line narrows every block, as in Hydra's basic sweeper."""
    jobs = _sweep_jobs("three_conditions", ("seed=0", "arch=lstm"))
    assert jobs and all("seed=0" in j and "arch=lstm" in j for j in jobs)
    assert len(jobs) == len({tuple(sorted(j)) for j in jobs})  # each run once
    assert set(_seed_counts(jobs).values()) == {1}


def test_the_command_line_narrows_a_block_and_never_changes_what_it_pins() -> None:
    """`training=supervised,none` keeps the supervised and untrained conditions of the study;
    it does not turn the blocks of RL runs into supervised or untrained runs."""
    full = {tuple(sorted(j)) for j in _sweep_jobs("three_conditions")}
    jobs = _sweep_jobs("three_conditions", ("training=supervised,none", "arch=transformer"))
    assert jobs and {tuple(sorted(j)) for j in jobs} <= full  # nothing the study does not have
    rl = ("training=rl_short_horizon", "training=ppo")
    want = {j for j in full if "arch=transformer" in j and not any(r in j for r in rl)}
    assert {tuple(sorted(j)) for j in jobs} == want
    assert not any("condition.history_inputs=false" in j for j in jobs)  # an RL-only block
    # Hydra's spelling of booleans narrows the study's `"true"` too
    mem = _sweep_jobs("three_conditions", ("condition.memory=True", "arch=lstm"))
    assert mem and all("condition.memory=true" in j for j in mem)


def test_the_lstm_trains_by_ppo_every_other_arch_by_a2c() -> None:
    """The study's RL: PPO for the LSTM (A2C left it above 2x on 3 of 10 Bernoulli seeds), A2C
    for every other arch; each LSTM RL condition exactly where the others have A2C's."""
    jobs = _sweep_jobs("three_conditions")
    rl = [j for j in jobs if any(o in j for o in ("training=rl_short_horizon", "training=ppo"))]
    lstm = [j for j in rl if "arch=lstm" in j]
    assert lstm and all("training=ppo" in j for j in lstm)
    assert all("training=rl_short_horizon" in j for j in rl if "arch=lstm" not in j)

    def shape(arch: str, signal: str) -> Counter:
        return _seed_counts(
            [[o for o in j if o != arch and o != signal] for j in rl if arch in j and signal in j]
        )

    assert shape("arch=lstm", "training=ppo") == shape("arch=gru", "training=rl_short_horizon")
    # `arch=lstm training=ppo` on the command line gives exactly the LSTM's RL runs
    assert sorted(_sweep_jobs("three_conditions", ("arch=lstm", "training=ppo"))) == sorted(lstm)
    assert not _sweep_jobs("three_conditions", ("arch=lstm", "training=rl_short_horizon"))


def test_populations_join_jobs_of_different_blocks() -> None:
    """Jobs that differ only in member keys share a population even when two blocks made them."""
    jobs = [
        ["task=t", "arch=lstm", "seed=0"],
        ["arch=lstm", "task=t", "seed=1"],  # another block's order
    ]
    grouped = group_jobs(jobs, 8)
    assert grouped == [["task=t", "arch=lstm", "population.members=[{seed:0},{seed:1}]"]]


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
    assert len(built) == 2 * 5


def test_study_budget_is_per_task_shared_by_signals_and_rl_keeps_its_name() -> None:
    """Within a task rl and supervised get the same budget; the study's A2C is still `rl`."""
    budgets = {"dependent_bandit": (1200, 32), "bernoulli_bandit": (1000, 64)}
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
