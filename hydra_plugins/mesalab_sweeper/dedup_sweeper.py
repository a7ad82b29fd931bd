"""``hydra/sweeper=dedup`` (the project's default): Hydra's basic sweeper minus runs that would
repeat another run, with sweep progress.

Hydra only finds sweepers in the ``hydra_plugins`` namespace package; the rule that says which
combinations coincide lives in ``mesalab.studies.sweep`` and the progress display in
``mesalab.studies.progress``, so both are tested with the rest of the project. Unlike the basic
sweeper, a failed run does not stop the later batches: every run is tried, the summary names
each failed run's directory and error, and then the sweep fails.
"""

# No `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where
# dataclasses cannot resolve string annotations.
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 (no future import: Hydra scans plugins)

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

from mesalab.studies.progress import RECORD_DIR, ProgressMonitor, SweepProgress
from mesalab.studies.sweep import clear_records, dedupe_jobs, group_jobs, job_size


@dataclass
class DedupSweeperConf:
    """Same options as Hydra's basic sweeper."""

    _target_: str = "hydra_plugins.mesalab_sweeper.dedup_sweeper.DedupSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[dict[str, str]] = field(default=None)  # noqa: UP045
    log_every: float = 60.0  # seconds between progress log lines when not on a terminal


ConfigStore.instance().store(group="hydra/sweeper", name="dedup", node=DedupSweeperConf)


class DedupSweeper(BasicSweeper):
    """Cartesian product of the sweep parameters, each distinct run once, with progress."""

    def __init__(
        self,
        max_batch_size: Optional[int],  # noqa: UP045
        params: Optional[dict[str, str]] = None,  # noqa: UP045
        log_every: float = 60.0,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.log_every = log_every

    def split_arguments(  # type: ignore[override]
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        """All jobs of the product, deduplicated, grouped into populations of at most
        ``population.max_size`` runs, re-chunked to ``max_batch_size``."""
        batches = BasicSweeper.split_arguments(overrides, None)
        jobs: list[Any] = dedupe_jobs([job for batch in batches for job in batch])
        jobs = group_jobs(jobs, int(self.config.population.max_size))
        if max_batch_size is None:
            return [jobs]
        return [jobs[i : i + max_batch_size] for i in range(0, len(jobs), max_batch_size)]

    def sweep(self, arguments: list[str]) -> Any:
        """Launch every batch, showing progress; then the summary; fail if any run failed."""
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(
            parser.parse_overrides(params_conf), self.max_batch_size
        )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        clear_records(sweep_dir / RECORD_DIR)  # records of an earlier launch are not this one's
        total = sum(job_size(job) for batch in self.overrides for job in batch)  # runs
        monitor = ProgressMonitor(
            sweep_dir / RECORD_DIR, SweepProgress(total, sweep_dir.name), log_every=self.log_every
        )
        monitor.start()
        returns: list[Any] = []
        initial_job_idx = 0
        try:
            while not self.is_done():
                batch = self.get_job_batch()
                self.validate_batch_is_legal(batch)
                returns.append(self.launcher.launch(batch, initial_job_idx=initial_job_idx))
                initial_job_idx += len(batch)
        finally:
            monitor.stop([r for results in returns for r in results])
        failed = [r for results in returns for r in results if r.status == JobStatus.FAILED]
        if failed:
            # each failed run's error is in the summary above, its traceback in its record
            raise RuntimeError(f"{len(failed)} of {total} runs failed (listed above)") from None
        return returns
