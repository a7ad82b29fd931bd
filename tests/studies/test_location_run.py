"""A tiny pool run writes the location-learning index and the OOD evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesalab.studies.evaluate import summary_scalars
from mesalab.studies.record import Location, OODEntry, from_dict
from mesalab.studies.run import run
from tests.studies.conftest import TINY


def test_pool_run_has_location_and_ood(make_cfg, tmp_path: Path) -> None:
    run(make_cfg(*TINY, "condition=pool", "condition.pool_size=3"), tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    loc = m["location"]
    assert loc["pool_size"] == 3 and loc["num_tasks"] == 16 and loc["num_trials"] == 12
    lo, hi = loc["index_ci95"]
    assert lo <= loc["index"] <= hi
    assert set(loc["observers"]) == {"train_prior", "family_prior"}
    # every named OOD prior of the dependent bandit, none of them the training prior
    assert set(m["ood"]) == {"full", "near_chance", "extreme"}
    for entry in m["ood"].values():
        assert entry["num_tasks"] == 8
        assert {"improvement", "ideal_improvement", "kept", "ideal_kept"} <= set(entry)
    assert m["frozen"]["verified"]


def test_related_run_has_no_index_and_validation(make_cfg, tmp_path: Path) -> None:
    tiny = [o for o in TINY if not o.startswith("task.family.num_trials")]
    m = run(make_cfg(*tiny, "task=linear_regression"), tmp_path)
    assert m.location is None
    assert set(m.ood) == {"large_w", "noisy", "noiseless"}
    with pytest.raises(ValueError, match="eval.location_tasks"):
        run(make_cfg(*TINY, "eval.location_tasks=1"), tmp_path / "bad")


def test_wandb_summary_scalars() -> None:
    loc = {"index": 0.4, "index_ci95": [0.3, 0.5], "num_tasks": 2, "num_trials": 3}
    loc.update(informative_steps=1.0, disagreement=1.0, dist_train_prior=0.0)
    loc.update(dist_family_prior=0.0, on_line=None, index_by_trial=[], pool_size=2, observers={})
    entry = {"num_tasks": 2, "improvement": 0.1, "improvement_ci95": [0.0, 0.2], "regret": 1.0}
    entry.update(ideal_improvement=None, normalized_improvement=None, kept=0.5)
    entry.update(ideal_kept=None, kept_vs_ideal=None)
    location, ood = from_dict(Location, loc), {"full": from_dict(OODEntry, entry)}
    assert summary_scalars(location, ood) == {
        "location/index": 0.4,
        "location/index_lo": 0.3,
        "location/index_hi": 0.5,
        "ood/full/improvement": 0.1,
        "ood/full/kept": 0.5,
    }
    assert summary_scalars(None, {}) == {}
