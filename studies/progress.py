"""Sweep progress: runs finished / total, failed, skipped, an ETA, and a summary of failures.

Every launcher (Hydra's basic one, joblib's ``local_parallel``, submitit) runs each job
through Hydra's ``run_job``, which calls the job callbacks where the job runs. So each job
records how it ended in a small file under ``<sweep dir>/.progress/`` (:class:`JobRecorder`,
a Hydra callback set in ``configs/config.yaml``), and the sweeper, in the launching process,
watches that folder (:class:`ProgressMonitor`): one updating line on a terminal, a log line
every ``log_every`` seconds otherwise, and at the end a summary naming every failed run's
directory and error. A record is named by a hash of its job's overrides and stamped with when
it ended, and a monitor counts only its own launch's jobs that ended after it started: two
launches into one sweep directory (a study split over two terminals) neither count nor erase
each other's records. The ETA divides the runs left by the pace of the finished ones: their
mean duration over the concurrency observed so far (their summed durations / wall time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

#: what the run returns when it found a finished run directory and did nothing
SKIPPED = "skipped"
RECORD_DIR = ".progress"


@dataclass(frozen=True)
class JobRecord:
    """How one job ended."""

    num: int  # Hydra's job number within the sweep
    run_dir: str
    status: str  # "finished" | "failed" | "skipped"
    duration_s: float
    error: str = ""
    traceback: str = ""  # of a failed job, where the job ran
    runs: int = 1  # runs the job trained (a population job: its members)
    key: str = ""  # job_key of the job's overrides; names the record's file
    ended: float = 0.0  # epoch seconds when the job ended (0: unknown)


def job_key(overrides: Iterable[str]) -> str:
    """A job's identity across launches: a short hash of its overrides, in any order."""
    text = "\n".join(sorted(str(o) for o in overrides))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def record_of(
    num: int,
    run_dir: str,
    job_return: JobReturn,
    duration_s: float,
    runs: int = 1,
    key: str = "",
    ended: float = 0.0,
) -> JobRecord:
    """A record from Hydra's JobReturn: failed (with the error), skipped or finished."""
    if job_return.status == JobStatus.FAILED:
        err = job_return._return_value  # the exception; .return_value would raise it
        message = " ".join(str(err).split())  # one line per failed run in the summary
        trace = "".join(traceback.format_exception(err)) if isinstance(err, BaseException) else ""
        error = f"{type(err).__name__}: {message}"
        return JobRecord(num, run_dir, "failed", duration_s, error, trace, runs, key, ended)
    value = job_return._return_value  # mesalab-run's JobResult (or SKIPPED, older callers)
    status = "skipped" if getattr(value, "skipped", False) or value == SKIPPED else "finished"
    return JobRecord(num, run_dir, status, duration_s, runs=runs, key=key, ended=ended)


def runs_of(config: DictConfig | None) -> int:
    """How many runs a job's config trains: its population's members, or 1."""
    members = OmegaConf.select(config, "population.members", default=None) if config else None
    return len(members) if members else 1


def fmt_duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class SweepProgress:
    """Counts and ETA of a sweep of ``total`` runs, from job records and a clock."""

    def __init__(self, total: int, name: str = "sweep", clock: Callable[[], float] = time.time):
        self.total, self.name, self.clock = total, name, clock
        self.start = clock()
        self.records: dict[str | int, JobRecord] = {}

    def add(self, record: JobRecord) -> None:
        """Count a job's record (a job recorded twice counts once, the last record wins)."""
        self.records[record.key or record.num] = record

    def count(self, status: str) -> int:
        """Runs whose job ended with ``status``."""
        return sum(r.runs for r in self.records.values() if r.status == status)

    @property
    def done(self) -> int:
        """Runs whose job has ended."""
        return sum(r.runs for r in self.records.values())

    def eta_s(self) -> float | None:
        """Seconds left: runs left x mean finished duration / observed concurrency."""
        timed = [r for r in self.records.values() if r.status != "skipped"]
        ran = [r.duration_s for r in timed]
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if not ran:
            return None  # nothing timed yet (skipped runs take no time)
        wall = max(self.clock() - self.start, 1e-9)
        concurrency = max(1.0, sum(ran) / wall)
        return left * (sum(ran) / sum(r.runs for r in timed)) / concurrency  # per run

    def line(self) -> str:
        """One line: ``name: 12/98 runs done (10 finished, 1 failed, 1 skipped), ETA 23m10s``."""
        eta = self.eta_s()
        return (
            f"{self.name}: {self.done}/{self.total} runs done "
            f"({self.count('finished')} finished, {self.count('failed')} failed, "
            f"{self.count('skipped')} skipped), elapsed {fmt_duration(self.clock() - self.start)}"
            f", ETA {'unknown' if eta is None else fmt_duration(eta)}"
        )

    def summary(self) -> str:
        """The final line, then every failed run's directory and error."""
        failed = sorted(
            (r for r in self.records.values() if r.status == "failed"), key=lambda r: r.num
        )
        lines = [self.line().replace(", ETA 0s", "")]
        if self.done < self.total:
            lines.append(f"{self.total - self.done} runs never reported")
        for r in failed:
            lines.append(f"FAILED {r.run_dir}: {r.error}")
        if failed:
            paths = ", ".join(f"{RECORD_DIR}/{r.key or r.num}.json" for r in failed)
            lines.append(f"(each failed job's traceback is in its record: {paths})")
        return "\n".join(lines)


