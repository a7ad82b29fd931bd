"""``benchmarks/study_cost.py`` times the jobs the sweep would launch, and every one of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hydra import initialize_config_dir

from mesalab.studies.run import CONFIG_DIR
from mesalab.studies.sweep import job_size

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "study_cost.py"


def _jobs(arguments: list[str]) -> list[list[str]]:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from study_cost import population_jobs
    finally:
        sys.path.remove(str(SCRIPT.parent))
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return population_jobs("three_conditions_quick", arguments)


def test_jobs_are_the_sweeps_populations() -> None:
    """The quick study's 204 runs, grouped as the sweeper groups them (populations of 2-6)."""
    jobs = _jobs([])
    assert sum(map(job_size, jobs)) == 204
    assert len(jobs) == 64
    assert max(map(job_size, jobs)) == 6


def test_prints_a_time_per_trained_job_and_the_totals() -> None:
    narrow = ["arch=ffn", "task=dependent_bandit", "training=supervised,none"]
    jobs = _jobs(narrow)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--updates", "1", "--rows", "32", "--json", *narrow],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    lines = out.splitlines()
    runs = sum(map(job_size, jobs))
    assert lines[0] == f"three_conditions_quick: {runs} runs in {len(jobs)} jobs"
    trained = [line for line in lines if line.startswith("  job ")]
    assert len(trained) == sum("training=supervised" in job for job in jobs) > 0
    result = json.loads(lines[-1])
    assert set(result["per_arch"]) == {"ffn"}
    assert result["study"] > 0 and result["one_big_batch"] > 0
    untrained = sum(job_size(j) for j in jobs if "training=none" in j)
    assert f"untrained runs (no training time): {untrained};" in out


def test_plain_overrides_reach_the_seed_lists() -> None:
    """``study.verdict_seeds=0`` reaches the sweeper's params, as in ``mesalab-run -m``: seed 1's
    runs go, the cross product's seed-0 runs stay."""
    every = _jobs([])
    seed_zero = _jobs(["study.verdict_seeds=0"])
    assert "seed:1" in str(every)
    assert "seed:1" not in str(seed_zero) and "seed=1" not in str(seed_zero)
    assert 0 < sum(map(job_size, seed_zero)) < sum(map(job_size, every))
