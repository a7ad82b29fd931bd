"""Contract tests for every core, memory on and off, plus per-core known answers."""

from __future__ import annotations

import warnings
from fnmatch import fnmatch

import pytest
import torch
from torch import nn

from mesalab.archs import (
    FFNCore,
    GRUCore,
    Learner,
    LSTMCore,
    SlotCore,
    TransformerCore,
    matched_widths,
    width_for_budget,
)
from mesalab.archs.budget import config_cores, count_learner, default_budget

D, A, B, T = 5, 3, 4, 7
K = 3  # slots in the test slot core: fewer than T, so the ring buffer wraps

#: every arch config's core at a small width (a new arch joins by its config alone), plus
#: variants for known answers: a slot store smaller than T (so the ring wraps), eager attention
CORES = {
    name: lambda memory, cls=cls: cls(D, **cls.matched_kwargs(8), memory=memory)
    for name, cls in config_cores().items()
}
CORES["slot_ring"] = lambda memory: SlotCore(D, num_slots=K, width=8, num_heads=2, memory=memory)
CORES["transformer_eager"] = lambda memory: TransformerCore(
    D, **TransformerCore.matched_kwargs(8), attn_implementation="eager", memory=memory
)
CLASSES = {**config_cores(), "slot_ring": SlotCore, "transformer_eager": TransformerCore}
CASES = [(n, mem) for n in CORES for mem in (True, False) if CLASSES[n].has_memory or not mem]
IDS = [f"{name}-mem{'on' if mem else 'off'}" for name, mem in CASES]


def make(name: str, memory: bool, seed: int = 0) -> Learner:
    torch.manual_seed(seed)
    learner = Learner(CORES[name](memory), A)
    # Random (not near-zero) policy weights so that every head carries gradient.
    nn.init.normal_(learner.policy_head.weight)
    return learner


def heads(out) -> torch.Tensor:
    return torch.cat([out.logits, out.value[..., None], out.mean, out.features], dim=-1)


def run(learner: Learner, x: torch.Tensor, memory=None):
    memory = learner.initial_memory(x.shape[0]) if memory is None else memory
    out, memory = learner(x, memory)
    return heads(out), memory


