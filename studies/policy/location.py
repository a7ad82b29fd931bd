"""The location-learning index: does a frozen network locate a training task, or learn the task?

A ``pool(K)`` run trains on K tasks. Two Bayes observers bracket what its frozen network can
do on a held-out task (never one of the K):

- the *training-prior* observer, whose prior is the K training tasks (a discrete posterior,
  ``mesalab.tasks.references.discrete_posterior``): it can only *locate* one of them (index 0);
- the *family-prior* observer, whose prior is the family's (``family.prior_observer()``: the
  exact posterior under the training prior of the family): it *learns* the task (index 1).

Teacher forcing: the network acts on held-out tasks; at every step both observers are fed the
network's own history (its actions and the feedback it got) and say what they would do there,
so the three are compared on the same histories. At each step the network's output v and the
observers' a (training prior) and b (family prior) are vectors in action space: the
prediction itself for prediction families; for decision families the greedy choice, one-hot
(uniform over tied arms): each observer's on its posterior mean reward, the network's on the
probabilities it samples its action from. The network is compared by its preferred arm, not
by its sampling probabilities, because the observers are greedy too, and because they
disagree mostly near their decision boundaries, where any well-calibrated sampler is close to
indifferent: probabilities would pull every network towards 1/A there, whichever prior it
learned. (An observer indifferent between two arms is (1/2, 1/2), so a network that picks the
other observer's arm there scores 2 at that step, and one that splits its picks evenly, 1.)

The index is the least-squares position of v on the line from a to b, pooled over steps and
tasks::

    index = sum_{tasks, steps} <v - a, b - a>  /  sum_{tasks, steps} ||b - a||^2

which is the per-step projection weighted by the observers' squared disagreement: steps
where they agree carry no weight (there the network cannot be told apart, and a per-step
ratio would divide by zero). A network that acts exactly as one observer scores exactly 0 or
1; one in between scores in between; values outside [0, 1] mean it goes past an observer
(or away from both). For two arms and no ties the index is, over the steps where the
observers choose differently, the fraction where the network prefers the family observer's
arm. The 95% interval is a percentile bootstrap over tasks of the ratio of sums. With no
disagreement at all (e.g. the observers coincide) the index is ``None``.

The index is a position along the line from a to b; a network can also sit off that line,
worse than both observers in other directions. ``on_line`` says how much of its departure
from a lies along the line (1 - sum ||v - a - index (b - a)||^2 / sum ||v - a||^2): near 1 the
two observers describe the network, near 0 neither does and the index says little. Also
reported: ``dist_train_prior`` and ``dist_family_prior`` (mean squared distance per step to
each observer), ``disagreement`` (mean ||b - a||^2 per step), ``informative_steps`` (the
fraction of steps where the observers disagree at all) and ``index_by_trial``.

For ``related`` (and ``trialwise``) training there is no pool: the training prior *is* the
family prior, the two observers coincide, and no index is computed (``None``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesalab.studies.policy.metrics import NUM_RESAMPLES, rollout_stats, summarize
from mesalab.tasks.base import StepOut, TaskFamily, batch_size_of, check
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.references.discrete_posterior import pool_observer
from mesalab.tasks.rollout import Policy, StepContext

#: posterior means this close count as tied (the observer is indifferent between the arms).
#: Not tighter: the candidates are float32 latents, so an exact tie comes out as a difference
#: of ~1e-8 (the dependent bandit's family observer at trial 0: 1e-8 to 2e-8 for T = 1..100),
#: and at 1e-9 such a tie read as a strict preference for whichever arm the rounding favoured.
TIE_TOLERANCE = 1e-6
#: squared disagreements below this are "the observers agree"
AGREE = 1e-12
#: tasks per chunk of the location rollouts: fixed, so that every run of a sweep sees the same
#: tasks and noise whatever its K (chunks draw their own noise, ``eval_generators``) ...
LOCATION_CHUNK = 128
#: ... unless the discrete posterior (chunk x K, float64) would pass this many entries
POSTERIOR_ELEMENTS = 1 << 22
#: observers of the index, in order: 0 and 1
OBSERVERS = ("train_prior", "family_prior")


def greedy_vector(values: Tensor, tol: float = TIE_TOLERANCE) -> Tensor:
    """The greedy choice on ``values`` (B, A) as a distribution: uniform over the tied best."""
    best = values >= values.max(dim=1, keepdim=True).values - tol
    return best.double() / best.sum(dim=1, keepdim=True)


def step_vector(
    policy: Policy, pstate: Any, ctx: StepContext, action: Tensor, family: TaskFamily
) -> Tensor:
    """What ``policy`` did at one step, as a vector in action space, (B, A) float64.

    Prediction families: the prediction (normalised on the simplex). Decision families: the
    greedy choice with ties split, on an observer's ``posterior_mean`` or on the probabilities
    a learner samples from (``action_probs``); else the one-hot action taken.
    """
    b = action.shape[0]
    if family.kind == "prediction":
        # reshape, not rearrange: takes (B,) or (B, A) and checks the width A
        v = action.double().reshape(b, family.num_actions)
        if family.action_space == "simplex":
            v = v.clamp_min(0.0)
            v = v / v.sum(dim=1, keepdim=True).clamp_min(1e-300)
        return v
    if hasattr(policy, "posterior_mean"):
        return greedy_vector(policy.posterior_mean(pstate, ctx).double())
    probs = policy.action_probs() if hasattr(policy, "action_probs") else None
    if probs is not None:
        return greedy_vector(probs.double())
    return torch.nn.functional.one_hot(action.long(), family.num_actions).double()


class ShadowPolicy(Policy):
    """Acts exactly as ``actor``; feeds the actor's history to observers and records all three.

    The observers draw from their own generator, so the actor's random stream (and hence its
    actions) are those of a plain rollout with the same generators.
    """

    name = "shadow"

    def __init__(self, actor: Policy, observers: dict[str, Policy], seed: int = 0) -> None:
        self.actor, self.observers, self.seed = actor, observers, seed
        self.records: list[dict[str, list[Tensor]]] = []  # one dict per chunk (per reset)
        self.family: TaskFamily | None = None
        self._gen: torch.Generator | None = None

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Reset the actor and every observer; start recording a new chunk of episodes."""
        self.family = family
        self._gen = torch.Generator(device=generator.device).manual_seed(self.seed)
        self.records.append({name: [] for name in ("actor", *self.observers)})
        state = {"actor": self.actor.reset(family, batch_size, generator)}
        for name, obs in self.observers.items():
            state[name] = obs.reset(family, batch_size, self._gen)
        return state

    def act(self, pstate: Any, ctx: StepContext, generator: torch.Generator) -> tuple[Tensor, Any]:
        """The actor's action; every observer's choice on the same history is recorded."""
        action, actor_state = self.actor.act(pstate["actor"], ctx, generator)
        rec = self.records[-1]
        rec["actor"].append(step_vector(self.actor, actor_state, ctx, action, self.family))
        new = {"actor": actor_state}
        for name, obs in self.observers.items():
            obs_action, new[name] = obs.act(pstate[name], ctx, self._gen)
            rec[name].append(step_vector(obs, new[name], ctx, obs_action, self.family))
        return action, new

    def update(self, pstate: Any, ctx: StepContext, action: Tensor, out: StepOut) -> Any:
        """Everyone learns from the actor's action and its outcome."""
        new = {"actor": self.actor.update(pstate["actor"], ctx, action, out)}
        for name, obs in self.observers.items():
            new[name] = obs.update(pstate[name], ctx, action, out)
        return new

    def vectors(self) -> dict[str, Tensor]:
        """Recorded vectors of every chunk, each (N, T, A) float64."""
        names = self.records[0].keys()
        return {n: torch.cat([torch.stack(rec[n], dim=1) for rec in self.records]) for n in names}


