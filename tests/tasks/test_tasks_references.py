"""Known-answer tests of the reference policies (exact values computed independently here)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from fractions import Fraction
from functools import cache

import numpy as np
import pytest
import torch

from mesalab.tasks import FAMILIES, TaskDistribution, make_family, rollout, stream_generator
from mesalab.tasks.base import State, StepOut
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.dependent_bandit import VARIANTS, DependentBandit
from mesalab.tasks.references import make_policy
from mesalab.tasks.references.bayes_dependent import DependentBayesOptimal
from mesalab.tasks.references.bayes_dp import (
    TwoArmDynamicProgramming,
    predictive_success,
    two_arm_table,
)
from mesalab.tasks.references.bayes_filter import RestlessBayesFilter
from mesalab.tasks.references.gittins import gittins_table
from mesalab.tasks.restless_bandit import RestlessBandit
from mesalab.tasks.rollout import StepContext

Moment = Callable[[int, int], Fraction]  # (k, m) -> E[p^k (1 - p)^m] under the prior


def uniform_moment(k: int, m: int) -> Fraction:
    """E[p^k (1-p)^m] for p ~ U(0, 1): the Beta function k! m! / (k + m + 1)!."""
    return Fraction(math.factorial(k) * math.factorial(m), math.factorial(k + m + 1))


def two_point_moment(lo: Fraction) -> Moment:
    """E[p^k (1-p)^m] for p uniform on {lo, 1 - lo}."""
    hi = 1 - lo
    return lambda k, m: (lo**k * hi**m + hi**k * lo**m) / 2


def ci95(x: torch.Tensor) -> tuple[float, float]:
    """Mean +- 1.96 standard errors."""
    x = x.double()
    half = 1.96 * float(x.std()) / math.sqrt(x.numel())
    return float(x.mean()) - half, float(x.mean()) + half


# --- dependent bandit: exact Bayes-optimal regret by enumeration --------------------------
def dependent_optimal_value(horizon: int, moment: Moment) -> Fraction:
    """Bayes-optimal expected total reward by DP over *all* policies (both actions tried)."""

    @cache
    def value(k: int, m: int, left: int) -> Fraction:
        if left == 0:
            return Fraction(0)
        p1 = moment(k + 1, m) / moment(k, m)  # P(arm 1 pays | k p1-successes, m failures)
        # arm 1: reward 1 is a p1-success; arm 2: reward 1 is a p1-failure
        q1 = p1 * (1 + value(k + 1, m, left - 1)) + (1 - p1) * value(k, m + 1, left - 1)
        q2 = (1 - p1) * (1 + value(k, m + 1, left - 1)) + p1 * value(k + 1, m, left - 1)
        return max(q1, q2)

    return value(0, 0, horizon)


def dependent_greedy_value(horizon: int, moment: Moment) -> Fraction:
    """Expected total reward of the greedy rule, by enumerating every reward sequence."""
    total = Fraction(0)
    for rewards in itertools.product((0, 1), repeat=horizon):
        k = m = 0
        expected = Fraction(0)
        for r in rewards:
            p1 = moment(k + 1, m) / moment(k, m)
            arm = 0 if p1 >= Fraction(1, 2) else 1  # greedy on the posterior mean
            expected += p1 if arm == 0 else 1 - p1
            p1_success = r if arm == 0 else 1 - r
            k, m = k + p1_success, m + 1 - p1_success
        # P(reward sequence) = E[prod of per-trial likelihoods] = moment(k, m)
        total += moment(k, m) * expected
    return total


@pytest.mark.parametrize("variant", ["uniform", "easy", "hard"])
def test_dependent_bayes_optimal_regret_matches_enumeration(variant: str) -> None:
    horizon = 5
    if variant == "uniform":
        moment, best = uniform_moment, Fraction(3, 4)  # E[max(p1, 1 - p1)] = 3/4
    else:
        lo = Fraction(VARIANTS[variant][0]).limit_denominator(100)
        moment, best = two_point_moment(lo), 1 - lo
    greedy = dependent_greedy_value(horizon, moment)
    assert greedy == dependent_optimal_value(horizon, moment)  # greedy is Bayes-optimal
    exact_regret = float(horizon * best - greedy)
    family = DependentBandit(num_trials=horizon, variant=variant)
    latent = TaskDistribution(family).heldout(200_000, stream_generator(0, "eval"))
    traj = rollout(
        family, latent, DependentBayesOptimal(), stream_generator(1, "eval"), torch.Generator()
    )
    lo_ci, hi_ci = ci95(traj.regret.sum(1))
    assert lo_ci <= exact_regret <= hi_ci, (exact_regret, lo_ci, hi_ci)


# --- two independent arms: the DP table ---------------------------------------------------
def poly_integral(s: int, f: int, lo: Fraction, hi: Fraction) -> Fraction:
    """Exact integral of p^s (1 - p)^f over [lo, hi] by binomial expansion."""
    total = Fraction(0)
    for j in range(f + 1):
        c = math.comb(f, j) * (-1) ** j
        e = s + j + 1
        total += Fraction(c, e) * (hi**e - lo**e)
    return total


def brute_force_two_arm(horizon: int, lo: Fraction, hi: Fraction) -> tuple[Fraction, Callable]:
    """Exact optimal value and Q-values of a 2-armed bandit with p_i ~ U(lo, hi)."""

    def pred(s: int, f: int) -> Fraction:
        return poly_integral(s + 1, f, lo, hi) / poly_integral(s, f, lo, hi)

    @cache
    def q(state: tuple[int, int, int, int], arm: int) -> Fraction:
        s1, f1, s2, f2 = state
        if s1 + f1 + s2 + f2 == horizon:
            return Fraction(0)
        if arm == 0:
            p = pred(s1, f1)
            return p * (1 + v((s1 + 1, f1, s2, f2))) + (1 - p) * v((s1, f1 + 1, s2, f2))
        p = pred(s2, f2)
        return p * (1 + v((s1, f1, s2 + 1, f2))) + (1 - p) * v((s1, f1, s2, f2 + 1))

    @cache
    def v(state: tuple[int, int, int, int]) -> Fraction:
        if sum(state) == horizon:
            return Fraction(0)
        return max(q(state, 0), q(state, 1))

    return v((0, 0, 0, 0)), q


def test_predictive_success_is_laplace_rule_on_the_unit_interval() -> None:
    pred = predictive_success(30)
    s, f = np.meshgrid(np.arange(31), np.arange(31), indexing="ij")
    ok = s + f <= 30  # the table is exact where the DP reads it
    assert np.allclose(pred[ok], ((s + 1) / (s + f + 2))[ok], rtol=1e-12, atol=0)


@pytest.mark.parametrize("rng", [(0, 1), (Fraction(1, 5), Fraction(7, 10))])
def test_two_arm_dp_matches_brute_force(rng: tuple[Fraction, Fraction]) -> None:
    horizon = 7
    lo, hi = Fraction(rng[0]), Fraction(rng[1])
    exact, q = brute_force_two_arm(horizon, lo, hi)
    table = two_arm_table(horizon, float(lo), float(hi))
    assert table.value == pytest.approx(float(exact), abs=1e-12)
    # Every state's decision is an optimal action.
    family = BernoulliBandit(num_trials=horizon, p_low=float(lo), p_high=float(hi))
    policy = TwoArmDynamicProgramming()
    policy.reset(family, 1, torch.Generator())
    for t in range(horizon):
        for state in itertools.product(range(t + 1), repeat=3):
            s1, f1, s2 = state
            f2 = t - s1 - f1 - s2
            if f2 < 0:
                continue
            counts = policy.reset(family, 1, torch.Generator())
            counts.successes[:] = torch.tensor([[s1, s2]], dtype=torch.float32)
            counts.failures[:] = torch.tensor([[f1, f2]], dtype=torch.float32)
            arm = int(policy.act(counts, None, torch.Generator())[0][0])
            st = (s1, f1, s2, f2)
            assert q(st, arm) == max(q(st, 0), q(st, 1)), (st, arm)


def test_two_arm_dp_value_matches_its_simulation() -> None:
    horizon, n = 50, 20_000
    table = two_arm_table(horizon)
    family = BernoulliBandit(num_trials=horizon)
    latent = TaskDistribution(family).heldout(n, stream_generator(0, "eval"))
    traj = rollout(
        family, latent, TwoArmDynamicProgramming(), stream_generator(1, "eval"), torch.Generator()
    )
    lo, hi = ci95(traj.expected_rewards.sum(1))
    assert lo <= table.value <= hi
    # Sharper: E[max(p1, p2)] = 2/3 exactly, so the exact expected regret is known too.
    lo, hi = ci95(traj.regret.sum(1))
    assert lo <= horizon * 2 / 3 - table.value <= hi


# --- Gittins ------------------------------------------------------------------------------
def brute_force_gittins(
    s: int, f: int, gamma: float, depth: int = 150, mean: Callable[[int, int], float] | None = None
) -> float:
    """Index of Beta(1 + s, 1 + f) by bisection on the retirement reward (recursive DP).

    ``mean(a, b)``: P(success) of the posterior with pseudo-counts (a, b); default a / (a + b).
    """
    mean = mean or (lambda a, b: a / (a + b))

    def continue_value(lam: float) -> float:
        @cache
        def v(a: int, b: int) -> float:
            p = mean(a, b)
            if a + b - 2 - s - f >= depth:
                return max(lam, p) / (1 - gamma)
            cont = p * (1 + gamma * v(a + 1, b)) + (1 - p) * gamma * v(a, b + 1)
            return max(lam / (1 - gamma), cont)

        a, b = 1 + s, 1 + f
        p = mean(a, b)
        return p * (1 + gamma * v(a + 1, b)) + (1 - p) * gamma * v(a, b + 1)

    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if continue_value(mid) > mid / (1 - gamma) else (lo, mid)
    return (lo + hi) / 2


def test_gittins_index_known_values() -> None:
    table = gittins_table(0.9, 20)
    # Gittins (1979) / Gittins, Glazebrook and Weber (2011), Bernoulli table, gamma = 0.9:
    # Beta(1, 1) -> 0.7029.
    assert table[0, 0] == pytest.approx(0.7029, abs=3e-4)
    for s, f in [(0, 0), (0, 1), (1, 0), (3, 1), (2, 6)]:
        assert table[s, f] == pytest.approx(brute_force_gittins(s, f, 0.9), abs=3e-4), (s, f)
    # Structure: above the posterior mean, below 1, up with successes, down with failures.
    s, f = np.meshgrid(np.arange(21), np.arange(21), indexing="ij")
    ok = s + f <= 20
    mean = (1 + s) / (2 + s + f)
    assert (table[ok] > mean[ok]).all() and (table[ok] < 1).all()
    assert (np.diff(table, axis=0)[ok[1:] & ok[:-1]] > 0).all()
    assert (np.diff(table, axis=1)[ok[:, 1:] & ok[:, :-1]] < 0).all()
    assert np.isnan(table[~ok]).all()


def test_gittins_index_with_a_range_prior() -> None:
    """p ~ U(0, 0.3): the index of the truncated posterior, against a brute-force DP whose
    posterior means come from a fine midpoint rule (not the table's quadrature)."""
    lo, hi, gamma = 0.0, 0.3, 0.9
    assert np.array_equal(
        gittins_table(gamma, 20, p_range=(0.0, 1.0)), gittins_table(gamma, 20), equal_nan=True
    )
    table = gittins_table(gamma, 20, p_range=(lo, hi))
    x = lo + (hi - lo) * (np.arange(20000) + 0.5) / 20000

    @cache
    def mean(a: int, b: int) -> float:  # E[p | a - 1 successes, b - 1 failures], p ~ U(lo, hi)
        logw = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
        w = np.exp(logw - logw.max())
        return float((w * x).sum() / w.sum())

    for s, f in [(0, 0), (0, 3), (2, 0), (1, 5), (4, 2)]:
        expected = brute_force_gittins(s, f, gamma, depth=90, mean=mean)
        assert table[s, f] == pytest.approx(expected, abs=3e-4), (s, f)
    ok = ~np.isnan(table)
    # an arm the prior caps at 0.3 is worth at most 0.3 per trial, and more than its mean
    assert (table[ok] < hi).all() and table[0, 0] > mean(1, 1)
    assert table[0, 0] < gittins_table(gamma, 20)[0, 0] - 0.3


def test_bernoulli_gittins_knows_the_family_range() -> None:
    """On arms p ~ U(0, 0.3) the family's Gittins (its prior: that range) earns more than the
    textbook Beta(1, 1) index, which keeps trying arms the range says are poor."""
    family = BernoulliBandit(num_arms=5, num_trials=30, p_low=0.0, p_high=0.3)
    refs = family.references()
    assert refs["gittins"].p_range == (0.0, 0.3)
    assert BernoulliBandit(num_arms=5).references()["gittins"].p_range == (0.0, 1.0)
    latent = TaskDistribution(family).heldout(4000, stream_generator(0, "eval"))
    total = {
        name: rollout(
            family, latent, policy, stream_generator(1, "eval"), torch.Generator()
        ).expected_rewards.sum(1)
        for name, policy in (("range", refs["gittins"]), ("beta11", make_policy("gittins")))
    }
    assert ci95(total["range"] - total["beta11"])[0] > 0


# --- the restless Bayes filter ------------------------------------------------------------
def exact_restless_mean(family: RestlessBandit, p1_outcomes: list[int], grid: int = 4000) -> float:
    """E[p1 at the next trial | p1-successes/failures], by enumerating phases and jump times."""
    x = (np.arange(grid) + 0.5) / grid  # fine quadrature of the U(0, 1) fresh draws
    t_next = len(p1_outcomes)
    num, den = 0.0, 0.0
    for phase, w_phase in enumerate(family.phase_prior()):
        if w_phase == 0:
            continue
        vol = family.block_types(torch.tensor([phase]))[0]
        haz = family.hazards(vol).double().numpy()
        for jumps in itertools.product((0, 1), repeat=t_next):  # jumps before trials 1..t
            weight = w_phase
            for t, j in enumerate(jumps, start=1):
                weight *= haz[t] if j else 1 - haz[t]
            starts = [0] + [t for t, j in enumerate(jumps, start=1) if j]
            segments = list(zip(starts, starts[1:] + [t_next + 1], strict=True))
            lik = 1.0
            for a, b in segments[:-1]:
                k = sum(p1_outcomes[a:b])
                lik *= float(uniform_moment(k, b - a - k))
            a = segments[-1][0]  # the segment that holds the next trial
            k = sum(p1_outcomes[a:])
            dens = x**k * (1 - x) ** (len(p1_outcomes) - a - k)
            num += weight * lik * float(np.mean(dens * x))
            den += weight * lik * float(np.mean(dens))
    return num / den


def filter_mean(family: RestlessBandit, p1_outcomes: list[int]) -> float:
    """The filter's E[p1] when it acts at trial len(outcomes), after those outcomes."""
    policy = RestlessBayesFilter()  # the default grid
    g = torch.Generator()
    belief = policy.reset(family, 1, g)
    for t, r in enumerate(p1_outcomes):
        ctx = StepContext(obs=None, inputs=None, latent=None, state=State(t=torch.tensor([t])))
        _, belief = policy.act(belief, ctx, g)
        out = StepOut(torch.tensor([float(r)]), None, None, None)
        belief = policy.update(belief, ctx, torch.tensor([0]), out)
    ctx = StepContext(None, None, None, State(t=torch.tensor([len(p1_outcomes)])))
    _, belief = policy.act(belief, ctx, g)
    return float((belief.sum(1) * policy.grid).sum())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(hazard_stable=0.0, hazard_volatile=0.0),
        dict(hazard_stable=0.05, hazard_volatile=0.4, block_length=3, first_block="random"),
        dict(hazard_stable=0.0, hazard_volatile=0.3, block_length=2, first_block="volatile"),
    ],
)
def test_restless_filter_matches_exact_posterior(kwargs: dict) -> None:
    family = RestlessBandit(num_trials=10, **kwargs)
    for outcomes in ([1, 1, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1], [1, 0, 0, 0, 0]):
        exact = exact_restless_mean(family, outcomes)
        assert filter_mean(family, outcomes) == pytest.approx(exact, abs=2e-5), outcomes
    # No jumps at all: the Beta(1 + k, 1 + m) posterior mean.
    if kwargs["hazard_volatile"] == 0.0:
        assert filter_mean(family, [1, 1, 0, 1]) == pytest.approx(4 / 6, abs=1e-5)


