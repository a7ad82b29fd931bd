"""Population training: P members of one architecture trained as one batched computation.

Each member has its own weights (a row of the stacked weights), its own optimizer (over
``PopulationLearner.member_parameters(i)``, which share storage with its rows), gradient-norm
clipping, learning-rate schedule, random streams and data side (distribution mode, pool size,
prior, seed); shapes are shared. A member whose loss is not finite stops alone: it is not
stepped again (weights and optimizer state stay those before that update), its error is
kept, the others go on. (A signal of several passes per update, such as PPO, keeps the steps a
member took in that update's passes before its loss turned non-finite.)

The forward and backward run on the stacked weights; per member, they give the solo run's
bits on the CPU when the batch size is a multiple of 32 (elementwise kernels compute the
last partial vector chunk of a tensor in scalar code; with B a multiple of 32 no member's
block is ever in one).

Random streams (``streams``); a population of one is the solo run under both
(``studies.loop.train_step`` is exactly that):

- ``member``: every random number a member sees comes from its own generators: its tasks and
  the policy's uniforms are drawn per member once per update, the environment's noise per
  member and step (the environment is stepped once per member: the families draw their noise
  inside ``step``). A member's results do not depend on which other members share its
  population (tested).
- ``shared`` (default): the environment and policy noise of all rows comes from member 0's
  generators; tasks are still drawn per member from their own streams. One environment step
  per trial for the whole population. Results then depend on the population's composition and
  order, which the caller must record to reproduce a run. The default because ``member`` cost
  more than a fifth of the speedup for some cores and missed the efficiency target for others
  (benchmarks/population_throughput.py, README "Population throughput").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mesalab.archs.base import LearnerOutput, check
from mesalab.archs.population import PopulationLearner
from mesalab.archs.recurrence import Tape
from mesalab.studies.policy.action_heads import (
    ActionHead,
    DiscreteHead,
    action_head,
    categorical_from_uniform,
)
from mesalab.studies.signals import Signal
from mesalab.tasks.base import StepOut, TaskFamily, concat_batch, tree_map
from mesalab.tasks.distributions import TaskDistribution
from mesalab.tasks.inputs import build_inputs
from mesalab.tasks.rollout import Trajectory

STREAM_MODES = ("member", "shared")


@dataclass
class Member:
    """One member's data side and random streams (its weights are a row of the population)."""

    distribution: TaskDistribution
    env_gen: torch.Generator
    policy_gen: torch.Generator


def groups(members: list[Member], streams: str) -> list[tuple[int, int]]:
    """Member ranges [lo, hi) that share one environment and policy generator."""
    check(streams in STREAM_MODES, "streams", streams, f"one of {list(STREAM_MODES)}")
    if streams == "member":
        return [(i, i + 1) for i in range(len(members))]
    # shared: runs of members that agree on trialwise redraws (a redraw resets the state)
    spans, lo = [], 0
    for i in range(1, len(members) + 1):
        if (
            i == len(members)
            or members[i].distribution.trialwise != members[lo].distribution.trialwise
        ):
            spans.append((lo, i))
            lo = i
    return spans


