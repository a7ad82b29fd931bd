"""The single-environment gymnasium view: block stepping is the family's own dynamics."""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import gymnasium
import numpy as np
import pytest
import torch

from mesalab.tasks import FAMILIES, TaskDistribution, build_inputs, make_family
from mesalab.tasks.episode_block import supports_blocks
from mesalab.tasks.gym_adapter import TaskEnv, TaskVectorEnv, env_id

FAST = sorted(
    name
    for name in FAMILIES
    if supports_blocks(make_family(name), TaskDistribution(make_family(name), "related"))
)


def test_every_discrete_family_but_the_mdp_steps_by_block() -> None:
    # the MDP's next state depends on the action: it steps the batched family instead
    assert FAST == [
        "bernoulli_bandit",
        "dependent_bandit",
        "harlow",
        "restless_bandit",
        "two_step",
    ]
    assert not TaskEnv("tabular_mdp").fast
    assert not TaskEnv("dependent_bandit", distribution="trialwise").fast


@pytest.mark.parametrize("name", [n for n in sorted(FAMILIES) if FAMILIES[n].action_free_dynamics])
def test_declared_action_free_dynamics_hold(name: str) -> None:
    """Two different action sequences from one RNG state visit identical states."""
    family = make_family(name)

    def states(seed: int) -> list:
        gen = torch.Generator().manual_seed(5)
        latent = family.sample_latent(16, gen)
        state, seen = family.reset(latent, gen), []
        act = torch.Generator().manual_seed(seed)
        for _ in range(family.num_trials):
            if family.kind == "decision":
                action = torch.randint(0, family.num_actions, (16,), generator=act)
            else:
                action = torch.rand(16, family.num_actions, generator=act)
            state, _ = family.step(latent, state, action, gen)
            seen.append(state)
        return seen

    for a, b in zip(states(1), states(2), strict=True):
        for f in dataclasses.fields(a):
            assert torch.equal(getattr(a, f.name), getattr(b, f.name))


def test_the_mdp_does_not_declare_action_free_dynamics() -> None:
    assert not FAMILIES["tabular_mdp"].action_free_dynamics


@pytest.mark.parametrize("name", FAST)
def test_block_steps_equal_the_family_stepped_with_the_actions_taken(name: str) -> None:
    """Replay: the family's own step, same generator, the env's actions in rows 0..2."""
    episodes, seed = 3, 11
    env = TaskEnv(name, block_episodes=8)
    family, t_max = env.family, env.family.num_trials
    rng = np.random.default_rng(0)
    actions = rng.integers(0, family.num_actions, size=(8, t_max))
    got = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed if e == 0 else None)
        rows = [(obs, None, None)]
        for t in range(t_max):
            obs, reward, terminated, _, info = env.step(int(actions[e, t]))
            rows.append((obs, reward, info))
        assert terminated
        got.append(rows)

    gen = torch.Generator().manual_seed(seed)
    latent = env.vector.distribution.sample(8, gen)
    state = family.reset(latent, gen)
    prev_a = prev_fb = None
    for t in range(t_max + 1):
        view = dataclasses.replace(state, t=state.t.clamp(max=t_max - 1))
        x = build_inputs(family, family.observe(latent, view), prev_a, prev_fb, state.t)
        for e in range(episodes):
            assert np.allclose(got[e][t][0], x[e].numpy(), atol=1e-6), (e, t)
        if t == t_max:
            break
        prev_a = torch.as_tensor(actions[:, t])
        state, out = family.step(latent, state, prev_a, gen)
        prev_fb = out.feedback
        for e in range(episodes):
            _, reward, info = got[e][t + 1]
            assert reward == pytest.approx(out.reward[e].item())
            assert info["expected_reward"] == pytest.approx(out.expected_reward[e].item())
            for key, value in out.info.items():
                assert np.array_equal(np.asarray(info[key]), value[e].numpy())


