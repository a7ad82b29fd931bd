"""Contract tests over every registered task family and every distribution mode.

Parametrized over ``tasks.FAMILIES``, so a family added later is held to the same contract.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import Tensor

from mesalab.tasks import (
    FAMILIES,
    TaskDistribution,
    TaskFamily,
    num_distinct,
    rollout,
    stream_generator,
)
from mesalab.tasks.base import StepOut
from mesalab.tasks.distributions import latent_rows
from mesalab.tasks.inputs import input_slices
from mesalab.tasks.rollout import Policy, StepContext, Trajectory
from tests.conftest import DEVICES

NAMES = sorted(FAMILIES)
MODES = [("related", None), ("single", None), ("pool", 3), ("trialwise", None)]
MODE_IDS = [m if k is None else f"{m}{k}" for m, k in MODES]
B, T = 64, 12


def build(name: str, num_trials: int = T) -> TaskFamily:
    """A family with default parameters and a short episode (when it takes num_trials)."""
    cls = FAMILIES[name]
    takes_trials = "num_trials" in inspect.signature(cls).parameters
    return cls(num_trials=num_trials) if takes_trials else cls()


class AnyPolicy(Policy):
    """Random actions of the family's kind; records the latent rows it was shown."""

    name = "any"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Remember the family; clear the record."""
        self.family, self.seen = family, []
        return None

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Uniform arm (decision) or a standard normal prediction (prediction)."""
        self.seen.append(latent_rows(ctx.latent))
        b, a = ctx.obs.shape[0], self.family.num_actions
        if self.family.kind == "decision":
            return torch.randint(0, a, (b,), generator=generator), pstate
        return torch.randn(b, a, generator=generator), pstate

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """Nothing to learn."""
        return pstate


def run(
    family: TaskFamily, mode: str, k: int | None, seed: int = 0, policy: Policy | None = None
) -> tuple[Trajectory, TaskDistribution, torch.Generator]:
    """One batch of training episodes under a distribution mode, fully seeded."""
    dist = TaskDistribution(family, mode=mode, pool_size=k, seed=seed)
    env_g = stream_generator(seed, "train")
    latent = dist.sample(B, env_g)
    pol_g = torch.Generator().manual_seed(1000 + seed)
    traj = rollout(family, latent, policy or AnyPolicy(), env_g, pol_g, distribution=dist)
    return traj, dist, env_g


