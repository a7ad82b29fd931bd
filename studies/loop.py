"""The one training loop: roll out, compute the signal's loss, step the optimizer.

Rollouts run without gradients, step by step with carried memory (as the learner acts);
the loss then re-evaluates the learner on the whole recorded input sequence in one causal
forward pass. The learner is deterministic given its inputs, so the re-evaluated policy is
exactly the one that acted: the policy gradient stays on-policy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mesalab.archs.base import Learner
from mesalab.archs.population import PopulationLearner, supports
from mesalab.studies.policy.action_heads import action_head
from mesalab.studies.policy.learner_policy import LearnerPolicy
from mesalab.studies.population import Member, population_step
from mesalab.studies.signals import Signal
from mesalab.tasks.base import TaskFamily
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.rollout import Trajectory, rollout
from mesalab.tasks.tree import check, tree_map


def lr_factor(update: int, updates: int, final_fraction: float = 1.0, warmup: float = 0.0) -> float:
    """The learning rate's multiplier at ``update``: linear warm-up, then linear decay.

    Over the first ``warmup`` fraction of the updates it rises linearly from 1/n_warmup to 1
    (never 0: every update moves the weights); it then decays linearly, as without warm-up, to
    ``final_fraction`` at the last update. A function of the update index only, so a resumed
    run follows the same schedule.
    """
    decay = 1.0 - (1.0 - final_fraction) * update / max(updates, 1)
    n_warm = math.ceil(warmup * updates)
    if update < n_warm:  # a large first step from a random init is what warm-up avoids
        return decay * (update + 1) / n_warm
    return decay


class TrainingDiverged(RuntimeError):
    """A non-finite loss: training stops and the last good checkpoint is kept."""


@dataclass
class LoopState:
    """Everything needed to continue training exactly where it stopped."""

    update: int = 0
    env_steps: int = 0
    wall_s: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)


def train_step(
    learner: Learner,
    optimizer: torch.optim.Optimizer,
    signal: Signal,
    family: TaskFamily,
    distribution: TaskDistribution,
    batch_size: int,
    env_gen: torch.Generator,
    policy_gen: torch.Generator,
    progress: float,
    grad_clip: float | None,
    update: int,
) -> tuple[Trajectory, dict[str, float]]:
    """One update: a batch of episodes, one loss, one optimizer step.

    Learners whose core has a population computation train as a population of one
    (``mesalab.studies.population``), their weights as views: the one code path of solo and
    population runs. Other cores take the plain path below.
    """
    if supports(learner):
        member = Member(distribution, env_gen, policy_gen)
        pop = PopulationLearner.view(learner)
        res = population_step(
            pop, [optimizer], signal, family, [member], batch_size, progress, grad_clip
        )
        if not bool(res.finite[0]):
            loss = float(res.metrics["losses/total"][0])
            raise TrainingDiverged(f"non-finite loss {loss} at update {update}")
        return res.traj, {k: float(v[0]) for k, v in res.metrics.items()}
    policy = LearnerPolicy(learner, explore=signal.explores)
    with torch.no_grad():
        latent = distribution.sample(batch_size, env_gen)
        traj = rollout(family, latent, policy, env_gen, policy_gen, distribution)
    head = action_head(family)
    out, _ = learner(traj.inputs, learner.initial_memory(batch_size, traj.inputs.device))
    behaviour = signal.solo_behaviour(out, traj, head)
    passes: list[dict[str, float]] = []
    for k, part in enumerate(signal.passes(batch_size)):
        whole = part == slice(0, batch_size)
        sub = traj if whole else tree_map(lambda x, s=part: x[s], traj)
        if k > 0 or not whole:  # the weights moved, or a part of the batch
            memory = learner.initial_memory(sub.inputs.shape[0], sub.inputs.device)
            out, _ = learner(sub.inputs, memory)
        cut = {n: v[part] for n, v in behaviour.items()}
        loss, metrics = signal.loss(out, sub, head, progress, cut)
        if not math.isfinite(loss.item()):
            raise TrainingDiverged(f"non-finite loss {loss.item()} at update {update}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            metrics["train/grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(learner.parameters(), grad_clip)
            )
        optimizer.step()
        metrics["losses/total"] = loss.item()
        passes.append(metrics)
    metrics = {k: sum(m[k] for m in passes) / len(passes) for k in passes[0]}
    metrics["train/mean_reward"] = traj.rewards.mean().item()
    metrics["train/mean_regret"] = traj.regret.sum(1).mean().item()
    return traj, metrics


def train(
    learner: Learner,
    optimizer: torch.optim.Optimizer,
    signal: Signal,
    family: TaskFamily,
    distribution: TaskDistribution,
    updates: int,
    batch_size: int,
    env_gen: torch.Generator,
    policy_gen: torch.Generator,
    grad_clip: float | None = 1.0,
    state: LoopState | None = None,
    on_update: Callable[[LoopState, dict[str, float]], bool] | None = None,
    lr_final_fraction: float = 1.0,
    lr_warmup: float = 0.0,
) -> LoopState:
    """Run updates until ``updates`` are done or ``on_update`` returns False (stop request).

    The learning rate decays linearly from its initial value to ``lr_final_fraction`` times
    it over the ``updates`` (1.0: constant), after a linear warm-up over the first
    ``lr_warmup`` fraction of them (``lr_factor``).
    """
    state = state or LoopState()
    if not signal.updates_weights:
        return state
    learner.train()
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    while state.update < updates:
        t0 = time.perf_counter()
        frac = lr_factor(state.update, updates, lr_final_fraction, lr_warmup)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * frac
        _, metrics = train_step(
            learner,
            optimizer,
            signal,
            family,
            distribution,
            batch_size,
            env_gen,
            policy_gen,
            state.update / max(updates, 1),
            grad_clip,
            state.update,
        )
        dt = time.perf_counter() - t0
        steps = batch_size * family.num_trials
        state.update += 1
        state.env_steps += steps
        state.wall_s += dt
        metrics["charts/steps_per_s"] = steps / dt
        metrics["train/lr"] = optimizer.param_groups[0]["lr"]
        if on_update is not None and on_update(state, metrics) is False:
            break
    return state


@dataclass
class PopulationState:
    """Where a population's training stands: one ``LoopState`` and error per member."""

    members: list[LoopState]
    errors: list[str | None] = field(default_factory=list)
    update: int = 0

    @property
    def alive(self) -> list[bool]:
        """Members still training (no error)."""
        return [e is None for e in self.errors]


