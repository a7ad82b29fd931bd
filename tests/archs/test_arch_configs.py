"""The configs are the registry: every arch config builds, for every task config's input size.

Globs ``configs/arch/*.yaml`` and ``configs/task/*.yaml``, so a new arch or family is tested
here by its config alone: the core is built as a run builds it (``arch.core`` partial with the
family's ``input_dim``), memory on and off as its class allows, and must keep the learner
contract: step by step equals the whole sequence, and without memory the past does not matter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mesalab.archs import Learner
from mesalab.archs.budget import (
    config_cores,
    default_budget,
    matched_core_kwargs,
)
from mesalab.studies.conditions import CONFIG_DIR, core_class
from mesalab.studies.load import build_core

ARCHS = sorted((CONFIG_DIR / "arch").glob("*.yaml"))
TASKS = sorted((CONFIG_DIR / "task").glob("*.yaml"))
B, T = 3, 5


def _load(path: Path):
    return OmegaConf.load(path)


def _cases() -> list[tuple[Path, Path, bool]]:
    out = []
    for arch in ARCHS:
        mems = (True, False) if core_class(_load(arch)).has_memory else (False,)
        out += [(arch, task, m) for task in TASKS for m in mems]
    return out


CASES = _cases()


@pytest.mark.parametrize(
    "arch, task, memory",
    CASES,
    ids=[f"{a.stem}-{t.stem}-mem{'on' if m else 'off'}" for a, t, m in CASES],
)
def test_every_arch_config_builds_for_every_family(arch: Path, task: Path, memory: bool) -> None:
    family = instantiate(_load(task).family)
    torch.manual_seed(0)
    core = build_core(_load(arch), family.input_dim, family.num_actions, memory)  # as a run
    learner = Learner(core, family.num_actions).eval()
    x = torch.randn(B, T, family.input_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, _ = learner(x, learner.initial_memory(B))
        mem, steps = learner.initial_memory(B), []
        for t in range(T):
            out, mem = learner(x[:, t : t + 1], mem)
            steps.append(out.logits)
        x2 = x.clone()
        x2[:, :-1] = torch.randn(B, T - 1, family.input_dim)
        last_alone = learner(x2, learner.initial_memory(B))[0].logits[:, -1]
    assert full.logits.shape == (B, T, family.num_actions)
    assert full.value.shape == (B, T)
    torch.testing.assert_close(torch.cat(steps, dim=1), full.logits, atol=1e-5, rtol=0)
    if not memory:  # the clean ablation: the last step's output depends on the last input only
        torch.testing.assert_close(last_alone, full.logits[:, -1], atol=1e-6, rtol=0)


def test_every_arch_config_is_in_the_registry() -> None:
    """The arch configs are the registry, in report order."""
    cores = config_cores()
    assert list(cores)[:5] == ["lstm", "gru", "slot", "ffn", "transformer"]  # report_order
    assert set(cores) == {p.stem for p in ARCHS}


@pytest.mark.parametrize("task", TASKS, ids=[t.stem for t in TASKS])
def test_every_arch_is_matched_to_the_budget_on_every_family(task: Path) -> None:
    """Built as a run builds them, every arch is within 10% of the LSTM-48 learner's count
    for this family's input and action size (widths computed at instantiation)."""
    family = instantiate(_load(task).family)
    budget = default_budget(family.input_dim, family.num_actions)
    counts = {}
    for path in ARCHS:
        core = build_core(_load(path), family.input_dim, family.num_actions, memory=False)
        counts[path.stem] = Learner(core, family.num_actions).num_parameters()
    assert counts["lstm"] == budget  # the budget is the LSTM-48 learner's, at any size
    for name, count in counts.items():
        assert abs(count - budget) / budget < 0.1, (task.stem, name, count, budget)


def test_bandit_widths_are_those_of_the_committed_results() -> None:
    """On the bandits (input_dim 5, 2 actions) the matched widths are the ones the committed
    three_conditions results were trained with (then copied into the arch configs)."""
    before = {
        "lstm": {"hidden_size": 48},
        "gru": {"hidden_size": 56},
        "slot": {"num_slots": 128, "num_heads": 2, "width": 45, "slot_dim": 46},
        "ffn": {"num_layers": 2, "hidden_size": 98},
        "transformer": {"num_layers": 2, "num_heads": 2, "d_model": 16, "d_inner": 63},
        "mamba": {"num_layers": 2, "state_size": 16, "expand": 2, "conv_kernel": 4, "d_model": 21},
    }
    cores = config_cores()
    for name, kwargs in before.items():
        node = _load(CONFIG_DIR / "arch" / f"{name}.yaml")
        core = OmegaConf.to_container(node.core, resolve=True)  # as a run resolves it
        given = {k: v for k, v in core.items() if k[0] != "_" and v is not None}
        used = {**matched_core_kwargs(cores[name], 5, 2), **given}
        assert {k: used[k] for k in kwargs} == kwargs, name
        mem = cores[name].has_memory
        torch.manual_seed(0)
        rest = {k: v for k, v in given.items() if k not in kwargs}  # lstm's forget_bias, say
        old = Learner(
            cores[name](5, **kwargs, **rest, memory=mem), 2
        )  # as the YAML widths built it
        torch.manual_seed(0)
        new = Learner(build_core(node, 5, 2, memory=mem), 2)
        assert old.num_parameters() == new.num_parameters()
        for (k, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items(), strict=True):
            assert torch.equal(a, b), (name, k)  # the same initial weights: results stay put


def test_explicit_widths_override_the_matched_ones() -> None:
    node = _load(CONFIG_DIR / "arch" / "gru.yaml")
    node.core.hidden_size = 20
    assert build_core(node, 7, 2, memory=True).out_dim == 20
    assert build_core(_load(CONFIG_DIR / "arch" / "gru.yaml"), 7, 2, memory=True).out_dim != 20


def test_matching_leaves_the_global_generator_alone() -> None:
    """The width search builds modules; a run's initial weights must not depend on it."""
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    matched_core_kwargs(core_class(_load(CONFIG_DIR / "arch" / "gru.yaml")), 11, 3)
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)
