"""Training signals (condition 2). Each turns one batch of rollouts into a loss.

All three share the rollout loop in ``mesalab.studies.loop``; they differ only in the loss:

- ``A2C``: advantage actor-critic over whole episodes (Wang et al. 2018): the reward enters
  the gradient through discounted returns;
- ``Supervised``: cross-entropy to the oracle's action (decision tasks, as in the
  Decision-Pretrained Transformer) or squared error to the revealed target (prediction
  tasks); the reward is an input but never enters the gradient;
- ``PPO``: A2C's returns and advantages with the clipped surrogate of Schulman et al. (2017),
  several passes (epochs, optionally minibatches of episodes) over each batch: a second RL
  signal, for learners that A2C trains unreliably;
- ``NoTraining``: random initial weights, never updated (the floor of every comparison).

A signal takes one optimizer step per batch unless it sets ``epochs`` or ``minibatches``
(``passes``). A multi-pass signal also fixes per-episode quantities at the weights that acted
(``behaviour``: PPO's old log-probabilities and advantages), handed to its loss on every pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from mesalab.archs.base import LearnerOutput
from mesalab.studies.policy.action_heads import ActionHead
from mesalab.tasks.base import check
from mesalab.tasks.rollout import Trajectory


def discounted_returns(rewards: Tensor, gamma: float) -> Tensor:
    """G_t = sum_{k>=t} gamma^(k-t) r_k within the episode (no bootstrap at its end), (..., T)."""
    t = rewards.shape[-1]
    idx = torch.arange(t, device=rewards.device)
    power = (idx[:, None] - idx[None, :]).clamp_min(0).to(rewards.dtype)  # (T, T): k - t
    weights = torch.where(idx[:, None] >= idx[None, :], gamma**power, torch.zeros_like(power))
    return rewards @ weights  # (..., T) @ (T_k, T_t) -> (..., T_t)


class Signal:
    """A training signal: what it does to the weights, and a loss on a batch of rollouts.

    The study's condition 2 is read from the two class attributes, never from a config's name:
    ``updates_weights`` (trained at all) and ``reward_in_gradient`` (trained by reward, i.e. by
    reinforcement learning). A variant of a signal (other coefficients, another config name)
    stands for the same condition.
    """

    name = "signal"
    updates_weights: ClassVar[bool] = True
    reward_in_gradient: ClassVar[bool] = False
    explores = False  # act stochastically on prediction tasks during training rollouts
    epochs = 1  # passes over each batch of rollouts
    minibatches = 1  # per pass, the batch's episodes split into this many optimizer steps

    @classmethod
    def condition(cls) -> str:
        """Which value of condition 2 this signal stands for: ``rl``, ``supervised`` or ``none``."""
        if not cls.updates_weights:
            return "none"
        return "rl" if cls.reward_in_gradient else "supervised"

    def loss(
        self,
        out: LearnerOutput,
        traj: Trajectory,
        head: ActionHead,
        progress: float,
        behaviour: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss and namespaced metrics; ``progress`` in [0, 1] drives schedules.

        ``behaviour``: as ``population_loss``'s, without the leading P.
        """
        extra = {"behaviour": {k: v[None] for k, v in behaviour.items()}} if behaviour else {}
        losses, metrics = self.population_loss(_one(out), _one(traj), head, progress, **extra)
        return losses[0], {k: float(v[0]) for k, v in metrics.items()}

    def population_loss(
        self, out: LearnerOutput, traj: Trajectory, head: ActionHead, progress: float
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One loss per member, (P,), and metrics (P,): fields carry a leading P.

        A signal whose ``behaviour`` is not empty also takes it as the keyword ``behaviour``
        (its tensors (P, B, T), cut to the episodes of the pass).
        """
        raise NotImplementedError

    def behaviour(
        self, out: LearnerOutput, traj: Trajectory, head: ActionHead
    ) -> dict[str, Tensor]:
        """Per-episode tensors (P, B, T) fixed at the weights that acted (``out`` is the
        learner's output on the rollout before any step); none for a one-pass signal."""
        return {}

    def solo_behaviour(
        self, out: LearnerOutput, traj: Trajectory, head: ActionHead
    ) -> dict[str, Tensor]:
        """``behaviour`` of one learner's output and trajectory, (B, T) tensors."""
        return {k: v[0] for k, v in self.behaviour(_one(out), _one(traj), head).items()}

    def passes(self, batch_size: int) -> list[slice]:
        """The episodes of each optimizer step in one update, in order: ``epochs`` times the
        batch cut into ``minibatches`` contiguous parts (the episodes are independent draws,
        so a fixed cut is as good as a shuffled one and draws no random numbers)."""
        check(
            1 <= self.minibatches <= batch_size,
            "training.signal.minibatches",
            self.minibatches,
            f"in [1, batch_size={batch_size}]",
        )
        edges = [round(i * batch_size / self.minibatches) for i in range(self.minibatches + 1)]
        parts = [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        return parts * self.epochs


def _one(obj: LearnerOutput | Trajectory) -> LearnerOutput | Trajectory:
    """A population of one: a leading 1 on every tensor field."""
    lifted = dataclasses.replace(
        obj, **{k: v[None] for k, v in vars(obj).items() if isinstance(v, Tensor)}
    )
    if isinstance(obj, Trajectory):
        lifted.info = {k: v[None] for k, v in obj.info.items()}
    return lifted


def _member(obj: LearnerOutput | Trajectory, i: int) -> LearnerOutput | Trajectory:
    """Member i's fields (the leading P dropped)."""
    picked = dataclasses.replace(
        obj, **{k: v[i] for k, v in vars(obj).items() if isinstance(v, Tensor)}
    )
    if isinstance(obj, Trajectory):
        picked.info = {k: v[i] for k, v in obj.info.items()}
    return picked


class A2C(Signal):
    """Advantage actor-critic with an optionally annealed entropy bonus."""

    name = "rl"
    reward_in_gradient = True
    explores = True

    def __init__(
        self,
        gamma: float = 0.9,
        value_coef: float = 0.05,
        entropy_coef: float = 0.05,
        entropy_final: float | None = None,
        normalize_advantages: bool = False,
        gae_lambda: float = 1.0,
    ) -> None:
        check(0.0 <= gamma <= 1.0, "training.signal.gamma", gamma, "in [0, 1]")
        check(0.0 <= gae_lambda <= 1.0, "training.signal.gae_lambda", gae_lambda, "in [0, 1]")
        check(value_coef >= 0, "training.signal.value_coef", value_coef, ">= 0")
        check(entropy_coef >= 0, "training.signal.entropy_coef", entropy_coef, ">= 0")
        if entropy_final is not None:
            check(entropy_final >= 0, "training.signal.entropy_final", entropy_final, ">= 0")
        self.gamma, self.value_coef = gamma, value_coef
        self.entropy_coef, self.entropy_final = entropy_coef, entropy_final
        self.normalize_advantages = normalize_advantages
        self.gae_lambda = gae_lambda

    def entropy_weight(self, progress: float) -> float:
        """Linear anneal from ``entropy_coef`` to ``entropy_final`` (constant when None)."""
        if self.entropy_final is None:
            return self.entropy_coef
        return self.entropy_coef + (self.entropy_final - self.entropy_coef) * min(progress, 1.0)

    def advantages(self, rewards: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Advantages and value targets, each (B, T), from rewards and detached values.

        With ``gae_lambda = 1`` the advantage is the Monte Carlo G_t - V(h_t) and the value
        target is G_t. With lambda < 1 the advantage sums the discounted TD errors
        delta_t = r_t + gamma V(h_{t+1}) - V(h_t) with weight (gamma lambda)^k (Schulman et
        al. 2016), V = 0 after the episode's last trial, and the value target is the
        lambda-return A_t + V(h_t). The objective is still the gamma-discounted return; lambda
        trades the variance of the Monte Carlo return for the critic's bias.
        """
        if self.gae_lambda >= 1.0:
            returns = discounted_returns(rewards, self.gamma)
            return returns - value, returns
        next_v = torch.cat([value[:, 1:], torch.zeros_like(value[:, :1])], dim=1)
        delta = rewards + self.gamma * next_v - value
        adv = discounted_returns(delta, self.gamma * self.gae_lambda)
        return adv, adv + value

    def population_loss(
        self,
        out: LearnerOutput,
        traj: Trajectory,
        head: ActionHead,
        progress: float,
        behaviour: dict[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Policy term (``policy_term``), value regression, entropy bonus; per member.

        The advantages and value targets come from ``behaviour`` when a multi-pass subclass
        fixed them at the acting weights, else from this output's values.
        """
        value = out.value  # (P, B, T)
        if behaviour:
            adv, returns = behaviour["advantages"], behaviour["returns"]
        else:
            adv, returns = self.advantages(traj.rewards, value.detach())
        per_member = (1, 2)  # every mean is over one member's (B, T)
        if self.normalize_advantages:
            mu = adv.mean(dim=per_member, keepdim=True)
            adv = (adv - mu) / (adv.std(dim=per_member, keepdim=True) + 1e-8)
        logp, entropy = head.log_prob_entropy(out, traj.actions)  # (P, B, T) each
        entropy = entropy.mean(dim=per_member)
        policy_loss, diagnostics = self.policy_term(logp, adv, behaviour)
        value_loss = 0.5 * (returns - value).pow(2).mean(dim=per_member)
        ent_w = self.entropy_weight(progress)
        loss = policy_loss + self.value_coef * value_loss - ent_w * entropy  # (P,)
        return loss, {
            "losses/policy_loss": policy_loss.detach(),
            "losses/value_loss": value_loss.detach(),
            "losses/entropy": entropy.detach(),
            **diagnostics,
            "train/entropy_coef": torch.full_like(loss.detach(), ent_w),
        }

    def policy_term(
        self, logp: Tensor, adv: Tensor, behaviour: dict[str, Tensor] | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The policy-gradient loss per member, (P,), from log pi(a|h) and advantages (P, B, T)."""
        return -(logp * adv).mean(dim=(1, 2)), {}


class PPO(A2C):
    """A2C's returns and advantages with a clipped surrogate, several passes per batch.

    The advantages, value targets and log-probabilities of the taken actions are fixed at the
    weights that acted (``behaviour``); each pass maximises
    min(r A, clip(r, 1 - clip, 1 + clip) A) with r = pi(a | h) / pi_old(a | h) (Schulman et
    al. 2017), regresses the value on the fixed targets and adds the entropy bonus. The first
    pass starts at the acting weights (r = 1): with ``epochs = minibatches = 1`` and advantage
    normalisation off, PPO's gradient is A2C's. Recurrent learners see whole episodes: a
    minibatch is a set of episodes, never a cut through one.
    """

    name = "ppo"

    def __init__(
        self, clip: float = 0.2, epochs: int = 4, minibatches: int = 1, **a2c: Any
    ) -> None:
        """``a2c``: A2C's arguments (config validation follows them to A2C's signature)."""
        super().__init__(**a2c)
        check(clip > 0, "training.signal.clip", clip, "> 0")
        check(epochs >= 1, "training.signal.epochs", epochs, ">= 1")
        check(minibatches >= 1, "training.signal.minibatches", minibatches, ">= 1")
        self.clip, self.epochs, self.minibatches = clip, epochs, minibatches

    def behaviour(
        self, out: LearnerOutput, traj: Trajectory, head: ActionHead
    ) -> dict[str, Tensor]:
        """The acting policy's log-probabilities, advantages and value targets, (P, B, T)."""
        adv, returns = self.advantages(traj.rewards, out.value.detach())
        logp, _ = head.log_prob_entropy(out, traj.actions)
        return {"logp": logp.detach(), "advantages": adv, "returns": returns}

    def policy_term(
        self, logp: Tensor, adv: Tensor, behaviour: dict[str, Tensor] | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The clipped surrogate per member, and how far this pass moved from the acting policy."""
        check(behaviour is not None, "behaviour", None, "PPO's fixed per-episode tensors")
        per_member = (1, 2)
        log_ratio = logp - behaviour["logp"]
        ratio = log_ratio.exp()
        clipped = ratio.clamp(1.0 - self.clip, 1.0 + self.clip)
        loss = -torch.minimum(ratio * adv, clipped * adv).mean(dim=per_member)
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean(dim=per_member)  # Schulman's k3 estimate
            clip_fraction = ((ratio - 1).abs() > self.clip).float().mean(dim=per_member)
        return loss, {"losses/approx_kl": approx_kl, "losses/clip_fraction": clip_fraction}


class Supervised(Signal):
    """Imitate the oracle (decision) or regress on the revealed target (prediction)."""

    name = "supervised"

    def population_loss(
        self, out: LearnerOutput, traj: Trajectory, head: ActionHead, progress: float
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The head's supervised loss (oracle action, or the revealed target) per member."""
        p = out.logits.shape[0]
        loss = torch.stack(
            [head.supervised_loss(_member(out, i), _member(traj, i)) for i in range(p)]
        )
        return loss, {"losses/supervised_loss": loss.detach()}


class NoTraining(Signal):
    """Random initial weights, never updated."""

    name = "none"
    updates_weights = False
