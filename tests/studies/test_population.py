"""Population training: a member trains as it would alone, whoever shares its population."""

from __future__ import annotations

import pytest
import torch

from mesalab.archs import FFNCore, GRUCore, Learner, LSTMCore, SlotCore, TransformerCore
from mesalab.archs.population import PopulationLearner
from mesalab.studies.loop import TrainingDiverged, train_population, train_step
from mesalab.studies.population import Member, clip_per_member, groups
from mesalab.studies.signals import A2C, PPO, Signal, Supervised
from mesalab.tasks import TaskDistribution, make_family, stream_generator
from tests.conftest import DEVICES

CORES = {
    "lstm": lambda d: LSTMCore(d, hidden_size=8),
    "gru": lambda d: GRUCore(d, hidden_size=8),
    "ffn": lambda d: FFNCore(d, hidden_size=8),
    "slot": lambda d: SlotCore(d, num_slots=6, num_heads=2, width=8, slot_dim=6),
    "transformer": lambda d: TransformerCore(
        d, d_model=8, num_layers=2, num_heads=2, max_context=16, d_inner=12
    ),
}
# 32 episodes: every per-member block of a tensor is then a whole number of CPU vector
# chunks (elementwise kernels compute a partial last chunk differently, in the last bit)
UPDATES, BATCH = 3, 32


def family(name: str = "dependent_bandit"):
    return make_family(name, num_trials=10)


def learner(core: str, seed: int, fam, device: str = "cpu") -> Learner:
    torch.manual_seed(seed)
    return Learner(CORES[core](fam.input_dim), fam.num_actions).to(device)


def member(fam, seed: int, mode: str = "related", pool: int | None = None, device="cpu") -> Member:
    return Member(
        TaskDistribution(fam, mode, pool_size=pool, seed=seed, device=device),
        stream_generator(seed, "train", device),
        stream_generator(seed, "policy", device),
    )


def train_pop(core, fam, specs, signal: Signal, device="cpu", streams="member", poison=None):
    """Train a population of ``specs`` (seed, mode, pool); weights per member and the state."""
    solos = [learner(core, s, fam, device) for s, _, _ in specs]
    if poison is not None:  # a member whose value head makes every loss non-finite
        with torch.no_grad():
            solos[poison].value_head.bias.fill_(float("inf"))
    pop = PopulationLearner.stack(solos)
    opts = [torch.optim.Adam(pop.member_parameters(i), lr=1e-2) for i in range(pop.size)]
    ms = [member(fam, s, m, k, device) for s, m, k in specs]
    logs: list[list[dict]] = []
    state = train_population(
        pop,
        opts,
        signal,
        fam,
        ms,
        UPDATES,
        BATCH,
        grad_clip=0.5,
        lr_final_fraction=0.0,
        streams=streams,
        on_update=lambda st, m: logs.append(m) is None,
    )
    pop.write_back(solos)
    return solos, state, logs, opts, pop


def train_solo(core, fam, spec, signal: Signal, device="cpu"):
    """The solo run of one spec through ``train_step`` with ``train``'s schedule."""
    solo = learner(core, spec[0], fam, device)
    opt = torch.optim.Adam(solo.parameters(), lr=1e-2)
    m = member(fam, *spec, device=device)
    logs = []
    for u in range(UPDATES):
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
            g["lr"] = g["initial_lr"] * (1 - u / UPDATES)
        _, metrics = train_step(
            solo,
            opt,
            signal,
            fam,
            m.distribution,
            BATCH,
            m.env_gen,
            m.policy_gen,
            u / UPDATES,
            0.5,
            u,
        )
        logs.append(metrics)
    return solo, logs


def same_weights(a: Learner, b: Learner) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


