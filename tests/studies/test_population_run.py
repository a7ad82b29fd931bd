"""Population jobs: members trained as one population, each written as a normal run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from mesalab.archs.budget import config_cores
from mesalab.studies import population_run
from mesalab.studies.callbacks import Callback
from mesalab.studies.checkpoint import load_checkpoint
from mesalab.studies.config import job_dir_name
from mesalab.studies.errors import ConfigError, Interrupted
from mesalab.studies.loop import TrainingDiverged
from mesalab.studies.population_run import run_population
from mesalab.studies.progress import JobRecord, SweepProgress
from mesalab.studies.run import Run, run
from mesalab.studies.signals import A2C
from mesalab.studies.sweep import group_jobs, job_size
from tests.conftest import DEVICES
from tests.studies.conftest import TINY

NAME = "dependent_bandit_lstm_rl_mem-on_{}_s{}"


class NaNRow(A2C):
    """A2C whose member ``row`` gets a NaN loss from the ``after``-th update on."""

    def __init__(self, row: int = 1, after: int = 1, **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.row, self.after, self.calls = row, after, 0

    def population_loss(self, out, traj, head, progress):  # type: ignore[override]
        """The A2C losses, member ``row``'s poisoned once ``after`` updates have been made."""
        losses, metrics = super().population_loss(out, traj, head, progress)
        self.calls += 1
        if self.calls > self.after and losses.shape[0] > self.row:
            poison = torch.zeros_like(losses)
            poison[self.row] = torch.nan
            losses = losses + poison
        return losses, metrics


def record(run_dir: Path) -> dict:
    """metrics.json without what may differ between identical runs (timing, code state, finish
    time)."""
    rec = json.loads((run_dir / "metrics.json").read_text())
    rec.pop("code", None)
    rec.pop("finished", None)
    for key in ("wall_s", "env_steps_per_s"):
        rec["train"].pop(key)
    return rec


def members(*items: str) -> str:
    """``population.members=[{...},...]`` from member bodies like ``seed:1``."""
    return "population.members=[" + ",".join("{" + i + "}" for i in items) + "]"


def job_dir(root: Path) -> Path:
    return root / ".populations" / "job"


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_a_population_of_one_writes_the_solo_runs_record(
    make_cfg, tmp_path: Path, device: str
) -> None:
    solo = run(make_cfg(*TINY, "seed=1", f"device={device}"), tmp_path / "solo")
    assert solo is not None
    cfg = make_cfg(*TINY, members("seed:1"), f"device={device}")
    (rec,) = run_population(cfg, job_dir(tmp_path / "pop"), Run)
    member = tmp_path / "pop" / NAME.format("related", 1)
    assert rec is not None and "population" not in json.loads((member / "metrics.json").read_text())
    assert record(member) == record(tmp_path / "solo")
    for name in ("curves.npz", "curves.png", "checkpoint.pt", ".hydra/config.yaml"):
        assert (member / name).exists(), name


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch", sorted(config_cores()))
def test_every_arch_trains_as_a_population_job(
    make_cfg, tmp_path: Path, arch: str, device: str
) -> None:
    """Every arch config (Mamba one member after another), each member a finished run."""
    cfg = make_cfg(*TINY, f"arch={arch}", members("seed:1", "seed:2"), f"device={device}")
    recs = run_population(cfg, job_dir(tmp_path), Run)
    assert [r.seed for r in recs] == [1, 2] and all(r.frozen.verified for r in recs)


def test_population_jobs_of_different_runs_get_different_directories() -> None:
    """Two jobs listing the same members (other archs) must not share a job directory."""
    same = OmegaConf.create([{"seed": 1}, {"seed": 2}])
    assert job_dir_name("a_lstm", same) != job_dir_name("a_gru", same)


def test_members_are_written_with_their_own_data_side_and_population(
    make_cfg, tmp_path: Path
) -> None:
    cfg = make_cfg(
        *TINY,
        "training.batch_size=32",
        members("seed:1", "seed:2,condition.distribution:pool,condition.pool_size:4"),
    )
    recs = run_population(cfg, job_dir(tmp_path), Run)
    names = [NAME.format("related", 1), NAME.format("pool4", 2)]
    assert [(r.seed, r.distribution) for r in recs] == [(1, "related"), (2, "pool4")]
    for name in names:
        assert json.loads((tmp_path / name / "metrics.json").read_text())["population"] == names
        assert (
            "condition.pool_size=4" in (tmp_path / names[1] / ".hydra/overrides.yaml").read_text()
        )


def test_in_member_streams_a_member_does_not_depend_on_the_others(make_cfg, tmp_path) -> None:
    base = [*TINY, "training.batch_size=32", "population.streams=member"]
    run_population(make_cfg(*base, members("seed:1", "seed:2")), job_dir(tmp_path / "a"), Run)
    other = members("seed:1", "seed:3,condition.distribution:pool,condition.pool_size:2")
    run_population(make_cfg(*base, other), job_dir(tmp_path / "b"), Run)
    name = NAME.format("related", 1)
    assert record(tmp_path / "a" / name) == record(tmp_path / "b" / name)
    # and the record says nothing of the population: it does not matter
    assert "population" not in json.loads((tmp_path / "a" / name / "metrics.json").read_text())


def test_a_member_key_outside_the_data_side_is_refused(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"population.members\[0\]"):
        run_population(
            make_cfg(*TINY, members("seed:1,training.updates:5")), job_dir(tmp_path), Run
        )