def run_steps(learner: Learner, x: torch.Tensor, memory=None):
    memory = learner.initial_memory(x.shape[0]) if memory is None else memory
    outs = []
    for t in range(x.shape[1]):
        out, memory = learner(x[:, t : t + 1], memory)
        outs.append(heads(out))
    return torch.cat(outs, dim=1), memory


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_steps_equal_whole_sequence(name, memory, x):
    learner = make(name, memory)
    full, mem_full = run(learner, x)
    steps, mem_steps = run_steps(learner, x)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)
    chunks, mem_chunks = run(learner, x[:, 3:], run(learner, x[:, :3])[1])
    torch.testing.assert_close(chunks, full[:, 3:], atol=1e-5, rtol=0)
    # The memories handed on are equivalent: the next step gives the same output from each.
    nxt = torch.randn(B, 2, D)
    ref = run(learner, nxt, mem_full)[0]
    torch.testing.assert_close(run(learner, nxt, mem_steps)[0], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(run(learner, nxt, mem_chunks)[0], ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_causal(name, memory, x):
    learner = make(name, memory)
    full = run(learner, x)[0]
    for t in range(T - 1):
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn(B, T - t - 1, D)
        torch.testing.assert_close(
            run(learner, x2)[0][:, : t + 1], full[:, : t + 1], atol=1e-6, rtol=0
        )
        assert not torch.allclose(run(learner, x2)[0][:, t + 1], full[:, t + 1])


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_past_matters_only_with_memory(name, memory, x):
    learner = make(name, memory)
    full = run(learner, x)[0]
    for t in range(1, T):
        x2 = x.clone()
        x2[:, :t] = torch.randn(B, t, D)
        later = run(learner, x2)[0][:, t:]
        if memory:
            # The step just before is within every memory's reach (slots included).
            assert (later[:, 0] - full[:, t]).abs().max() > 1e-4
        else:
            torch.testing.assert_close(later, full[:, t:], atol=1e-6, rtol=0)


def test_slot_memory_forgets_beyond_its_slots(x):
    learner = make("slot_ring", True)
    full = run(learner, x)[0]
    for t in range(K, T):
        x2 = x.clone()
        x2[:, : t - K + 1] = torch.randn(B, t - K + 1, D)  # steps older than the last K writes
        torch.testing.assert_close(run(learner, x2)[0][:, t], full[:, t], atol=1e-6, rtol=0)


def test_transformer_remembers_the_whole_context(x):
    learner = make("transformer", True)
    x2 = x.clone()
    x2[:, 0] = torch.randn(B, D)
    assert (run(learner, x2)[0][:, -1] - run(learner, x)[0][:, -1]).abs().max() > 1e-4


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_gradients_reach_every_parameter(name, memory, x):
    learner = make(name, memory)
    out, _ = learner(x, learner.initial_memory(B))
    loss = out.logits.sum() + out.value.sum() + out.mean.pow(2).sum()
    loss.backward()
    # a core names the parameters that provably get no gradient without memory
    dead = () if memory else CLASSES[name].zero_grad_without_memory
    params = [(n, p) for n, p in learner.named_parameters() if p.requires_grad]
    assert params
    for n, p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        if any(fnmatch(n.removeprefix("core."), pattern) for pattern in dead):
            assert p.grad.abs().max() == 0, n
        else:
            assert p.grad.abs().max() > 0, n


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_reset_changes_only_masked_rows(name, memory, x):
    learner = make(name, memory)
    _, mem = run(learner, x[:, :3])
    mask = torch.tensor([True, False, True, False])
    reset = learner.reset_memory(mem, mask)
    fresh = learner.initial_memory(B)

    # Leaf by leaf, unmasked rows are untouched.
    for a, b in zip(_leaves(reset), _leaves(mem), strict=True):
        assert torch.equal(a[~mask], b[~mask])
    # Functionally: masked rows continue as if fresh, the others as if never reset.
    y = x[:, 3:]
    after, ref = run(learner, y, reset)[0], run(learner, y, mem)[0]
    torch.testing.assert_close(after[~mask], ref[~mask], atol=1e-6, rtol=0)
    torch.testing.assert_close(after[mask], run(learner, y, fresh)[0][mask], atol=1e-5, rtol=0)
    if memory:
        assert (after[mask] - ref[mask]).abs().max() > 1e-4


def _leaves(tree) -> list[torch.Tensor]:
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in _leaves(v)]
    if isinstance(tree, tuple):
        return [leaf for v in tree for leaf in _leaves(v)]
    return [tree]


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_staggered_resets_match_independent_episodes(name, memory):
    """Rows reset at different steps; each row's segment equals a fresh run of that segment."""
    learner = make(name, memory)
    g = torch.Generator().manual_seed(2)
    steps = 9
    x = torch.randn(B, steps, D, generator=g)
    resets = {2: [True, False, False, True], 4: [False, True, False, True], 5: [True] * 4}
    mem, outs = learner.initial_memory(B), []
    for t in range(steps):
        if t in resets:
            mem = learner.reset_memory(mem, torch.tensor(resets[t]))
        out, mem = learner(x[:, t : t + 1], mem)
        outs.append(heads(out))
    got = torch.cat(outs, dim=1)
    for row in range(B):
        start = max([t for t, m in resets.items() if m[row]] + [0])
        ref = run(learner, x[row : row + 1, start:])[0][0]
        torch.testing.assert_close(got[row, start:], ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,memory", CASES, ids=IDS)
def test_state_dict_round_trip(name, memory, x):
    learner = make(name, memory, seed=0)
    other = make(name, memory, seed=1)
    assert not torch.equal(run(learner, x)[0], run(other, x)[0])
    other.load_state_dict(learner.state_dict())
    assert torch.equal(run(other, x)[0], run(learner, x)[0])
    assert other.num_parameters() == learner.num_parameters()


def test_transformer_is_gpt2_on_embedded_inputs(x):
    learner = make("transformer", True)
    core = learner.core
    ours = run(learner, x)[0][..., -core.out_dim :]
    ref = core.gpt(inputs_embeds=core.embed(x)).last_hidden_state
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_transformer_attention_implementations_agree(x):
    sdpa, eager = make("transformer", True), make("transformer_eager", True, seed=1)
    eager.load_state_dict(sdpa.state_dict())
    torch.testing.assert_close(run(sdpa, x)[0], run(eager, x)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("memory", [True, False], ids=["memon", "memoff"])
def test_transformer_decode_step_is_gpt2_step(memory, x):
    """The acting path (plain tensor ops) gives GPT2Model's output, cache and gradients."""
    learner = make("transformer", memory)
    core = learner.core
    _, mem = run(learner, x[:, :4])
    mem = core.reset_memory(mem, torch.tensor([True, False, False, True]))  # stale entries
    _, mem = run(learner, x[:, 4:6], mem)
    emb = core.embed(x[:, 6:7])
    pos = core._positions(mem["pos"], 1)
    results = []
    for path in (core._decode_step, core._gpt_forward):
        learner.zero_grad()
        out, new = path(emb, pos, mem)
        out.square().sum().backward(retain_graph=True)
        grads = [p.grad.clone() for p in core.gpt.parameters() if p.requires_grad]
        results.append((out, _leaves(new), grads))
    (out, leaves, grads), (ref_out, ref_leaves, ref_grads) = results
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    assert len(leaves) == len(ref_leaves)
    for a, b in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert any(g.abs().max() > 0 for g in grads)


def test_transformer_cache_uses_the_installed_argument_name(x):
    """GPT2Model with a cache runs without the deprecated-name warning of transformers >= 5.24."""
    learner = make("transformer", True)
    _, mem = run(learner, x[:, :3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(learner, x[:, 3:5], mem)  # T = 2 with a non-empty cache: GPT2Model's cached forward
    assert not [w for w in caught if "past_key_values" in str(w.message)]


def test_transformer_context_limit_is_named():
    core = TransformerCore(D, d_model=8, num_heads=2, max_context=4)
    mem = core(torch.randn(2, 3, D), core.initial_memory(2))[1]
    with pytest.raises(ValueError, match="max_context=4"):
        core(torch.randn(2, 2, D), mem)
    mem = core.reset_memory(mem, torch.tensor([True, True]))
    assert mem["valid"].shape[1] == 0  # entries no row can see are dropped
    core(torch.randn(2, 4, D), mem)


BAD = [
    (LSTMCore, {"hidden_size": 0}, "hidden_size", 0),
    (GRUCore, {"hidden_size": -3}, "hidden_size", -3),
    (FFNCore, {"hidden_size": 0}, "hidden_size", 0),
    (FFNCore, {"num_layers": 0}, "num_layers", 0),
    (FFNCore, {"memory": True}, "memory", True),
    (SlotCore, {"num_slots": 0}, "num_slots", 0),
    (SlotCore, {"width": -1}, "width", -1),
    (SlotCore, {"num_heads": 0}, "num_heads", 0),
    (SlotCore, {"width": 10, "num_heads": 4}, "num_heads", 4),
    (SlotCore, {"slot_dim": 6, "num_heads": 4}, "num_heads", 4),
    (TransformerCore, {"d_model": 0}, "d_model", 0),
    (TransformerCore, {"num_layers": 0}, "num_layers", 0),
    (TransformerCore, {"num_heads": -2}, "num_heads", -2),
    (TransformerCore, {"d_model": 10, "num_heads": 3}, "num_heads", 3),
    (TransformerCore, {"max_context": 0}, "max_context", 0),
    (TransformerCore, {"d_inner": 0}, "d_inner", 0),
    (TransformerCore, {"attn_implementation": "flash"}, "attn_implementation", "flash"),
]


@pytest.mark.parametrize("cls,kwargs,field,value", BAD)
def test_bad_sizes_fail_at_construction(cls, kwargs, field, value):
    with pytest.raises(ValueError, match=f"^{field}={value!r} is not allowed"):
        cls(D, **kwargs)


def test_bad_head_count_fails_in_learner():
    with pytest.raises(ValueError, match="num_actions=0"):
        Learner(LSTMCore(D), 0)


def test_width_for_budget_known_answer():
    assert width_for_budget(lambda w: nn.Linear(1, w), 100) == 50  # 2 parameters per unit
    assert width_for_budget(lambda w: nn.Linear(1, w), 98, multiple_of=4) == 48


def test_matched_widths_within_ten_percent():
    widths = matched_widths()
    assert widths["lstm"] == {"hidden_size": 48}
    cores = config_cores()
    assert set(widths) == set(cores) >= {"lstm", "gru", "slot", "ffn", "transformer"}
    counts = {n: count_learner(cores[n], kw, 5, 2) for n, kw in widths.items()}
    assert counts["lstm"] == default_budget() == 10805
    assert max(counts.values()) / min(counts.values()) <= 1.10, counts
    for n, c in counts.items():
        assert abs(c - 10805) / 10805 < 0.05, (n, c)
    bigger = matched_widths(budget=50_000, input_dim=7, num_actions=4)
    counts = [count_learner(cores[n], kw, 7, 4) for n, kw in bigger.items()]
    assert max(counts) / min(counts) <= 1.10 and abs(counts[0] - 50_000) < 2_500


def test_matched_widths_refuses_an_unmatchable_budget():
    with pytest.raises(ValueError, match="budget=3000"):
        matched_widths(budget=3000, tolerance=0.01)


def test_slot_store_grows_to_its_slots_then_slides(x):
    """Acting writes one slot per step up to K, then keeps the last K; a reset drops dead slots."""
    learner = make("slot_ring", True)
    mem = learner.initial_memory(B)
    assert mem["keys"].shape[2] == 0
    for t in range(T):
        _, mem = learner(x[:, t : t + 1], mem)
        assert mem["keys"].shape[2] == mem["values"].shape[2] == mem["valid"].shape[1]
        assert mem["keys"].shape[2] == min(t + 1, K)
    # The store holds the last K writes, oldest first: the keys of a fresh run of those steps.
    _, tail = run(learner, x[:, T - K :])
    torch.testing.assert_close(mem["keys"], tail["keys"], atol=1e-6, rtol=0)
    half = learner.reset_memory(mem, torch.tensor([True, False, True, False]))
    assert half["keys"].shape[2] == K and not half["valid"][[0, 2]].any()
    assert half["valid"][[1, 3]].all()
    assert learner.reset_memory(mem, torch.ones(B, dtype=torch.bool))["keys"].shape[2] == 0


def test_lstm_forget_bias_shifts_only_the_forget_gate() -> None:
    torch.manual_seed(3)
    plain = LSTMCore(5, hidden_size=6)
    torch.manual_seed(3)
    biased = LSTMCore(5, hidden_size=6, forget_bias=1.0)
    for (name, a), (_, b) in zip(plain.named_parameters(), biased.named_parameters(), strict=True):
        if name != "rnn.bias_ih_l0":
            assert torch.equal(a, b), name
    delta = biased.rnn.bias_ih_l0 - plain.rnn.bias_ih_l0
    assert torch.equal(delta[6:12], torch.ones(6)) and not delta[:6].any() and not delta[12:].any()
    # the cell keeps more of its state: a step's cell state holds more of the last one
    x = torch.zeros(1, 1, 5)
    c0 = (torch.zeros(1, 6), torch.ones(1, 6))
    keep = [core(x, c0)[1][1].mean().item() for core in (plain, biased)]
    assert keep[1] > keep[0]


def test_slot_read_leaves_out_only_masks_that_change_nothing() -> None:
    """A fresh sequence reads causally and an all-valid store unmasked: the masked read's bits,
    forward and backward; a store with dead slots is still masked."""
    torch.manual_seed(0)
    core = SlotCore(D, num_slots=16, width=8, num_heads=2)
    q, k, v = (torch.randn(B, 2, T, 4, requires_grad=True) for _ in range(3))
    read, mem = core.read(q, k, v, core.initial_memory(B))
    causal = torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T)
    masked = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal)
    assert torch.equal(read, masked)
    g = torch.randn_like(read)
    for a, b in zip(
        torch.autograd.grad(read, (q, k, v), g),
        torch.autograd.grad(masked, (q, k, v), g),
        strict=True,
    ):
        assert torch.equal(a, b)
    with torch.no_grad():
        q1, k1, v1 = (torch.randn(B, 2, 1, 4) for _ in range(3))
        keys, values = (torch.cat([m, n], 2) for m, n in ((mem["keys"], k1), (mem["values"], v1)))
        step, _ = core.read(q1, k1, v1, mem)
        every = torch.ones(B, 1, 1, T + 1, dtype=torch.bool)
        full = torch.nn.functional.scaled_dot_product_attention(q1, keys, values, attn_mask=every)
        assert torch.equal(step, full)
        dead = core.reset_memory(mem, torch.tensor([True, False, False, False]))
        alone, _ = core.read(q1, k1, v1, dead)
        assert torch.equal(alone[1:], step[1:])  # the other rows: unchanged
        # row 0 reads only the slot it just wrote
        assert torch.allclose(alone[0], v1[0], atol=1e-6) and not torch.allclose(step[0], v1[0])
