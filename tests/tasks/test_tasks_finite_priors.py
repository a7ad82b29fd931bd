"""Priors with finitely many tasks: declared counts, pools of distinct tasks, held-out tasks."""

from __future__ import annotations

import pytest
import torch

from mesalab.tasks import TaskDistribution, num_distinct, stream_generator
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.bernoulli_bandit import BernoulliBandit
from mesalab.tasks.dependent_bandit import DependentBandit
from mesalab.tasks.distributions import latent_rows, repeated_rows, rows_in
from mesalab.tasks.harlow import Harlow
from mesalab.tasks.two_step import TwoStep

#: (family, prior, the number of distinct tasks worked out by hand)
SMALL = [
    (DependentBandit(variant="easy"), "train", 2),  # p1 in {0.1, 0.9}
    (DependentBandit(variant="hard"), "train", 2),
    (TwoStep(num_trials=12), "stable", 2),  # the first good state; nothing swaps
    (TwoStep(num_trials=12, swap_prob=0.0), "train", 2),
    (TwoStep(num_trials=3, swap_prob=0.5), "train", 8),  # 2 first states x 2^2 swap patterns
    (Harlow(num_objects=3), "train", 6),  # ordered pairs of 3 objects, rewarded one first
    (Harlow(num_objects=3), "novel", 6),
]


@pytest.mark.parametrize("family,prior,count", SMALL, ids=lambda x: getattr(x, "name", str(x)))
def test_declared_count_is_the_count_drawn(family: TaskFamily, prior: str, count: int) -> None:
    assert family.num_distinct_tasks(prior) == count
    # 4000 draws of at most 8 tasks, each with probability >= 1/8: all appear.
    rows = latent_rows(family.sample_latent(4000, torch.Generator().manual_seed(0), prior))
    assert torch.unique(rows, dim=0).shape[0] == count


def test_continuous_priors_declare_none() -> None:
    assert DependentBandit().num_distinct_tasks("train") is None
    assert DependentBandit(variant="easy").num_distinct_tasks("full") is None
    assert Harlow().num_distinct_tasks("train") is None
    assert Harlow(num_objects=3).num_distinct_tasks("similar") is None
    assert TwoStep(num_trials=12).num_distinct_tasks("train") == 2**12
    with pytest.raises(ValueError, match="prior"):
        TwoStep().num_distinct_tasks("nope")


def test_row_helpers_by_hand() -> None:
    rows = torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [5.0, 6.0], [3.0, 4.0]])
    assert repeated_rows(rows).tolist() == [False, False, True, False, True]
    ref = torch.tensor([[5.0, 6.0], [1.0, 2.0]])
    assert rows_in(rows, ref).tolist() == [True, False, True, True, False]


def test_pool_holds_distinct_tasks_of_a_concentrated_prior() -> None:
    """Two-step, 12 trials: the no-swap schedules carry 76% of the mass, yet 20 distinct."""
    family = TwoStep(num_trials=12)
    raw = family.sample_latent(20, stream_generator(4, "pool"))
    assert num_distinct(raw) < 20  # plain draws repeat tasks
    dist = TaskDistribution(family, mode="pool", pool_size=20, seed=4)
    assert num_distinct(dist.pool) == 20


def test_pool_of_a_continuous_prior_is_the_plain_draw() -> None:
    """Redrawing repeats changes nothing where there are none: pools keep their values."""
    family = BernoulliBandit()
    dist = TaskDistribution(family, mode="pool", pool_size=5, seed=2)
    plain = family.sample_latent(5, stream_generator(2, "pool"))
    assert torch.equal(dist.pool.probs, plain.probs)


def test_pool_larger_than_the_prior_is_refused() -> None:
    family = DependentBandit(variant="easy")
    with pytest.raises(ValueError, match=r"pool_size=3 .*at most 2"):
        TaskDistribution(family, mode="pool", pool_size=3)
    dist = TaskDistribution(family, mode="pool", pool_size=2)
    assert sorted(dist.pool.probs[:, 0].tolist()) == pytest.approx([0.1, 0.9])


def test_heldout_of_single_is_the_other_task() -> None:
    family = DependentBandit(variant="easy")
    dist = TaskDistribution(family, mode="single", seed=1)
    p_train = float(dist.pool.probs[0, 0])
    held = dist.heldout(512, stream_generator(1, "eval"))
    # Half the plain draws are the training task: all of them were redrawn.
    assert torch.allclose(held.probs[:, 0], torch.full((512,), 1.0 - p_train))


def test_heldout_when_the_pool_holds_every_task() -> None:
    family = DependentBandit(variant="easy")
    dist = TaskDistribution(family, mode="pool", pool_size=2, seed=1)
    with pytest.raises(ValueError, match=r"pool_size=2 .*below 2"):
        dist.heldout(16, stream_generator(1, "eval"))
    # Another prior still has held-out tasks.
    held = dist.heldout(256, stream_generator(1, "eval"), prior="full")
    assert not rows_in(latent_rows(held), latent_rows(dist.pool)).any()


def test_two_step_single_is_one_schedule() -> None:
    """With the schedule in the task, single mode repeats the same good states every episode."""
    family = TwoStep(num_trials=100)
    dist = TaskDistribution(family, mode="single", seed=0)
    latent = dist.sample(64, stream_generator(0, "train"))
    assert (latent.good == latent.good[:1]).all()
    related = TaskDistribution(family).sample(64, stream_generator(0, "train"))
    assert num_distinct(related) > 32  # 100 trials: most schedules are unique
