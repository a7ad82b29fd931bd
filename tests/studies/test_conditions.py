"""Conditions come from the classes a config builds: signals and cores, not config names."""

from __future__ import annotations

import pytest

from mesalab.studies.conditions import (
    CONFIG_DIR,
    arch_has_memory,
    core_class,
    group_option,
    signal_condition,
)
from mesalab.studies.config import memory_flag, validate
from mesalab.studies.signals import A2C, NoTraining, Supervised
from mesalab.studies.sweep import canonical_job


def test_signals_say_their_condition() -> None:
    assert (A2C.condition(), Supervised.condition(), NoTraining.condition()) == (
        "rl",
        "supervised",
        "none",
    )
    assert A2C.reward_in_gradient and not Supervised.reward_in_gradient
    assert not NoTraining.updates_weights


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "training").glob("*.yaml")), ids=str)
def test_every_training_config_has_a_condition(path) -> None:
    cond = signal_condition(group_option("training", path.stem))
    assert cond in ("rl", "supervised", "none")
    if path.stem == "rl_short_horizon":  # extends rl through Hydra's defaults list
        assert cond == "rl"


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "arch").glob("*.yaml")), ids=str)
def test_every_arch_config_says_if_it_has_memory(path, make_cfg) -> None:
    node = group_option("arch", path.stem)
    cfg = make_cfg(f"arch={path.stem}")
    assert memory_flag(cfg) is arch_has_memory(node) is core_class(node).has_memory
    assert cfg.run_name.count("_mem-on_" if arch_has_memory(node) else "_mem-off_") == 1


def test_a_stale_has_memory_key_must_agree_with_the_class(make_cfg) -> None:
    validate(make_cfg("arch=ffn", "+arch.has_memory=false"))
    with pytest.raises(ValueError, match="arch.has_memory"):
        validate(make_cfg("arch=ffn", "+arch.has_memory=true"))
    with pytest.raises(ValueError, match="condition.memory"):
        validate(make_cfg("arch=ffn", "condition.memory=true"))


def test_an_untrained_signal_under_another_name_needs_no_optimizer(make_cfg) -> None:
    # validation asks the signal class, not the config name ``none``
    validate(
        make_cfg(
            "training=rl",
            "training.signal._target_=" + _path(NoTraining),
            "training.optimizer=null",
        )
    )
    with pytest.raises(ValueError, match="training.optimizer"):
        validate(
            make_cfg(
                "training=none", "training.signal._target_=" + _path(A2C), "training.updates=5"
            )
        )


def test_dedup_reads_the_classes() -> None:
    # a variant of RL under another name keeps its training distribution; none does not
    job = ["training=rl_short_horizon", "condition.distribution=single"]
    assert canonical_job(job) == job
    assert canonical_job(["training=none", "condition.distribution=single"]) == [
        "training=none",
        "condition.distribution=related",
    ]
    with pytest.raises(ValueError, match="arch"):
        canonical_job(["arch=no_such_arch"])


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