def write_record(folder: Path, record: JobRecord) -> None:
    """Write ``<folder>/<key>.json`` atomically (the monitor may read at any moment)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = record.key or str(record.num)
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(record)))
    tmp.replace(folder / f"{name}.json")


def read_records(folder: Path, keys: Iterable[str] | None = None) -> list[JobRecord]:
    """The complete records in ``folder``: every one, or those of the jobs ``keys``."""
    paths = sorted(folder.glob("*.json")) if keys is None else [folder / f"{k}.json" for k in keys]
    return [JobRecord(**json.loads(p.read_text())) for p in paths if p.exists()]


class JobRecorder(Callback):
    """Hydra callback: each sweep job writes how it ended (where the job runs)."""

    def __init__(self) -> None:
        self._start: dict[int, float] = {}

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Note the start time of a sweep job."""
        hc = HydraConfig.get()
        if hc.mode is not None and hc.mode.name == "MULTIRUN":
            self._start[hc.job.num] = time.time()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Write the job's record under ``<sweep dir>/.progress/``."""
        hc = HydraConfig.get()
        if hc.mode is None or hc.mode.name != "MULTIRUN":
            return
        start = self._start.pop(hc.job.num, time.time())
        now = time.time()
        key = job_key(hc.overrides.task)
        record = record_of(
            hc.job.num, hc.runtime.output_dir, job_return, now - start, runs_of(config), key, now
        )
        write_record(Path(hc.sweep.dir) / RECORD_DIR, record)


class ProgressMonitor:
    """Polls a sweep's record folder and shows its progress on ``stream`` or in the log.

    ``keys`` (the :func:`job_key` of each job of this launch) and ``since`` (when it started,
    epoch seconds) keep out other launches' records: earlier ones, and concurrent ones into
    the same sweep directory. ``None`` counts every record in the folder.
    """

    def __init__(
        self,
        folder: Path,
        progress: SweepProgress,
        stream: IO[str] | None = None,
        log_every: float = 60.0,
        poll_every: float = 1.0,
        keys: Iterable[str] | None = None,
        since: float | None = None,
    ) -> None:
        self.folder, self.progress = Path(folder), progress
        self.keys = None if keys is None else set(keys)
        self.since = since
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every, self.poll_every = log_every, poll_every
        self._last_log = progress.clock()
        self._logged_done = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Read new records; redraw the line (terminal) or log it when due (otherwise)."""
        # only this launch's jobs' files are read; of those, only records written after it began
        for record in read_records(self.folder, self.keys):
            if self.since is None or record.ended >= self.since:
                self.progress.add(record)
        if self.tty:
            # back to column 0 after drawing: a job's log line then writes over the progress
            # line instead of after it, and the next poll draws it again
            self.stream.write("\r\033[K" + self.progress.line() + "\r")
            self.stream.flush()
            return
        now, done = self.progress.clock(), self.progress.done
        if now - self._last_log >= self.log_every and done != self._logged_done:
            log.info("%s", self.progress.line())
            self._last_log, self._logged_done = now, done

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.poll_every):
                try:
                    self.poll()
                except (OSError, ValueError) as err:  # a record being replaced: next poll
                    log.debug("progress poll: %s", err)

        self._thread = threading.Thread(target=loop, name="sweep-progress", daemon=True)
        self._thread.start()

    def stop(self, returns: list[JobReturn] | None = None) -> str:
        """Stop polling, fold in the launcher's returns, log and return the summary.

        A launcher's return is authoritative for a failure (a job killed before its callback
        ran has no record); durations come from the records.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.folder.exists():
            self.poll()
        for jr in returns or []:
            hydra = getattr(jr.hydra_cfg, "hydra", None) if jr.hydra_cfg is not None else None
            if hydra is None:
                continue
            num = hydra.job.num
            task = OmegaConf.select(jr.hydra_cfg, "hydra.overrides.task", default=None)
            key = "" if task is None else job_key(task)
            old = self.progress.records.get(key or num)
            if old is None or jr.status == JobStatus.FAILED:
                duration = old.duration_s if old else 0.0
                runs = runs_of(jr.cfg)
                record = record_of(num, hydra.runtime.output_dir, jr, duration, runs, key)
                self.progress.add(record)
        if self.tty:
            self.stream.write("\r\033[K")  # the summary's first line repeats it
            self.stream.flush()
        text = self.progress.summary()
        log.info("%s", text)
        return text
