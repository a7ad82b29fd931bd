"""Loss by number of in-context examples: references' known orderings and exact identities."""

from __future__ import annotations

import pytest

from mesalab.analysis.position import position_analysis
from mesalab.analysis.regression import analyze
from tests.analysis.conftest import reference_trajectories


@pytest.fixture(scope="module")
def refs():
    return reference_trajectories("linear_regression", 2000, seed=2)[1]


def test_ridge_loss_falls_with_every_example(refs) -> None:
    res = position_analysis(refs, loss=True, reference="ridge")
    ridge = res["ridge"]["curve"]
    assert all(b < a for a, b in zip(ridge, ridge[1:], strict=False))
    # it starts at the prior's loss and approaches the noise floor (0.25) from above
    assert ridge[0] == pytest.approx(5.25, rel=0.1) and 0.25 < ridge[-1] < 0.75


def test_every_predictor_says_zero_before_the_first_example(refs) -> None:
    res = position_analysis(refs, loss=True)
    first = {k: r["curve"][0] for k, r in res.items() if k != "oracle"}
    assert len(set(first.values())) == 1


def test_ridge_is_the_best_predictor_without_the_task(refs) -> None:
    res = position_analysis(refs, loss=True, reference="ridge")
    assert res["ridge"]["last_ratio"] == 1.0 and res["ridge"]["last_ratio_ci95"] == [1.0, 1.0]
    for name in ("least_squares", "gd_1", "gd_5", "knn_3", "averaging", "random"):
        assert res[name]["mean_ratio_ci95"][0] > 1.0, name
    assert res["oracle"]["mean_ratio_ci95"][1] < 1.0
    # least squares interpolates the noise at d = 5 examples: its loss peaks there
    ls = res["least_squares"]["curve"]
    assert max(range(len(ls)), key=ls.__getitem__) == 5


def test_analyze_reports_ratios_to_ridge(refs, tmp_path) -> None:
    out = analyze(refs, family=None, out_dir=tmp_path)
    assert out["reference"] == "ridge" and out["num_examples"] == list(range(11))
    rows = {r["policy"]: r for r in out["table"]}
    assert rows["ridge"]["last_vs_ridge"] == 1.0
    assert (tmp_path / "regression_loss.png").stat().st_size > 5000
