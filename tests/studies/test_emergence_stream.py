"""The emergence curve's tasks and noise come from a stream no seed trains or evaluates on."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from mesalab.studies.callbacks import Emergence
from mesalab.studies.evaluate import heldout_tasks
from mesalab.studies.policy.metrics import eval_generators
from mesalab.tasks.distributions import TaskDistribution, latent_rows, stream_generator, stream_seed

SEEDS = range(6)


def test_emergence_tasks_are_disjoint_from_every_seeds_training_and_evaluation(make_cfg) -> None:
    cfg = make_cfg("task=bernoulli_bandit", "eval.every=0", "eval.curve_tasks=32")
    family = instantiate(cfg.task.family)
    dist = TaskDistribution(family)
    n = 32
    used = []  # every seed's training and evaluation tasks
    for s in SEEDS:
        used.append(latent_rows(dist.sample(n, stream_generator(s, "train"))))
        used.append(latent_rows(heldout_tasks(dist, n, s, "cpu")))
    used_rows = torch.cat(used)
    for s in SEEDS:
        cb = Emergence()
        run = SimpleNamespace(
            cfg=cfg.copy(), distribution=dist, device="cpu", state=SimpleNamespace(history={})
        )
        run.cfg.seed = s
        cb.on_start(run)
        assert cb.seed not in SEEDS and cb.seed == stream_seed(s, "emergence")
        rows = latent_rows(cb.latent)  # (n, F)
        clash = (rows[:, None, :] == used_rows[None, :, :]).all(-1).any()
        assert not bool(clash), f"seed {s}: an emergence task is some seed's train/eval task"
        # the evaluation noise of its chunks is no seed's either
        env, _ = eval_generators(cb.seed, 0)
        draws = torch.rand(8, generator=env)
        for t in SEEDS:
            assert not torch.equal(draws, torch.rand(8, generator=eval_generators(t, 0)[0]))


def test_the_emergence_seed_of_one_seed_is_not_the_next_seeds() -> None:
    seeds = {stream_seed(s, "emergence") for s in range(100)}
    assert len(seeds) == 100 and not seeds & set(range(100))
    with pytest.raises(ValueError, match="seed"):
        stream_seed(2**32, "emergence")  # a seed that could be another's emergence seed