def ratio_bootstrap_ci(
    num: Tensor, den: Tensor, num_resamples: int = NUM_RESAMPLES, seed: int = 0
) -> list[float]:
    """Percentile-bootstrap 95% interval over tasks of sum(num) / sum(den); both (N,)."""
    n = num.shape[0]
    g = torch.Generator(device=num.device).manual_seed(seed)
    per_chunk = max(1, POSTERIOR_ELEMENTS // n)
    ratios = []
    for start in range(0, num_resamples, per_chunk):
        r = min(per_chunk, num_resamples - start)
        idx = torch.randint(0, n, (r, n), generator=g, device=num.device)  # (R, N)
        d = den[idx].sum(dim=1)
        ratios.append(torch.where(d > AGREE, num[idx].sum(dim=1) / d, torch.nan))
    q = torch.tensor([0.025, 0.975], dtype=torch.float64, device=num.device)
    lo, hi = torch.nanquantile(torch.cat(ratios), q).tolist()
    return [lo, hi]


def location_index(
    vectors: dict[str, Tensor], seed: int = 0, num_resamples: int = NUM_RESAMPLES
) -> dict[str, Any]:
    """The index from recorded step vectors ``actor``, ``train_prior``, ``family_prior``."""
    v, a, b = (vectors[k].double() for k in ("actor", *OBSERVERS))  # (N, T, A) each
    d = b - a
    num = ((v - a) * d).sum(dim=-1)  # (N, T)
    den = (d * d).sum(dim=-1)  # (N, T)
    total = float(den.sum())
    informative = den > AGREE
    out: dict[str, Any] = {
        "index": None,
        "index_ci95": None,
        "num_tasks": int(v.shape[0]),
        "num_trials": int(v.shape[1]),
        "informative_steps": float(informative.double().mean()),
        "disagreement": float(den.mean()),
        "dist_train_prior": float(((v - a) ** 2).sum(dim=-1).mean()),
        "dist_family_prior": float(((v - b) ** 2).sum(dim=-1).mean()),
    }
    out["on_line"] = None
    if total > AGREE:
        index = float(num.sum()) / total
        out["index"] = index
        out["index_ci95"] = ratio_bootstrap_ci(num.sum(dim=1), den.sum(dim=1), num_resamples, seed)
        # How much of the network's departure from the training-prior observer lies along the
        # line to the family-prior observer (1: the two observers span it; 0: neither does).
        off = ((v - a - index * d) ** 2).sum()
        base = ((v - a) ** 2).sum()
        out["on_line"] = float(1 - off / base) if float(base) > AGREE else None
    per_t_den = den.sum(dim=0)
    per_t = num.sum(dim=0) / per_t_den.clamp_min(AGREE)
    out["index_by_trial"] = [
        float(x) if dd > AGREE else None for x, dd in zip(per_t, per_t_den, strict=True)
    ]
    return out


def observers_for(family: TaskFamily, distribution: TaskDistribution) -> dict[str, Policy] | None:
    """The two observers of a pool or single run, or ``None`` where there is no index."""
    if distribution.pool is None or not family.supports_discrete_posterior:
        return None
    family_obs = family.prior_observer()
    if family_obs is None:
        return None
    return {"train_prior": pool_observer(family, distribution.pool), "family_prior": family_obs}


def location_metrics(
    actor: Policy,
    family: TaskFamily,
    distribution: TaskDistribution,
    latent: Any,
    seed: int,
    num_resamples: int = NUM_RESAMPLES,
) -> dict[str, Any] | None:
    """The index of ``actor`` on held-out ``latent``, and each observer acting on its own.

    ``None`` for runs without a pool (related, trialwise: the observers coincide there) and
    for families without a discrete posterior. Call under ``torch.inference_mode`` for a
    learner.
    """
    observers = observers_for(family, distribution)
    if observers is None:
        return None
    check(batch_size_of(latent) >= 2, "location tasks", batch_size_of(latent), ">= 2")
    k = distribution.pool_size
    chunk = max(1, min(LOCATION_CHUNK, POSTERIOR_ELEMENTS // k))
    shadow = ShadowPolicy(actor, observers, seed)
    rollout_stats(family, latent, shadow, seed, chunk_size=chunk)
    out = location_index(shadow.vectors(), seed, num_resamples)
    out["pool_size"] = k
    # Each observer on its own, on the same tasks and noise: what locating and learning buy.
    out["observers"] = {}
    for name, obs in observers.items():
        stats, _ = rollout_stats(family, latent, obs, seed, chunk_size=chunk)
        s = summarize(stats, family.kind, seed=seed, num_resamples=num_resamples)
        s["name"] = type(obs).__name__
        out["observers"][name] = s
    return out
