"""Every task config composes, builds its family, and takes the same num_trials override."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from mesalab.studies.run import CONFIG_DIR
from mesalab.tasks import FAMILIES, TaskDistribution, rollout, stream_generator

TASKS = sorted(p.stem for p in (Path(CONFIG_DIR) / "task").glob("*.yaml"))


def test_every_family_has_a_config() -> None:
    assert set(TASKS) == set(FAMILIES)


@pytest.mark.parametrize("task", TASKS)
def test_num_trials_override_shortens_every_task(make_cfg, task: str) -> None:
    default = instantiate(make_cfg(f"task={task}").task.family)
    assert type(default) is FAMILIES[task] and default.num_trials != 12
    family = instantiate(make_cfg(f"task={task}", "task.family.num_trials=12").task.family)
    assert family.num_trials == 12
    latent = TaskDistribution(family).sample(4, stream_generator(0, "train"))
    random = family.references()["random"]
    traj = rollout(family, latent, random, stream_generator(0, "train"), torch.Generator())
    assert traj.rewards.shape == (4, 12)