# PPO with two passes: the second pass's forward is its own (not the acting steps')
SIGNALS = {"rl": A2C, "supervised": Supervised, "ppo": lambda: PPO(epochs=2)}


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("signal", sorted(SIGNALS))
@pytest.mark.parametrize("core", sorted(CORES))
def test_member_trains_bit_for_bit_as_its_solo_run(core: str, signal: str, device: str) -> None:
    fam = family()
    specs = [(0, "related", None), (1, "pool", 4), (2, "single", None)]
    solos, state, logs, _, _ = train_pop(core, fam, specs, SIGNALS[signal](), device)
    alone, solo_logs = train_solo(core, fam, specs[1], SIGNALS[signal](), device)
    if device == "cpu":
        assert same_weights(solos[1], alone)
    else:
        # CUDA picks its batched-GEMM and reduction kernels by shape, so a member of three and
        # its solo run (a population of one) differ in rounding: at most 3e-6 after these
        # updates on an H200 (README, "Devices"). Bit for bit holds on the CPU only.
        for x, y in zip(solos[1].parameters(), alone.parameters(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-5)
    for pop_m, solo_m in zip(logs, solo_logs, strict=True):
        for k, v in solo_m.items():
            if k != "charts/steps_per_s":
                want = v if device == "cpu" else pytest.approx(v, rel=1e-4, abs=1e-6)
                assert pop_m[1][k] == want, k
    assert state.errors == [None] * 3
    assert all(s.update == UPDATES for s in state.members)


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("core", ["lstm", "transformer"])
def test_a_solo_run_repeats_bit_for_bit(core: str, device: str) -> None:
    fam = family()
    first, logs = train_solo(core, fam, (1, "pool", 4), A2C(), device)
    again, logs_again = train_solo(core, fam, (1, "pool", 4), A2C(), device)
    assert same_weights(first, again)

    def untimed(ms: list[dict]) -> list[dict]:
        return [{k: v for k, v in m.items() if k != "charts/steps_per_s"} for m in ms]

    assert untimed(logs) == untimed(logs_again)


@pytest.mark.parametrize("signal", ["a2c", "ppo"])
@pytest.mark.parametrize("change", ["seed", "pool_size"])
def test_member_does_not_depend_on_the_others(change: str, signal: str) -> None:
    fam = family()
    other = (5, "pool", 2) if change == "seed" else (0, "pool", 7)
    sig = A2C() if signal == "a2c" else PPO(epochs=2, minibatches=2)
    base, _, logs_a, _, _ = train_pop("lstm", fam, [(0, "pool", 2), (3, "related", None)], sig)
    moved, _, logs_b, _, _ = train_pop("lstm", fam, [other, (3, "related", None)], sig)
    assert not same_weights(base[0], moved[0])  # the change did reach the other member
    assert same_weights(base[1], moved[1])
    drop = "charts/steps_per_s"
    assert [{k: v for k, v in m[1].items() if k != drop} for m in logs_a] == [
        {k: v for k, v in m[1].items() if k != drop} for m in logs_b
    ]


@pytest.mark.parametrize("name", ["linear_regression", "markov_chain", "harlow"])
def test_other_action_spaces_train_as_alone(name: str) -> None:
    fam = family(name)
    specs = [(0, "related", None), (1, "trialwise", None)]
    solos, state, _, _, _ = train_pop("gru", fam, specs, A2C())
    alone, _ = train_solo("gru", fam, specs[1], A2C())
    assert same_weights(solos[1], alone)
    assert state.errors == [None, None]


@pytest.mark.parametrize("signal", ["rl", "ppo"])
def test_diverged_member_stops_alone(signal: str) -> None:
    fam = family()
    specs = [(0, "related", None), (1, "related", None), (2, "related", None)]
    solos, state, logs, opts, pop = train_pop("lstm", fam, specs, SIGNALS[signal](), poison=1)
    assert state.errors[0] is None and state.errors[2] is None
    assert "non-finite loss" in state.errors[1] and "update 0" in state.errors[1]
    assert state.members[1].update == 0 and state.members[0].update == UPDATES
    poisoned = learner("lstm", 1, fam)
    poisoned.value_head.bias.data.fill_(float("inf"))
    for got, start in zip(solos[1].parameters(), poisoned.parameters(), strict=True):
        assert torch.equal(got, start)  # never stepped
    assert not opts[1].state  # its optimizer never stepped
    assert all(len(opts[i].state) == len(pop.leaves()) for i in (0, 2))
    alone, _ = train_solo("lstm", fam, specs[2], SIGNALS[signal]())
    assert same_weights(solos[2], alone)  # the others went on as if alone
    assert logs[0][1] == {}


def test_solo_train_step_raises_on_divergence() -> None:
    fam = family()
    solo = learner("ffn", 0, fam)
    solo.value_head.bias.data.fill_(float("nan"))
    m = member(fam, 0)
    opt = torch.optim.Adam(solo.parameters(), lr=1e-2)
    with pytest.raises(TrainingDiverged, match="non-finite loss nan at update 4"):
        train_step(solo, opt, A2C(), fam, m.distribution, 4, m.env_gen, m.policy_gen, 0.0, 1.0, 4)


def test_member_parameters_share_storage_with_the_rows() -> None:
    fam = family()
    pop = PopulationLearner.stack([learner("gru", s, fam) for s in range(3)])
    rows = pop.member_parameters(1)
    assert all(r.is_leaf and r.requires_grad for r in rows)
    with torch.no_grad():
        rows[0].add_(1.0)
    assert torch.equal(pop.leaves()[0][1], rows[0])
    pop.leaves()[0].grad = torch.ones_like(pop.leaves()[0])
    pop.attach_grads(1)
    assert rows[0].grad.data_ptr() == pop.leaves()[0].grad[1].data_ptr()


@pytest.mark.parametrize("n", [6, 40, 1000])
def test_stacked_adam_is_one_adam_per_member(n: int) -> None:
    # the "Adam on stacked params is elementwise, but verify": bit for bit
    torch.manual_seed(n)
    rows = [torch.randn(n, requires_grad=True) for _ in range(3)]
    stacked = torch.stack([r.detach() for r in rows]).requires_grad_()
    opts = [torch.optim.Adam([r], lr=0.1) for r in rows]
    big = torch.optim.Adam([stacked], lr=0.1)
    for _ in range(4):
        grads = torch.randn(3, n)
        for r, g, o in zip(rows, grads, opts, strict=True):
            r.grad = g.clone()
            o.step()
        stacked.grad = grads.clone()
        big.step()
    assert torch.equal(stacked.detach(), torch.stack([r.detach() for r in rows]))


def test_clipping_is_per_member() -> None:
    fam = family()
    solos = [learner("lstm", s, fam) for s in range(3)]
    pop = PopulationLearner.stack(solos)
    torch.manual_seed(0)
    for leaf in pop.leaves():
        leaf.grad = torch.randn_like(leaf)
        leaf.grad[0] *= 100.0  # member 0 far above the bound, the others below
        leaf.grad[1:] *= 1e-3
    before = [leaf.grad.clone() for leaf in pop.leaves()]
    norms = clip_per_member(pop, 1.0)
    for i in range(3):
        refs = [g[i].clone().requires_grad_() for g in before]
        for r in refs:
            r.grad = r.detach().clone()
        torch.testing.assert_close(norms[i], torch.nn.utils.clip_grad_norm_(refs, 1.0))
        for leaf, r in zip(pop.leaves(), refs, strict=True):
            torch.testing.assert_close(leaf.grad[i], r.grad)
    for leaf, b in zip(pop.leaves(), before, strict=True):
        assert torch.equal(leaf.grad[1:], b[1:])  # below the bound: untouched


def test_shared_streams_population_of_one_is_the_solo_run() -> None:
    fam = family()
    spec = (4, "pool", 3)
    solos, _, _, _, _ = train_pop("gru", fam, [spec], A2C(), streams="shared")
    alone, _ = train_solo("gru", fam, spec, A2C())
    assert same_weights(solos[0], alone)


def test_shared_streams_group_by_trialwise() -> None:
    fam = family()
    ms = [member(fam, 0), member(fam, 1, "trialwise"), member(fam, 2, "trialwise"), member(fam, 3)]
    assert groups(ms, "shared") == [(0, 1), (1, 3), (3, 4)]
    assert groups(ms, "member") == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError, match="streams='both'"):
        groups(ms, "both")
    solos, state, _, _, _ = train_pop(
        "ffn", fam, [(0, "related", None), (1, "trialwise", None)], A2C(), streams="shared"
    )
    assert state.errors == [None, None]


