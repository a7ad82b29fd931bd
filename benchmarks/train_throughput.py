"""Training throughput: our batched A2C against a one-episode-at-a-time loop of the same model.

    .venv/bin/python benchmarks/train_throughput.py [--seconds 20] [--threads 1]

Both train an LSTM-48 actor-critic on the 2-armed dependent bandit (100 trials) with the same
loss (A2C, discount 0.9, value 0.05, entropy 0.05). Ours: the shared rollout loop over a batch
of episodes, then one whole-sequence forward and backward per update (``mesalab.studies.loop``;
``train_step`` trains the learner as a population of one, ``mesalab.studies.population``).
Peer:
the way most public meta-RL reimplementations train, one episode at a time, acting and keeping
the autograd graph step by step, one update per episode. Prints env-steps/s and the ratio.
A last row per batch size is the ceiling: the update's recurrent matmuls alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from mesalab.archs import Learner, LSTMCore
from mesalab.studies.device import keep_freed_memory
from mesalab.studies.loop import train_step
from mesalab.studies.signals import A2C
from mesalab.tasks import TaskDistribution, make_family, stream_generator


def ours(seconds: float, batch_size: int) -> float:
    """Env-steps/s of ``mesalab.studies.loop.train_step`` at ``batch_size`` episodes per update."""
    fam = make_family("dependent_bandit")
    dist = TaskDistribution(fam, "related")
    learner = Learner(LSTMCore(fam.input_dim, 48), fam.num_actions)
    opt = torch.optim.Adam(learner.parameters(), lr=1e-3)
    env, pol = stream_generator(0, "train"), stream_generator(0, "policy")
    train_step(learner, opt, A2C(), fam, dist, batch_size, env, pol, 0.0, 1.0, 0)  # warm-up
    steps, t0, u = 0, time.perf_counter(), 1
    while time.perf_counter() - t0 < seconds:
        train_step(learner, opt, A2C(), fam, dist, batch_size, env, pol, 0.0, 1.0, u)
        steps += batch_size * fam.num_trials
        u += 1
    return steps / (time.perf_counter() - t0)


class PeerAgent(nn.Module):
    """The same LSTM-48 actor-critic, written the usual single-episode way."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(5, 48, batch_first=True)
        self.pi, self.v = nn.Linear(48, 2), nn.Linear(48, 1)


def peer(seconds: float, trials: int = 100, gamma: float = 0.9) -> float:
    """Env-steps/s of a one-episode-at-a-time A2C loop (one update per episode)."""
    rng = np.random.default_rng(0)
    agent = PeerAgent()
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        p1 = rng.uniform()
        probs = (p1, 1.0 - p1)
        state = None
        prev_a, prev_r = None, 0.0
        logps, values, ents, rewards = [], [], [], []
        for t in range(trials):
            x = torch.zeros(1, 1, 5)
            if prev_a is not None:
                x[0, 0, prev_a] = 1.0
                x[0, 0, 2] = prev_r
            x[0, 0, 3] = t / trials
            x[0, 0, 4] = float(t == 0)
            h, state = agent.lstm(x, state)
            dist = torch.distributions.Categorical(logits=agent.pi(h[0, 0]))
            a = dist.sample()
            r = float(rng.uniform() < probs[int(a)])
            logps.append(dist.log_prob(a))
            ents.append(dist.entropy())
            values.append(agent.v(h[0, 0])[0])
            rewards.append(r)
            prev_a, prev_r = int(a), r
        returns, g = [], 0.0
        for r in reversed(rewards):
            g = r + gamma * g
            returns.append(g)
        ret = torch.tensor(returns[::-1])
        val = torch.stack(values)
        adv = (ret - val).detach()
        loss = (
            -(torch.stack(logps) * adv).mean()
            + 0.05 * 0.5 * (ret - val).pow(2).mean()
            - 0.05 * torch.stack(ents).mean()
        )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(agent.parameters(), 1.0)
        opt.step()
        steps += trials
    return steps / (time.perf_counter() - t0)


def matmul_ceiling(seconds: float, batch_size: int, hidden: int = 48, trials: int = 100) -> float:
    """Env-steps/s if an update did nothing but its recurrent matmuls (a ceiling for ``ours``).

    Per step: acting (one (B, H) @ (H, 4H); the loss's forward reuses it, ``archs.recurrence``)
    and the backward's two (the gradients of h and of the recurrent weights), at the LSTM's
    shapes, one thread.
    """
    h, w = torch.randn(1, batch_size, hidden), torch.randn(1, hidden, 4 * hidden)
    b, g = torch.randn(1, batch_size, 4 * hidden), torch.randn(1, batch_size, 4 * hidden)
    w_t = w.mT.contiguous()  # laid out as the backward's weight gradient reads it
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(trials):
            torch.baddbmm(b, h, w)
            torch.bmm(g, w_t), torch.bmm(h.mT, g)
        steps += batch_size * trials
    return steps / (time.perf_counter() - t0)


def main() -> None:
    """Measure both side by side and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", default="128,512,1024")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as every run does (MESALAB_KEEP_FREED=0: glibc's defaults)
    torch.manual_seed(0)
    base = peer(args.seconds)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.seconds:.0f} s per figure\n")
    print("| trainer | env-steps/s | ratio to peer |")
    print("|---|---:|---:|")
    print(f"| peer: one episode at a time | {base:,.0f} | 1.0x |")
    for b in (int(x) for x in args.batch_sizes.split(",")):
        fig = ours(args.seconds, b)
        print(f"| mesalab A2C, batch {b} | {fig:,.0f} | {fig / base:.1f}x |")
        cap = matmul_ceiling(args.seconds, b)
        print(
            f"| its recurrent matmuls alone (ceiling), batch {b} | {cap:,.0f} | {cap / base:.1f}x |"
        )


if __name__ == "__main__":
    main()
