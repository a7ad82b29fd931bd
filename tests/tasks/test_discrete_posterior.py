"""The training-prior (discrete posterior) and family-prior observers against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mesalab.tasks import DependentBandit, LinearRegression, MarkovChain, TaskDistribution, rollout
from mesalab.tasks.base import OraclePolicy, State, StepOut, index_batch
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.distributions import stream_generator
from mesalab.tasks.references.discrete_posterior import ArmPosteriorGreedy, DiscretePosterior
from mesalab.tasks.rollout import Policy, StepContext
from mesalab.tasks.two_step import TwoStep


class Recorder(Policy):
    """Acts uniformly at random (or as the oracle, for prediction tasks) and runs an observer
    on its history, keeping the observer's posterior weights and the raw history."""

    def __init__(self, observer: DiscretePosterior) -> None:
        self.observer = observer
        self.weights: list[np.ndarray] = []
        self.means: list[np.ndarray] = []
        self.history: list[dict] = []

    def reset(self, family, batch_size, generator):
        self.family = family
        return self.observer.reset(family, batch_size, generator)

    def act(self, pstate, ctx, generator):
        self.weights.append(pstate.weights.numpy().copy())
        self.means.append(self.observer.posterior_mean(pstate, ctx).numpy().copy())
        b = ctx.obs.shape[0]
        if self.family.kind == "decision":
            action = torch.randint(0, self.family.num_actions, (b,), generator=generator)
        else:
            action = OraclePolicy().act(self.family, ctx, generator)[0]
        return action, pstate

    def update(self, pstate, ctx, action, out):
        self.history.append(
            {
                "obs": ctx.obs.numpy().copy(),
                "action": action.numpy().copy(),
                "reward": out.reward.numpy().copy(),
                "feedback": out.feedback.numpy().copy(),
            }
        )
        return self.observer.update(pstate, ctx, action, out)


def brute_force(family, pool, history, b: int) -> list[np.ndarray]:
    """Posterior over the pool's tasks for row ``b`` before every step, by explicit products."""
    k = k_of(pool)
    post = [np.full(k, 1.0 / k)]
    like = np.ones(k)
    for h in history:
        for j in range(k):
            like[j] *= step_likelihood(family, pool, j, h, b)
        post.append(like / like.sum())
    return post


def k_of(pool) -> int:
    """Number of tasks in a latent batch."""
    return next(iter(vars(pool).values())).shape[0]