@pytest.mark.parametrize("mode,k", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_rollout_shapes_dtypes_ranges(name: str, mode: str, k: int | None) -> None:
    family = build(name)
    traj, _, _ = run(family, mode, k)
    d, a, f = family.input_dim, family.num_actions, family.feedback_dim
    assert traj.inputs.shape == (B, T, d) and traj.inputs.dtype == torch.float32
    for field in ("rewards", "expected_rewards", "optimal_expected_rewards"):
        x = getattr(traj, field)
        assert x.shape == (B, T) and x.dtype == torch.float32, field
        assert torch.isfinite(x).all(), field
    assert traj.feedback.shape == (B, T, f) and torch.isfinite(traj.feedback).all()
    if family.kind == "decision":
        for x in (traj.actions, traj.oracle_actions):
            assert x.shape == (B, T) and x.dtype == torch.long
            assert ((x >= 0) & (x < a)).all()
    else:
        assert traj.actions.shape == (B, T, a) and traj.oracle_actions.shape == (B, T, a)
    # The oracle is the best in expectation: regret is never negative.
    assert (traj.regret >= -1e-5).all()
    for key, value in traj.info.items():
        assert value.shape[:2] == (B, T), key
    # The shared input: start flag, trial index, previous action and feedback.
    sl = input_slices(family)
    x = traj.inputs
    assert torch.equal(x[:, 0, sl["start"]], torch.ones(B, 1))
    assert torch.equal(x[:, 1:, sl["start"]], torch.zeros(B, T - 1, 1))
    trial = torch.arange(T, dtype=torch.float32) / family.num_trials
    assert torch.allclose(x[:, :, sl["trial"]][..., 0], trial.expand(B, T))
    assert torch.equal(x[:, 0, sl["prev_action"]], torch.zeros(B, a))
    assert torch.equal(x[:, 1:, sl["prev_feedback"]], traj.feedback[:, :-1].float())
    if family.kind == "decision":
        prev = x[:, 1:, sl["prev_action"]].argmax(-1)
        assert torch.equal(prev, traj.actions[:, :-1])
        assert torch.equal(x[:, 1:, sl["prev_action"]].sum(-1), torch.ones(B, T - 1))


@pytest.mark.parametrize("mode,k", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_data_other_seed_other_data(name: str, mode: str, k: int | None) -> None:
    family = build(name)
    first, _, _ = run(family, mode, k, seed=0)
    again, _, _ = run(family, mode, k, seed=0)
    other, _, _ = run(family, mode, k, seed=1)
    for field in ("inputs", "actions", "rewards", "expected_rewards", "feedback"):
        assert torch.equal(getattr(first, field), getattr(again, field)), field
    assert not torch.equal(first.inputs, other.inputs)
    assert not torch.equal(first.expected_rewards, other.expected_rewards)


@pytest.mark.parametrize("name", NAMES)
def test_common_random_numbers_whatever_the_action(name: str) -> None:
    """Two different policies on the same environment seed consume identical randomness."""
    family = build(name)
    states = []
    for policy_seed in (1, 2):
        dist = TaskDistribution(family, mode="trialwise")
        env_g = stream_generator(0, "train")
        latent = dist.sample(B, env_g)
        rollout(
            family, latent, AnyPolicy(), env_g, torch.Generator().manual_seed(policy_seed), dist
        )
        states.append(env_g.get_state())
    assert torch.equal(states[0], states[1])


@pytest.mark.parametrize("mode,k", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_mode_yields_the_right_tasks(name: str, mode: str, k: int | None) -> None:
    family = build(name)
    count = family.num_distinct_tasks()
    if mode == "pool" and count is not None and count < k:
        # A finite prior cannot fill the pool with distinct tasks: refused, naming pool_size.
        with pytest.raises(ValueError, match=f"pool_size={k}"):
            TaskDistribution(family, mode=mode, pool_size=k, seed=3)
        return
    dist = TaskDistribution(family, mode=mode, pool_size=k, seed=3)
    g = stream_generator(3, "train")
    draws = [dist.sample(B, g) for _ in range(4)]
    rows = torch.cat([latent_rows(x) for x in draws])  # (4B, F)
    if mode == "single":
        assert num_distinct(dist.pool) == 1
        assert torch.unique(rows, dim=0).shape[0] == 1
        assert torch.equal(rows[0], latent_rows(dist.pool)[0])
    elif mode == "pool":
        # A pool holds k distinct tasks, even when the prior repeats tasks often.
        assert num_distinct(dist.pool) == k
        # 256 draws from 3 tasks: each appears (a miss has probability below 1e-44).
        assert torch.unique(rows, dim=0).shape[0] == k
        pool = latent_rows(dist.pool)
        assert ((rows[:, None] == pool[None]).all(-1).sum(-1) == 1).all()
    else:
        assert torch.unique(rows, dim=0).shape[0] > 1
    if mode == "trialwise":
        policy = AnyPolicy()
        run(family, mode, k, seed=3, policy=policy)
        seen = torch.stack(policy.seen, dim=1)  # (B, T, F)
        changed = (seen[:, 1:] != seen[:, :-1]).any(-1)  # (B, T - 1)
        # A new task every trial: at every trial some row's task changed (a family with a
        # continuous prior changes every row; see the family tests).
        assert changed.any(0).all()


@pytest.mark.parametrize("mode,k", [("single", None), ("pool", 3)], ids=["single", "pool3"])
@pytest.mark.parametrize("name", NAMES)
def test_heldout_never_a_training_task(name: str, mode: str, k: int | None) -> None:
    family = build(name)
    dist = TaskDistribution(family, mode=mode, pool_size=k, seed=5)
    count = family.num_distinct_tasks()
    if count is not None and count <= dist.pool_size:
        # The pool holds every task: no held-out task exists, and heldout says so.
        with pytest.raises(ValueError, match="pool_size"):
            dist.heldout(512, stream_generator(5, "eval"))
        return
    held = latent_rows(dist.heldout(512, stream_generator(5, "eval")))
    pool = latent_rows(dist.pool)
    assert not (held[:, None] == pool[None]).all(-1).any()
    # Disjoint streams: the held-out batch is not the training batch of the same seed.
    train = latent_rows(TaskDistribution(family).sample(512, stream_generator(5, "train")))
    assert not torch.equal(held, train)


@pytest.mark.parametrize("name", NAMES)
def test_num_distinct_tasks_is_honest(name: str) -> None:
    """None claims a continuous prior (draws all differ); a count bounds the distinct draws."""
    family = build(name)
    for prior in family.priors:
        count = family.num_distinct_tasks(prior)
        rows = latent_rows(family.sample_latent(256, torch.Generator().manual_seed(0), prior))
        distinct = torch.unique(rows, dim=0).shape[0]
        if count is None:
            assert distinct == 256, prior
        else:
            assert isinstance(count, int) and 1 <= distinct <= count, prior


@pytest.mark.parametrize("name", NAMES)
def test_every_prior_samples(name: str) -> None:
    family = build(name)
    assert family.priors[0] == "train"
    for prior in family.priors:
        a = family.sample_latent(32, torch.Generator().manual_seed(0), prior)
        b = family.sample_latent(32, torch.Generator().manual_seed(0), prior)
        assert torch.equal(latent_rows(a), latent_rows(b)), prior
        assert latent_rows(a).shape[0] == 32 and torch.isfinite(latent_rows(a)).all(), prior
    with pytest.raises(ValueError, match="prior"):
        family.sample_latent(4, torch.Generator(), "no_such_prior")


@pytest.mark.parametrize("name", NAMES)
def test_every_reference_rolls_out(name: str) -> None:
    family = build(name)
    refs = family.references()
    assert {"oracle", "random", family.ideal_reference} <= set(refs)
    latent = TaskDistribution(family).heldout(32, stream_generator(0, "eval"))
    oracle = rollout(family, latent, refs["oracle"], stream_generator(0, "eval"), torch.Generator())
    assert torch.allclose(oracle.regret, torch.zeros_like(oracle.regret), atol=1e-6)
    for ref_name, policy in refs.items():
        traj = rollout(
            family, latent, policy, stream_generator(0, "eval"), torch.Generator().manual_seed(0)
        )
        assert traj.rewards.shape == (32, T), ref_name
        assert torch.isfinite(traj.expected_rewards).all(), ref_name
        assert (traj.regret >= -1e-5).all(), ref_name


@pytest.mark.device
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_the_pool_is_the_same_on_every_device(name: str, device: str) -> None:
    """A pool is drawn on the CPU and moved: a CUDA run and its CPU analysis share its tasks."""
    family = build(name)
    count = family.num_distinct_tasks()
    if count is not None and count < 4:
        pytest.skip("fewer than 4 distinct tasks")
    on_device = TaskDistribution(family, mode="pool", pool_size=4, seed=11, device=device)
    on_cpu = TaskDistribution(family, mode="pool", pool_size=4, seed=11)
    rows = latent_rows(on_device.pool)
    assert rows.device.type == device
    assert torch.equal(rows.cpu(), latent_rows(on_cpu.pool))
    # the pool's tasks, not only its rows: a batch sampled on the device indexes them
    picked = latent_rows(on_device.sample(64, stream_generator(11, "train", device)))
    assert ((picked[:, None] == rows[None]).all(-1).sum(-1) == 1).all()
