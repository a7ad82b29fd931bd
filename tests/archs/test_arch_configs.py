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
from mesalab.archs.budget import config_cores, count_learner, default_budget
from mesalab.studies.conditions import CONFIG_DIR, core_class

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
    core = instantiate(_load(arch).core)(input_dim=family.input_dim, memory=memory)
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


def test_every_arch_config_is_in_the_registry_and_near_the_budget() -> None:
    """The widths in the arch configs give learners within 10% of the LSTM-48 budget."""
    cores = config_cores()
    assert list(cores)[:5] == ["lstm", "gru", "slot", "ffn", "transformer"]  # report_order
    assert set(cores) == {p.stem for p in ARCHS}
    budget = default_budget()
    for path in ARCHS:
        node = OmegaConf.to_container(_load(path).core)
        kwargs = {k: v for k, v in node.items() if not k.startswith("_")}
        count = count_learner(cores[path.stem], kwargs, 5, 2)
        assert abs(count - budget) / budget < 0.1, (path.stem, count, budget)
