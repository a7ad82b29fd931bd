"""Caches grown in place (``archs.cache``) hold the concatenation's values, bit for bit."""

from __future__ import annotations

import pytest
import torch

from mesalab.archs import Learner, SlotCore, TransformerCore, cache, slot_memory, transformer
from mesalab.archs import population_attention as pop_attention
from mesalab.archs.population import PopulationLearner

D, A = 5, 2


def test_appends_equal_the_concatenation_and_reuse_the_buffer() -> None:
    c, ref = torch.zeros(3, 0, 2), torch.zeros(3, 0, 2)
    ptrs = set()
    for step in range(11):  # capacity 4: a full buffer is replaced by one twice as long
        new = torch.randn(3, 1, 2)
        c, ref = cache.append(c, new, 1, 4), torch.cat([ref, new], dim=1)
        assert torch.equal(c, ref), step
        ptrs.add(c.untyped_storage().data_ptr())
    assert len(ptrs) == 3  # 11 entries: a buffer of 4, then of 2 x 5, then of 2 x 11


def test_a_memory_used_twice_keeps_both_branches() -> None:
    """Copy on write: the second use of a cache does not overwrite the first one's entries."""
    base = cache.append(torch.zeros(2, 0), torch.ones(2, 3), 1, 8)
    a = cache.append(base, torch.full((2, 1), 2.0), 1, 8)
    b = cache.append(base, torch.full((2, 1), 3.0), 1, 8)
    a2 = cache.append(a, torch.full((2, 1), 4.0), 1, 8)
    assert a2[:, 3].eq(2.0).all() and a2[:, 4].eq(4.0).all()
    assert b[:, 3].eq(3.0).all() and base.eq(1.0).all()
    assert a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()


def test_a_tail_slides_along_the_buffer() -> None:
    c, ref = torch.zeros(2, 0), torch.zeros(2, 0)
    for _ in range(9):
        new = torch.randn(2, 1)
        c = cache.tail(cache.append(c, new, 1, 6), 3, 1)
        ref = torch.cat([ref, new], dim=1)[:, -3:]
        assert torch.equal(c, ref)


def test_gradients_flow_through_the_concatenation() -> None:
    old = torch.randn(2, 3, requires_grad=True)
    new = torch.randn(2, 1, requires_grad=True)
    out = cache.append(old, new, 1, 8)
    out.square().sum().backward()
    assert torch.equal(old.grad, 2 * old.detach()) and torch.equal(new.grad, 2 * new.detach())


def _cat_append(c: torch.Tensor, new: torch.Tensor, dim: int, capacity: int) -> torch.Tensor:
    return torch.cat([c, new], dim=dim)


def _cat_tail(c: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    return c.narrow(dim, c.shape[dim] - n, n) if c.shape[dim] > n else c


def _concatenating(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cores as they were: the cache grown by a concatenation per step."""
    for module in (transformer, slot_memory, pop_attention):
        monkeypatch.setattr(module, "append", _cat_append)
    monkeypatch.setattr(slot_memory, "tail", _cat_tail)


CORES = {
    "slot": lambda: SlotCore(D, num_slots=3, num_heads=2, width=8, slot_dim=6),
    "transformer": lambda: TransformerCore(
        D, d_model=8, num_layers=2, num_heads=2, max_context=32, d_inner=12
    ),
}


def _act(make, x: torch.Tensor, population: bool) -> list[torch.Tensor]:
    """Step-by-step outputs (logits, value) of a solo learner or a population of two."""
    torch.manual_seed(0)
    solos = [Learner(make(), A) for _ in range(2)]
    outs = []
    with torch.no_grad():
        if population:
            pop = PopulationLearner.stack(solos)
            mem, prepared = pop.initial_memory(x.shape[1]), pop.prepare()
            for t in range(x.shape[2]):
                out, mem = pop(x[:, :, t : t + 1], mem, prepared)
                outs += [out.logits, out.value]
        else:
            mem = solos[0].initial_memory(x.shape[1])
            for t in range(x.shape[2]):
                out, mem = solos[0](x[0, :, t : t + 1], mem)
                outs += [out.logits, out.value]
    return outs


@pytest.mark.parametrize("population", [False, True], ids=["solo", "population"])
@pytest.mark.parametrize("name", list(CORES))
def test_acting_equals_the_concatenation_rollout(
    name: str, population: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bit for bit over 20 steps: past the slot ring's K and its buffer of 4K slots."""
    x = torch.randn(2, 6, 20, D)  # (P, B, T, D)
    ours = _act(CORES[name], x, population)
    _concatenating(monkeypatch)
    ref = _act(CORES[name], x, population)
    assert len(ours) == len(ref) == 40
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b)
