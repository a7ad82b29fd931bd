"""Compose run configs from the real configs/ directory for tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mesalab.studies.run import CONFIG_DIR

#: overrides that make any run tiny: a few updates, a few tasks, short episodes
TINY = [
    "training.updates=3",
    "training.batch_size=8",
    "eval.num_tasks=16",
    "eval.curve_tasks=8",
    "eval.ood_tasks=8",
    "eval.every=0",
    "logger=none",
    "progress=false",
    "checkpoint_every=0",
    "task.family.num_trials=12",
]


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """``make_cfg(*overrides)`` -> the composed run config."""

    def _make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _make
