"""Sweep progress: counts and ETA on a fake clock, the monitor's output, a real sweep."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from mesalab.studies.progress import (
    JobRecord,
    ProgressMonitor,
    SweepProgress,
    fmt_duration,
    job_key,
    read_records,
    record_of,
    write_record,
)
from tests.studies.conftest import TINY


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counts_and_eta_from_finished_durations() -> None:
    clock = Clock()
    p = SweepProgress(10, "study", clock)
    assert p.eta_s() is None and "0/10 runs done" in p.line() and "ETA unknown" in p.line()
    clock.now += 10
    # two workers: two runs of 10 s each finished after 10 s of wall time
    p.add(JobRecord(0, "runs/a", "finished", 10.0))
    p.add(JobRecord(1, "runs/b", "finished", 10.0))
    p.add(JobRecord(2, "runs/c", "skipped", 0.01))
    # 7 left x 10 s mean / concurrency (20 s of runs in 10 s of wall) = 35 s
    assert p.eta_s() == 35.0
    assert p.line() == (
        "study: 3/10 runs done (2 finished, 0 failed, 1 skipped), elapsed 10s, ETA 35s"
    )
    clock.now += 10  # nothing new for 10 s: the observed concurrency drops to 1
    assert p.eta_s() == 70.0
    p.add(JobRecord(2, "runs/c", "failed", 4.0, "ValueError: x"))  # a job recorded again
    assert (p.count("skipped"), p.count("failed"), len(p.records)) == (0, 1, 3)


def test_skipped_runs_alone_give_no_eta_and_a_finished_sweep_gives_zero() -> None:
    p = SweepProgress(2, "s", Clock())
    p.add(JobRecord(0, "a", "skipped", 0.0))
    assert p.eta_s() is None
    p.add(JobRecord(1, "b", "skipped", 0.0))
    assert p.eta_s() == 0.0


def test_summary_names_every_failed_run_and_its_error() -> None:
    p = SweepProgress(4, "s", Clock())
    p.add(JobRecord(3, "out/run_d", "failed", 1.0, "RuntimeError: diverged"))
    p.add(JobRecord(0, "out/run_a", "finished", 1.0))
    p.add(JobRecord(1, "out/run_b", "failed", 1.0, "ValueError: num_arms=3"))
    lines = p.summary().splitlines()
    assert lines[0].startswith("s: 3/4 runs done (1 finished, 2 failed, 0 skipped)")
    assert lines[1] == "1 runs never reported"
    assert lines[2:4] == [
        "FAILED out/run_b: ValueError: num_arms=3",
        "FAILED out/run_d: RuntimeError: diverged",
    ]
    assert (
        lines[4]
        == "(each failed job's traceback is in its record: .progress/1.json, .progress/3.json)"
    )


def test_durations_read_as_people_write_them() -> None:
    assert [fmt_duration(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]


def test_record_of_a_hydra_job_return() -> None:
    failed = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("bad\nvalue"))
    rec = record_of(4, "out/x", failed, 2.5)
    assert (rec.status, rec.error) == ("failed", "ValueError: bad value")
    skipped = JobReturn(status=JobStatus.COMPLETED, _return_value="skipped")
    assert record_of(5, "out/y", skipped, 0.1).status == "skipped"
    done = JobReturn(status=JobStatus.COMPLETED, _return_value="finished")
    assert record_of(6, "out/z", done, 9.0).status == "finished"


def test_monitor_redraws_one_line_on_a_terminal(tmp_path: Path) -> None:
    clock, term = Clock(), Terminal()
    mon = ProgressMonitor(tmp_path, SweepProgress(3, "s", clock), stream=term)
    write_record(tmp_path, JobRecord(0, "a", "finished", 5.0))
    clock.now += 5
    mon.poll()
    write_record(tmp_path, JobRecord(1, "b", "finished", 5.0))
    mon.poll()
    out = term.getvalue()
    assert out.count("\r\033[K") == 2 and "\n" not in out
    assert out.endswith("s: 2/3 runs done (2 finished, 0 failed, 0 skipped), elapsed 5s, ETA 2s\r")
    mon.stop()
    assert term.getvalue().endswith("\r\033[K")  # cleared for the summary


def test_monitor_logs_periodically_when_not_on_a_terminal(tmp_path: Path, caplog) -> None:
    clock, plain = Clock(), io.StringIO()
    mon = ProgressMonitor(tmp_path, SweepProgress(3, "s", clock), stream=plain, log_every=30)
    caplog.set_level(logging.INFO, logger="mesalab.studies.progress")
    write_record(tmp_path, JobRecord(0, "a", "finished", 5.0))
    mon.poll()  # not due yet
    clock.now += 30
    mon.poll()  # due
    clock.now += 30
    mon.poll()  # due, but nothing changed: no repeat
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["s: 1/3 runs done (1 finished, 0 failed, 0 skipped), elapsed 30s, ETA 10s"]
    assert plain.getvalue() == ""


def test_monitor_takes_failures_from_the_launcher_returns(tmp_path: Path) -> None:
    """A job that died before its callback ran still appears in the summary."""
    mon = ProgressMonitor(tmp_path / "none", SweepProgress(1, "s", Clock()), stream=io.StringIO())
    hydra_cfg = OmegaConf.create({"hydra": {"job": {"num": 0}, "runtime": {"output_dir": "d"}}})
    jr = JobReturn(status=JobStatus.FAILED, _return_value=OSError("killed"), hydra_cfg=hydra_cfg)
    assert mon.stop([jr]).splitlines()[1] == "FAILED d: OSError: killed"


def test_monitor_counts_only_its_own_launch(tmp_path: Path) -> None:
    """Two launches into one sweep dir: an earlier launch's record of one of our jobs and a
    concurrent launch's record of another job are not counted (nor erased)."""
    ours = [["task=a", "seed=0"], ["seed=1", "task=a"]]
    keys = [job_key(job) for job in ours]
    assert keys[0] == job_key(["seed=0", "task=a"]) and keys[0] != keys[1]  # order-free
    mon = ProgressMonitor(
        tmp_path, SweepProgress(2, "s", Clock()), stream=io.StringIO(), keys=keys, since=500.0
    )
    write_record(tmp_path, JobRecord(0, "a", "finished", 5.0, key=keys[0], ended=400.0))
    write_record(tmp_path, JobRecord(0, "x", "finished", 5.0, runs=7, key="other", ended=600.0))
    mon.poll()
    assert mon.progress.done == 0
    write_record(tmp_path, JobRecord(0, "a", "failed", 5.0, "E: x", key=keys[0], ended=550.0))
    write_record(tmp_path, JobRecord(1, "b", "finished", 5.0, key=keys[1], ended=560.0))
    mon.poll()
    assert (mon.progress.done, mon.progress.count("failed")) == (2, 1)
    assert {r.key for r in read_records(tmp_path)} == {*keys, "other"}