def train_population(
    pop: PopulationLearner,
    optimizers: list[torch.optim.Optimizer],
    signal: Signal,
    family: TaskFamily,
    members: list[Member],
    updates: int,
    batch_size: int,
    grad_clip: float | None = 1.0,
    state: PopulationState | None = None,
    on_update: Callable[[PopulationState, list[dict[str, float]]], bool] | None = None,
    lr_final_fraction: float = 1.0,
    streams: str = "shared",
    lr_warmup: float = 0.0,
) -> PopulationState:
    """Run updates until ``updates`` are done, every member stopped, or ``on_update`` says stop.

    The learning rate follows ``studies.loop.train``'s schedule (a function of the update
    index). ``wall_s`` of each member is the population's wall time (they ran together).
    """
    p = pop.size
    check(len(members) == p, "members", len(members), f"{p} members, one per population row")
    state = state or PopulationState([LoopState() for _ in range(p)], [None] * p)
    if not signal.updates_weights:
        return state
    groups = [g for opt in optimizers for g in opt.param_groups]
    for group in groups:
        group.setdefault("initial_lr", group["lr"])
    device = pop.leaves()[0].device
    while state.update < updates and any(state.alive):
        t0 = time.perf_counter()
        frac = lr_factor(state.update, updates, lr_final_fraction, lr_warmup)
        for group in groups:
            group["lr"] = group["initial_lr"] * frac
        alive = torch.tensor(state.alive, device=device)
        res = population_step(
            pop,
            optimizers,
            signal,
            family,
            members,
            batch_size,
            state.update / max(updates, 1),
            grad_clip,
            alive,
            streams,
        )
        dt = time.perf_counter() - t0
        columns = {k: v.tolist() for k, v in res.metrics.items()}
        finite = res.finite.tolist()
        per_member = []
        for i, st in enumerate(state.members):
            if state.errors[i] is not None:
                per_member.append({})
                continue
            if not finite[i]:
                loss = columns["losses/total"][i]
                state.errors[i] = f"non-finite loss {loss} at update {state.update}"
                per_member.append({})
                continue
            steps = batch_size * family.num_trials
            st.update += 1
            st.env_steps += steps
            st.wall_s += dt
            m = {k: float(v[i]) if isinstance(v, list) else float(v) for k, v in columns.items()}
            m["charts/steps_per_s"] = steps * p / dt
            m["train/lr"] = optimizers[i].param_groups[0]["lr"]
            per_member.append(m)
        state.update += 1
        if on_update is not None and on_update(state, per_member) is False:
            break
    return state
