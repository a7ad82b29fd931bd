"""Harlow's (1949) learning-set task, as in Wang et al. (2018): one new pair of objects per episode.

Each episode shows two objects, vectors of ``object_dim`` numbers; object 0 of the latent is
always the rewarded one (the two are exchangeable draws, so nothing in a vector says which).
Every trial the objects appear in a freshly shuffled left/right order; the observation is
``[left object, right object]`` (obs_dim = 2 * object_dim) and the action is 0 = left,
1 = right. Reward 1 for the rewarded object, 0 otherwise. Episodes are 6 trials long, as in
Harlow's problems and Wang et al.'s simulation.

Objects are never reused between training and evaluation:

- ``num_objects=None`` (default): objects are fresh N(0, I) vectors drawn from the episode's
  generator, so every object is new with probability 1, and training and held-out tasks
  (disjoint seed streams, see ``mesalab.tasks.distributions.stream_generator``) never share one.
- ``num_objects=K``: a fixed table of 2K objects is built from ``object_seed``; the ``train``
  prior draws pairs from the even rows, the ``novel`` prior from the odd rows, so evaluating
  on ``novel`` shows objects never seen in training (the Harlow "new problems" test).

Priors: ``train``; ``novel`` (held-out objects; the same distribution as ``train`` for fresh
objects); ``similar`` (the second object is a small perturbation of the first: correlation
0.9, a harder discrimination).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor

from mesalab.tasks.base import State, StepOut, TaskFamily, check
from mesalab.tasks.references.harlow_refs import OneShotPolicy


@dataclass
class HarlowLatent:
    """The episode's two objects; row 0 is the rewarded one."""

    objects: Tensor  # (B, 2, object_dim)


@dataclass
class HarlowState(State):
    """Trial index and which object (0 or 1) sits on the left this trial."""

    left: Tensor  # (B,) long


class Harlow(TaskFamily):
    """Two new objects per episode, one always rewarded, positions shuffled every trial."""

    name = "harlow"
    analysis = "mesalab.analysis.harlow.HarlowAnalysis"
    kind = "decision"
    priors = ("train", "novel", "similar")
    feedback_bounds = (0.0, 1.0)  # the reward; the objects are Gaussian (unbounded)
    action_free_dynamics = True  # the left/right shuffle is a coin whatever the action
    ideal_reference = "one_shot"

    def __init__(
        self,
        num_trials: int = 6,
        object_dim: int = 8,
        num_objects: int | None = None,
        object_seed: int = 0,
    ) -> None:
        check(
            isinstance(num_trials, int) and num_trials >= 1, "num_trials", num_trials, "an int >= 1"
        )
        check(
            isinstance(object_dim, int) and object_dim >= 1, "object_dim", object_dim, "an int >= 1"
        )
        check(
            num_objects is None or (isinstance(num_objects, int) and num_objects >= 2),
            "num_objects",
            num_objects,
            "None (fresh objects) or an int >= 2",
        )
        self.num_trials = num_trials
        self.num_actions = 2
        self.object_dim = object_dim
        self.obs_dim = 2 * object_dim
        self.feedback_dim = 1
        self.num_objects = num_objects
        self.table: Tensor | None = None
        if num_objects is not None:
            g = torch.Generator().manual_seed(object_seed)
            self.table = torch.randn(2 * num_objects, object_dim, generator=g)  # (2K, D)

    def _pair_from_table(self, n: int, generator: torch.Generator, parity: int) -> Tensor:
        """Two distinct objects per row from the rows of the table with the given parity."""
        k = self.num_objects
        dev = self.device_of(generator)
        first = torch.randint(0, k, (n,), generator=generator, device=dev)
        # An offset in [1, k) makes the second index differ from the first.
        second = (first + torch.randint(1, k, (n,), generator=generator, device=dev)) % k
        idx = torch.stack([first, second], dim=1) * 2 + parity  # (B, 2)
        return self.table.to(dev)[idx]  # (B, 2, D)

    def sample_latent(
        self, n: int, generator: torch.Generator, prior: str = "train"
    ) -> HarlowLatent:
        """Two objects per task from the prior's pool (see the module docstring)."""
        self.check_prior(prior)
        dev = self.device_of(generator)
        if self.table is None:
            objects = torch.randn(n, 2, self.object_dim, generator=generator, device=dev)
        else:
            objects = self._pair_from_table(n, generator, parity=1 if prior == "novel" else 0)
        if prior == "similar":
            noise = torch.randn(n, self.object_dim, generator=generator, device=dev)
            rho = 0.9
            second = rho * objects[:, 0] + (1 - rho**2) ** 0.5 * noise
            objects = torch.stack([objects[:, 0], second], dim=1)
        return HarlowLatent(objects=objects)

    def num_distinct_tasks(self, prior: str = "train") -> int | None:
        """Ordered pairs of distinct table objects (rewarded first); None for fresh objects."""
        self.check_prior(prior)
        if self.table is None or prior == "similar":
            return None
        return self.num_objects * (self.num_objects - 1)

    def _shuffle(self, n: int, generator: torch.Generator) -> Tensor:
        """Which object goes left: a fair coin per row."""
        dev = self.device_of(generator)
        return (torch.rand(n, generator=generator, device=dev) < 0.5).long()

    def reset(
        self, latent: HarlowLatent, generator: torch.Generator, t: Tensor | None = None
    ) -> HarlowState:
        """First trial: shuffle the positions."""
        b = latent.objects.shape[0]
        if t is None:
            t = torch.zeros(b, dtype=torch.long, device=latent.objects.device)
        return HarlowState(t=t, left=self._shuffle(b, generator))

    def observe(self, latent: HarlowLatent, state: HarlowState) -> Tensor:
        """``[left object, right object]``, (B, 2 * object_dim)."""
        order = torch.stack([state.left, 1 - state.left], dim=1)  # (B, 2)
        # torch, not einops: observe runs every trial (see step)
        idx = order[:, :, None].expand(-1, -1, self.object_dim)  # (B, 2, D)
        shown = latent.objects.gather(1, idx)  # (B, 2, D)
        return rearrange(shown, "b two d -> b (two d)")  # (B, 2D): left object, then right

    def step(
        self, latent: HarlowLatent, state: HarlowState, action: Tensor, generator: torch.Generator
    ) -> tuple[HarlowState, StepOut]:
        """Reward 1 for picking the rewarded object; then reshuffle for the next trial."""
        # reshape, not einops: runs every trial, where einops' per-call work showed in an A/B
        a = action.long().reshape(-1)  # (B,)
        chosen = torch.where(a == 0, state.left, 1 - state.left)  # object index picked
        reward = (chosen == 0).float()
        new_left = self._shuffle(a.shape[0], generator)  # one coin per row, whatever the action
        out = StepOut(
            reward=reward,
            expected_reward=reward,
            optimal_expected_reward=torch.ones_like(reward),
            feedback=reward[:, None],
            info={"rewarded_side": state.left.clone()},
        )
        return HarlowState(t=state.t + 1, left=new_left), out

    def oracle_action(self, latent: HarlowLatent, state: HarlowState) -> Tensor:
        """The side of the rewarded object (object 0 is on the left iff left == 0)."""
        return state.left.clone()

    def references(self) -> dict:
        """Oracle, random, and the one-shot ideal observer."""

        refs = super().references()
        refs["one_shot"] = OneShotPolicy()
        return refs
