"""Population cores compute, per member, the same function as the solo learner they stack."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mesalab.archs import FFNCore, GRUCore, Learner, LSTMCore, SlotCore, TransformerCore
from mesalab.archs.population import PopulationLearner, supports
from tests.conftest import DEVICES

D, A = 5, 2
#: core builders by name, with and without memory (the ffn core has none)
CORES: dict[str, Callable[[bool], object]] = {
    "lstm": lambda mem: LSTMCore(D, hidden_size=12, memory=mem),
    "gru": lambda mem: GRUCore(D, hidden_size=10, memory=mem),
    "ffn": lambda mem: FFNCore(D, hidden_size=9, num_layers=2),
    "slot": lambda mem: SlotCore(D, num_slots=4, num_heads=2, width=8, slot_dim=6, memory=mem),
    "transformer": lambda mem: TransformerCore(
        D, d_model=8, num_layers=2, num_heads=2, max_context=16, d_inner=12, memory=mem
    ),
}
CASES = [(n, m) for n in CORES for m in ((True, False) if n != "ffn" else (False,))]


def members(name: str, memory: bool, p: int, device: str = "cpu") -> list[Learner]:
    """P solo learners of one structure, seeds 0..P-1."""
    out = []
    for s in range(p):
        torch.manual_seed(s)
        out.append(Learner(CORES[name](memory), A).to(device))
    return out


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "memory"), CASES)
def test_each_member_computes_its_solo_learner(name: str, memory: bool, device: str) -> None:
    solos = members(name, memory, 3, device)
    pop = PopulationLearner.stack(solos)
    x = torch.randn(3, 4, 7, D, device=device)  # (P, B, T, D)
    out, _ = pop(x, pop.initial_memory(4))
    assert out.logits.shape == (3, 4, 7, A) and out.value.shape == (3, 4, 7)
    for i, solo in enumerate(solos):
        ref, _ = solo(x[i], solo.initial_memory(4))
        for field in ("logits", "value", "mean", "features"):
            torch.testing.assert_close(getattr(out, field)[i], getattr(ref, field))


@pytest.mark.parametrize(("name", "memory"), CASES)
def test_acting_step_by_step_matches_the_whole_sequence(name: str, memory: bool) -> None:
    pop = PopulationLearner.stack(members(name, memory, 2))
    x = torch.randn(2, 3, 6, D)
    whole, _ = pop(x, pop.initial_memory(3))
    mem, steps, prepared = pop.initial_memory(3), [], pop.prepare()
    with torch.no_grad():
        for t in range(6):
            out, mem = pop(x[:, :, t : t + 1], mem, prepared)  # memory carried
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=2), whole.logits.detach())


MEMORY_CORES = ["lstm", "gru", "slot", "transformer"]


@pytest.mark.parametrize("name", MEMORY_CORES)
def test_memory_off_sees_the_current_step_only(name: str) -> None:
    pop = PopulationLearner.stack(members(name, False, 2))
    x = torch.randn(2, 3, 5, D)
    y = x.clone()
    y[:, :, :4] = torch.randn(2, 3, 4, D)  # change every step but the last
    a, _ = pop(x, pop.initial_memory(3))
    b, _ = pop(y, pop.initial_memory(3))
    assert torch.equal(a.features[:, :, 4], b.features[:, :, 4])
    assert not torch.equal(a.features[:, :, 3], b.features[:, :, 3])


@pytest.mark.parametrize("name", MEMORY_CORES)
def test_memory_on_carries_history(name: str) -> None:
    pop = PopulationLearner.stack(members(name, True, 2))
    x = torch.randn(2, 3, 5, D)
    y = x.clone()
    y[:, :, 0] += 1.0
    a, _ = pop(x, pop.initial_memory(3))
    b, _ = pop(y, pop.initial_memory(3))
    assert not torch.allclose(a.features[:, :, 2], b.features[:, :, 2])  # within every window


def test_view_trains_the_solo_learner_in_place() -> None:
    (solo,) = members("lstm", True, 1)
    pop = PopulationLearner.view(solo)
    out, _ = pop(torch.randn(1, 2, 3, D), pop.initial_memory(2))
    out.value.sum().backward()
    assert solo.core.rnn.weight_hh_l0.grad is not None
    assert [g.shape[0] for g in pop.grads()] == [1] * len(pop.grads())
    assert pop.leaves()[0] is next(solo.parameters())


def test_write_back_gives_each_member_its_row() -> None:
    solos = members("gru", True, 3)
    pop = PopulationLearner.stack(solos)
    with torch.no_grad():
        for p in pop.leaves():
            p.add_(torch.arange(3.0).reshape(3, *[1] * (p.dim() - 1)))
    fresh = members("gru", True, 3)
    pop.write_back(fresh)
    for i, m in enumerate(fresh):
        for (name, got), orig in zip(m.named_parameters(), solos[i].parameters(), strict=True):
            assert torch.equal(got, orig + i), name


def test_stack_refuses_members_of_other_shapes() -> None:
    a = Learner(LSTMCore(D, hidden_size=4), A)
    b = Learner(LSTMCore(D, hidden_size=5), A)
    with pytest.raises(ValueError, match=r"learners\[1\]"):
        PopulationLearner.stack([a, b])


def test_unsupported_core_is_refused_by_name() -> None:
    class Other(LSTMCore):
        pass

    learner = Learner(Other(D, hidden_size=4), A)
    assert not supports(learner)
    with pytest.raises(ValueError, match="arch.core='Other'"):
        PopulationLearner.view(learner)


@pytest.mark.parametrize("name", ["lstm", "gru", "slot", "transformer"])
def test_a_sequence_in_two_calls_matches_one_call(name: str) -> None:
    pop = PopulationLearner.stack(members(name, True, 2))
    x = torch.randn(2, 3, 7, D)
    whole, _ = pop(x, pop.initial_memory(3))
    first, mem = pop(x[:, :, :3], pop.initial_memory(3))
    second, _ = pop(x[:, :, 3:], mem)  # the rest, attending to / carrying the first part
    torch.testing.assert_close(torch.cat([first.logits, second.logits], dim=2), whole.logits)
