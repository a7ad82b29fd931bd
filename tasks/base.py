"""The functional core of the task generator.

A task family holds only its static configuration (number of arms, trials, ...). The sampled
task parameters (the *latent*) and the per-episode dynamic *state* are separate dataclasses of
tensors with a leading batch dimension B. Every sampling call takes an explicit
``torch.Generator``: the same seed gives the same data.

Common random numbers: ``step`` must draw the same number and shape of random values whatever
the action, so two policies stepped with identically seeded generators see identical tasks
*and* identical environment noise (the comparison with references is then paired).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

# The tree utilities are part of the task API under this module's name too (many callers).
from mesalab.tasks.tree import (  # noqa: F401
    batch_select,
    batch_size_of,
    check,
    concat_batch,
    index_batch,
    tree_map,
)


@dataclass
class State:
    """Dynamic state every family carries: the trial index within the episode."""

    t: Tensor  # (B,) long


@dataclass
class StepOut:
    """What the environment returns after one trial.

    ``reward`` is the sampled reward; ``expected_reward`` the expected reward of the chosen
    action (used for curves, to cut variance); ``optimal_expected_reward`` what the oracle
    expects at the same trial (used for regret); ``feedback`` what the learner sees next step
    (the reward for decision tasks, the revealed target for prediction tasks).
    """

    reward: Tensor  # (B,)
    expected_reward: Tensor  # (B,)
    optimal_expected_reward: Tensor  # (B,)
    feedback: Tensor  # (B, feedback_dim)
    info: dict[str, Tensor] = dataclasses.field(default_factory=dict)


class TaskFamily(ABC):
    """A prior over tasks plus the episode dynamics, batched over B, on one device.

    Subclasses set ``name``, ``kind``, ``priors`` (the first is the training prior, the others
    named out-of-distribution test priors) and the static sizes, and implement the five
    functional methods below.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = "decision"  # "decision" | "prediction"
    #: "discrete" (one of num_actions), "real" (a vector of num_actions reals) or "simplex"
    #: (a probability vector over num_actions outcomes)
    action_space: ClassVar[str] = "discrete"
    priors: ClassVar[tuple[str, ...]] = ("train",)

    num_trials: int
    num_actions: int  # decision: discrete actions; prediction: dimension of the prediction
    obs_dim: int = 0
    feedback_dim: int = 1

    # --- declared ranges (read by the gymnasium view to bound its spaces) ---------------------
    #: (low, high) of every observation entry; None when unbounded (e.g. a Gaussian draw)
    obs_bounds: ClassVar[tuple[float, float] | None] = None
    #: (low, high) of every feedback entry (the reward of decision tasks); None when unbounded
    feedback_bounds: ClassVar[tuple[float, float] | None] = None
    #: non-discrete actions: the range that a normalized action in [-1, 1] maps onto
    action_bounds: tuple[float, float] | None = None
    #: True when the next state never depends on the action, only reward and feedback do: the
    #: outcome of every action at every trial can then be computed ahead (one pass per action)
    action_free_dynamics: ClassVar[bool] = False

    @property
    def num_episodes(self) -> int:
        """Episodes within one task of ``num_trials`` trials (memory is kept across them)."""
        return 1

    # --- the functional core -------------------------------------------------------------
    @abstractmethod
    def sample_latent(self, n: int, generator: torch.Generator, prior: str = "train") -> object:
        """Draw ``n`` task parameters from the named prior."""

    @abstractmethod
    def reset(self, latent: object, generator: torch.Generator, t: Tensor | None = None) -> State:
        """Initial dynamic state of an episode (``t`` given when a trialwise redraw keeps time)."""

    @abstractmethod
    def observe(self, latent: object, state: State) -> Tensor:
        """Observation shown before acting at the current trial, (B, obs_dim)."""

    @abstractmethod
    def step(
        self, latent: object, state: State, action: Tensor, generator: torch.Generator
    ) -> tuple[State, StepOut]:
        """Apply one action per row and advance one trial."""

    @abstractmethod
    def oracle_action(self, latent: object, state: State) -> Tensor:
        """The action of an agent that knows the latent (the supervised target)."""

    def num_distinct_tasks(self, prior: str = "train") -> int | None:
        """How many distinct tasks the named prior can draw; None for a continuous prior.

        A task is one latent row (as compared by :func:`mesalab.tasks.distributions.latent_rows`).
        None means two draws differ almost surely. A finite count bounds the pool sizes of
        :class:`mesalab.tasks.distributions.TaskDistribution` and whether a pool leaves any task of
        the prior out for held-out evaluation. Families with a finite prior override this.
        """
        self.check_prior(prior)
        return None

    #: the class path of this family's analysis of a frozen learner (``mesalab-analyze``):
    #: named, not imported, because the analyses sit above the task generator
    analysis: ClassVar[str] = "mesalab.analysis.position.CurveAnalysis"

    # --- references -------------------------------------------------------------------------
    #: name of the reference that normalizes improvement (an exact Bayes-optimal policy, or
    #: the best available stand-in such as Gittins where none is tractable)
    ideal_reference: ClassVar[str] = "bayes_optimal"

    def references(self) -> dict[str, Policy]:
        """Every reference policy of this family, by name, ready to roll out on its tasks."""
        return {"oracle": OraclePolicy(), "random": RandomPolicy()}

    # --- ideal observers (task location vs task learning) ----------------------------------
    # A family that implements the two methods below supports the Bayes observer whose prior
    # is a finite set of candidate tasks (``mesalab.tasks.references.discrete_posterior``), e.g. the
    # K tasks of a training pool. Both are batched over the B episodes and the K candidates.

    def log_likelihood(
        self, candidates: object, state: State, action: Tensor, out: StepOut
    ) -> Tensor:
        """log p(the revealed feedback | candidate task k, state, action), (B, K)."""
        raise NotImplementedError(f"{self.name} has no likelihood for a discrete posterior")

    def mixture_mean(self, candidates: object, weights: Tensor, state: State) -> Tensor:
        """Posterior mean under candidate weights (B, K) of what the observer acts on, (B, A).

        Decision families: each action's expected reward (the observer is greedy on it);
        prediction families: the Bayes prediction (the mixture's mean or predictive).
        """
        raise NotImplementedError(f"{self.name} has no mixture mean for a discrete posterior")

    def prior_observer(self) -> Policy | None:
        """The Bayes observer under this family's training prior, acting as the discrete one.

        It acts like :class:`mesalab.tasks.references.discrete_posterior.DiscretePosterior` does, so
        the two differ only in their prior: greedy on the posterior mean reward (decisions),
        the posterior predictive (predictions). ``None`` when the family has none.
        """
        return None

    @property
    def supports_discrete_posterior(self) -> bool:
        """Whether the family implements ``log_likelihood`` and ``mixture_mean``."""
        cls = type(self)
        return (
            cls.log_likelihood is not TaskFamily.log_likelihood
            and cls.mixture_mean is not TaskFamily.mixture_mean
        )

    # --- shared helpers --------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        """Width of the per-step learner input built by
        :func:`mesalab.tasks.inputs.build_inputs`."""
        return self.obs_dim + self.num_actions + self.feedback_dim + 2

    def action_features(self, action: Tensor) -> Tensor:
        """Encode an action for the next step's input: one-hot (decision) or the vector."""
        if self.kind == "decision":
            return torch.nn.functional.one_hot(action.long(), self.num_actions).float()
        # reshape, not rearrange: takes (B,) or (B, A) and checks the width A on the way
        return action.float().reshape(action.shape[0], self.num_actions)

    def check_prior(self, prior: str) -> None:
        """Fail with a clear message on an unknown prior name."""
        check(prior in self.priors, "prior", prior, f"one of {list(self.priors)}")

    def device_of(self, generator: torch.Generator) -> torch.device:
        """Tasks live on the generator's device."""
        return generator.device


