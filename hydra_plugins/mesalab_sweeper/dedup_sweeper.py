"""``hydra/sweeper=dedup`` (the project's default): Hydra's basic sweeper minus runs that would
repeat another run, with sweep progress.

A study whose conditions need different seed counts lists ``blocks``: each block is a dict of
params that replace (or add to) ``params``, and the sweep is the union of the blocks' products,
each distinct run once; command-line arguments narrow the keys a block sets and replace the
others. Without blocks the sweep is the product of ``params``, as in Hydra.

Hydra only finds sweepers in the ``hydra_plugins`` namespace package; the rule that says which
combinations coincide lives in ``mesalab.studies.sweep`` and the progress display in
``mesalab.studies.progress``, so both are tested with the rest of the project. Unlike the basic
sweeper, a failed run does not stop the later batches: every run is tried, the summary names
each failed run's directory and error, and then the sweep fails.
"""

# No `from __future__ import annotations`: Hydra imports plugins outside sys.modules, where
# dataclasses cannot resolve string annotations.
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional  # noqa: UP035 (no future import: Hydra scans plugins)

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

from mesalab.studies.progress import RECORD_DIR, ProgressMonitor, SweepProgress, job_key
from mesalab.studies.sweep import (
    canonical_value,
    dedupe_jobs,
    group_jobs,
    job_size,
)


@dataclass
class DedupSweeperConf:
    """Hydra's basic sweeper's options, plus ``blocks`` (a union of products) and progress."""

    _target_: str = "hydra_plugins.mesalab_sweeper.dedup_sweeper.DedupSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[dict[str, str]] = field(default=None)  # noqa: UP045
    blocks: Optional[list[dict[str, str]]] = field(default=None)  # noqa: UP045
    log_every: float = 60.0  # seconds between progress log lines when not on a terminal


ConfigStore.instance().store(group="hydra/sweeper", name="dedup", node=DedupSweeperConf)


def _values(override: str, parser: OverridesParser) -> set[str]:
    """The ``key=value`` strings a sweep override stands for (``seed=0,1`` -> two), booleans
    lower-cased as the dedup rule writes them."""
    batches = BasicSweeper.split_arguments(parser.parse_overrides([override]), None)
    return {_canonical(job[0]) for batch in batches for job in batch}


def _canonical(override: str) -> str:
    key, _, value = override.partition("=")
    return f"{key}={canonical_value(value)}"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def expand(
    params: Optional[dict[str, str]],  # noqa: UP045
    blocks: Optional[list[dict[str, str]]],  # noqa: UP045
    arguments: list[str],
    parser: OverridesParser,
) -> list[list[str]]:
    """Every job of the sweep: per block, the product of ``params`` updated by the block.

    The command line's ``arguments`` narrow every block: a key a block sets keeps only the
    block's values that the argument also names (``training=supervised`` drops a block of RL
    runs rather than turning them into supervised ones); any other key takes the argument's
    values, as in Hydra's basic sweeper.
    """
    jobs: list[list[str]] = []
    for block in blocks or [{}]:
        merged = {**(params or {}), **block}
        narrow = [a for a in arguments if _key(a) in block]
        free = [a for a in arguments if _key(a) not in block]
        conf = [f"{k}={v}" for k, v in merged.items()] + free
        batches = BasicSweeper.split_arguments(parser.parse_overrides(conf), None)
        block_jobs = [list(job) for batch in batches for job in batch]
        for argument in narrow:
            key, allowed = _key(argument), _values(argument, parser)
            block_jobs = [
                j for j in block_jobs if all(_canonical(o) in allowed for o in j if _key(o) == key)
            ]
        jobs += block_jobs
    return jobs


class DedupSweeper(BasicSweeper):
    """Cartesian product of the sweep parameters, each distinct run once, with progress."""

    def __init__(
        self,
        max_batch_size: Optional[int],  # noqa: UP045
        params: Optional[dict[str, str]] = None,  # noqa: UP045
        blocks: Optional[list[dict[str, str]]] = None,  # noqa: UP045
        log_every: float = 60.0,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.blocks = blocks
        self.log_every = log_every

    def split_jobs(
        self, jobs: list[list[str]], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        """The sweep's jobs deduplicated, grouped into populations of at most
        ``population.max_size`` runs, re-chunked to ``max_batch_size``."""
        jobs = group_jobs(dedupe_jobs(jobs), int(self.config.population.max_size))
        if max_batch_size is None:
            return [jobs]
        return [jobs[i : i + max_batch_size] for i in range(0, len(jobs), max_batch_size)]

    def sweep(self, arguments: list[str]) -> Any:
        """Launch every batch, showing progress; then the summary; fail if any run failed."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = expand(self.params, self.blocks, arguments, parser)
        self.overrides = self.split_jobs(jobs, self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        total = sum(job_size(job) for batch in self.overrides for job in batch)  # runs
        # only this launch's jobs, ended after it started: not an earlier launch's records,
        # nor those of another launch into the same sweep dir running at the same time
        monitor = ProgressMonitor(
            sweep_dir / RECORD_DIR,
            SweepProgress(total, sweep_dir.name),
            log_every=self.log_every,
            keys=[job_key(job) for batch in self.overrides for job in batch],
            since=time.time(),
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
