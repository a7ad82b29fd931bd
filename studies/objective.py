"""What a run job returns to its sweeper: the frozen regret ratio, a recipe search's objective.

``mesalab-run`` returns a :class:`JobResult`: a float, the learner's post-freeze regret divided
by the family's ideal reference's regret on the same held-out tasks (1.0 = as good as the ideal
observer), averaged over the job's runs (a population: its members, i.e. over seeds). Hydra's
Optuna sweeper minimizes it (``configs/hparams_search/``); the dedup sweeper reads ``skipped``.
"""

from __future__ import annotations

import math
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from mesalab.studies.errors import ConfigError
from mesalab.studies.record import RunRecord, read_record


class JobResult(float):
    """A job's objective (the mean regret ratio of its runs) and whether it only skipped them."""

    skipped: bool

    def __new__(cls, value: float, skipped: bool = False) -> JobResult:
        out = super().__new__(cls, value)
        out.skipped = skipped
        return out

    def __repr__(self) -> str:
        return f"JobResult({float(self)!r}, skipped={self.skipped})"


def regret_ratio(record: RunRecord, ideal: str) -> float:
    """The learner's frozen regret over the ideal reference's (nan: no such reference, or 0)."""
    ref = record.references.get(ideal)
    if ref is None or ref.regret <= 0:
        return math.nan
    return record.eval.regret / ref.regret


def job_result(cfg: DictConfig, run_dirs: list[Path], skipped: bool) -> JobResult:
    """The mean regret ratio over the finished runs in ``run_dirs`` (nan if there is none)."""
    ideal = instantiate(cfg.task.family).ideal_reference  # a family builds in microseconds
    records = [r for r in (read_record(Path(d)) for d in run_dirs) if r is not None]
    if not records:
        raise ConfigError(f"no finished run in {[str(d) for d in run_dirs]} to score")
    ratios = [regret_ratio(r, ideal) for r in records]
    return JobResult(sum(ratios) / len(ratios), skipped)
