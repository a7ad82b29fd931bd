"""gymnasium view of every task family: a batched ``VectorEnv`` and a single-environment view.

The only module of ``tasks`` that imports gymnasium (``import tasks`` never does). Importing it
registers one id per family of ``tasks.FAMILIES``, e.g. ``mesalab/DependentBandit-v0``::

    import gymnasium
    import mesalab.tasks.gym_adapter  # registers the mesalab/* ids

    envs = gymnasium.make_vec("mesalab/DependentBandit-v0", num_envs=64)  # TaskVectorEnv
    env = gymnasium.make("mesalab/DependentBandit-v0")                    # TaskEnv

The observation is the shared per-step learner input (:func:`mesalab.tasks.inputs.build_inputs`),
so a gymnasium agent sees exactly what mesalab's learners see; its Box is bounded by the
family's declared ranges. Non-discrete actions are normalized to [-1, 1] and mapped onto the
family's ``action_bounds``. The single-environment view steps bandit-like families by table
lookup over a block of episodes computed ahead (:mod:`mesalab.tasks.episode_block`). The
reward is the sampled reward; ``info["expected_reward"]`` and
``info["optimal_expected_reward"]`` give what the metrics use. An episode is one task of
``num_trials`` trials; it terminates (never truncates) at the last.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import gymnasium
import numpy as np
import torch
from einops import repeat
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from mesalab.tasks import (
    FAMILIES,
    TaskDistribution,
    TaskFamily,
    build_inputs,
    input_slices,
    make_family,
)
from mesalab.tasks.base import batch_select, check
from mesalab.tasks.episode_block import EpisodeBlock, block_size, draw_block, supports_blocks


def env_id(family: str) -> str:
    """Registered id of a family: ``dependent_bandit`` -> ``mesalab/DependentBandit-v0``."""
    return "mesalab/" + "".join(part.capitalize() for part in family.split("_")) + "-v0"


def action_kind(family: TaskFamily) -> str:
    """``"discrete"``, ``"real"`` or ``"simplex"``: the family's declared action space."""
    default = "discrete" if family.kind == "decision" else "real"
    return getattr(family, "action_space", default)


#: stands for "unbounded" in a Box, as float32's maximum does in gymnasium's own CartPole (the
#: checkers warn about infinite bounds); halved so that high - low is finite too, since a Box
#: samples low + (high - low) * u. No Gaussian draw of a family comes near it.
UNBOUNDED = float(np.finfo(np.float32).max) / 2


def _bounds(declared: tuple[float, float] | None) -> tuple[float, float]:
    """A family's declared (low, high), or the unbounded float32 range."""
    return (-UNBOUNDED, UNBOUNDED) if declared is None else declared


def action_space(family: TaskFamily) -> spaces.Space:
    """Discrete(num_actions), or num_actions values in [-1, 1] scaled onto the family's range.

    A normalized Box is what gymnasium's and stable-baselines3's checkers ask for; the family
    declares the range it maps onto (``action_bounds``), see :func:`family_action`.
    """
    kind = action_kind(family)
    if kind == "discrete":
        return spaces.Discrete(family.num_actions)
    check(
        family.action_bounds is not None,
        "action_bounds",
        None,
        f"declared by {family.name} (its actions are {kind!r})",
    )
    return spaces.Box(-1.0, 1.0, shape=(family.num_actions,), dtype=np.float32)


def family_action(family: TaskFamily, action: Tensor) -> Tensor:
    """A normalized non-discrete action in [-1, 1] as the family's, affinely on action_bounds."""
    low, high = family.action_bounds
    return low + (action.float().clamp(-1.0, 1.0) + 1.0) * (0.5 * (high - low))


