"""Longer-horizon evaluation and the controller analysis through mesalab-analyze, on tiny runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mesalab.analysis.analyze import main
from mesalab.analysis.horizons import TrainingClock, parse_horizons, segment_means
from mesalab.tasks.base import Policy, State, StepContext
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.inputs import build_inputs, input_slices
from tests.analysis.test_analyze_cli import tiny_run


def test_parse_horizons() -> None:
    assert parse_horizons("1,2,4") == [1, 2, 4]
    for bad in ("", "0,2", "a", "1.5"):
        with pytest.raises(ValueError, match="--horizons"):
            parse_horizons(bad)


def test_segment_means() -> None:
    assert segment_means(torch.tensor([1.0, 3.0, 5.0, 7.0]), 2) == [2.0, 6.0]


class _Spy(Policy):
    """Records the inputs it is shown."""

    def reset(self, family, batch_size, generator):  # noqa: ANN001, ANN201
        self.seen = []

    def act(self, pstate, ctx, generator):  # noqa: ANN001, ANN201
        self.seen.append(ctx.inputs)
        return torch.zeros(ctx.inputs.shape[0], dtype=torch.long), pstate


def test_training_clock_reads_trial_index_in_training_units() -> None:
    long = BernoulliBandit(2, 40)  # 4x a training length of 10
    state = State(t=torch.tensor([0, 10, 30]))
    inputs = build_inputs(long, torch.zeros(3, 0), None, None, state.t)
    spy = _Spy()
    clock = TrainingClock(spy, 4)
    clock.reset(long, 3, torch.Generator())
    clock.act(None, StepContext(torch.zeros(3, 0), inputs, None, state), torch.Generator())
    trial = input_slices(long)["trial"]
    assert torch.allclose(spy.seen[0][:, trial][:, 0], torch.tensor([0.0, 1.0, 3.0]))
    assert torch.equal(inputs[:, trial][:, 0], torch.tensor([0.0, 0.25, 0.75]))  # unchanged


def test_analyze_controllers_and_horizons_on_a_tiny_run(tmp_path: Path, capsys) -> None:
    run_dir = tiny_run(tmp_path, "dependent_bandit")
    assert main([str(run_dir), "--tasks", "16", "--controllers", "--horizons", "1,2"]) == 0
    base = json.loads((run_dir / "analysis.json").read_text())
    hor = json.loads((run_dir / "horizons.json").read_text())
    assert hor["train_trials"] == 12 and [h["num_trials"] for h in hor["horizons"]] == [12, 24]
    one, two = hor["horizons"]
    # horizon 1 is the ordinary evaluation: same tasks, same noise, same mean reward
    assert one["learner_segments"][0] == pytest.approx(base["policies"]["learner"]["mean"])
    assert len(two["learner_segments"]) == 2 and len(two["bayes_segments"]) == 2
    # regret against Bayes is the per-segment reward gap times the segment length, summed
    gap = sum(b - lr for b, lr in zip(two["bayes_segments"], two["learner_segments"], strict=True))
    assert two["regret_vs_bayes"] == pytest.approx(12 * gap)
    ctl = json.loads((run_dir / "controllers.json").read_text())
    assert ctl["num_fit_tasks"] == 8 and ctl["num_scored_tasks"] == 8
    names = {"bayes_optimal", "thompson", "rescorla_wagner", "win_stay_lose_shift", "last_k"}
    assert set(ctl["models"]) == names and ctl["best"] in names | {"none"}
    out = capsys.readouterr().out
    assert "controllers ->" in out and "horizons ->" in out
    # the stretched clock changes nothing at the training length itself
    other = tmp_path / "stretched"
    assert (
        main(
            [
                str(run_dir),
                "--tasks",
                "16",
                "--horizons",
                "1",
                "--stretch-clock",
                "--out",
                str(other),
            ]
        )
        == 0
    )
    stretched = json.loads((other / "horizons.json").read_text())
    assert "stretched" in stretched["clock"] and "training clock" in hor["clock"]
    assert stretched["horizons"][0]["learner_segments"] == one["learner_segments"]


def test_transformer_horizon_beyond_its_context_is_reported_not_run(tmp_path: Path) -> None:
    run_dir = tiny_run(tmp_path, "bernoulli_bandit", "arch=transformer", "arch.core.max_context=30")
    assert main([str(run_dir), "--tasks", "8", "--horizons", "1,2,4"]) == 0
    hor = json.loads((run_dir / "horizons.json").read_text())
    fits = [h["fits"] for h in hor["horizons"]]
    assert fits == [True, True, False] and "max_context=30" in hor["horizons"][2]["reason"]


def test_controllers_refused_for_a_non_bandit(tmp_path: Path, capsys) -> None:
    run_dir = tiny_run(tmp_path, "linear_regression")
    assert main([str(run_dir), "--tasks", "8", "--controllers"]) == 2
    assert "a bandit family" in capsys.readouterr().err