def test_a_real_sweep_shows_progress_and_names_its_failed_run(tmp_path: Path) -> None:
    """Two runs through Hydra's basic launcher; the dependent bandit refuses three arms."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    records_dir = tmp_path / "sweeps" / "progress" / ".progress"
    # another launch into the same sweep dir, running at the same time: not counted
    write_record(
        records_dir, JobRecord(0, "elsewhere", "finished", 1.0, runs=5, key="x", ended=4e9)
    )
    args = [
        sys.executable,
        "-m",
        "mesalab.studies.run",
        "-m",
        f"out_root={tmp_path}",
        "sweep_name=progress",
        "task=bernoulli_bandit,dependent_bandit",
        "++task.family.num_arms=3",
        "hydra.sweeper.log_every=0",
        *TINY,
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert "progress: 2/2 runs done (1 finished, 1 failed, 0 skipped)" in out, out[-3000:]
    # counted from the jobs' records (the last poll's line, with its ETA), not only from the
    # launcher's returns: the callback's key of each job is the sweeper's
    assert re.search(r"progress: 2/2 runs done \(1 finished.*, ETA 0s", out), out[-3000:]
    failed_dir = tmp_path / "sweeps" / "progress" / "dependent_bandit_lstm_rl_mem-on_related_s0"
    assert f"FAILED {failed_dir}: ConfigError:" in out  # refused before training
    assert "num_arms=3 is not allowed" in out and "1 of 2 runs failed" in out
    records = [r for r in read_records(records_dir) if r.key != "x"]
    assert sorted(r.status for r in records) == ["failed", "finished"]
    failed = next(r for r in records if r.status == "failed")
    assert "Traceback" in failed.traceback and failed.duration_s > 0
    assert f"its record: .progress/{failed.key}.json)" in out
    # a record is named by its job's key: the hash of the overrides the run saved
    overrides = OmegaConf.load(failed_dir / ".hydra" / "overrides.yaml")
    assert (records_dir / f"{job_key(overrides)}.json").exists() and failed.num in (0, 1)
