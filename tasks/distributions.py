"""Distribution modes: how task parameters are drawn for training episodes (condition 3).

- ``related``: a fresh task from the family's prior every episode (the standard setting);
- ``single``: one task for every episode (nothing to learn in-context);
- ``pool``: K tasks drawn once, episodes sample from the pool (task diversity);
- ``trialwise``: the task is redrawn every trial, so history carries no information.

Training and held-out evaluation draw from disjoint seed streams, and held-out tasks that
coincide with a training task (possible only for discrete priors or by a fixed pool) are
redrawn.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from tasks.base import TaskFamily, batch_select, batch_size_of, check, index_batch, tree_map

MODES = ("related", "single", "pool", "trialwise")

#: named random streams; each (seed, stream) pair seeds its own generator
STREAMS = ("train", "eval", "pool", "policy")


def stream_generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator for one named stream of a seed (``train``, ``eval``, ``pool``, ``policy``).

    Seeds are derived with numpy's ``SeedSequence`` from (seed, stream), so no two pairs share
    a generator: training, held-out evaluation, pool and policy randomness never coincide.
    """
    check(stream in STREAMS, "stream", stream, f"one of {list(STREAMS)}")
    check(isinstance(seed, int) and seed >= 0, "seed", seed, "an integer >= 0")
    state = np.random.SeedSequence([seed, STREAMS.index(stream), 0x6D657361]).generate_state(1)
    g = torch.Generator(device=device)
    g.manual_seed(int(state[0]))
    return g


def latent_rows(latent: object) -> Tensor:
    """Flatten every tensor field of a latent to one float row per task, (B, F)."""
    parts: list[Tensor] = []
    tree_map(lambda x: parts.append(x.reshape(x.shape[0], -1).float()) or x, latent)
    return torch.cat(parts, dim=1)


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
        if mode == "pool":
            check(
                isinstance(pool_size, int) and pool_size >= 1, "pool_size", pool_size, "an int >= 1"
            )
        self.family, self.mode, self.prior = family, mode, prior
        self.pool_size = 1 if mode == "single" else pool_size
        self.pool: object | None = None
        if mode in ("single", "pool"):
            # The pool is a fixed function of the seed, drawn once.
            g = stream_generator(seed, "pool", device)
            self.pool = family.sample_latent(self.pool_size, g, prior)

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
        self, n: int, generator: torch.Generator, prior: str | None = None, max_redraws: int = 20
    ) -> object:
        """Evaluation latents from the family prior (or a named OOD prior), never a pool task."""
        prior = prior or self.prior
        latent = self.family.sample_latent(n, generator, prior)
        if self.pool is None:
            return latent
        pool_rows = latent_rows(self.pool)
        for _ in range(max_redraws):
            clash = (latent_rows(latent)[:, None, :] == pool_rows[None]).all(-1).any(-1)
            if not bool(clash.any()):
                break
            latent = batch_select(clash, self.family.sample_latent(n, generator, prior), latent)
        return latent

    def __repr__(self) -> str:
        extra = f", pool_size={self.pool_size}" if self.pool is not None else ""
        return f"TaskDistribution({self.family.name}, mode={self.mode!r}{extra})"


def num_distinct(latent: object) -> int:
    """Number of distinct tasks in a batch of latents (for tests and reports)."""
    rows = latent_rows(latent)
    return int(torch.unique(rows, dim=0).shape[0]) if batch_size_of(latent) else 0
