"""Every family trains end to end through mesalab-run with every arch (issue 6, "Must reach")."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from studies.run import CONFIG_DIR, run
from tasks import FAMILIES
from tests.analysis.test_analyze_cli import SMALL

ARCHS = ("lstm", "gru", "slot", "ffn", "transformer")
#: shorter episodes where the family's config does not already set them small
SHORT = {
    "bernoulli_bandit": ["++task.family.num_trials=12"],
    "dependent_bandit": ["task.family.num_trials=12"],
    "restless_bandit": ["++task.family.num_trials=12", "++task.family.block_length=4"],
    "two_step": ["++task.family.num_trials=12"],
    "markov_chain": ["++task.family.num_trials=12"],
    "tabular_mdp": ["++task.family.num_episodes=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("task", sorted(FAMILIES))
def test_every_family_trains_with_every_arch(task: str, arch: str, tmp_path: Path) -> None:
    digests = {}
    for training in ("none", "rl", "supervised"):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(
                config_name="config",
                overrides=[*SMALL, f"task={task}", f"arch={arch}", f"training={training}"]
                + SHORT.get(task, []),
            )
        m = run(cfg, tmp_path / training)
        assert m["frozen"]["verified"] and math.isfinite(m["eval"]["regret"])
        assert m["train"]["env_steps"] == (0 if training == "none" else 3 * 8 * cfg_trials(m))
        digests[training] = m["frozen"]["digest_after"]
    # same seed, same initial weights: training moved them, with either signal
    assert digests["rl"] != digests["none"] and digests["supervised"] != digests["none"]


def cfg_trials(metrics: dict) -> int:
    """Trials per episode, read back from the evaluation."""
    return metrics["eval"]["num_trials"]
