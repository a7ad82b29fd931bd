"""mesalab-report names every run it skips, with the reason: missing, unreadable, incomplete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesalab.analysis.report import main
from mesalab.analysis.sweep import load_sweep, skip_reason
from tests.analysis.test_report import write_run


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Two finished runs and one skipped run of each kind."""
    root = tmp_path / "sweep"
    for seed in (0, 1):
        write_run(root, "lstm", "rl", True, "related", seed, 0.2)
    (root / "never_started" / ".hydra").mkdir(parents=True)
    corrupt = write_run(root, "lstm", "rl", True, "related", 2, 0.2)
    (corrupt / "metrics.json").write_text('{"task": "dependent_bandit", "arch": "ls')
    partial = write_run(root, "lstm", "rl", True, "related", 3, 0.2)
    data = json.loads((partial / "metrics.json").read_text())
    del data["seed"], data["eval"]["regret_ci95"]
    (partial / "metrics.json").write_text(json.dumps(data))
    return root


def test_each_skipped_run_is_named_with_its_reason(sweep: Path, tmp_path: Path, capsys) -> None:
    runs, skipped = load_sweep(sweep)
    assert len(runs) == 2 and len(skipped) == 3
    reasons = {p.name: skip_reason(p) for p in skipped}
    assert reasons["never_started"].startswith("missing: no metrics.json")
    corrupt = next(n for n in reasons if n.endswith("_s2"))
    assert reasons[corrupt].startswith("unreadable: metrics.json is not valid JSON")
    partial = next(n for n in reasons if n.endswith("_s3"))
    assert reasons[partial] == "incomplete: metrics.json lacks seed, eval.regret_ci95"

    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    for name, reason in reasons.items():
        assert f"skipped run {name}: {reason}" in err
    md = (out / "report.md").read_text()
    assert all(f"`{name}`: {reason}" in md for name, reason in reasons.items())
