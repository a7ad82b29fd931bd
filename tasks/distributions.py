"""Distribution modes: how task parameters are drawn for training episodes (condition 3).

- ``related``: a fresh task from the family's prior every episode (the standard setting);
- ``single``: one task for every episode (nothing to learn in-context);
- ``pool``: K tasks drawn once, episodes sample from the pool (task diversity);
- ``trialwise``: the task is redrawn every trial, so history carries no information.

Training and held-out evaluation draw from disjoint seed streams, and held-out tasks that
coincide with a pool task are redrawn (this happens only for priors with finitely many tasks).

Finite priors (``TaskFamily.num_distinct_tasks`` not None, e.g. the easy/medium/hard dependent
bandits with two tasks each): a pool holds ``pool_size`` *distinct* tasks (duplicate draws are
redrawn, which changes nothing for a continuous prior), so ``pool_size`` may not exceed the
number of tasks; and held-out evaluation on the training prior needs a pool that leaves some
task out. Both fail with a ``ValueError`` naming ``pool_size`` rather than silently repeating
tasks or evaluating on training tasks.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from mesalab.tasks.base import TaskFamily, batch_select, batch_size_of, check, index_batch, tree_map

MODES = ("related", "single", "pool", "trialwise")

#: named random streams; each (seed, stream) pair seeds its own generator (``ood``: the tasks
#: of the out-of-distribution test priors); new streams are appended, so old seeds stay put
STREAMS = ("train", "eval", "pool", "policy", "ood")
#: streams derived from the run seed by an offset, not by ``SeedSequence``: ``init`` seeds
#: torch's global generator for the initial weights with the seed itself (so results do not
#: move); ``emergence`` is the seed whose ``eval`` stream and evaluation noise the emergence
#: curve uses. Its offset is 2**32 and run seeds lie below it, so that seed is never a run's:
#: its tasks and noise are disjoint from every seed's training and evaluation streams (an
#: offset of 1 made it the next seed's evaluation stream).
OFFSET_STREAMS = {"init": 0, "emergence": 2**32}
#: run seeds lie below this (so an offset stream never lands on another run's seed)
MAX_SEED = 2**32


def stream_generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator for one named stream of a seed (one of ``STREAMS``).

    Seeds are derived with numpy's ``SeedSequence`` from (seed, stream), so no two pairs share
    a generator: training, held-out evaluation, pool and policy randomness never coincide.
    """
    check(stream in STREAMS, "stream", stream, f"one of {list(STREAMS)}")
    check(isinstance(seed, int) and seed >= 0, "seed", seed, "an integer >= 0")
    state = np.random.SeedSequence([seed, STREAMS.index(stream), 0x6D657361]).generate_state(1)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0]))
    return g


def stream_seed(seed: int, stream: str) -> int:
    """The integer seed of an offset stream (one of ``OFFSET_STREAMS``) of a run seed."""
    check(stream in OFFSET_STREAMS, "stream", stream, f"one of {list(OFFSET_STREAMS)}")
    ok = isinstance(seed, int) and 0 <= seed < MAX_SEED
    check(ok, "seed", seed, "an integer in [0, 2**32)")
    return seed + OFFSET_STREAMS[stream]


def latent_rows(latent: object) -> Tensor:
    """Flatten every tensor field of a latent to one float row per task, (B, F)."""
    parts: list[Tensor] = []
    # every field flattened to (N, prod(rest)), so rows compare across fields of any shape
    tree_map(lambda x: parts.append(rearrange(x, "n ... -> n (...)").float()) or x, latent)
    return torch.cat(parts, dim=1)


def repeated_rows(rows: Tensor) -> Tensor:
    """Which rows equal an earlier row, (N,) bool (sort-based, no N x N comparison)."""
    n = rows.shape[0]
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)  # (N,)
    idx = torch.arange(n, device=rows.device)
    first = torch.full((n,), n, device=rows.device).scatter_reduce(0, inverse, idx, "amin")
    return first[inverse] != idx


def rows_in(rows: Tensor, reference: Tensor) -> Tensor:
    """Which rows equal some row of ``reference``, (N,) bool."""
    _, inverse = torch.unique(torch.cat([reference, rows]), dim=0, return_inverse=True)
    known = torch.zeros(int(inverse.max()) + 1, dtype=torch.bool, device=rows.device)
    known[inverse[: reference.shape[0]]] = True
    return known[inverse[reference.shape[0] :]]