def population_rollout(
    pop: PopulationLearner,
    family: TaskFamily,
    members: list[Member],
    batch_size: int,
    explore: bool,
    streams: str = "shared",
    tape: Tape | None = None,
) -> Trajectory:
    """One episode per row for P x B rows (member-major), every field (P*B, T, ...).

    ``tape``: filled with the learner's per-step tensors, for the training forward to reuse.
    """
    b, p, nt = batch_size, len(members), family.num_trials
    spans = groups(members, streams)
    rows = [slice(lo * b, hi * b) for lo, hi in spans]
    gens = [(members[lo].env_gen, members[lo].policy_gen) for lo, _ in spans]
    # Tasks per member from its own stream, once per update.
    latents = [m.distribution.sample(b, m.env_gen) for m in members]
    glat = [concat_batch(latents[lo:hi]) for lo, hi in spans]
    states = [family.reset(lat, g) for lat, (g, _) in zip(glat, gens, strict=True)]
    latent = concat_batch(glat) if len(glat) > 1 else glat[0]
    head: ActionHead = action_head(family)
    deterministic = family.kind == "prediction" and not explore
    uniforms = None
    if isinstance(head, DiscreteHead):  # the policy's uniforms for the episode, per stream
        uniforms = torch.cat(
            [
                torch.rand(nt, (hi - lo) * b, 1, generator=pg, device=pg.device)  # (T, rows, 1)
                for (lo, hi), (_, pg) in zip(spans, gens, strict=True)
            ],
            dim=1,
        )
    memory = pop.initial_memory(b)
    prepared = pop.prepare()
    prev_action = prev_feedback = None
    rec: dict[str, list[Tensor]] = {"inputs": [], "actions": [], "oracle_actions": []}
    outs: list[list[StepOut]] = []  # per step, one StepOut per group
    for step in range(nt):
        if step > 0 and any(members[lo].distribution.trialwise for lo, _ in spans):
            for g, (lo, hi) in enumerate(spans):
                if members[lo].distribution.trialwise:
                    eg = gens[g][0]
                    glat[g] = concat_batch(
                        [members[i].distribution.sample(b, eg) for i in range(lo, hi)]
                    )
                    states[g] = family.reset(glat[g], eg, t=states[g].t)
            latent = concat_batch(glat) if len(glat) > 1 else glat[0]
        state = concat_batch(states) if len(states) > 1 else states[0]
        obs = family.observe(latent, state)
        inputs = build_inputs(family, obs, prev_action, prev_feedback, state.t)  # (P*B, D)
        oracle = family.oracle_action(latent, state)
        out, memory = pop(inputs.reshape(p, b, 1, -1), memory, prepared, tape)  # (P, B, 1, ...)
        if uniforms is not None and not deterministic:  # the logits are all it needs
            action = categorical_from_uniform(out.logits.flatten(0, 1)[:, 0], uniforms[step])
        else:
            step_out = LearnerOutput(**{k: v.flatten(0, 1)[:, 0] for k, v in vars(out).items()})
            action = torch.cat(
                [
                    head.act(_rows(step_out, r), pg, deterministic)
                    for r, (_, pg) in zip(rows, gens, strict=True)
                ]
            )
        stepped = [
            family.step(glat[g], states[g], action[r], gens[g][0]) for g, r in enumerate(rows)
        ]
        states = [st for st, _ in stepped]
        outs.append([o for _, o in stepped])
        rec["inputs"].append(inputs)
        rec["actions"].append(action)
        rec["oracle_actions"].append(oracle)
        prev_action = action
        prev_feedback = _cat([o.feedback for o in outs[-1]])
    traj = {k: torch.stack(v, dim=1) for k, v in rec.items()}
    # The step outputs, (T x groups) tensors, joined once per episode: (P*B, T, ...)
    for k, name in _OUT_FIELDS.items():
        traj[k] = _join([[getattr(o, name) for o in step] for step in outs])
    info = {k: _join([[o.info[k] for o in step] for step in outs]) for k in outs[0][0].info}
    return Trajectory(**traj, info=info)


_OUT_FIELDS = {
    "rewards": "reward",
    "expected_rewards": "expected_reward",
    "optimal_expected_rewards": "optimal_expected_reward",
    "feedback": "feedback",
}