def step_likelihood(family, pool, j: int, h: dict, b: int) -> float:
    """p(feedback | task j) for one row, written out per family."""
    if isinstance(family, (DependentBandit, BernoulliBandit)):
        p = float(pool.probs[j, int(h["action"][b])])
        return p if h["reward"][b] == 1.0 else 1.0 - p
    if isinstance(family, LinearRegression):
        sd = float(pool.noise[j])
        mean = float(np.dot(pool.w[j].numpy(), h["obs"][b]))
        y = float(h["feedback"][b, 0])
        return math.exp(-0.5 * ((y - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
    s, nxt = int(np.argmax(h["obs"][b])), int(np.argmax(h["feedback"][b]))
    return float(pool.trans[j, s, nxt])


CASES = [
    ("dependent", lambda: DependentBandit(num_trials=12)),
    ("bernoulli3", lambda: BernoulliBandit(num_arms=3, num_trials=12)),
    ("regression", lambda: LinearRegression(dim=2, num_trials=6)),
    ("markov", lambda: MarkovChain(num_states=3, num_trials=12)),
]


@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_pool_posterior_matches_brute_force(name, make) -> None:
    family = make()
    dist = TaskDistribution(family, "pool", pool_size=3, seed=4)
    latent = dist.heldout(5, stream_generator(4, "eval"))
    rec = Recorder(DiscretePosterior(dist.pool))
    rollout(family, latent, rec, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    assert len(rec.weights) == family.num_trials
    for b in range(5):
        expected = brute_force(family, dist.pool, rec.history, b)
        for t in range(family.num_trials):
            np.testing.assert_allclose(rec.weights[t][b], expected[t], rtol=1e-6, atol=1e-9)
            # The observer acts on the posterior mixture of the tasks' means.
            if family.kind == "decision":
                mix = expected[t] @ dist.pool.probs.double().numpy()
                np.testing.assert_allclose(rec.means[t][b], mix, rtol=1e-6)


def test_single_task_observer_is_the_oracle() -> None:
    """With K = 1 the training-prior observer knows the task: zero regret on it."""
    family = DependentBandit(num_trials=20)
    dist = TaskDistribution(family, "single", seed=3)
    latent = index_batch(dist.pool, torch.zeros(64, dtype=torch.long))
    g = torch.Generator().manual_seed(0)
    traj = rollout(family, latent, DiscretePosterior(dist.pool), g, g)
    assert float(traj.regret.abs().max()) == 0.0


def posterior_mean_after(observer, family, actions: list[int], rewards: list[float]) -> np.ndarray:
    """Feed a fixed history to an observer; its posterior mean reward per arm afterwards."""
    g = torch.Generator().manual_seed(0)
    pstate = observer.reset(family, 1, g)
    state = State(t=torch.zeros(1, dtype=torch.long))
    ctx = StepContext(obs=torch.zeros(1, 0), inputs=torch.zeros(1, 1), latent=None, state=state)
    for a, r in zip(actions, rewards, strict=True):
        rew = torch.tensor([r])
        out = StepOut(rew, rew, rew, feedback=rew[:, None])
        pstate = observer.update(pstate, ctx, torch.tensor([a]), out)
    return observer.posterior_mean(pstate, ctx)[0].double().numpy()


def test_dependent_quadrature_is_the_beta_posterior() -> None:
    """Uniform prior on p1: after k p1-successes in n, E[p1] = (k + 1) / (n + 2) exactly."""
    family = DependentBandit(num_trials=40)
    obs = family.prior_observer()
    # arm 0 rewarded, arm 0 unrewarded, arm 1 unrewarded (a p1-success), arm 1 rewarded
    actions, rewards = [0, 0, 1, 1, 1, 0], [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    k = sum(1 for a, r in zip(actions, rewards, strict=True) if (a == 0) == (r == 1.0))
    mean = posterior_mean_after(obs, family, actions, rewards)
    expected = (k + 1) / (len(actions) + 2)
    np.testing.assert_allclose(mean, [expected, 1 - expected], atol=1e-12)


def test_dependent_quadrature_narrowed_range_matches_numerical_integral() -> None:
    family = DependentBandit(num_trials=30, p_low=0.0, p_high=0.3)
    k, m = 3, 5  # p1-successes, p1-failures
    actions, rewards = [0] * (k + m), [1.0] * k + [0.0] * m
    mean = posterior_mean_after(family.prior_observer(), family, actions, rewards)
    p = np.linspace(0, 1, 2_000_001)
    prior = ((p <= 0.3) | (p >= 0.7)).astype(float)
    post = prior * p**k * (1 - p) ** m
    np.testing.assert_allclose(mean[0], (p * post).sum() / post.sum(), atol=1e-6)


def test_dependent_two_point_variant() -> None:
    family = DependentBandit(num_trials=10, variant="easy")
    mean = posterior_mean_after(family.prior_observer(), family, [0], [1.0])
    # P(p1 = 0.9 | success) = 0.9 / (0.9 + 0.1)
    np.testing.assert_allclose(mean[0], 0.9 * 0.9 + 0.1 * 0.1, atol=1e-12)


def test_arm_posterior_greedy_means_and_choice() -> None:
    family = BernoulliBandit(num_arms=3, num_trials=20)
    obs = ArmPosteriorGreedy()
    actions, rewards = [0, 0, 1, 2, 2, 2], [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    mean = posterior_mean_after(obs, family, actions, rewards)
    np.testing.assert_allclose(mean, [2 / 4, 2 / 3, 2 / 5], atol=1e-9)


def test_family_observers_exist_and_unsupported_families_say_so() -> None:
    assert LinearRegression().prior_observer() is not None
    assert MarkovChain().prior_observer() is not None
    fam = TwoStep()
    assert not fam.supports_discrete_posterior and fam.prior_observer() is None
    with pytest.raises(ValueError, match="task"):
        DiscretePosterior(DependentBandit().sample_latent(2, torch.Generator())).reset(
            fam, 2, torch.Generator()
        )


def test_drifting_chain_is_refused() -> None:
    family = MarkovChain(num_states=2, num_trials=5, hazard=0.1)
    dist = TaskDistribution(family, "pool", pool_size=2, seed=0)
    with pytest.raises(ValueError, match="without drift"):
        g = torch.Generator()
        rollout(family, dist.pool, DiscretePosterior(dist.pool), g, g)
