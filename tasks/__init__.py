"""mesalab's shared, batched, seeded task generator (torch, numpy and einops only).

Quick start::

    import torch
    from mesalab.tasks import make_family, TaskDistribution, rollout, stream_generator
    from mesalab.tasks.references import make_policy

    family = make_family("dependent_bandit", num_trials=100)
    dist = TaskDistribution(family, mode="related")
    latent = dist.heldout(1000, stream_generator(0, "eval"))
    traj = rollout(family, latent, make_policy("thompson"), stream_generator(0, "eval"),
                   torch.Generator().manual_seed(1))
"""

from __future__ import annotations

from mesalab.tasks.base import State, StepOut, TaskFamily, check
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.dependent_bandit import DependentBandit
from mesalab.tasks.distributions import MODES, TaskDistribution, num_distinct, stream_generator
from mesalab.tasks.harlow import Harlow
from mesalab.tasks.inputs import build_inputs, input_columns, input_slices
from mesalab.tasks.linear_regression import LinearRegression
from mesalab.tasks.markov_chain import MarkovChain
from mesalab.tasks.restless_bandit import RestlessBandit
from mesalab.tasks.rollout import Policy, StepContext, Trajectory, rollout
from mesalab.tasks.tabular_mdp import TabularMDP
from mesalab.tasks.two_step import TwoStep

FAMILIES: dict[str, type[TaskFamily]] = {
    BernoulliBandit.name: BernoulliBandit,
    DependentBandit.name: DependentBandit,
    RestlessBandit.name: RestlessBandit,
    TwoStep.name: TwoStep,
    Harlow.name: Harlow,
    LinearRegression.name: LinearRegression,
    MarkovChain.name: MarkovChain,
    TabularMDP.name: TabularMDP,
}


def make_family(name: str, **kwargs: object) -> TaskFamily:
    """Build a family by its registered name (for CLIs; configs use Hydra ``_target_``)."""
    check(name in FAMILIES, "task", name, f"one of {sorted(FAMILIES)}")
    return FAMILIES[name](**kwargs)


__all__ = [
    "FAMILIES",
    "MODES",
    "Policy",
    "State",
    "StepContext",
    "StepOut",
    "TaskDistribution",
    "TaskFamily",
    "Trajectory",
    "build_inputs",
    "input_columns",
    "input_slices",
    "make_family",
    "num_distinct",
    "rollout",
    "stream_generator",
]
