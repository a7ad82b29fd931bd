"""mesalab-report on a task-diversity sweep: index and improvement against K, OOD table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from mesalab.analysis.diversity import diversity_groups, pool_size_of
from mesalab.analysis.report import main
from mesalab.analysis.sweep import group_runs, load_sweep
from tests.analysis.test_report import write_run

KS = (1, 4, 16)


def add_location(run_dir: Path, index: float | None, k: float) -> None:
    """Put a location and an OOD entry into a synthetic run's metrics.json."""
    path = run_dir / "metrics.json"
    m = json.loads(path.read_text())
    obs = {**m["eval"], "improvement": 0.1 / k, "improvement_ci95": [0.0, 0.2]}
    m["location"] = (
        None
        if index is None
        else {
            "index": index,
            "index_ci95": [index - 0.1, index + 0.1],
            "num_tasks": 100,
            "num_trials": 10,
            "informative_steps": 0.5,
            "disagreement": 0.1,
            "dist_train_prior": 0.1,
            "dist_family_prior": 0.1,
            "on_line": 0.9,
            "index_by_trial": [index] * 10,
            "pool_size": k,
            "observers": {"train_prior": obs, "family_prior": {**obs, "improvement": 0.3}},
        }
    )
    ood = {"num_tasks": 100, "improvement": 0.2, "improvement_ci95": [0.1, 0.3], "regret": 1.0}
    ood.update(ideal_improvement=0.4, normalized_improvement=0.5, ideal_kept=0.6)
    m["ood"] = {"full": {**ood, "kept": 0.5, "kept_vs_ideal": 0.8}}
    path.write_text(json.dumps(m))


@pytest.fixture
def diversity_sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for seed in (0, 1):
        for k in KS:
            d = write_run(root, "lstm", "rl", True, f"pool{k}", seed, 0.05 * math.log2(4 * k))
            add_location(d, index=math.log(k + 1) / math.log(17) + 0.01 * seed, k=k)
        add_location(write_run(root, "lstm", "rl", True, "related", seed, 0.3), None, 1)
    return root


def test_pool_sizes() -> None:
    assert pool_size_of("pool16") == 16 and pool_size_of("single") == 1
    assert pool_size_of("related") == math.inf and pool_size_of("trialwise") is None


def test_groups_sorted_by_k_with_index(diversity_sweep: Path) -> None:
    runs, _ = load_sweep(diversity_sweep)
    series = diversity_groups(group_runs(runs))
    (gs,) = series.values()
    assert [g.distribution for g in gs] == ["pool1", "pool4", "pool16", "related"]
    idx = gs[2].stats["location_index"]
    assert idx.n == 2 and idx.mean == pytest.approx(1.0 + 0.005)
    assert "location_index" not in gs[3].stats  # related: no index
    assert gs[0].stats["train_prior.observer_improvement"].mean == pytest.approx(0.1)
    assert gs[0].stats["ood.full.kept"].mean == pytest.approx(0.5)


def test_report_has_the_diversity_section(diversity_sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main([str(diversity_sweep), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "Task diversity: task location or task learning?" in md
    assert "Out-of-distribution priors" in md
    assert (out / "figures" / "task_diversity.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert {r["location_index"] for r in rows if r["distribution"] == "related"} == {""}
    assert all(r["ood_full_kept"] == "0.5" for r in rows)


def test_no_pool_no_section(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    write_run(root, "lstm", "rl", True, "related", 0, 0.3)
    runs, _ = load_sweep(root)
    assert diversity_groups(group_runs(runs)) == {}
