"""Every family names its analysis on itself; every analysis goes through one skeleton."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mesalab.analysis.family_analysis import FamilyAnalysis, analysis_for
from mesalab.studies.conditions import CONFIG_DIR
from mesalab.tasks import make_family

TASKS = sorted((CONFIG_DIR / "task").glob("*.yaml"))


@pytest.mark.parametrize("path", TASKS, ids=lambda p: p.stem)
def test_every_task_config_has_an_analysis(path: Path) -> None:
    family = instantiate(OmegaConf.load(path).family)
    analysis = analysis_for(family)
    assert isinstance(analysis, FamilyAnalysis) and analysis.name and analysis.figure


class Counting(FamilyAnalysis):
    """A made-up analysis: the skeleton's order and calls are what is tested."""

    name, figure = "counting", "counting.png"

    def results(self, trajs, family, seed, **context: Any):
        return {"seed": seed, **context}, {k: {"n": len(k)} for k in trajs}

    def plot(self, results, header, path: Path) -> Path:
        path.write_text("figure")
        return path

    def row(self, policy, result, header) -> dict[str, Any]:
        return {"policy": policy, "n": result["n"], "seed": header["seed"]}


def test_the_skeleton_orders_fields_and_writes_the_figure(tmp_path: Path) -> None:
    out = Counting()({"learner": None, "oracle": None}, None, tmp_path, seed=3, extra=1)
    assert list(out) == ["analysis", "seed", "extra", "policies", "figures", "table"]
    assert out["figures"] == ["counting.png"] and (tmp_path / "counting.png").exists()
    assert out["table"] == [
        {"policy": "learner", "n": 7, "seed": 3},
        {"policy": "oracle", "n": 6, "seed": 3},
    ]
    assert Counting()({"learner": None}, None)["figures"] == []  # no out_dir: no figure


def test_a_family_naming_something_else_fails_clearly() -> None:
    family = make_family("dependent_bandit")
    family.analysis = "mesalab.tasks.base.TaskFamily"
    with pytest.raises(ValueError, match="DependentBandit.analysis"):
        analysis_for(family)
