"""mesalab-analyze end to end: a tiny mesalab-run per family, then its analysis."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mesalab.analysis.analyze import format_table, main
from mesalab.studies.run import CONFIG_DIR, run
from tests.studies.conftest import TINY

#: family -> (extra overrides, analysis name, figure)
FAMILIES = {
    "two_step": ([], "two_step", "two_step_stay.png"),
    "harlow": (["task.family.num_trials=6"], "harlow", "harlow_accuracy.png"),
    "restless_bandit": (
        ["++task.family.block_length=4", "training.optimizer.lr=3e-3"],
        "volatility",
        "volatility_rates.png",
    ),
    "linear_regression": ([], "linear_regression", "regression_loss.png"),
    "markov_chain": ([], "markov_chain", "sequence_loss.png"),
    "tabular_mdp": ([], "curve", "curve.png"),
}


def tiny_run(tmp_path: Path, task: str, *overrides: str) -> Path:
    """Train 3 updates on 8 episodes, evaluate on 16 tasks; the run directory."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*TINY, f"task={task}", *overrides])
    run_dir = tmp_path / task
    run(cfg, run_dir)
    return run_dir


@pytest.mark.parametrize("task", list(FAMILIES))
def test_run_then_analyze(task: str, tmp_path: Path, capsys) -> None:
    overrides, name, figure = FAMILIES[task]
    run_dir = tiny_run(tmp_path, task, *overrides)
    assert main([str(run_dir), "--tasks", "16"]) == 0
    result = json.loads((run_dir / "analysis.json").read_text())
    assert result["analysis"] == name and result["task"] == task
    assert result["num_tasks"] == 16 and result["figures"] == [figure]
    assert (run_dir / figure).stat().st_size > 5000
    assert "learner" in result["policies"]
    if name == "volatility":  # reported next to the fitted in-context rates
        assert result["outer_lr"] == 3e-3
    # the default training decays the learning rate linearly to 0
    assert result["outer_lr_schedule"][1] == 0.0
    printed = capsys.readouterr().out
    assert "learner" in printed and f"{name} analysis of {task}" in printed


def test_console_script_and_out_dir(tmp_path: Path, capsys) -> None:
    (script,) = entry_points(group="console_scripts", name="mesalab-analyze")
    assert script.value == "mesalab.analysis.analyze:main"
    run_dir = tiny_run(tmp_path, "harlow", "task.family.num_trials=4")
    out = tmp_path / "elsewhere"
    assert main([str(run_dir), "--tasks", "8", "--out", str(out)]) == 0
    assert (out / "analysis.json").exists() and not (run_dir / "analysis.json").exists()
    assert "one_shot" in capsys.readouterr().out


def test_refuses_a_directory_without_a_run(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path)])


def test_format_table_aligns_columns() -> None:
    text = format_table([{"policy": "a", "x": 0.123456, "ci": [0.1, 0.2]}, {"policy": "bb"}])
    lines = text.splitlines()
    assert lines[0].split() == ["policy", "x", "ci"]
    assert lines[1].split() == ["a", "0.1235", "[0.1,", "0.2]"]
    assert lines[2].split() == ["bb", "-", "-"]