# --- ordering on every bandit family ------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_bayes_optimal_beats_thompson_beats_random(name: str) -> None:
    family, n = make_family(name), 1000
    if not {"bayes_optimal", "thompson", "random"} <= set(family.references()):
        pytest.skip(f"{name} has no bayes_optimal/thompson/random trio")
    latent = TaskDistribution(family).heldout(n, stream_generator(0, "eval"))
    refs = family.references()
    total = {}
    for ref in ("bayes_optimal", "thompson", "random"):
        traj = rollout(
            family, latent, refs[ref], stream_generator(1, "eval"), torch.Generator().manual_seed(2)
        )
        total[ref] = traj.expected_rewards.sum(1)  # paired: same tasks, same reward noise
    assert ci95(total["bayes_optimal"] - total["thompson"])[0] > 0
    assert ci95(total["thompson"] - total["random"])[0] > 0


def test_gittins_is_the_ideal_reference_beyond_two_arms() -> None:
    family = BernoulliBandit(num_arms=3, num_trials=40)
    refs = family.references()
    assert family.ideal_reference == "gittins" and "bayes_optimal" not in refs
    latent = TaskDistribution(family).heldout(2000, stream_generator(0, "eval"))
    total = {
        r: rollout(
            family, latent, refs[r], stream_generator(1, "eval"), torch.Generator()
        ).expected_rewards.sum(1)
        for r in ("gittins", "thompson")
    }
    assert ci95(total["gittins"] - total["thompson"])[0] > 0


def test_policy_registry_builds_every_policy() -> None:
    for name in ("thompson", "ucb1", "epsilon_greedy", "gittins", "rescorla_wagner"):
        assert make_policy(name).name == name
    assert make_policy("ucb1", c=0.5).c == 0.5