def test_solo_step_clips_to_the_bound_once() -> None:
    # the LSTM's two biases share one gradient's storage through the views: clipping in place
    # would scale it twice and leave a total norm below the bound
    fam = family()
    solo = learner("lstm", 0, fam)
    m = member(fam, 0)
    opt = torch.optim.Adam(solo.parameters(), lr=1e-2)
    _, metrics = train_step(
        solo, opt, Supervised(), fam, m.distribution, BATCH, m.env_gen, m.policy_gen, 0.0, 1e-3, 0
    )
    assert metrics["train/grad_norm"] > 1e-3
    grads = [p.grad for p in solo.parameters() if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    torch.testing.assert_close(total, torch.tensor(1e-3), rtol=1e-4, atol=0.0)


def test_shared_streams_make_a_member_depend_on_the_others() -> None:
    # documented behaviour of the default: member 0's generators drive every row's noise
    fam = family()
    a, _, _, _, _ = train_pop(
        "ffn", fam, [(0, "related", None), (3, "related", None)], A2C(), streams="shared"
    )
    b, _, _, _, _ = train_pop(
        "ffn", fam, [(5, "related", None), (3, "related", None)], A2C(), streams="shared"
    )
    assert not same_weights(a[1], b[1])


@pytest.mark.parametrize("signal", ["a2c", "ppo"])
def test_plain_path_trains_as_the_population_path(signal: str, monkeypatch) -> None:
    """A core without a population computation (Mamba, a user's core) takes ``train_step``'s
    plain path: the same signal, passes and schedule, so an LSTM forced onto it ends where its
    population of one does, up to float rounding (nn.LSTM's kernels against ours)."""
    import mesalab.studies.loop as loop

    fam = family()
    sig = A2C() if signal == "a2c" else PPO(epochs=2, minibatches=2)
    pop_path, pop_logs = train_solo("lstm", fam, (1, "pool", 4), sig)
    monkeypatch.setattr(loop, "supports", lambda learner: False)
    plain, plain_logs = train_solo("lstm", fam, (1, "pool", 4), sig)
    for x, y in zip(pop_path.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    moved = learner("lstm", 1, fam)
    assert not same_weights(plain, moved)
    for a, b in zip(pop_logs, plain_logs, strict=True):
        assert a.keys() == b.keys()
        assert a["losses/total"] == pytest.approx(b["losses/total"], rel=1e-4, abs=1e-6)
