"""Contract checks shared by the two_step, harlow, linear_regression, markov_chain, tabular_mdp
families: shapes, seeding, common random numbers, every distribution mode, every prior."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import (
    FAMILIES,
    TaskDistribution,
    build_inputs,
    make_family,
    rollout,
    stream_generator,
)
from mesalab.tasks.base import OraclePolicy, batch_size_of, index_batch

NAMES = ["two_step", "harlow", "linear_regression", "markov_chain", "tabular_mdp"]
B = 16


def _small(name: str):
    """The family with short episodes, to keep the tests fast."""
    kwargs = {"tabular_mdp": {"num_trials": 20}, "markov_chain": {"num_trials": 12}}
    return make_family(name, **kwargs.get(name, {}))


def _some_action(family, gen: torch.Generator) -> torch.Tensor:
    """A valid action of any kind for B rows."""
    if family.kind == "decision":
        return torch.randint(0, family.num_actions, (B,), generator=gen)
    return torch.rand(B, family.num_actions, generator=gen)


@pytest.mark.parametrize("name", NAMES)
def test_registered_with_references(name):
    family = _small(name)
    assert FAMILIES[name] is type(family)
    refs = family.references()
    assert {"oracle", "random", family.ideal_reference} <= set(refs)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_regret_sign(name):
    family = _small(name)
    g = stream_generator(0, "train")
    latent = family.sample_latent(B, g)
    state = family.reset(latent, g)
    for _ in range(family.num_trials):
        obs = family.observe(latent, state)
        assert obs.shape == (B, family.obs_dim) and obs.dtype == torch.float32
        oracle = family.oracle_action(latent, state)
        action = _some_action(family, g)
        assert oracle.shape == action.shape
        state, out = family.step(latent, state, action, g)
        for field in ("reward", "expected_reward", "optimal_expected_reward"):
            assert getattr(out, field).shape == (B,)
            assert torch.isfinite(getattr(out, field)).all()
        assert out.feedback.shape == (B, family.feedback_dim)
        assert (out.optimal_expected_reward >= out.expected_reward - 1e-5).all()
        x = build_inputs(family, obs, action, out.feedback, state.t)
        assert x.shape == (B, family.input_dim)
    assert (state.t == family.num_trials).all()


@pytest.mark.parametrize("name", NAMES)
def test_oracle_has_zero_regret(name):
    family = _small(name)
    latent = family.sample_latent(B, stream_generator(0, "eval"))
    traj = rollout(
        family,
        latent,
        OraclePolicy(),
        stream_generator(1, "eval"),
        torch.Generator().manual_seed(9),
    )
    torch.testing.assert_close(traj.regret, torch.zeros_like(traj.regret), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_data(name):
    family = _small(name)
    latents = [family.sample_latent(B, stream_generator(3, "train")) for _ in range(2)]
    trajs = [
        rollout(
            family,
            lat,
            family.references()["random"],
            stream_generator(4, "train"),
            torch.Generator().manual_seed(5),
        )
        for lat in latents
    ]
    assert torch.equal(trajs[0].inputs, trajs[1].inputs)
    assert torch.equal(trajs[0].rewards, trajs[1].rewards)
    other = family.sample_latent(B, stream_generator(4, "train"))
    assert not torch.equal(
        torch.cat([f.flatten().float() for f in _fields(latents[0])]),
        torch.cat([f.flatten().float() for f in _fields(other)]),
    )


def _fields(latent):
    return [getattr(latent, k) for k in latent.__dataclass_fields__]


@pytest.mark.parametrize("name", NAMES)
def test_randomness_does_not_depend_on_the_action(name):
    """Common random numbers: two different actions consume the same random numbers."""
    family = _small(name)
    latent = family.sample_latent(B, stream_generator(0, "eval"))
    g0 = stream_generator(1, "eval")
    state = family.reset(latent, g0)
    acts = [_some_action(family, torch.Generator().manual_seed(s)) for s in (1, 2)]
    outs = []
    for act in acts:
        g = torch.Generator()
        g.set_state(g0.get_state())
        new_state, out = family.step(latent, state, act, g)
        outs.append((g.get_state(), new_state, out))
    assert not torch.equal(acts[0], acts[1])
    assert torch.equal(outs[0][0], outs[1][0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["related", "single", "pool", "trialwise"])
def test_every_distribution_mode_rolls_out(name, mode):
    family = _small(name)
    dist = TaskDistribution(family, mode=mode, pool_size=3 if mode == "pool" else None)
    latent = dist.sample(B, stream_generator(0, "train"))
    assert batch_size_of(latent) == B
    for ref in family.references().values():
        traj = rollout(
            family,
            latent,
            ref,
            stream_generator(1, "train"),
            torch.Generator().manual_seed(2),
            dist,
        )
        assert traj.rewards.shape == (B, family.num_trials)
        assert torch.isfinite(traj.expected_rewards).all()
    assert batch_size_of(index_batch(latent, torch.tensor([0, 0, 1]))) == 3


@pytest.mark.parametrize("name", NAMES)
def test_every_prior_and_unknown_prior(name):
    family = _small(name)
    for prior in family.priors:
        latent = family.sample_latent(B, stream_generator(0, "eval"), prior)
        traj = rollout(
            family,
            latent,
            OraclePolicy(),
            stream_generator(1, "eval"),
            torch.Generator().manual_seed(2),
        )
        assert torch.isfinite(traj.rewards).all()
    with pytest.raises(ValueError, match="prior"):
        family.sample_latent(B, stream_generator(0, "eval"), "no_such_prior")
