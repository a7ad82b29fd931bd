"""The report's controller and horizon sections, read from the runs' analysis files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mesalab.analysis.report import main
from tests.analysis.test_report import table_rows, write_run

MODELS = ("bayes_optimal", "thompson", "rescorla_wagner", "win_stay_lose_shift", "last_k")


def controllers(best: str, gain: float, margin: float) -> dict:
    """A controllers.json whose ranking puts ``best`` first."""
    ranking = [best] + [m for m in MODELS if m != best]
    models = {m: {"gain_over_chance": gain if m == best else 0.1, "params": {}} for m in MODELS}
    return {"best": best, "ranking": ranking, "models": models, "margin": margin}


def horizons(segments: list[float]) -> dict:
    """A horizons.json with horizons 1 and len(segments)."""
    h = len(segments)
    long = {"horizon": h, "fits": True, "learner_segments": segments}
    long |= {"bayes_segments": [0.8] * h, "last_segment_regret_per_trial": 0.8 - segments[-1]}
    return {"horizons": [{**long, "horizon": 1, "learner_segments": segments[:1]}, long]}


def test_sections_show_the_best_model_and_segments(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    dirs = [write_run(root, "lstm", "rl", True, "related", s, 0.1) for s in range(3)]
    write_run(root, "ffn", "rl", False, "related", 0, 0.0)  # never analysed: no row
    votes = [("last_k", 0.5), ("last_k", 0.3), ("thompson", 0.4)]
    for d, (best, gain) in zip(dirs, votes, strict=True):
        (d / "controllers.json").write_text(json.dumps(controllers(best, gain, 0.2)))
    (dirs[0] / "horizons.json").write_text(json.dumps(horizons([0.7, 0.6])))
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "## Inference or a simple controller?" in md and "## Past the training horizon" in md
    controller_md, horizon_md = md.split("## Inference or a simple controller?")[1].split("## Past")
    (row,) = table_rows(controller_md, "task")
    assert row["arch"] == "lstm" and row["analysed"] == "3/3"
    assert row["best model (seeds)"] == "last_k (2/3); thompson 1"
    assert row["its gain over chance"] == "0.400" and row["margin"] == "0.200"
    with open(out / "runs.csv") as f:
        best = {r["run"]: r["controller_best"] for r in csv.DictReader(f)}
    assert sorted(best.values()) == ["", "last_k", "last_k", "thompson"]
    (hrow,) = table_rows(horizon_md, "task")
    assert hrow["horizon"] == "2x" and hrow["analysed"] == "1/3"
    assert hrow["learner reward by segment"] == "0.700 → 0.600"
    assert hrow["last-segment regret/trial"] == "0.200"


def test_no_section_without_analysed_runs(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    write_run(root, "lstm", "rl", True, "related", 0, 0.1)
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "controller" not in md and "training horizon" not in md


def regression_analysis(last_vs_ridge: float) -> dict:
    """An analysis.json as mesalab-analyze writes it for regression (learner and ridge rows)."""
    learner = {"policy": "learner", "last_loss": 0.6, "last_ci95": [0.5, 0.7]}
    learner |= {"last_vs_ridge": last_vs_ridge, "mean_vs_ridge": 1.0}
    ridge = {"policy": "ridge", "last_loss": 0.5, "last_vs_ridge": 1.0}
    return {"analysis": "linear_regression", "table": [learner, ridge]}


def test_family_analysis_section_and_columns(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    dirs = [write_run(root, "lstm", "rl", True, "related", s, 0.1) for s in range(3)]
    for d, ratio in zip(dirs[:2], (1.1, 1.2), strict=True):  # the third was not analysed
        (d / "analysis.json").write_text(json.dumps(regression_analysis(ratio)))
    (dirs[2] / "analysis.json").write_text("{not json")  # unreadable: no row, no failure
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    section = md.split("## The family's analysis: linear_regression")[1].split("\n## ")[0]
    (row,) = table_rows(section, "task")
    assert row["analysed"] == "2/3" and row["last_vs_ridge"] == "1.15 [1.1, 1.2]"
    assert "last_ci95" not in row  # intervals (lists) are not averaged into a cell
    with open(out / "runs.csv") as f:
        ratios = {r["seed"]: r["analysis_last_vs_ridge"] for r in csv.DictReader(f)}
    assert ratios == {"0": "1.1", "1": "1.2", "2": ""}
