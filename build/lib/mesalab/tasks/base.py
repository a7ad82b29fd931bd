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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

import torch
from torch import Tensor

if TYPE_CHECKING:
    from mesalab.tasks.rollout import Policy

T = TypeVar("T")


def check(condition: bool, field: str, value: object, allowed: str) -> None:
    """Raise ``ValueError`` naming the field, the value given and what is allowed."""
    if not condition:
        raise ValueError(f"{field}={value!r} is not allowed: {field} must be {allowed}")


def tree_map(fn: Callable[[Tensor], Tensor], obj: T) -> T:
    """Apply ``fn`` to every tensor field of a (possibly nested) dataclass; copy the rest."""
    if isinstance(obj, Tensor):
        return fn(obj)  # type: ignore[return-value]
    if dataclasses.is_dataclass(obj):
        changes = {f.name: tree_map(fn, getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    return obj


def batch_select(mask: Tensor, new: T, old: T) -> T:
    """Row-wise ``where(mask, new, old)`` over two dataclasses of tensors with leading B."""

    def pick(path_new: Tensor, path_old: Tensor) -> Tensor:
        m = mask.reshape(mask.shape + (1,) * (path_new.dim() - 1))
        return torch.where(m, path_new, path_old)

    if isinstance(new, Tensor):
        return pick(new, old)  # type: ignore[arg-type,return-value]
    changes = {
        f.name: batch_select(mask, getattr(new, f.name), getattr(old, f.name))
        for f in dataclasses.fields(new)  # type: ignore[arg-type]
        if isinstance(getattr(new, f.name), Tensor)
        or dataclasses.is_dataclass(getattr(new, f.name))
    }
    return dataclasses.replace(new, **changes)  # type: ignore[type-var]


def index_batch(obj: T, idx: Tensor | slice) -> T:
    """Select rows of the leading batch dimension of every tensor field."""
    return tree_map(lambda x: x[idx], obj)


def concat_batch(objs: list[T]) -> T:
    """Concatenate dataclasses of tensors along the leading batch dimension."""
    first = objs[0]
    if isinstance(first, Tensor):
        return torch.cat(objs)  # type: ignore[arg-type,return-value]
    changes = {}
    for f in dataclasses.fields(first):  # type: ignore[arg-type]
        value = getattr(first, f.name)
        if isinstance(value, Tensor) or dataclasses.is_dataclass(value):
            changes[f.name] = concat_batch([getattr(o, f.name) for o in objs])
    return dataclasses.replace(first, **changes)  # type: ignore[type-var]


def batch_size_of(obj: object) -> int:
    """Leading dimension of the first tensor field."""
    if isinstance(obj, Tensor):
        return obj.shape[0]
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, Tensor) or dataclasses.is_dataclass(value):
            return batch_size_of(value)
    raise ValueError("object holds no tensor")


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

    # --- references -------------------------------------------------------------------------
    #: name of the reference that normalizes improvement (an exact Bayes-optimal policy, or
    #: the best available stand-in such as Gittins where none is tractable)
    ideal_reference: ClassVar[str] = "bayes_optimal"

    def references(self) -> dict[str, Policy]:
        """Every reference policy of this family, by name, ready to roll out on its tasks."""
        from mesalab.tasks.references.simple import OraclePolicy, RandomPolicy

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
        return action.float().reshape(action.shape[0], self.num_actions)

    def check_prior(self, prior: str) -> None:
        """Fail with a clear message on an unknown prior name."""
        check(prior in self.priors, "prior", prior, f"one of {list(self.priors)}")

    def device_of(self, generator: torch.Generator) -> torch.device:
        """Tasks live on the generator's device."""
        return generator.device
