"""mesalab-reevaluate: a finished run evaluated again with today's code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mesalab.studies.reevaluate import LearnerChanged, main, reevaluate
from mesalab.studies.run import run
from tests.studies.conftest import TINY


def _finished(make_cfg, path: Path) -> dict:
    """A tiny finished 3-arm Bernoulli run (Gittins is its ideal reference) and its record."""
    arms = "+task.family.num_arms=3"
    run(make_cfg(*TINY, "task=bernoulli_bandit", arms, "eval.location_tasks=0"), path)
    return json.loads((path / "metrics.json").read_text())


def test_reevaluating_restores_a_reference_and_keeps_the_learner(make_cfg, tmp_path: Path) -> None:
    before = _finished(make_cfg, tmp_path)
    # same code: nothing changes but the record's code field
    _, changes = reevaluate(tmp_path)
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert changes == {}
    assert again["eval"] == before["eval"] and again["references"] == before["references"]
    assert again["train"] == before["train"] and again["ood"] == before["ood"]
    assert again["finished"] == before["finished"]  # when it finished stands
    # the record names the device it trained on, and keeps it when evaluated elsewhere
    assert before["device"].startswith("cpu, torch ")
    elsewhere = dict(before, device="cuda (NVIDIA H200), torch 2.11.0+cu130")
    (tmp_path / "metrics.json").write_text(json.dumps(elsewhere))
    reevaluate(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["device"] == elsewhere["device"]
    unknown = {k: v for k, v in before.items() if k != "device"}  # before the field: stays absent
    (tmp_path / "metrics.json").write_text(json.dumps(unknown))
    reevaluate(tmp_path)
    assert "device" not in json.loads((tmp_path / "metrics.json").read_text())
    # a stale reference (as a run evaluated by older code has) is replaced by today's figure
    stale = dict(before)
    stale["references"] = json.loads(json.dumps(before["references"]))
    stale["references"]["gittins"]["regret"] = 99.0
    (tmp_path / "metrics.json").write_text(json.dumps(stale))
    assert main([str(tmp_path)]) == 0
    fixed = json.loads((tmp_path / "metrics.json").read_text())
    assert fixed["references"]["gittins"]["regret"] == before["references"]["gittins"]["regret"]
    # a record from before finish times were recorded takes its file's time, not today's
    old = dict(fixed)
    del old["finished"]
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    day = 1_796_083_200  # 2026-12-01 00:00 UTC
    os.utime(tmp_path / "metrics.json", (day, day))
    reevaluate(tmp_path)
    stamped = json.loads((tmp_path / "metrics.json").read_text())["finished"]
    assert stamped == "2026-12-01T00:00:00Z"


def test_a_learner_that_evaluates_differently_is_not_rewritten(make_cfg, tmp_path: Path) -> None:
    before = _finished(make_cfg, tmp_path)
    tampered = json.loads(json.dumps(before))
    tampered["eval"]["regret"] = before["eval"]["regret"] + 1.0
    tampered["references"]["gittins"]["regret"] = 99.0
    (tmp_path / "metrics.json").write_text(json.dumps(tampered))
    with pytest.raises(LearnerChanged, match="eval.regret"):
        reevaluate(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == tampered  # untouched
    assert main([str(tmp_path), str(tmp_path / "missing")]) == 1  # errors named, status 1