def observation_space(family: TaskFamily) -> spaces.Box:
    """Box of the learner input, bounded by the layout and the family's declared ranges.

    The one-hot action, the trial fraction and the start flag lie in [0, 1]; the observation
    and the feedback lie in the family's ``obs_bounds`` and ``feedback_bounds``, or in the
    whole float32 range where the family declares none (Gaussian draws); a real-valued
    previous action lies in the family's ``action_bounds``.
    """
    sl = input_slices(family)
    low = np.zeros(family.input_dim, dtype=np.float32)
    high = np.ones(family.input_dim, dtype=np.float32)
    low[sl["obs"]], high[sl["obs"]] = _bounds(family.obs_bounds)
    low[sl["prev_feedback"]], high[sl["prev_feedback"]] = _bounds(family.feedback_bounds)
    if action_kind(family) != "discrete":
        low[sl["prev_action"]], high[sl["prev_action"]] = family.action_bounds
    return spaces.Box(low, high, dtype=np.float32)


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


class TaskVectorEnv(VectorEnv):
    """``num_envs`` episodes of one family stepped as one batch (no Python loop over envs)."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        family: str | TaskFamily = "dependent_bandit",
        distribution: str = "related",
        pool_size: int | None = None,
        prior: str = "train",
        pool_seed: int = 0,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        device: str | torch.device = "cpu",
        **family_kwargs: Any,
    ) -> None:
        check(isinstance(num_envs, int) and num_envs >= 1, "num_envs", num_envs, "an int >= 1")
        modes = [m.value for m in AutoresetMode]
        check(
            autoreset_mode in list(AutoresetMode) + modes,
            "autoreset_mode",
            autoreset_mode,
            f"an AutoresetMode or one of {modes}",
        )
        if isinstance(family, str):
            family = make_family(family, **family_kwargs)
        else:
            check(not family_kwargs, "family_kwargs", family_kwargs, "empty for a built family")
        self.family = family
        self.distribution = TaskDistribution(
            family, distribution, pool_size, prior, pool_seed, device
        )
        self.device = torch.device(device)
        self.num_envs = num_envs
        self.metadata = {**self.metadata, "autoreset_mode": AutoresetMode(autoreset_mode)}
        self.single_observation_space = observation_space(family)
        self.single_action_space = action_space(family)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._gen: torch.Generator | None = None
        self._latent: Any = None

    # --- gymnasium API ---------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new episodes: all of them, or those in ``options["reset_mask"]`` (B,) bool."""
        super().reset(seed=seed)
        if seed is not None or self._gen is None:
            torch_seed = seed if seed is not None else int(self.np_random.integers(2**62))
            self._gen = torch.Generator(device=self.device).manual_seed(torch_seed)
        mask = (options or {}).get("reset_mask")
        if mask is None or self._latent is None:
            self._latent, self._state = self._fresh()
            self._prev_action, self._prev_feedback = self._no_previous()
            self._done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            ok = isinstance(mask, np.ndarray) and mask.dtype == np.bool_
            check(
                ok and mask.shape == (self.num_envs,),
                "options['reset_mask']",
                mask,
                f"a numpy bool array of shape ({self.num_envs},)",
            )
            self._restart(torch.as_tensor(mask, device=self.device))
        return _numpy(self._inputs()), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One trial in every sub-environment; finished ones restart per the autoreset mode."""
        check(self._latent is not None, "step", "before reset", "called after reset()")
        action = self._actions(actions)
        mode = self.metadata["autoreset_mode"]
        if mode == AutoresetMode.DISABLED and bool(self._done.any()):
            raise RuntimeError(
                "step() on a terminated sub-environment with autoreset disabled: call "
                "reset(options={'reset_mask': terminated}) first"
            )
        restart = self._done if mode == AutoresetMode.NEXT_STEP else torch.zeros_like(self._done)
        if bool(restart.any()):
            # restarted rows step from a fresh state (never past the horizon); result dropped
            self._restart(restart)
        stepped = ~restart
        new_state, out = self.family.step(self._latent, self._state, action, self._gen)
        self._state = batch_select(stepped, new_state, self._state)
        self._prev_action, self._prev_feedback = action, out.feedback
        terminated = stepped & (self._state.t >= self.family.num_trials)
        if self.distribution.trialwise:
            self._redraw(stepped & ~terminated)
        reward = torch.where(stepped, out.reward, torch.zeros_like(out.reward))
        info: dict[str, Any] = {}
        values = {
            "expected_reward": out.expected_reward,
            "optimal_expected_reward": out.optimal_expected_reward,
            **out.info,
        }
        for key, value in values.items():
            # rows that really stepped; reshape adds a leaf-dependent count of unit axes
            keep = stepped.reshape(-1, *[1] * (value.dim() - 1))
            info[key] = _numpy(torch.where(keep, value, torch.zeros_like(value)))
            info[f"_{key}"] = _numpy(stepped)
        if mode == AutoresetMode.SAME_STEP and bool(terminated.any()):
            info.update(self._final(terminated, info))
            self._restart(terminated)
        self._done = terminated
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        obs = _numpy(self._inputs())
        return obs, _numpy(reward).astype(np.float64), _numpy(terminated), truncated, info

    # --- internals -------------------------------------------------------------------------
    def _fresh(self) -> tuple[Any, Any]:
        """New tasks and episode starts for every row (drawn for all rows: fixed randomness)."""
        latent = self.distribution.sample(self.num_envs, self._gen)
        return latent, self.family.reset(latent, self._gen)

    def _no_previous(self) -> tuple[Tensor, Tensor]:
        """Zero previous action and feedback (masked out at episode starts anyway)."""
        b, fam = self.num_envs, self.family
        discrete = action_kind(fam) == "discrete"
        shape = (b,) if discrete else (b, fam.num_actions)
        dtype = torch.long if discrete else torch.float32
        action = torch.zeros(shape, dtype=dtype, device=self.device)
        return action, torch.zeros(b, fam.feedback_dim, device=self.device)

    def _restart(self, mask: Tensor) -> None:
        """Give the masked rows a new task and a new episode."""
        latent, state = self._fresh()
        self._latent = batch_select(mask, latent, self._latent)
        self._state = batch_select(mask, state, self._state)
        self._done = self._done & ~mask

    def _redraw(self, mask: Tensor) -> None:
        """Trialwise mode: a new task every trial, keeping the trial index (as in rollout)."""
        latent = self.distribution.sample(self.num_envs, self._gen)
        state = self.family.reset(latent, self._gen, t=self._state.t)
        self._latent = batch_select(mask, latent, self._latent)
        self._state = batch_select(mask, state, self._state)

    def _inputs(self) -> Tensor:
        """The shared learner input of every row, (B, D) float32."""
        fam, t = self.family, self._state.t
        # a family may index per-trial data: the terminal observation reuses the last trial's
        view = dataclasses.replace(self._state, t=t.clamp(max=fam.num_trials - 1))
        obs = fam.observe(self._latent, view)
        start = build_inputs(fam, obs, None, None, t)
        seen = build_inputs(fam, obs, self._prev_action, self._prev_feedback, t)
        return torch.where((t == 0)[:, None], start, seen).float()

    def _actions(self, actions: Any) -> Tensor:
        """Batched actions as a tensor, validated against the action space."""
        a = torch.as_tensor(np.asarray(actions), device=self.device)
        fam, b = self.family, self.num_envs
        if action_kind(fam) == "discrete":
            check(tuple(a.shape) == (b,), "actions", tuple(a.shape), f"of shape ({b},)")
            a = a.long()
            check(
                bool(((a >= 0) & (a < fam.num_actions)).all()),
                "actions",
                _numpy(a).tolist(),
                f"integers in [0, {fam.num_actions})",
            )
            return a
        check(
            tuple(a.shape) == (b, fam.num_actions),
            "actions",
            tuple(a.shape),
            f"of shape ({b}, {fam.num_actions})",
        )
        return family_action(fam, a)

    def _final(self, terminated: Tensor, info: dict[str, Any]) -> dict[str, Any]:
        """SAME_STEP extras: each finished row's last observation and info."""
        done = _numpy(terminated)
        last = _numpy(self._inputs())
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i in np.flatnonzero(done):
            final_obs[i] = last[i]
        final_info = {k: v for k, v in info.items() if not k.startswith("_")}
        final_info.update({f"_{k}": done.copy() for k in list(final_info)})
        return {
            "final_obs": final_obs,
            "_final_obs": done,
            "final_info": final_info,
            "_final_info": done.copy(),
        }


