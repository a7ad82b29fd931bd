"""Markov-chain loss by position: bigram below unigram, the Bayes predictor's identities."""

from __future__ import annotations

import pytest

from mesalab.analysis.sequence import analyze
from tests.analysis.conftest import reference_trajectories


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    _, refs = reference_trajectories("markov_chain", 300, seed=4, num_trials=60)
    return analyze(refs, family=None, out_dir=tmp_path_factory.mktemp("seq"))


def test_bigram_beats_unigram_beats_uniform(result) -> None:
    p = result["policies"]
    assert p["unigram"]["excess_mean_ci95"][0] > 0
    assert p["random"]["excess_mean_ci95"][0] > p["unigram"]["excess_mean_ci95"][1]
    assert p["oracle"]["excess_mean_ci95"][1] < 0
    # the bigram predictor learns: its loss falls from the uniform prediction's
    big = p["bigram"]["curve"]
    assert big[0] == pytest.approx(p["random"]["curve"][0]) and big[-1] < big[0] - 0.1


def test_without_drift_bigram_is_the_bayes_predictor(result) -> None:
    big = result["policies"]["bigram"]
    assert big["excess_mean"] == pytest.approx(0.0, abs=1e-6)
    assert big["mean_ratio"] == pytest.approx(1.0, abs=1e-6)


def test_figure_and_table(result) -> None:
    assert result["figures"] == ["sequence_loss.png"]
    assert {r["policy"] for r in result["table"]} == set(result["policies"])