# --- policies: the other side of the rollout loop --------------------------------------------
# Here rather than in rollout.py because a family names its reference policies (``references``)
# and a policy is reset for a family: the two interfaces refer to each other, so they share a file.


@dataclass
class StepContext:
    """Everything a policy may look at before acting at one trial."""

    obs: Tensor  # (B, obs_dim)
    inputs: Tensor  # (B, D) the shared learner input
    latent: Any  # the true task: only the oracle may read it
    state: State


class Policy(ABC):
    """A batched policy. References and learners implement the same three methods."""

    name: str = "policy"

    @abstractmethod
    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Per-episode policy state (posterior counts, values, recurrent memory, ...)."""

    @abstractmethod
    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Choose one action per row; return it and the (possibly updated) policy state."""

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """Learn from the trial's outcome; the default keeps no memory of outcomes."""
        return pstate


class RandomPolicy(Policy):
    """Uniformly random discrete action every trial: the floor."""

    name = "random"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Remember the number of actions; nothing else."""
        return family.num_actions

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Draw an arm uniformly."""
        b = ctx.obs.shape[0]
        return torch.randint(0, pstate, (b,), generator=generator, device=generator.device), pstate


class OraclePolicy(Policy):
    """Acts as an agent that knows the task's parameters would: the ceiling."""

    name = "oracle"

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """The oracle needs the family to read the latent."""
        return family

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """The family's oracle action for the current state."""
        return pstate.oracle_action(ctx.latent, ctx.state), pstate
