"""The run record: metrics.json written and read by the same code, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesalab.studies.record import RECORD_VERSION, RunRecord, Summary, read_record
from mesalab.studies.run import run
from tests.studies.conftest import TINY


def summary(**extra: object) -> dict:
    """A complete summary object as metrics.json holds it."""
    return {
        "num_tasks": 4,
        "num_trials": 3,
        "reward_curve": [0.5, 0.6, 0.7],
        "improvement": 0.2,
        "improvement_ci95": [0.1, 0.3],
        "normalized_improvement": None,
        "regret": 1.5,
        "regret_ci95": [1.0, 2.0],
        "total_reward": 1.8,
        **extra,
    }


def record_dict() -> dict:
    """A complete record, with a location block and one OOD prior."""
    ood = {"num_tasks": 4, "improvement": 0.1, "improvement_ci95": [0.0, 0.2], "regret": 2.0}
    ood.update(ideal_improvement=0.3, normalized_improvement=0.33, kept=0.5, ideal_kept=None)
    location = {"index": 0.4, "index_ci95": [0.2, 0.6], "num_tasks": 4, "num_trials": 3}
    location.update(informative_steps=0.5, disagreement=0.1, dist_train_prior=0.2)
    location.update(dist_family_prior=0.3, on_line=None, index_by_trial=[None, 0.4, 0.5])
    location.update(pool_size=2, observers={"train_prior": summary(name="DiscretePosterior")})
    return {
        "version": RECORD_VERSION,
        "task": "dependent_bandit",
        "arch": "lstm",
        "training": "rl",
        "memory": True,
        "distribution": "pool2",
        "seed": 0,
        "train": {"env_steps": 10, "wall_s": 0.5, "env_steps_per_s": 20.0},
        "eval": summary(),
        "references": {"oracle": summary(normalized_improvement=0.0)},
        "frozen": {"digest_before": "ab", "digest_after": "ab", "verified": True},
        "location": location,
        "ood": {"full": {**ood, "kept_vs_ideal": None}},
    }


def test_round_trip_keeps_every_key_in_order() -> None:
    data = record_dict()
    rec = RunRecord.from_dict(data)
    assert isinstance(rec.eval, Summary) and rec.location.observers["train_prior"].name
    assert rec.ood["full"].kept == 0.5 and rec.location.index_by_trial[0] is None
    assert json.dumps(rec.to_dict()) == json.dumps(data)


def test_optional_fields_are_left_out_and_null_fields_kept() -> None:
    data = record_dict()
    data["eval"] = {k: v for k, v in summary().items() if k != "reward_curve"}
    data["eval"]["loss_curve"] = [1.0, 0.5, 0.2]
    out = RunRecord.from_dict(data).to_dict()
    assert "reward_curve" not in out["eval"] and out["eval"]["loss_curve"] == [1.0, 0.5, 0.2]
    assert "name" not in out["eval"]
    assert out["eval"]["normalized_improvement"] is None  # null, not left out
    assert RunRecord.from_dict(data).eval.curve == [1.0, 0.5, 0.2]


def test_missing_version_reads_as_zero_and_write_sets_it(tmp_path: Path) -> None:
    data = record_dict()
    del data["version"]
    rec = RunRecord.from_dict(data)
    assert rec.version == 0
    rec.version = RECORD_VERSION
    rec.write(tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["version"] == RECORD_VERSION
    assert read_record(tmp_path) == rec


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.pop("eval"),
        lambda d: d["eval"].pop("regret"),
        lambda d: d["eval"].update(regrett=1.0),  # a typo is an error, not ignored
        lambda d: d.update(references=[1, 2]),
    ],
)
def test_incomplete_or_misspelt_records_do_not_read(tmp_path: Path, corrupt) -> None:
    data = record_dict()
    corrupt(data)
    (tmp_path / "metrics.json").write_text(json.dumps(data))
    assert read_record(tmp_path) is None
    (tmp_path / "metrics.json").write_text(json.dumps(record_dict())[:-20])  # truncated
    assert read_record(tmp_path) is None


def test_a_real_run_reads_back_byte_for_byte(make_cfg, tmp_path: Path) -> None:
    rec = run(make_cfg(*TINY, "condition=pool", "condition.pool_size=3"), tmp_path)
    text = (tmp_path / "metrics.json").read_text()
    back = read_record(tmp_path)
    assert back == rec and back.location is not None and back.ood
    assert json.dumps(back.to_dict(), indent=1) == text
