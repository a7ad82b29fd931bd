"""resume=true continues only the same run: a config that changes results is refused, naming
every differing key; bookkeeping keys may differ; a signal stop exits with 128 + signum."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mesalab.studies.checkpoint import load_checkpoint
from mesalab.studies.errors import ResumeMismatch
from mesalab.studies.resume import RESULT_FREE, check_resume, config_differences
from mesalab.studies.run import run
from tests.studies.conftest import TINY
from tests.studies.test_run import strip_timing

BASE = [*TINY, "training.updates=4"]


@pytest.fixture
def stopped(make_cfg, tmp_path: Path) -> tuple[Path, dict]:
    """A run whose metrics.json is gone (stopped before evaluation), and its metrics."""
    run_dir = tmp_path / "run"
    metrics = run(make_cfg(*BASE), run_dir)
    (run_dir / "metrics.json").unlink()
    return run_dir, metrics


@pytest.mark.parametrize(
    ("overrides", "lines"),
    [
        (["seed=5"], ["seed: checkpoint 0, now 5"]),
        (
            ["arch=gru"],
            [
                "arch.core._target_: checkpoint 'mesalab.archs.recurrent.LSTMCore', "
                "now 'mesalab.archs.recurrent.GRUCore'",
                "arch.name: checkpoint 'lstm', now 'gru'",
            ],
        ),
        (
            ["training.updates=5", "training.optimizer.lr=0.001", "condition.memory=false"],
            [
                "condition.memory: checkpoint None, now False",
                "training.optimizer.lr: checkpoint 0.01, now 0.001",
                "training.updates: checkpoint 4, now 5",
            ],
        ),
        (["task.family.num_trials=13", "eval.num_tasks=17"], ["eval.num_tasks: checkpoint 16"]),
    ],
)
def test_a_config_that_changes_results_is_refused_naming_every_key(
    make_cfg, stopped, overrides, lines
) -> None:
    run_dir, _ = stopped
    before = (run_dir / "checkpoint.pt").read_bytes()
    with pytest.raises(ResumeMismatch) as err:
        run(make_cfg(*BASE, *overrides, "resume=true"), run_dir)
    msg = str(err.value)
    assert msg.startswith(f"resume=true refused: checkpoint {run_dir / 'checkpoint.pt'} was")
    body = [ln.strip() for ln in msg.splitlines()[1:-1]]
    assert all(line in "\n".join(body) for line in lines), msg
    assert len(body) >= len(lines) and all(": checkpoint " in ln for ln in body)
    assert "force=true" in msg and "hydra.run.dir=" in msg
    # nothing was written: the checkpoint keeps its config, and no metrics claim the new one
    assert (run_dir / "checkpoint.pt").read_bytes() == before
    assert not (run_dir / "metrics.json").exists()


def test_bookkeeping_keys_may_differ_and_the_run_says_so(make_cfg, stopped, caplog) -> None:
    run_dir, metrics = stopped
    changed = ["progress=true", "checkpoint_every=2", "logger.every=3", "threads=2"]
    with caplog.at_level(logging.INFO, logger="mesalab.run"):
        resumed = run(make_cfg(*BASE, *changed, "resume=true"), run_dir)
    notes = [r.getMessage() for r in caplog.records if "results unchanged" in r.getMessage()]
    for key in ("progress", "checkpoint_every", "logger.every", "threads"):
        assert any(f": {key}: checkpoint " in n for n in notes), notes
    assert strip_timing(resumed) == strip_timing(metrics)


def test_without_resume_a_checkpoint_is_trained_over_and_the_run_says_so(
    make_cfg, stopped, caplog
) -> None:
    run_dir, metrics = stopped
    with caplog.at_level(logging.WARNING, logger="mesalab.run"):
        again = run(make_cfg(*BASE), run_dir)
    warned = [r.getMessage() for r in caplog.records if "interrupted run" in r.getMessage()]
    assert len(warned) == 1 and "resume=true continues it" in warned[0], warned
    assert str(run_dir) in warned[0]
    assert strip_timing(again) == strip_timing(metrics)  # afresh: the same run again
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mesalab.run"):
        run(make_cfg(*BASE, "force=true"), run_dir)  # force asks for afresh: nothing to say
    assert not [r for r in caplog.records if "interrupted run" in r.getMessage()]


def test_force_starts_afresh_over_a_checkpoint_of_another_config(make_cfg, stopped) -> None:
    run_dir, _ = stopped
    metrics = run(make_cfg(*BASE, "seed=5", "resume=true", "force=true"), run_dir)
    assert metrics.seed == 5
    assert load_checkpoint(run_dir / "checkpoint.pt")["config"]["seed"] == 5


def test_every_top_level_key_is_classified() -> None:
    """A key is result-free only by being listed; anything else (new keys too) is compared."""
    saved = {"seed": 0, "logger": {"kind": "wandb"}, "new_key": 1}
    now = {"seed": 0, "logger": {"kind": "none"}, "new_key": 2}
    assert config_differences(saved, now) == [
        ("logger.kind", "wandb", "none"),
        ("new_key", 1, 2),
    ]
    with pytest.raises(ResumeMismatch, match="new_key: checkpoint 1, now 2"):
        check_resume(saved, now, Path("ck.pt"))
    assert check_resume(saved, {**now, "new_key": 1}, Path("ck.pt")) == [
        "logger.kind: checkpoint 'wandb', now 'none'"
    ]
    assert "seed" not in RESULT_FREE and "training" not in RESULT_FREE


def _cli(*extra: str, multirun: bool = False) -> list[str]:
    flags = ["-m"] if multirun else []  # Hydra's flag goes before the overrides
    return [sys.executable, "-m", "mesalab.studies.run", *flags, *TINY[1:], *extra]


ENV = {**os.environ, "WANDB_MODE": "disabled"}


def test_the_command_refuses_another_arch_with_status_2_naming_it(stopped) -> None:
    run_dir, _ = stopped
    args = _cli("training.updates=4", f"hydra.run.dir={run_dir}", "arch=gru", "resume=true")
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: resume=true refused: checkpoint ")
    assert "arch.name: checkpoint 'lstm', now 'gru'" in done.stderr
    assert "Traceback" not in done.stderr


def _wait_for(pattern: str, root: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while not list(root.glob(pattern)) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)


@pytest.mark.slow
def test_sigterm_under_a_sweep_exits_143_and_the_sweep_resumes(tmp_path: Path) -> None:
    updates = 40
    sweep = [
        f"out_root={tmp_path}",
        "sweep_name=stop",
        "seed=0,1",
        f"training.updates={updates}",
        "checkpoint_every=2",
    ]
    proc = subprocess.Popen(
        _cli(*sweep, multirun=True), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_for("sweeps/stop/*/checkpoint.pt", tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = (s.decode() for s in proc.communicate(timeout=300))
    assert proc.returncode == 128 + signal.SIGTERM == 143, out + err
    assert "interrupted by SIGTERM at update" in err and "resume=true" in err
    # the two seeds are one population job (population.max_size): both checkpointed
    runs = sorted((tmp_path / "sweeps" / "stop").glob("*/checkpoint.pt"))
    assert len(runs) == 2 and not any(load_checkpoint(r)["final"] for r in runs)
    again = subprocess.run(
        _cli(*sweep, "resume=true", multirun=True), env=ENV, capture_output=True, timeout=600
    )
    assert again.returncode == 0, again.stderr.decode()[-3000:]
    done = sorted((tmp_path / "sweeps" / "stop").glob("*/metrics.json"))
    assert len(done) == 2
    for path in done:
        assert json.loads(path.read_text())["train"]["env_steps"] == updates * 8 * 12


def _pool_workers(pid: int) -> list[int]:
    """The live loky worker processes whose parent is ``pid`` (Linux: /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"LokyProcess" in cmdline:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_pool_worker_stops_with_a_checkpoint_when_its_sweep_is_killed(tmp_path: Path) -> None:
    # joblib's loky workers outlive a killed parent: a run in one notices, checkpoints and exits
    sweep = [
        f"out_root={tmp_path}",
        "sweep_name=orphan",
        "seed=0,1",
        "population.max_size=1",  # two jobs, two workers (one job would run in the parent)
        "training.updates=1000000",  # hours: only the stop can end it within the test
        "hydra/launcher=local_parallel",
    ]
    log = (tmp_path / "sweep.log").open("wb")  # not a pipe: orphaned workers would hold it open
    proc = subprocess.Popen(_cli(*sweep, multirun=True), env=ENV, stdout=log, stderr=log)
    _wait_for("sweeps/orphan/*/.hydra/config.yaml", tmp_path, proc)
    time.sleep(3)  # the workers are in their training loops
    workers = _pool_workers(proc.pid)
    assert workers and proc.poll() is None
    proc.kill()  # no handler runs in the parent: its workers are orphaned
    proc.wait(timeout=60)
    deadline = time.time() + 120
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, "a pool worker kept running after its sweep was killed"
    assert "the sweep that launched it is gone" in (tmp_path / "sweep.log").read_text()
    run_dirs = [p.parent for p in (tmp_path / "sweeps" / "orphan").glob("*/.hydra")]
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        ck = load_checkpoint(run_dir / "checkpoint.pt")
        assert 0 < ck["loop"]["update"] < 1000000 and not ck["final"]
        assert not (run_dir / "metrics.json").exists()


def test_without_its_checkpoint_a_finished_run_is_checked_against_its_hydra_config(
    make_cfg, tmp_path: Path
) -> None:
    # a study's committed runs keep metrics.json and .hydra/, never the checkpoint
    run_dir = tmp_path / "run"
    cfg = make_cfg(*BASE)
    run(cfg, run_dir)
    (run_dir / "checkpoint.pt").unlink()
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # as Hydra writes it: unresolved
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    assert run(make_cfg(*BASE, "progress=true"), run_dir) is None  # the same run: skipped
    with pytest.raises(ResumeMismatch, match="^skipping the finished run refused: config ") as err:
        run(make_cfg(*BASE, "training.optimizer.lr=0.001"), run_dir)
    assert "training.optimizer.lr: config 0.01, now 0.001" in str(err.value)
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp


def test_a_finished_run_is_skipped_only_for_its_own_config(make_cfg, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run(make_cfg(*BASE), run_dir)
    stamp = (run_dir / "metrics.json").stat().st_mtime_ns
    assert run(make_cfg(*BASE, "progress=true"), run_dir) is None  # bookkeeping only: skipped
    # the learning rate is not in the run name: the directory is the same, the run is not
    with pytest.raises(ResumeMismatch, match="^skipping the finished run refused") as err:
        run(make_cfg(*BASE, "training.optimizer.lr=0.001"), run_dir)
    assert "training.optimizer.lr: checkpoint 0.01, now 0.001" in str(err.value)
    assert (run_dir / "metrics.json").stat().st_mtime_ns == stamp
