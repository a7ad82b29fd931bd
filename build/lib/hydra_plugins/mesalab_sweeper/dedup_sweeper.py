"""``hydra/sweeper=dedup``: Hydra's basic sweeper minus runs that would repeat another run.

Hydra only finds sweepers in the ``hydra_plugins`` namespace package; the rule that says which
combinations coincide lives in ``mesalab.studies.sweep`` so it is tested with the rest of the
project.
"""

# No `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where
# dataclasses cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Optional  # noqa: UP035 (no future import: Hydra scans plugins)

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override

from mesalab.studies.sweep import dedupe_jobs


@dataclass
class DedupSweeperConf:
    """Same options as Hydra's basic sweeper."""

    _target_: str = "hydra_plugins.mesalab_sweeper.dedup_sweeper.DedupSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[dict[str, str]] = field(default=None)  # noqa: UP045


ConfigStore.instance().store(group="hydra/sweeper", name="dedup", node=DedupSweeperConf)


class DedupSweeper(BasicSweeper):
    """Cartesian product of the sweep parameters, each distinct run once."""

    def split_arguments(  # type: ignore[override]
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        """All jobs of the product, deduplicated, re-chunked to ``max_batch_size``."""
        batches = BasicSweeper.split_arguments(overrides, None)
        jobs: list[Any] = dedupe_jobs([job for batch in batches for job in batch])
        if max_batch_size is None:
            return [jobs]
        return [jobs[i : i + max_batch_size] for i in range(0, len(jobs), max_batch_size)]
