"""Linear regression's ``pair_feedback``: the supervised target is the feedback's first column."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from mesalab.studies.policy.action_heads import RealHead
from mesalab.studies.run import run
from tests.studies.conftest import TINY


def test_the_supervised_loss_reads_only_the_target_columns() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 6, 1, generator=g)
    y = torch.randn(4, 6, 1, generator=g)
    x = 100 * torch.randn(4, 6, 3, generator=g)  # large: any leak into the loss would show
    head = RealHead()
    plain = head.supervised_loss(SimpleNamespace(mean=mean), SimpleNamespace(feedback=y))
    paired = head.supervised_loss(
        SimpleNamespace(mean=mean), SimpleNamespace(feedback=torch.cat([y, x], dim=-1))
    )
    torch.testing.assert_close(plain, paired)
    torch.testing.assert_close(plain, (mean - y).pow(2).mean())


def test_a_run_with_pair_feedback_trains_and_its_references_match(make_cfg, tmp_path: Path) -> None:
    common = (*TINY, "task=linear_regression", "training=supervised", "eval.location_tasks=0")
    run(make_cfg(*common), tmp_path / "plain")
    run(make_cfg(*common, "+task.family.pair_feedback=true"), tmp_path / "pair")
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("plain", "pair"))
    assert all(torch.isfinite(torch.tensor(b["eval"]["loss_curve"])))
    for name in a["references"]:  # the same tasks and draws: the references do not move
        assert a["references"][name]["regret"] == b["references"][name]["regret"], name
    assert a["eval"]["loss_curve"] != b["eval"]["loss_curve"]  # the learner saw more
