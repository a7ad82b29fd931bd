"""Grouping in the report: which runs are one condition, and which are variants of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesalab.analysis.conditions import verdicts
from mesalab.analysis.sweep import group_runs, load_sweep
from tests.analysis.test_report import write_run


def test_a_signal_variant_under_another_name_is_its_condition(tmp_path: Path) -> None:
    """An A2C config named ``reinforce`` is the RL condition; ``frozen`` (NoTraining) is none."""
    for seed, imp in enumerate((0.3, 0.25, 0.35)):
        write_run(tmp_path, "lstm", "reinforce", True, "related", seed, imp, training_config="rl")
        write_run(
            tmp_path, "lstm", "frozen", True, "related", seed, imp - 0.3, training_config="none"
        )
    groups = group_runs(load_sweep(tmp_path)[0])
    assert [g.training for g in groups] == ["reinforce", "frozen"]  # full condition first
    rows = {v.setting: v.verdict for v in verdicts(groups)}
    # the verdict names the RL config that stood for the condition
    assert rows["memory on, training rl (reinforce), distribution related"].startswith("shows")
    assert rows["training none"] == "removes the improvement: necessary"
    assert rows["training supervised"] == "not run"


def test_an_arch_trained_by_ppo_has_its_verdicts_and_says_so(tmp_path: Path) -> None:
    """The study's LSTM trains by PPO, the GRU by A2C: both are the RL condition, their
    memory-off runs are the memory ablation, and the full condition's row names the signal."""
    for seed, (imp, off) in enumerate(((0.3, 0.01), (0.25, -0.02), (0.35, 0.0))):
        for arch, training in (("lstm", "ppo"), ("gru", "rl")):
            write_run(tmp_path, arch, training, True, "related", seed, imp)
            write_run(tmp_path, arch, training, False, "related", seed, off)
    rows = {(v.arch, v.setting): v.verdict for v in verdicts(group_runs(load_sweep(tmp_path)[0]))}
    assert rows["lstm", "memory on, training rl (ppo), distribution related"].startswith("shows")
    assert rows["gru", "memory on, training rl, distribution related"].startswith("shows")
    for arch in ("lstm", "gru"):
        assert rows[arch, "memory off"] == "removes the improvement: necessary"


def test_an_ablation_without_its_full_condition_says_it_was_not_run(tmp_path: Path) -> None:
    # a supervised-only sweep (the regression diversity study): nothing to compare against
    for seed, imp in enumerate((0.3, 0.25, 0.35)):
        write_run(tmp_path, "lstm", "supervised", True, "related", seed, imp)
    rows = {v.setting: v.verdict for v in verdicts(group_runs(load_sweep(tmp_path)[0]))}
    assert rows["memory on, training rl, distribution related"] == "not run"
    assert rows["training supervised"] == "undetermined: the full condition was not run"


def test_variants_are_not_averaged_together(tmp_path: Path) -> None:
    for seed in range(2):
        for lr, imp in (("0.001", 0.1), ("0.01", 0.3)):
            write_run(
                tmp_path,
                "lstm",
                "rl",
                True,
                "related",
                seed,
                imp + 0.01 * seed,
                extra=(f"training.optimizer.lr={lr}",),
            )
    groups = group_runs(load_sweep(tmp_path)[0])
    assert sorted(g.variant for g in groups) == [
        "training.optimizer.lr=0.001",
        "training.optimizer.lr=0.01",
    ]
    assert sorted(g.stats["improvement"].mean for g in groups) == pytest.approx([0.105, 0.305])


def test_one_setting_spelled_two_ways_is_one_variant(tmp_path: Path) -> None:
    # seed 0 sets the learning rate on the command line, seed 1 takes the same value from its
    # config (a preset): one condition, averaged over both seeds; a different value still splits
    write_run(
        tmp_path, "lstm", "rl", True, "related", 0, 0.1, extra=("training.optimizer.lr=0.01",)
    )
    write_run(tmp_path, "lstm", "rl", True, "related", 1, 0.3)
    groups = group_runs(load_sweep(tmp_path)[0])
    assert [(g.variant, g.stats["improvement"].mean) for g in groups] == [("", pytest.approx(0.2))]
    write_run(
        tmp_path, "lstm", "rl", True, "related", 2, 0.5, extra=("training.optimizer.lr=0.001",)
    )
    assert sorted(g.variant for g in group_runs(load_sweep(tmp_path)[0])) == [
        "training.optimizer.lr=0.001",
        "training.optimizer.lr=0.01",
    ]


def test_seeds_from_other_populations_and_devices_are_one_condition(tmp_path: Path) -> None:
    # the population a run trained in (its size, its streams) and the device change only its
    # random realisation, as a seed does: never a variant; a learning rate still is
    for seed, extra in enumerate(
        (
            ("population.max_size=2",),
            ("population.max_size=24", "device=cuda"),
            ("population.streams=member",),
        )
    ):
        write_run(tmp_path, "lstm", "rl", True, "related", seed, 0.1 * (seed + 1), extra=extra)
    groups = group_runs(load_sweep(tmp_path)[0])
    assert [(g.variant, g.stats["improvement"].mean) for g in groups] == [("", pytest.approx(0.2))]
    write_run(tmp_path, "lstm", "rl", True, "related", 3, 0.5, extra=("training.optimizer.lr=0.5",))
    assert len(group_runs(load_sweep(tmp_path)[0])) == 2
