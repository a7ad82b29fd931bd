"""mesalab-probe on a tiny finished run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesalab.analysis.probes import main
from mesalab.studies.run import run
from tests.studies.conftest import TINY


def test_probe_cli_on_a_tiny_run(make_cfg, tmp_path: Path, capsys) -> None:
    run(make_cfg(*TINY, "eval.ood_tasks=0", "eval.location_tasks=0"), tmp_path)
    assert main([str(tmp_path), "--tasks", "24", "--source", "memory"]) == 0
    res = json.loads((tmp_path / "probes.json").read_text())
    assert res["target"] == "posterior mean reward of each arm" and res["num_targets"] == 2
    assert res["trained"]["feature_dim"] == 2 * 48  # LSTM memory: h and c
    assert res["num_tasks"] == 24 and res["num_trials"] == 12
    assert res["r2"] == pytest.approx(res["trained"]["r2"])
    assert "trained" in capsys.readouterr().out