def _cat(parts: list[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _join(steps: list[list[Tensor]]) -> Tensor:
    """T lists of per-group (rows_g, ...) tensors -> (rows, T, ...), in one concatenation."""
    flat = torch.cat([part for parts in steps for part in parts])  # (T*rows, ...) step-major
    return flat.reshape(len(steps), -1, *flat.shape[1:]).transpose(0, 1).contiguous()


def _rows(out: LearnerOutput, r: slice) -> LearnerOutput:
    return LearnerOutput(**{k: v[r] for k, v in vars(out).items()})


def by_member(traj: Trajectory, p: int) -> Trajectory:
    """(P*B, T, ...) fields -> (P, B, T, ...)."""
    split = tree_map(lambda x: x.reshape(p, -1, *x.shape[1:]), traj)
    split.info = {k: v.reshape(p, -1, *v.shape[1:]) for k, v in traj.info.items()}
    return split


def clip_per_member(pop: PopulationLearner, max_norm: float) -> Tensor:
    """Scale each member's gradients to total norm <= ``max_norm``; the (P,) norms before.

    The rule of ``torch.nn.utils.clip_grad_norm_``, per member: the 2-norm over all of the
    member's gradients, scaled by min(1, max_norm / (norm + 1e-6)).
    """
    grads = pop.grads()
    p = pop.size
    # Reductions along contiguous rows only: a member's norm is then computed the same way
    # whatever P (a reduction across rows, over dim 0, sums in another order).
    norms = torch.stack([g.reshape(p, -1).norm(dim=1) for g in grads], dim=1)  # (P, K)
    total = norms.norm(dim=1)  # (P,)
    pop.scale_grads((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


@dataclass
class StepResult:
    """One population update: per-member metrics (P,) and which losses were finite."""

    traj: Trajectory
    metrics: dict[str, Tensor]
    finite: Tensor  # (P,) bool


def population_step(
    pop: PopulationLearner,
    optimizers: list[torch.optim.Optimizer],
    signal: Signal,
    family: TaskFamily,
    members: list[Member],
    batch_size: int,
    progress: float,
    grad_clip: float | None,
    alive: Tensor | None = None,
    streams: str = "shared",
) -> StepResult:
    """One update for every member: a batch of episodes each, P losses, a step per member and pass.

    ``optimizers[i]`` holds ``pop.member_parameters(i)``. Members not ``alive`` (and members
    whose loss is not finite) are not stepped: their weights and optimizer state stay put.
    A one-pass signal (A2C, supervised) takes one step on the loss whose forward reuses the
    acting steps; a multi-pass one (``Signal.passes``) then a forward of its own per pass.
    The metrics are each pass's, averaged over the passes.
    """
    p = pop.size
    check(len(optimizers) == p, "optimizers", len(optimizers), f"{p}, one per member")
    tape = Tape()  # the acting steps, reused by the loss's forward (same weights, same bits)
    with torch.no_grad():
        traj = population_rollout(pop, family, members, batch_size, signal.explores, streams, tape)
    inputs = traj.inputs.reshape(p, batch_size, *traj.inputs.shape[1:])  # (P, B, T, D)
    split, head = by_member(traj, p), action_head(family)
    out, _ = pop(inputs, pop.initial_memory(batch_size), tape=tape)
    del tape  # its steps now live only in the first pass's graph, freed by that pass's backward
    behaviour = signal.behaviour(out, split, head)
    finite = torch.ones(p, dtype=torch.bool, device=inputs.device)
    ok = finite.clone() if alive is None else alive.clone()
    passes: list[dict[str, Tensor]] = []
    for k, part in enumerate(signal.passes(batch_size)):
        whole = part == slice(0, batch_size)
        if k > 0 or not whole:  # the weights moved, or a part of the batch: a forward of its own
            sub = inputs if whole else inputs[:, part]
            out, _ = pop(sub, pop.initial_memory(sub.shape[1]))
        extra = {"behaviour": {n: v[:, part] for n, v in behaviour.items()}} if behaviour else {}
        losses, metrics = signal.population_loss(
            out,
            split if whole else tree_map(lambda x, s=part: x[:, s], split),
            head,
            progress,
            **extra,
        )
        finite &= torch.isfinite(losses.detach())
        ok &= finite
        metrics["losses/total"] = losses.detach()
        if bool(ok.any()):
            metrics.update(_optimizer_step(pop, optimizers, losses, ok, grad_clip))
        passes.append(metrics)
        del out, losses
    # a metric is its mean over the update's passes (one pass: its value, bit for bit)
    metrics = {k: torch.stack([m[k] for m in passes if k in m]).mean(0) for k in passes[0]}
    metrics["train/mean_reward"] = traj.rewards.reshape(p, -1).mean(1)
    metrics["train/mean_regret"] = traj.regret.sum(1).reshape(p, -1).mean(1)
    return StepResult(traj, metrics, finite)


def _optimizer_step(
    pop: PopulationLearner,
    optimizers: list[torch.optim.Optimizer],
    losses: Tensor,
    ok: Tensor,
    grad_clip: float | None,
) -> dict[str, Tensor]:
    """Backward of the members ``ok``'s losses, per-member clipping, a step of each of them."""
    stepped = ok.tolist()
    for leaf in pop.leaves():
        leaf.grad = None
    torch.where(ok, losses, torch.zeros_like(losses)).sum().backward()
    if not all(stepped):  # zero the stopped members' rows (a NaN only ever stays in its row)
        for g in pop.grads():
            g[~ok] = 0.0
    metrics = {}
    if grad_clip:
        metrics["train/grad_norm"] = clip_per_member(pop, grad_clip)
    for i, opt in enumerate(optimizers):
        if stepped[i]:
            pop.attach_grads(i)
            opt.step()
    return metrics
