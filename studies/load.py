"""Rebuild a finished (or checkpointed) run from its directory, for analyses and probes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mesalab.archs.base import Core, Learner
from mesalab.archs.budget import matched_core_kwargs
from mesalab.studies.checkpoint import load_checkpoint
from mesalab.studies.conditions import core_class
from mesalab.studies.config import memory_flag
from mesalab.studies.errors import CheckpointError
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.inputs import input_columns


@dataclass
class LoadedRun:
    """Everything needed to roll the run's frozen learner out again."""

    cfg: DictConfig
    family: TaskFamily
    distribution: TaskDistribution
    learner: Learner
    checkpoint: dict[str, Any]


def build_objects(
    cfg: DictConfig, device: torch.device | str = "cpu"
) -> tuple[TaskFamily, TaskDistribution, Learner]:
    """The family, training distribution and (untrained) learner a config describes."""
    family = instantiate(cfg.task.family)
    dist = TaskDistribution(
        family, cfg.condition.distribution, cfg.condition.pool_size, seed=cfg.seed, device=device
    )
    cols = input_columns(family, cfg.condition.get("history_inputs", True))
    core = build_core(cfg.arch, len(cols), family.num_actions, memory_flag(cfg))
    # every column: no selection at all (identical to the learner before the switch existed)
    kept = None if len(cols) == family.input_dim else cols
    return family, dist, Learner(core, family.num_actions, kept).to(device)


def build_core(arch: DictConfig, input_dim: int, num_actions: int, memory: bool) -> Core:
    """The arch's core with its widths matched to the parameter budget at these sizes.

    The budget is the LSTM-48 learner's for this input and action size, so every arch is
    matched on every family. A key the arch config leaves null (or out) is matched; one it
    sets (a width, a layer count, also from the command line) wins.
    """
    matched = matched_core_kwargs(core_class(arch), input_dim, num_actions)
    # call-time keywords replace the partial's nulls
    extra = {k: v for k, v in matched.items() if arch.core.get(k) is None}
    return instantiate(arch.core)(input_dim=input_dim, memory=memory, **extra)


def load_run(run_dir: str | Path, device: torch.device | str = "cpu") -> LoadedRun:
    """Load ``checkpoint.pt`` of a run directory; the learner is frozen (eval, no grad)."""
    ck = load_checkpoint(Path(run_dir) / "checkpoint.pt", device)
    cfg = OmegaConf.create(ck["config"])
    family, dist, learner = build_objects(cfg, device)
    try:
        learner.load_state_dict(ck["learner"])
    except RuntimeError as err:  # weights that do not match the config stored beside them
        first = (str(err).splitlines() or [""])[0]
        raise CheckpointError(f"checkpoint {run_dir}/checkpoint.pt: {first}") from None
    learner.eval().requires_grad_(False)
    return LoadedRun(cfg, family, dist, learner, ck)
