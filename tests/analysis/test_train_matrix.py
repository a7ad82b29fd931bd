"""Every family *trains* through mesalab-run with every arch and both signals (issue 6).

``tests/studies/test_combinations.py`` checks that every combination runs; this one checks
that training with either signal moves the weights away from the shared initialisation.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mesalab.studies.run import CONFIG_DIR, run
from mesalab.tasks import FAMILIES
from tests.studies.conftest import TINY

ARCHS = ("lstm", "gru", "slot", "ffn", "transformer", "mamba")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("task", sorted(FAMILIES))
def test_every_family_trains_with_every_arch(task: str, arch: str, tmp_path: Path) -> None:
    digests = {}
    for training in ("none", "rl", "supervised"):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            overrides = [*TINY, f"task={task}", f"arch={arch}", f"training={training}"]
            cfg = compose(config_name="config", overrides=overrides)
        m = run(cfg, tmp_path / training)
        assert m["frozen"]["verified"] and math.isfinite(m["eval"]["regret"])
        steps = 0 if training == "none" else 3 * 8 * m["eval"]["num_trials"]
        assert m["train"]["env_steps"] == steps
        digests[training] = m["frozen"]["digest_after"]
    # same seed, same initial weights: either signal moved them
    assert digests["rl"] != digests["none"] and digests["supervised"] != digests["none"]
