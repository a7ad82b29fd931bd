"""RL recipes: the warm-up schedule, an arch's recipe block, the regret-ratio objective, Optuna."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus

from mesalab.studies.errors import ConfigError
from mesalab.studies.loop import lr_factor
from mesalab.studies.objective import JobResult, regret_ratio
from mesalab.studies.progress import record_of
from mesalab.studies.record import RunRecord
from mesalab.studies.run import CONFIG_DIR
from mesalab.studies.validation import check_config
from tests.studies.conftest import TINY
from tests.studies.test_record import record_dict, summary


def test_warmup_rises_linearly_then_the_decay_takes_over() -> None:
    # 10 updates, 20% warm-up (2 updates), decay to 0: 1/2 and 2/2 of the decayed rate
    assert lr_factor(0, 10, 0.0, 0.2) == pytest.approx(0.5 * 1.0)
    assert lr_factor(1, 10, 0.0, 0.2) == pytest.approx(1.0 * 0.9)
    assert lr_factor(2, 10, 0.0, 0.2) == pytest.approx(0.8)
    assert lr_factor(9, 10, 0.0, 0.2) == pytest.approx(0.1)


def test_no_warmup_is_the_old_schedule_bit_for_bit() -> None:
    for u in range(0, 600, 7):
        assert lr_factor(u, 600, 0.0) == 1.0 - (1.0 - 0.0) * u / 600
        assert lr_factor(u, 600, 0.3, 0.0) == 1.0 - (1.0 - 0.3) * u / 600


def _training(cfg) -> dict:
    t = cfg.training
    return {
        "lr": t.optimizer.lr,
        "lr_warmup": t.lr_warmup,
        "grad_clip": t.grad_clip,
        "value_coef": t.signal.value_coef,
        "entropy_coef": t.signal.entropy_coef,
        "normalize_advantages": t.signal.normalize_advantages,
        "recipe": t.recipe,
    }


STUDY_DEFAULT = {
    "lr": 1e-2,
    "lr_warmup": 0.0,
    "grad_clip": 1.0,
    "value_coef": 0.05,
    "entropy_coef": 0.05,
    "normalize_advantages": False,
    "recipe": "default",
}


@pytest.mark.parametrize("arch", ["lstm", "slot", "ffn"])
def test_archs_without_a_recipe_train_with_the_study_default(make_cfg, arch: str) -> None:
    cfg = make_cfg(f"arch={arch}", "training=rl_short_horizon")
    assert cfg.arch.recipe is None
    assert _training(cfg) == STUDY_DEFAULT


@pytest.mark.parametrize("arch", ["transformer", "gru"])
def test_an_arch_recipe_reaches_the_rl_training_config(make_cfg, arch: str) -> None:
    recipe = yaml.safe_load(Path(CONFIG_DIR, "arch", f"{arch}.yaml").read_text())["recipe"]
    got = _training(make_cfg(f"arch={arch}", "training=rl_short_horizon"))
    want = {**STUDY_DEFAULT, **{k: v for k, v in recipe.items() if k != "name"}}
    assert got == {**want, "recipe": recipe["name"]}
    assert got != STUDY_DEFAULT  # the recipe changes something


def test_a_recipe_does_not_touch_supervised_training(make_cfg) -> None:
    cfg = make_cfg("arch=transformer", "training=supervised", "arch.recipe.lr=1e-3")
    assert cfg.training.optimizer.lr == 1e-2 and cfg.training.recipe is None


def test_the_command_line_still_wins_over_a_recipe(make_cfg) -> None:
    cfg = make_cfg("arch=transformer", "training=rl", "training.optimizer.lr=5e-4")
    assert cfg.training.optimizer.lr == 5e-4


def test_an_unknown_recipe_key_is_refused_by_name(make_cfg) -> None:
    cfg = make_cfg("arch=lstm", "training=rl", "+arch.recipe.learning_rate=1e-3")
    with pytest.raises(ConfigError, match=r"arch.recipe.learning_rate=0.001 is not allowed"):
        check_config(cfg)
    cfg = make_cfg("arch=lstm", "training=rl", "+arch.recipe.lr=fast")
    with pytest.raises(ConfigError, match=r"arch.recipe.lr='fast' is not allowed: .* a float"):
        check_config(cfg)


def test_a_warmup_outside_its_range_is_refused(make_cfg) -> None:
    with pytest.raises(ConfigError, match=r"training.lr_warmup=1.0 .* in \[0, 1\)"):
        check_config(make_cfg("training.lr_warmup=1.0"))


def test_regret_ratio_divides_by_the_ideal_reference() -> None:
    data = record_dict()
    data["references"]["bayes_optimal"] = summary(regret=0.5)
    rec = RunRecord.from_dict(data)
    assert regret_ratio(rec, "bayes_optimal") == pytest.approx(1.5 / 0.5)
    assert math.isnan(regret_ratio(rec, "gittins"))


def test_a_job_result_is_a_float_that_keeps_its_skipped_flag_through_pickle() -> None:
    res = pickle.loads(pickle.dumps(JobResult(1.75, skipped=True)))
    assert float(res) == 1.75 and res.skipped
    done = JobReturn(status=JobStatus.COMPLETED, _return_value=JobResult(2.0))
    skipped = JobReturn(status=JobStatus.COMPLETED, _return_value=res)
    assert record_of(0, "a", done, 1.0).status == "finished"
    assert record_of(1, "b", skipped, 1.0).status == "skipped"


@pytest.mark.slow
def test_a_two_trial_optuna_search_writes_its_best_recipe(tmp_path: Path) -> None:
    tiny = [o for o in TINY if not o.startswith(("eval.every", "logger", "progress"))]
    args = [
        *(sys.executable, "-m", "mesalab.studies.run"),
        *("hparams_search=transformer_rl", "hydra/sweeper=optuna"),
        *("hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2"),
        *(f"out_root={tmp_path}", "population.members=[{seed:100},{seed:101}]", *tiny),
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sweep = tmp_path / "sweeps" / "hparams_transformer_dependent_bandit"
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) >= {"training.optimizer.lr", "training.lr_warmup"}
    # each trial trained its own population: two seeds per trial folder, none skipped
    for trial in ("trial_0", "trial_1"):
        assert len(list((sweep / trial).glob("*/metrics.json"))) == 2
    assert 0 < best["best_value"] < 100  # a regret ratio: finite and positive
