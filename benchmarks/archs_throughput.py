"""Throughput of every core at matched parameter counts, on the CPU; prints a markdown table.

Training: forward plus backward on whole sequences (B, T) from fresh memory, loss on all heads,
in env-steps/s = B*T/s. Acting: T calls of one step each (T = 1, memory carried, inference
mode), in env-steps/s, and the time of step 10 and of the last step. Our transformer (GPT-2
with a key-value cache) is set beside ``torch.nn.TransformerEncoder`` of the same size (pre-LN,
GELU, learned positions, causal mask), which has no cache and so re-reads the whole context at
every acting step: quadratic attention. Our transformer's acting step (plain tensor operations on
GPT-2's weights) is also set beside the same model acting through ``GPT2Model``'s own cached
forward, the path it replaced; likewise our Mamba (plain tensor operations on MambaModel's
weights) beside ``MambaModel``'s own forward, transformers' pure-torch path: whole sequences,
and cached steps with the cache object carried as the memory, as in generation. The machine
is shared, so every figure is the best of several repeats (the least disturbed).

    python benchmarks/archs_throughput.py --threads 1
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import Tensor, nn
from transformers import DynamicCache

from mesalab.archs import Learner, MambaCore, TransformerCore, matched_widths
from mesalab.archs.base import Core, Memory
from mesalab.archs.budget import config_cores


class TorchEncoderCore(Core):
    """Peer: GPT-2's shape from ``nn.TransformerEncoder``; no cache, it re-reads the context."""

    def __init__(
        self,
        input_dim: int,
        d_model: int,
        num_layers: int,
        num_heads: int,
        d_inner: int,
        max_context: int,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(input_dim, d_model)
        self.pos = nn.Embedding(max_context, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, d_inner, dropout=0.0, activation="gelu", batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.out_dim, self.memory = d_model, True

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """The context so far, (B, 0, D) (the inputs themselves: there is no cache)."""
        return torch.zeros(batch_size, 0, self.embed.in_features, device=device)

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """Re-run the whole context and return the features of the new steps."""
        ctx = torch.cat([memory, x], dim=1)  # (B, L+T, D)
        n = ctx.shape[1]
        h = self.embed(ctx) + self.pos(torch.arange(n, device=x.device))
        mask = nn.Transformer.generate_square_subsequent_mask(n, device=x.device)
        out = self.encoder(h, mask=mask, is_causal=True)
        return out[:, -x.shape[1] :], ctx


class GPT2StepCore(TransformerCore):
    """Peer: the same model acting through ``GPT2Model``'s own cached forward at every step."""

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """``GPT2Model`` for any T, one step included."""
        positions = self._positions(memory["pos"], x.shape[1])
        return self._gpt_forward(self.embed(x), positions, memory)


class MambaModelStepCore(MambaCore):
    """Peer: the same Mamba through ``MambaModel``'s own forward, its cache object kept."""

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """No cache yet: ``MambaModel`` allocates one at the first step."""
        return None

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """``MambaModel`` for any T, with its own cache (updated in place) as the memory."""
        cache = DynamicCache(config=self.config) if memory is None else memory
        out = self.mamba(inputs_embeds=self.embed(x), cache=cache, use_cache=True)
        return out.last_hidden_state, cache


def time_training(learner: Learner, b: int, t: int, d: int, repeats: int) -> float:
    """Best env-steps/s of forward plus backward on whole sequences."""
    x = torch.randn(b, t, d)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        out, _ = learner(x, learner.initial_memory(b))
        loss = out.logits.sum() + out.value.sum() + out.mean.pow(2).sum()
        loss.backward()
        learner.zero_grad(set_to_none=True)
        if i:  # the first repeat warms up
            times.append(time.perf_counter() - start)
    return b * t / min(times)


@torch.inference_mode()
def time_acting(learner: Learner, b: int, t: int, d: int, repeats: int) -> tuple[float, list]:
    """Best env-steps/s over T one-step calls, and the best time of each step (s)."""
    x = torch.randn(b, t, d)
    totals, per_step = [], []
    for i in range(repeats + 1):
        mem, steps = learner.initial_memory(b), []
        for s in range(t):
            start = time.perf_counter()
            _, mem = learner(x[:, s : s + 1], mem)
            steps.append(time.perf_counter() - start)
        if i:
            totals.append(sum(steps))
            per_step.append(steps)
    return b * t / min(totals), [min(col) for col in zip(*per_step, strict=True)]


def main() -> None:
    """Measure every core and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=int, default=None, help="default: the LSTM-48 learner")
    parser.add_argument("--input-dim", type=int, default=5)
    parser.add_argument("--num-actions", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, t, d = args.batch, args.steps, args.input_dim
    widths = matched_widths(args.budget, d, args.num_actions)
    rows = {}
    cores = config_cores()  # every arch config: a new arch joins the table by its config alone
    learners = {n: Learner(cores[n](d, **kw), args.num_actions) for n, kw in widths.items()}
    tkw = widths["transformer"]
    learners["transformer (eager)"] = Learner(
        TransformerCore(d, **tkw, attn_implementation="eager"), args.num_actions
    )
    learners["torch encoder (peer)"] = Learner(TorchEncoderCore(d, **tkw), args.num_actions)
    learners["GPT2Model step (peer)"] = Learner(GPT2StepCore(d, **tkw), args.num_actions)
    learners["GPT2Model step (peer)"].load_state_dict(learners["transformer"].state_dict())
    mkw = widths["mamba"]
    learners["MambaModel step (peer)"] = Learner(MambaModelStepCore(d, **mkw), args.num_actions)
    learners["MambaModel step (peer)"].load_state_dict(learners["mamba"].state_dict())
    for name, learner in learners.items():
        train = time_training(learner, b, t, d, args.repeats)
        act, steps = time_acting(learner, b, t, d, args.repeats)
        rows[name] = (learner.num_parameters(), train, act, steps[9], steps[t - 1])

    print(f"batch {b}, {t} steps, {args.threads} thread(s), torch {torch.__version__}, ", end="")
    print(f"best of {args.repeats} after one warm-up\n")
    print("| core | width | params | train env-steps/s | act env-steps/s "
          f"| act ms @ step 10 | act ms @ step {t} | step {t} / step 10 |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, (params, train, act, s10, s100) in rows.items():
        kw = widths.get(name, mkw if name.startswith("Mamba") else tkw)
        width = ", ".join(f"{k}={v}" for k, v in kw.items() if k != "max_context")
        print(f"| {name} | {width} | {params:,} | {train:,.0f} | {act:,.0f} | {s10 * 1e3:.2f} "
              f"| {s100 * 1e3:.2f} | {s100 / s10:.2f} |")  # fmt: skip
    peer = rows["torch encoder (peer)"]
    print(f"\n| speed ratio to torch encoder (>1: ours faster) | train | act | act @ step 10 "
          f"| act @ step {t} |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for name in ("transformer", "transformer (eager)"):
        ours = rows[name]
        print(f"| {name} | {ours[1] / peer[1]:.2f} | {ours[2] / peer[2]:.2f} "
              f"| {peer[3] / ours[3]:.2f} | {peer[4] / ours[4]:.2f} |")  # fmt: skip
    print(f"\n| speed ratio to the library's own forward (>1: ours faster) | train | act "
          f"| act @ step 10 | act @ step {t} |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for name, peer_name in (("transformer", "GPT2Model"), ("mamba", "MambaModel")):
        ours, hf = rows[name], rows[f"{peer_name} step (peer)"]
        print(f"| {name} vs {peer_name} | {ours[1] / hf[1]:.2f} | {ours[2] / hf[2]:.2f} "
              f"| {hf[3] / ours[3]:.2f} | {hf[4] / ours[4]:.2f} |")  # fmt: skip
    lstm = rows["lstm"]
    print("\n| train speed ratio to the LSTM (>1: faster than the LSTM) |   |\n|---|---:|")
    for name in widths:
        print(f"| {name} | {rows[name][1] / lstm[1]:.2f} |")


if __name__ == "__main__":
    main()
