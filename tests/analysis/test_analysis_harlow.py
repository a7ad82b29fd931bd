"""Harlow accuracy by trial: the one-shot observer's 0.5-then-1.0, random and oracle."""

from __future__ import annotations

import pytest

from mesalab.analysis.harlow import accuracy_analysis, analyze
from tests.analysis.conftest import reference_trajectories


@pytest.fixture(scope="module")
def refs():
    return reference_trajectories("harlow", 500, seed=1)[1]


def test_one_shot_guesses_once_then_is_perfect(refs) -> None:
    res = accuracy_analysis(refs["one_shot"])
    lo, hi = res["trial1_ci95"]
    assert lo < 0.5 < hi
    assert res["accuracy_by_trial"][1:] == [1.0] * 5
    assert res["later"] == 1.0
    assert res["jump"] == pytest.approx(1.0 - res["trial1"])
    assert res["jump_ci95"][0] > 0.4


def test_random_never_jumps_and_oracle_is_always_right(refs) -> None:
    rnd, orc = accuracy_analysis(refs["random"]), accuracy_analysis(refs["oracle"])
    lo, hi = rnd["jump_ci95"]
    assert lo < 0 < hi
    for key in ("trial1", "later"):
        a, b = rnd[f"{key}_ci95"]
        assert a <= rnd[key] <= b and a < 0.5 < b
    assert all(
        a <= acc <= b
        for (a, b), acc in zip(rnd["accuracy_by_trial_ci95"], rnd["accuracy_by_trial"], strict=True)
    )
    assert orc["accuracy_by_trial"] == [1.0] * 6 and orc["jump"] == 0.0


def test_analyze_table_and_figure(refs, tmp_path) -> None:
    out = analyze(refs, family=None, out_dir=tmp_path)
    assert [r["policy"] for r in out["table"]] == list(refs)
    assert (tmp_path / "harlow_accuracy.png").stat().st_size > 5000