class TaskDistribution:
    """Draws latents for training episodes under one of the four modes."""

    def __init__(
        self,
        family: TaskFamily,
        mode: str = "related",
        pool_size: int | None = None,
        prior: str = "train",
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        check(mode in MODES, "distribution", mode, f"one of {list(MODES)}")
        family.check_prior(prior)
        self.num_tasks = family.num_distinct_tasks(prior)
        if mode == "pool":
            check(
                isinstance(pool_size, int) and pool_size >= 1, "pool_size", pool_size, "an int >= 1"
            )
            check(
                self.num_tasks is None or pool_size <= self.num_tasks,
                "pool_size",
                pool_size,
                f"at most {self.num_tasks}, the number of distinct tasks of "
                f"{family.name}'s {prior!r} prior",
            )
        self.family, self.mode, self.prior = family, mode, prior
        self.pool_size = 1 if mode == "single" else pool_size
        self.pool: object | None = None
        if mode in ("single", "pool"):
            # The pool is a fixed function of the seed, drawn once, on the CPU whatever the
            # device: a CUDA generator draws other numbers, so a run trained on CUDA and its
            # analysis on the CPU would otherwise hold different training tasks.
            pool = self._distinct_pool(stream_generator(seed, "pool"))
            self.pool = tree_map(lambda x: x.to(device), pool)

    def _distinct_pool(self, generator: torch.Generator, max_redraws: int = 64) -> object:
        """``pool_size`` distinct tasks: rows that repeat an earlier one are redrawn."""
        k = self.pool_size
        pool = self.family.sample_latent(k, generator, self.prior)
        for _ in range(max_redraws):
            repeated = repeated_rows(latent_rows(pool))
            if not bool(repeated.any()):
                return pool
            pool = batch_select(repeated, self.family.sample_latent(k, generator, self.prior), pool)
        raise ValueError(
            f"pool_size={k} is not allowed: {max_redraws} redraws did not give {k} distinct "
            f"tasks of {self.family.name}'s {self.prior!r} prior (it puts most of its mass on "
            "fewer tasks); use a smaller pool_size"
        )

    @property
    def trialwise(self) -> bool:
        """Whether the rollout must redraw the task every trial."""
        return self.mode == "trialwise"

    def sample(self, n: int, generator: torch.Generator) -> object:
        """Latents for ``n`` training episodes."""
        check(isinstance(n, int) and n >= 1, "n", n, "an int >= 1")
        if self.pool is None:
            return self.family.sample_latent(n, generator, self.prior)
        idx = torch.randint(0, self.pool_size, (n,), generator=generator, device=generator.device)
        return index_batch(self.pool, idx)

    def heldout(
        self, n: int, generator: torch.Generator, prior: str | None = None, max_redraws: int = 64
    ) -> object:
        """Evaluation latents from the family prior (or a named OOD prior), never a pool task.

        Tasks that coincide with a pool task are redrawn: held-out tasks follow the prior
        conditioned on lying outside the pool. Raises ``ValueError`` when no such task exists.
        """
        prior = prior or self.prior
        latent = self.family.sample_latent(n, generator, prior)
        if self.pool is None:
            return latent
        if prior == self.prior and self.num_tasks is not None:
            check(
                self.pool_size < self.num_tasks,
                "pool_size",
                self.pool_size,
                f"below {self.num_tasks}, the number of distinct tasks of {self.family.name}'s "
                f"{prior!r} prior, for held-out evaluation on that prior (this pool holds every "
                "task; evaluate on another prior)",
            )
        pool_rows = latent_rows(self.pool)
        for _ in range(max_redraws):
            clash = rows_in(latent_rows(latent), pool_rows)  # (n,)
            if not bool(clash.any()):
                return latent
            latent = batch_select(clash, self.family.sample_latent(n, generator, prior), latent)
        raise ValueError(
            f"prior={prior!r} is not allowed for held-out evaluation: {max_redraws} redraws "
            f"still gave tasks of the pool (pool_size={self.pool_size}); use another prior"
        )

    def __repr__(self) -> str:
        extra = f", pool_size={self.pool_size}" if self.pool is not None else ""
        return f"TaskDistribution({self.family.name}, mode={self.mode!r}{extra})"


def num_distinct(latent: object) -> int:
    """Number of distinct tasks in a batch of latents (for tests and reports)."""
    rows = latent_rows(latent)
    return int(torch.unique(rows, dim=0).shape[0]) if batch_size_of(latent) else 0