class TaskEnv(gymnasium.Env):
    """One episode at a time, for single-environment gymnasium code (e.g. stable-baselines3).

    Families with discrete actions and action-free dynamics step by table lookup over a block
    of episodes computed ahead with the family's own torch dynamics
    (:mod:`mesalab.tasks.episode_block`), a few microseconds a step; the others step the
    family on one row (a trialwise distribution: a :class:`TaskVectorEnv` of one).
    ``render_mode``: ``"ansi"`` (the input as text) or ``"rgb_array"`` (the input as a strip
    of grey cells, scaled to the observation bounds).
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        family: str | TaskFamily = "dependent_bandit",
        render_mode: str | None = None,
        block_episodes: int = 256,
        **kwargs: Any,
    ) -> None:
        modes = self.metadata["render_modes"]
        check(render_mode in [None, *modes], "render_mode", render_mode, f"None or one of {modes}")
        check(
            isinstance(block_episodes, int) and block_episodes >= 1,
            "block_episodes",
            block_episodes,
            "an int >= 1",
        )
        self.render_mode = render_mode
        self.vector = TaskVectorEnv(1, family, autoreset_mode=AutoresetMode.DISABLED, **kwargs)
        self.family = self.vector.family
        self.observation_space = self.vector.single_observation_space
        self.action_space = self.vector.single_action_space
        self.fast = supports_blocks(self.family, self.vector.distribution)
        # the others step the family directly, one row; a trialwise redraw needs the vector env
        self.direct = not self.fast and not self.vector.distribution.trialwise
        self._latent: Any = None
        self._state: Any = None
        self._block_episodes = block_size(self.family, block_episodes)
        self._block: EpisodeBlock | None = None
        self._episode = self._t = 0
        self._obs: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A new task and episode."""
        super().reset(seed=seed)
        if seed is None and self.vector._gen is None:
            seed = int(self.np_random.integers(2**62))
        if not (self.fast or self.direct):
            obs, info = self.vector.reset(seed=seed)
            self._obs = obs[0]
            return obs[0], _unbatch(info)
        if seed is not None:
            self.vector._gen = torch.Generator(device=self.vector.device).manual_seed(seed)
            self._block = None
        if self.direct:
            self._latent = self.vector.distribution.sample(1, self.vector._gen)
            self._state = self.family.reset(self._latent, self.vector._gen)
            self._obs = self._direct_inputs(None, None)
            return self._obs, {}
        self._episode += 1
        if self._block is None or self._episode >= self._block.num_episodes:
            self._block = draw_block(
                self.family, self.vector.distribution, self._block_episodes, self.vector._gen
            )
            self._episode = 0
        self._t = 0
        self._obs = self._block.inputs[0, self._episode, 0].copy()
        return self._obs, {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One trial."""
        if self.direct:
            return self._direct_step(action)
        if not self.fast:
            obs, reward, terminated, truncated, info = self.vector.step(np.asarray(action)[None])
            self._obs = obs[0]
            return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), _unbatch(info)
        block, e, t = self._block, self._episode, self._t
        check(block is not None, "step", "before reset", "called after reset()")
        if t >= self.family.num_trials:
            raise RuntimeError("step() after the episode terminated: call reset() first")
        a = self._discrete_action(action)
        info = {}
        for key, table in block.info.items():
            value = table[a, e, t]
            info[key] = value.item() if value.ndim == 0 else value.copy()
        self._t = t + 1
        self._obs = block.inputs[a, e, t + 1].copy()
        terminated = self._t >= self.family.num_trials
        return self._obs, float(block.reward[a, e, t]), terminated, False, info

    def render(self) -> str | np.ndarray | None:
        """The current learner input as text (``ansi``) or grey cells (``rgb_array``)."""
        if self.render_mode is None or self._obs is None:
            return None
        if self.render_mode == "ansi":
            return "t=" + str(self._t) + " input=" + np.array2string(self._obs, precision=3)
        low, high = self.observation_space.low, self.observation_space.high
        bounded = high < UNBOUNDED
        scaled = np.where(
            bounded,
            (self._obs - low) / np.where(bounded, high - low, 1.0),
            0.5 + 0.5 * np.tanh(self._obs),  # unbounded entries: squashed around 0.5
        )
        cells = (255 * np.clip(scaled, 0.0, 1.0)).astype(np.uint8)  # (D,)
        return repeat(cells, "d -> h (d w) c", h=16, w=16, c=3)  # (16, 16D, 3): 16x16 px a cell

    def _direct_step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One trial of the family on a batch of one, without the vector env's bookkeeping."""
        check(self._state is not None, "step", "before reset", "called after reset()")
        if int(self._state.t[0]) >= self.family.num_trials:
            raise RuntimeError("step() after the episode terminated: call reset() first")
        a = self.vector._actions(np.asarray(action)[None])  # validated, (1,) or (1, A)
        self._state, out = self.family.step(self._latent, self._state, a, self.vector._gen)
        values = {
            "expected_reward": out.expected_reward,
            "optimal_expected_reward": out.optimal_expected_reward,
            **out.info,
        }
        info = {k: v[0].item() if v[0].dim() == 0 else _numpy(v[0]) for k, v in values.items()}
        self._obs = self._direct_inputs(a, out.feedback)
        terminated = int(self._state.t[0]) >= self.family.num_trials
        return self._obs, float(out.reward[0]), terminated, False, info

    def _direct_inputs(self, action: Tensor | None, feedback: Tensor | None) -> np.ndarray:
        """The learner input of the one row, (D,) float32 (as ``TaskVectorEnv._inputs``)."""
        fam, t = self.family, self._state.t
        view = dataclasses.replace(self._state, t=t.clamp(max=fam.num_trials - 1))
        x = build_inputs(fam, fam.observe(self._latent, view), action, feedback, t)  # (1, D)
        return _numpy(x[0].float())

    def _discrete_action(self, action: Any) -> int:
        """An int in [0, num_actions) from an int, a numpy integer or a one-element array."""
        try:
            a = operator.index(action)
        except TypeError:
            arr = np.asarray(action)
            ok = arr.size == 1 and np.issubdtype(arr.dtype, np.integer)
            check(ok, "action", action, "one integer")
            a = int(arr.reshape(-1)[0])
        n = self.family.num_actions
        check(0 <= a < n, "action", a, f"an integer in [0, {n})")
        return a


def _unbatch(info: dict[str, Any]) -> dict[str, Any]:
    """Row 0 of a batched info dict, keeping the keys its mask sets."""
    out = {}
    for k, v in info.items():
        if not k.startswith("_") and info.get(f"_{k}", np.ones(1, bool))[0]:
            out[k] = v[0].item() if isinstance(v, np.ndarray) and v[0].ndim == 0 else v[0]
    return out


def register_envs() -> list[str]:
    """Register ``mesalab/<Family>-v0`` for every family in ``tasks.FAMILIES`` (idempotent)."""
    ids = []
    for name in FAMILIES:
        eid = env_id(name)
        if eid not in gymnasium.registry:
            gymnasium.register(
                id=eid,
                entry_point="mesalab.tasks.gym_adapter:TaskEnv",
                vector_entry_point="mesalab.tasks.gym_adapter:TaskVectorEnv",
                kwargs={"family": name},
            )
        ids.append(eid)
    return ids


ENV_IDS = register_envs()
