"""Sweeps through Hydra launchers: submitit's local executor exercises the Slurm code path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.studies.conftest import TINY


@pytest.mark.slow
def test_four_run_sweep_through_submitit_local(tmp_path: Path) -> None:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    args = [
        sys.executable,
        "-m",
        "mesalab.studies.run",
        "-m",
        "hydra/sweeper=dedup",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "hydra.sweeper.max_batch_size=2",
        f"out_root={tmp_path}",
        "sweep_name=launch",
        "condition.memory=true,false",
        "seed=0,1",
        *TINY,
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # the jobs ran in submitit's processes; their records reached the sweeper's summary
    assert "launch: 4/4 runs done (4 finished, 0 failed, 0 skipped)" in done.stdout + done.stderr
    runs = sorted(p.parent for p in (tmp_path / "sweeps" / "launch").glob("*/metrics.json"))
    assert len(runs) == 4
    memories = sorted(json.loads((r / "metrics.json").read_text())["memory"] for r in runs)
    assert memories == [False, False, True, True]
    # re-running the sweep skips the finished runs: nothing is rewritten
    stamps = {r: (r / "metrics.json").stat().st_mtime_ns for r in runs}
    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {r: (r / "metrics.json").stat().st_mtime_ns for r in runs} == stamps
