"""Can a bandit tell location from learning? The two observers compared without training."""

from __future__ import annotations

import pytest
import torch

from mesalab.analysis.separation import main, separation, strict_disagreement
from mesalab.tasks import make_family


def test_strict_disagreement_needs_disjoint_best_arms() -> None:
    a = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]])
    b = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]]])
    # (N=1, T=4, A=3): differ; agree; a tie that includes b's arm; a tie that excludes a's
    assert strict_disagreement(a, b).tolist() == [[True, False, False, True]]


def test_first_trial_differs_only_by_a_tie() -> None:
    # One trial: the family observer is indifferent (symmetric prior), the one-task observer
    # is not: every step is informative, none strictly.
    s = separation(make_family("dependent_bandit", num_trials=1), 1, num_tasks=50, seeds=(0,))
    assert s.informative == {"train_prior": 1.0, "family_prior": 1.0}
    assert s.strict == {"train_prior": 0.0, "family_prior": 0.0}


def test_one_task_pool_costs_regret_and_many_tasks_do_not() -> None:
    family = make_family("dependent_bandit", num_trials=20)
    one = separation(family, 1, num_tasks=200, seeds=(0, 1))
    assert one.gap_ci95[0] > 1.0 and one.strict["train_prior"] > 0.2
    many = separation(family, 256, num_tasks=200, seeds=(0, 1))
    assert many.strict["train_prior"] < one.strict["train_prior"] / 5
    assert abs(many.gap) < one.gap / 5
    assert all(many.informative[a] >= many.strict[a] for a in many.strict)


def test_cli_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--ks", "1,4", "--seeds", "0", "--tasks", "20", "--trials", "5", "--only", "10 arms"]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| family | K |") and len(lines) == 4
    assert lines[2].startswith("| bernoulli, 10 arms | 1 |")
