"""Every bad config value is refused before training, named by its full config path.

The first two tests walk the composed config, the top level and every option of every config
group, so a field added later is covered without editing them.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mesalab.studies.errors import ConfigError
from mesalab.studies.run import CONFIG_DIR, run
from mesalab.studies.validation import check_config
from tests.studies.conftest import TINY

#: config groups whose options a run composes (study configs are sweeps of these)
GROUPS = ("task", "arch", "training", "condition", "logger")


def options(group: str) -> list[str]:
    """The options of a config group, from configs/<group>/*.yaml."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def compose_cfg(*overrides: str) -> Any:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(kind, path, value) of every mapping ("node") and every leaf ("leaf") under ``node``."""
    if isinstance(node, dict):
        yield "node", path, None
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else key)
    else:
        yield "leaf", path, node


def cases() -> Iterator[Any]:
    """(base overrides, kind, path, value) for every field and node of every composed config."""
    configs = [((), None)] + [((f"{g}={o}",), g) for g in GROUPS for o in options(g)]
    for base, group in configs:
        tree = OmegaConf.to_container(compose_cfg(*base), resolve=False)
        for kind, path, value in walk(tree, ""):
            top = path.split(".", 1)[0]
            # the default config covers the top level; each group option covers its own node
            if (group is None and top in GROUPS) or (group is not None and top != group):
                continue
            name = f"{'/'.join(base) or 'default'}:{kind}:{path or '.'}"
            yield pytest.param(base, kind, path, value, id=name)


CASES = list(cases())


def refusal(*overrides: str) -> tuple[str, str] | None:
    """Who refused the config and the message: Hydra at composition, or the run's checks."""
    try:
        check_config(compose_cfg(*overrides))
    except ConfigError as err:
        return "run", str(err)
    except Exception as err:  # Hydra's composition errors: the override, then the field's key
        return "hydra", f"{err} / {err.__cause__}"
    return None


@functools.cache
def accepted(base: tuple[str, ...]) -> bool:
    """Whether a group option's own config passes every check (once per option)."""
    return refusal(*base) is None


def bad_value(path: str, value: Any) -> str:
    """A value of the wrong type for a field (as an override)."""
    if path in GROUPS or path == "study":
        return "no_such_option"
    if isinstance(value, bool | int | float):
        return "abc"  # a string where a number or a bool goes
    return "[1,2]"  # a list where a string (or null, for an optional field) goes


def test_the_walk_covers_every_group_option() -> None:
    leaves = {c.values[2] for c in CASES if c.values[1] == "leaf"}
    nodes = {c.values[2] for c in CASES if c.values[1] == "node"}
    assert {
        "seed",
        "training.optimizer.lr",
        "arch.core.hidden_size",
        "task.family._target_",
    } <= leaves
    assert {"arch.core.num_slots", "arch.core.max_context", "eval.ood_tasks", "study"} <= leaves
    assert {"", "eval", "logger", "task.family", "training.signal", "training.optimizer"} <= nodes
    assert len(CASES) > 150


@pytest.mark.parametrize(("base", "kind", "path", "value"), CASES)
def test_every_field_refuses_a_wrong_type_and_every_node_an_unknown_key(base, kind, path, value):
    assert accepted(base)
    if kind == "node":
        key = f"{path}.not_a_field" if path else "not_a_field"
        refused = refusal(*base, f"+{key}=1")
        assert refused is not None, f"+{key}=1 was accepted"
        assert refused[1].startswith(f"{key}=1 is not allowed: {key} is not a config key")
        return
    bad = bad_value(path, value)
    refused = refusal(*base, f"{path}={bad}")
    assert refused is not None, f"{path}={bad} was accepted"
    who, msg = refused
    if who == "hydra":  # the schema's types: Hydra names the override and the field's full key
        assert f"{path}={bad}" in msg or f"'{path}/{bad}'" in msg, msg
    else:  # the run's own checks: path=value, then what is allowed
        assert msg.startswith(f"{path}=") and " is not allowed: " in msg and " must be " in msg


def test_a_string_where_a_number_goes_names_the_field() -> None:
    who, msg = refusal("training.optimizer.lr=abc")
    assert (who, msg) == (
        "run",
        "training.optimizer.lr='abc' is not allowed: training.optimizer.lr must be a number "
        "(torch.optim.Adam: lr)",
    )
    who, msg = refusal("arch.core.hidden_size=1.5")
    assert msg.startswith(
        "arch.core.hidden_size=1.5 is not allowed: arch.core.hidden_size must be an int"
    )


@pytest.mark.parametrize(
    ("override", "start"),
    [
        ("+foo=1", "foo=1 is not allowed: foo is not a config key;"),
        (
            "+traning.updates=5",
            "traning={'updates': 5} is not allowed: traning is not a config key",
        ),
        ("+training.updatez=5", "training.updatez=5 is not allowed"),
        ("+training.signal.gama=0.5", "training.signal.gama=0.5 is not allowed"),
        ("+arch.core.input_dim=3", "arch.core.input_dim=3 is not allowed"),
    ],
)
def test_keys_added_with_plus_are_refused_unless_the_schema_has_them(override, start) -> None:
    who, msg = refusal(override)
    assert who == "run" and msg.startswith(start), msg
    if override == "+traning.updates=5":
        assert "did you mean training?" in msg
    if override == "+training.signal.gama=0.5":
        assert "did you mean training.signal.gamma?" in msg


@pytest.mark.parametrize(
    ("override", "start"),
    [
        (
            "arch.core.hidden_size=0",
            "arch.core.hidden_size=0 is not allowed: arch.core.hidden_size",
        ),
        ("task.family.num_trials=0", "task.family.num_trials=0 is not allowed"),
        ("task.family.variant=hardest", "task.family.variant='hardest' is not allowed"),
        ("training.signal.gamma=2", "training.signal.gamma=2 is not allowed"),
        ("+training.optimizer.betas=[0.9,2]", "training.optimizer: building torch.optim.Adam"),
        ("training.signal._target_=no.such.Signal", "training.signal._target_='no.such.Signal'"),
    ],
)
def test_construction_errors_name_the_config_path(override, start) -> None:
    who, msg = refusal(override)
    assert who == "run" and msg.startswith(start), msg


def test_slot_message_names_every_config_key_it_mentions() -> None:
    _, msg = refusal("arch=slot", "arch.core.num_heads=4")
    assert msg == (
        "arch.core.num_heads=4 is not allowed: arch.core.num_heads must be a divisor of "
        "arch.core.slot_dim=46"
    )


def test_transformer_context_is_checked_against_the_task_with_the_exact_bound(tmp_path) -> None:
    cfg = ["arch=transformer", *TINY, "training.updates=1"]  # 12 trials per task
    _, msg = refusal(*cfg, "arch.core.max_context=11")
    assert msg.startswith(
        "arch.core.max_context=11 is not allowed: arch.core.max_context must be >= 12"
    )
    # the bound is not too strict: a context of exactly one task trains and evaluates
    ok = compose_cfg(*cfg, "arch.core.max_context=12")
    assert run(ok, tmp_path).eval.num_trials == 12
    _, msg = refusal("task=tabular_mdp", "arch=transformer", "arch.core.max_context=50")
    assert ">= 100" in msg and "10 episodes" in msg


@pytest.mark.parametrize(
    ("override", "status", "first"),
    [
        ("training.optimizer.lr=abc", 2, "error: training.optimizer.lr='abc' is not allowed"),
        ("+traning.updates=5", 2, "error: traning={'updates': 5} is not allowed"),
        ("seed=abc", 1, "Error merging override seed=abc"),
    ],
)
def test_the_command_exits_non_zero_with_a_message_and_no_traceback(
    tmp_path, override, status, first
):
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": ""}
    args = [
        sys.executable,
        "-m",
        "mesalab.studies.run",
        *TINY,
        f"hydra.run.dir={tmp_path}",
        override,
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == status, done.stderr
    assert done.stderr.splitlines()[0].startswith(first), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "checkpoint.pt").exists()
