"""gymnasium adapter: check_env on the single view, a contract test of the vector env."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from mesalab.tasks import FAMILIES, input_slices, make_family
from mesalab.tasks.gym_adapter import ENV_IDS, TaskEnv, TaskVectorEnv, env_id

T = 3  # trials per episode in these tests


def random_actions(envs: TaskVectorEnv, rng: np.random.Generator) -> np.ndarray:
    """Valid actions for every sub-environment of any family."""
    if isinstance(envs.single_action_space, gymnasium.spaces.Discrete):
        return rng.integers(0, envs.single_action_space.n, size=envs.num_envs)
    return rng.uniform(0.0, 1.0, size=envs.action_space.shape).astype(np.float32)


def test_tasks_package_does_not_import_gymnasium() -> None:
    code = "import sys, tasks; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_registered_id_per_family() -> None:
    assert env_id("dependent_bandit") == "mesalab/DependentBandit-v0"
    assert ENV_IDS == [env_id(name) for name in FAMILIES]
    for eid in ENV_IDS:
        assert eid in gymnasium.registry


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_single_env_view_passes_check_env(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # bounded spaces, render modes: nothing to warn about
        env = gymnasium.make(env_id(name))
        assert isinstance(env.unwrapped, TaskEnv)
        check_env(env.unwrapped)
        obs, _ = env.reset(seed=0)
        for _ in range(env.unwrapped.family.num_trials):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert obs in env.observation_space and isinstance(reward, float)
    assert terminated and not truncated
    assert info["optimal_expected_reward"] >= info["expected_reward"] - 1e-6


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_vector_env_spaces_and_batched_shapes(name: str) -> None:
    short = (
        {"num_trials": T} if "num_trials" in inspect.signature(FAMILIES[name]).parameters else {}
    )
    envs = gymnasium.make_vec(env_id(name), num_envs=4, **short)
    assert isinstance(envs, TaskVectorEnv) and envs.num_envs == 4
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    family = envs.family
    assert envs.single_observation_space.shape == (family.input_dim,)
    assert envs.observation_space.shape == (4, family.input_dim)
    if family.kind == "decision":
        assert envs.single_action_space == gymnasium.spaces.Discrete(family.num_actions)
        assert envs.action_space == gymnasium.spaces.MultiDiscrete([family.num_actions] * 4)
    obs, info = envs.reset(seed=1)
    assert obs.dtype == np.float32 and obs in envs.observation_space and info == {}
    assert (obs[:, input_slices(family)["start"]] == 1.0).all()
    obs, reward, terminated, truncated, info = envs.step(
        random_actions(envs, np.random.default_rng(0))
    )
    assert obs.shape == (4, family.input_dim) and obs in envs.observation_space
    assert reward.shape == (4,) and reward.dtype == np.float64
    assert terminated.shape == truncated.shape == (4,) and terminated.dtype == np.bool_
    for key in ("expected_reward", "optimal_expected_reward"):
        assert info[key].shape == (4,) and info[f"_{key}"].dtype == np.bool_
        assert info[f"_{key}"].all()
    assert (info["optimal_expected_reward"] >= info["expected_reward"] - 1e-6).all()
    envs.close()


def test_observation_is_the_shared_learner_input() -> None:
    envs = TaskVectorEnv(5, "dependent_bandit", num_trials=T)
    sl = input_slices(envs.family)
    envs.reset(seed=3)
    actions = np.array([0, 1, 1, 0, 1])
    obs, reward, *_ = envs.step(actions)
    assert (obs[:, sl["prev_action"]] == np.eye(2)[actions]).all()
    assert (obs[:, sl["prev_feedback"]][:, 0] == reward).all()
    assert np.allclose(obs[:, sl["trial"]], 1 / T) and (obs[:, sl["start"]] == 0).all()


def test_next_step_autoreset_and_info_masks() -> None:
    envs = TaskVectorEnv(3, "dependent_bandit", num_trials=T)
    sl = input_slices(envs.family)
    envs.reset(seed=0)
    for step in range(T):
        obs, reward, terminated, truncated, info = envs.step(np.array([0, 1, 0]))
        assert terminated.all() == (step == T - 1) and not truncated.any()
    first_tasks = info["optimal_expected_reward"]
    # the step after termination only restarts: reset observation, zero reward, masked info
    obs, reward, terminated, truncated, info = envs.step(np.array([1, 1, 1]))
    assert (reward == 0).all() and not terminated.any()
    assert (obs[:, sl["start"]] == 1).all() and (obs[:, sl["prev_action"]] == 0).all()
    assert not info["_expected_reward"].any()
    obs, reward, terminated, truncated, info = envs.step(np.array([1, 1, 1]))
    assert info["_expected_reward"].all() and not terminated.any()
    assert not np.allclose(info["optimal_expected_reward"], first_tasks)  # new tasks


def test_same_step_autoreset_returns_final_observations() -> None:
    envs = TaskVectorEnv(2, "dependent_bandit", num_trials=T, autoreset_mode="SameStep")
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    sl = input_slices(envs.family)
    envs.reset(seed=0)
    for _ in range(T):
        obs, reward, terminated, truncated, info = envs.step(np.array([1, 0]))
    assert terminated.all() and info["_final_obs"].all() and info["_final_info"].all()
    assert (obs[:, sl["start"]] == 1).all()  # already the next episode
    final = np.stack(info["final_obs"])
    assert np.allclose(final[:, sl["trial"]], 1.0) and (final[:, sl["start"]] == 0).all()
    assert (final[:, sl["prev_feedback"]][:, 0] == reward).all()
    assert "expected_reward" in info["final_info"]


def test_disabled_autoreset_and_partial_reset_mask() -> None:
    envs = TaskVectorEnv(3, "dependent_bandit", num_trials=T, autoreset_mode="Disabled")
    sl = input_slices(envs.family)
    envs.reset(seed=0)
    envs.step(np.array([0, 0, 0]))
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False, True])})
    assert obs[:, sl["start"]][:, 0].tolist() == [1.0, 0.0, 1.0]
    assert obs[1, sl["trial"]][0] == pytest.approx(1 / T)
    for _ in range(T):
        _, _, terminated, _, _ = envs.step(np.array([0, 0, 0]))
        if terminated.any():
            break
    assert terminated.tolist() == [False, True, False]
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(np.array([0, 0, 0]))
    envs.reset(options={"reset_mask": terminated})
    envs.step(np.array([0, 0, 0]))  # every row live again
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([1, 0, 1])})


def test_seeding_is_deterministic_and_seed_dependent() -> None:
    def rewards(seed: int) -> np.ndarray:
        envs = TaskVectorEnv(64, "dependent_bandit", num_trials=T)
        envs.reset(seed=seed)
        return np.stack([envs.step(np.zeros(64, dtype=int))[1] for _ in range(2 * T)])

    assert np.array_equal(rewards(7), rewards(7))
    assert not np.array_equal(rewards(7), rewards(8))


def test_trialwise_mode_redraws_the_task_every_trial() -> None:
    def optimal(mode: str) -> np.ndarray:
        envs = TaskVectorEnv(8, "dependent_bandit", distribution=mode, num_trials=4)
        envs.reset(seed=0)
        return np.stack(
            [envs.step(np.zeros(8, dtype=int))[4]["optimal_expected_reward"] for _ in range(4)]
        )

    assert np.ptp(optimal("related"), axis=0).max() == 0.0
    assert (np.ptp(optimal("trialwise"), axis=0) > 0).all()


def test_bad_actions_and_arguments_fail_clearly() -> None:
    envs = TaskVectorEnv(2, "dependent_bandit", num_trials=T)
    with pytest.raises(ValueError, match="step"):
        envs.step(np.array([0, 0]))  # before reset
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        envs.step(np.array([0, 2]))
    with pytest.raises(ValueError, match="actions"):
        envs.step(np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="num_envs"):
        TaskVectorEnv(0)
    with pytest.raises(ValueError, match="autoreset_mode"):
        TaskVectorEnv(2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="task"):
        gymnasium.make_vec("mesalab/DependentBandit-v0", num_envs=2, family="nope")
    with pytest.raises(ValueError, match="family_kwargs"):
        TaskVectorEnv(2, make_family("dependent_bandit"), num_trials=4)