def test_blocks_chain_and_seeds_repeat() -> None:
    def run(seed: int, block: int) -> list[float]:
        env = TaskEnv("bernoulli_bandit", num_trials=5, block_episodes=block)
        out = []
        for e in range(7):  # more episodes than a block of 2: blocks are drawn again
            env.reset(seed=seed if e == 0 else None)
            out += [env.step(e % 2)[4]["optimal_expected_reward"] for _ in range(5)]
        return out

    assert run(3, 2) == run(3, 2)
    assert run(3, 2) != run(4, 2)
    assert len(set(run(3, 2)[::5])) == 7  # a new task every episode


def test_step_checks_its_action_and_the_episode_end() -> None:
    env = TaskEnv("dependent_bandit", num_trials=2)
    with pytest.raises(ValueError, match="step"):
        env.step(0)
    env.reset(seed=0)
    for bad in (2, -1, 0.5, np.array([0, 1])):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    env.step(np.int64(1))
    env.step(np.array([0]))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


@pytest.mark.parametrize("mode", ["rgb_array", "ansi"])
def test_render_modes_as_gymnasium_expects(mode: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gymnasium.make("mesalab/Harlow-v0", render_mode=mode)
        env.reset(seed=0)
        env.step(1)
        frame = env.render()
    if mode == "ansi":
        assert isinstance(frame, str) and frame.startswith("t=1 ")
    else:
        d = env.unwrapped.family.input_dim
        assert frame.dtype == np.uint8 and frame.shape == (16, 16 * d, 3)
        flag = frame[0, 16 * (d - 1), 0]  # the start flag is 0 after a step
        assert flag == 0 and frame[0, 16 * (d - 2), 0] > 0  # trial 1/6 is not
    with pytest.raises(ValueError, match="render_mode"):
        TaskEnv("harlow", render_mode="human")


def test_normalized_actions_map_onto_the_family_range() -> None:
    envs = TaskVectorEnv(2, "linear_regression")
    low, high = envs.family.action_bounds
    assert envs.single_action_space == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    envs.reset(seed=0)
    obs, *_ = envs.step(np.array([[-1.0], [0.5]], dtype=np.float32))
    prev = obs[:, envs.family.obs_dim]  # the previous action slot: the family's prediction
    assert prev.tolist() == pytest.approx([low, low + 0.75 * (high - low)])
    chain = TaskVectorEnv(1, "markov_chain")
    chain.reset(seed=0)
    obs, *_ = chain.step(np.array([[1.0, -1.0, 0.0]], dtype=np.float32))
    sl = slice(chain.family.obs_dim, chain.family.obs_dim + 3)
    assert obs[0, sl].tolist() == pytest.approx([1.0, 0.0, 0.5])


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_stable_baselines3_checker_passes(name: str) -> None:
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")  # not a dependency
    short = (
        {"num_trials": 4} if "num_trials" in inspect.signature(FAMILIES[name]).parameters else {}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3.check_env(gymnasium.make(env_id(name), **short))


@pytest.mark.parametrize("name", ["tabular_mdp", "linear_regression", "markov_chain"])
def test_direct_steps_equal_the_vector_env_of_one(name: str) -> None:
    """Families without blocks step the family on one row: the vector env's very outputs."""
    env = TaskEnv(name)
    assert env.direct and not env.fast
    vec = TaskVectorEnv(1, name, autoreset_mode="Disabled")
    rng = np.random.default_rng(0)
    for episode in range(2):
        seed = 5 if episode == 0 else None
        obs, _ = env.reset(seed=seed)
        vobs, _ = vec.reset(seed=seed)
        assert np.array_equal(obs, vobs[0])
        for _ in range(env.family.num_trials):
            action = env.action_space.sample() if env.family.kind == "prediction" else None
            if action is None:
                action = int(rng.integers(env.family.num_actions))
            obs, reward, terminated, _, info = env.step(action)
            vobs, vreward, vterm, _, vinfo = vec.step(np.asarray(action)[None])
            assert np.array_equal(obs, vobs[0]) and reward == float(vreward[0])
            assert terminated == bool(vterm[0])
            for key, value in info.items():
                assert np.array_equal(np.asarray(value), vinfo[key][0]), key
        assert terminated
        with pytest.raises(RuntimeError, match="reset"):
            env.step(action)
