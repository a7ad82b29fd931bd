"""Impossible parameters fail before anything runs, naming the parameter and the value."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import TaskDistribution, make_family, stream_generator
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.dependent_bandit import DependentBandit
from mesalab.tasks.references import make_policy
from mesalab.tasks.references.gittins import GittinsIndex, gittins_table
from mesalab.tasks.references.rescorla_wagner import RescorlaWagner, fit_rescorla_wagner
from mesalab.tasks.references.thompson import ThompsonSampling
from mesalab.tasks.restless_bandit import RestlessBandit

CASES = [
    (lambda: BernoulliBandit(num_arms=1), "num_arms=1"),
    (lambda: BernoulliBandit(num_trials=0), "num_trials=0"),
    (lambda: BernoulliBandit(p_low=-0.1), "p_low=-0.1"),
    (lambda: BernoulliBandit(p_high=1.5), "p_high=1.5"),
    (lambda: BernoulliBandit(p_low=0.6, p_high=0.4), "p_high=0.4"),
    (lambda: DependentBandit(num_trials=0), "num_trials=0"),
    (lambda: DependentBandit(num_arms=3), "num_arms=3"),
    (lambda: DependentBandit(variant="trivial"), "variant='trivial'"),
    (lambda: DependentBandit(variant="easy", p_high=0.4), "p_low/p_high"),
    (lambda: DependentBandit(p_low=2.0), "p_low=2.0"),
    (lambda: RestlessBandit(num_trials=0), "num_trials=0"),
    (lambda: RestlessBandit(block_length=0), "block_length=0"),
    (lambda: RestlessBandit(hazard_volatile=1.2), "hazard_volatile=1.2"),
    (lambda: RestlessBandit(hazard_stable=-0.1), "hazard_stable=-0.1"),
    (lambda: RestlessBandit(first_block="sometimes"), "first_block='sometimes'"),
    (lambda: TaskDistribution(BernoulliBandit(), mode="pool", pool_size=0), "pool_size=0"),
    (lambda: TaskDistribution(BernoulliBandit(), mode="sometimes"), "distribution='sometimes'"),
    (lambda: TaskDistribution(BernoulliBandit(), prior="nope"), "prior='nope'"),
    (lambda: BernoulliBandit().sample_latent(4, torch.Generator(), "outside"), "prior='outside'"),
    (lambda: make_family("no_such_task"), "task='no_such_task'"),
    (lambda: make_policy("no_such_policy"), "policy='no_such_policy'"),
    (lambda: make_policy("epsilon_greedy", epsilon=1.5), "epsilon=1.5"),
    (lambda: RescorlaWagner(alpha=1.2), "alpha=1.2"),
    (lambda: RescorlaWagner(beta=-1.0), "beta=-1.0"),
    (lambda: GittinsIndex(gamma=1.0), "gamma=1.0"),
    (lambda: gittins_table(0.0, 10), "gamma=0.0"),
    (lambda: ThompsonSampling(prior_successes=0.0), "prior_successes=0.0"),
    (lambda: make_policy("ucb1", c=-1.0), "c=-1.0"),
    (lambda: stream_generator(0, "test"), "stream='test'"),
    (
        lambda: fit_rescorla_wagner(torch.zeros(3, 4), torch.zeros(3, 5), num_actions=2),
        "rewards=",
    ),
    (lambda: fit_rescorla_wagner(torch.zeros(3, 4), torch.zeros(3, 4), 1), "num_actions=1"),
]


@pytest.mark.parametrize("build,named", CASES, ids=[named for _, named in CASES])
def test_bad_parameter_is_named(build, named: str) -> None:
    with pytest.raises(ValueError) as err:
        build()
    message = str(err.value)
    assert named in message and "must be" in message, message


def test_dp_refuses_more_than_two_arms() -> None:
    from mesalab.tasks.references.bayes_dp import TwoArmDynamicProgramming

    with pytest.raises(ValueError, match="num_arms=3"):
        TwoArmDynamicProgramming().reset(BernoulliBandit(num_arms=3), 4, torch.Generator())