def test_a_diverging_member_stops_alone(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg(
        *TINY,
        "training.updates=5",
        "checkpoint_every=1",
        f"training.signal._target_={__name__}.NaNRow",
        "+training.signal.after=2",
        members("seed:1", "seed:2"),
    )
    with pytest.raises(TrainingDiverged, match="1 of 2 members diverged"):
        run_population(cfg, job_dir(tmp_path), Run)
    ok, bad = tmp_path / NAME.format("related", 1), tmp_path / NAME.format("related", 2)
    assert record(ok)["seed"] == 1 and load_checkpoint(ok / "checkpoint.pt")["loop"]["update"] == 5
    assert not (bad / "metrics.json").exists()
    assert "non-finite loss" in (bad / "error.txt").read_text()
    ck = load_checkpoint(bad / "checkpoint.pt")  # the last good one
    assert ck["loop"]["update"] == 2 and not ck["final"]
    assert all(torch.isfinite(v).all() for v in ck["learner"].values())


class SigtermAt(Callback):
    """Sends this process SIGTERM after update ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_update(self, run, state, metrics) -> bool:  # type: ignore[override]
        """Signal once, at ``at``."""
        if state.update == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return True


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
def test_an_interrupted_population_resumes_to_the_same_records(
    make_cfg, tmp_path: Path, monkeypatch, device: str
) -> None:
    # on CUDA too: a checkpoint's generator states load onto the device with the rest, and a
    # generator takes its state back only as a CPU tensor
    base = [*TINY, "training.updates=5", members("seed:1", "seed:2"), f"device={device}"]
    run_population(make_cfg(*base), job_dir(tmp_path / "whole"), Run)
    solo_callbacks = population_run.member_callbacks
    monkeypatch.setattr(
        population_run, "member_callbacks", lambda first: [*solo_callbacks(first), SigtermAt(2)]
    )
    with pytest.raises(Interrupted) as stop:
        run_population(make_cfg(*base), job_dir(tmp_path / "cut"), Run)
    assert stop.value.exit_status == 143
    names = [NAME.format("related", s) for s in (1, 2)]
    for name in names:  # every member checkpointed, none finished
        assert load_checkpoint(tmp_path / "cut" / name / "checkpoint.pt")["loop"]["update"] == 2
        assert not (tmp_path / "cut" / name / "metrics.json").exists()
    monkeypatch.setattr(population_run, "member_callbacks", solo_callbacks)
    run_population(make_cfg(*base, "resume=true"), job_dir(tmp_path / "cut"), Run)
    for name in names:
        assert record(tmp_path / "cut" / name) == record(tmp_path / "whole" / name)


def test_finished_members_are_skipped(make_cfg, tmp_path: Path) -> None:
    run_population(make_cfg(*TINY, members("seed:1", "seed:2")), job_dir(tmp_path), Run)
    first = tmp_path / NAME.format("related", 1)
    stamp = (first / "metrics.json").stat().st_mtime_ns
    recs = run_population(make_cfg(*TINY, members("seed:1", "seed:3")), job_dir(tmp_path), Run)
    assert recs[0] is None and recs[1] is not None and recs[1].seed == 3
    assert (first / "metrics.json").stat().st_mtime_ns == stamp


def test_jobs_group_by_everything_but_seed_and_data_side() -> None:
    jobs = [
        ["arch=lstm", f"seed={s}", f"condition.pool_size={k}"] for s in (0, 1) for k in (2, 4)
    ] + [["arch=gru", "seed=0"], ["+x=1", "seed=0"]]
    grouped = group_jobs(jobs, max_size=3)
    assert grouped == [  # four runs at max_size 3: two populations of two, as even as possible
        [
            "arch=lstm",
            "population.members=[{seed:0,condition.pool_size:2},{seed:0,condition.pool_size:4}]",
        ],
        [
            "arch=lstm",
            "population.members=[{seed:1,condition.pool_size:2},{seed:1,condition.pool_size:4}]",
        ],
        ["arch=gru", "seed=0"],  # a group of one stays a plain job
        ["+x=1", "seed=0"],
    ]
    assert [job_size(j) for j in grouped] == [2, 2, 1, 1]
    assert group_jobs(jobs, max_size=1) == jobs
    sizes = [job_size(j) for j in group_jobs([[f"seed={s}"] for s in range(10)], max_size=8)]
    assert sizes == [5, 5]


@pytest.mark.slow
def test_a_grouped_sweep_writes_the_runs_of_an_ungrouped_one(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    dirs = {}
    for size in (1, 8):
        args = [
            sys.executable,
            "-m",
            "mesalab.studies.run",
            "-m",
            f"out_root={tmp_path / str(size)}",
            "sweep_name=s",
            f"population.max_size={size}",
            "population.streams=member",
            "seed=0,1",
            "condition.distribution=pool",
            "condition.pool_size=2,4",
            "condition.memory=true,false",
            *TINY,
        ]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "s: 8/8 runs done (8 finished, 0 failed, 0 skipped)" in done.stdout + done.stderr
        dirs[size] = sorted(
            p.parent for p in (tmp_path / str(size)).glob("sweeps/s/*/metrics.json")
        )
    assert [d.name for d in dirs[1]] == [d.name for d in dirs[8]] and len(dirs[1]) == 8
    for solo, member in zip(dirs[1], dirs[8], strict=True):
        assert record(solo) == record(member)


def test_sweep_progress_counts_the_runs_of_population_jobs() -> None:
    progress = SweepProgress(total=5, name="s", clock=lambda: 0.0)
    progress.add(JobRecord(0, "a", "finished", 1.0, runs=3))
    progress.add(JobRecord(1, "b", "skipped", 0.0))
    assert progress.done == 4 and progress.count("finished") == 3
    assert progress.line().startswith("s: 4/5 runs done (3 finished, 0 failed, 1 skipped)")
