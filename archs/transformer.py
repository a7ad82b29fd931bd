"""Transformer core: GPT-2 from ``transformers``, built from a config (never downloaded).

A linear layer embeds each step's input; ``GPT2Model`` runs on ``inputs_embeds`` with learned
positions, causal attention, no dropout (RL wants the same function at acting and training time).

Memory is the key-value cache, kept as plain tensors with leading B so that resets are per row:
``keys``/``values`` (one (B, heads, L, head_dim) tensor per layer), ``valid`` (B, L) marks the
cache entries a row may attend to, and ``pos`` (B,) is each row's next position. A row that is
reset keeps its stale entries but marks them invalid (like left padding) and restarts at
position 0; entries invalid for every row are dropped at reset, so L never exceeds
``max_context``. The context covers everything since the last reset: a row that would pass
``max_context`` positions raises a ValueError naming it.

``attn_implementation``: "sdpa" (default) trains whole sequences about twice as fast as "eager"
on this CPU and acts as fast (benchmarks/archs_throughput.py); both compute the same function.

Acting (one step per call, T = 1) takes a decode path that runs GPT-2's own blocks and weights
as plain tensor operations on the cache, without ``GPT2Model``'s per-call machinery (cache
objects, mask building, module dispatch), which costs more than the arithmetic of so small a
model: it computes the same function (tested against ``GPT2Model``) 1.6-2x faster
(benchmarks/archs_throughput.py, batch 256 and 32). Its cache grows in place into a buffer of
``max_context`` entries (``archs.cache.append``), not by a concatenation per step.

``memory=False`` is an attention window of one token: every step is its own context of
length one, at its true position (so only the window changes, not the positional code).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from mesalab.archs.base import Core, Memory, check, check_positive
from mesalab.archs.cache import append

if TYPE_CHECKING:
    from transformers import GPT2Config

# ``transformers`` is imported when a core is built, not with this module: importing it takes
# seconds, which every command and process that never builds a transformer would pay.


@functools.cache
def _cache_arg() -> str:
    """GPT2Model's cache argument and output field: ``past_key_values`` before transformers
    renamed it ``cache`` within 5.x (the old name warns from 5.24); whichever this install takes.
    """
    from transformers import GPT2Model

    params = inspect.signature(GPT2Model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class TransformerCore(Core):
    """GPT-2 over the episode's steps, with a per-row key-value cache for acting."""

    fine_width = "d_inner"  # d_model moves in steps of the head count; d_inner closes the gap

    @classmethod
    def matched_kwargs(cls, width: int) -> dict[str, Any]:
        """Two layers of two heads; ``d_model`` is twice the width."""
        return {"num_layers": 2, "num_heads": 2, "max_context": 256, "d_model": 2 * width}

    def __init__(
        self,
        input_dim: int,
        d_model: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        max_context: int = 256,
        d_inner: int | None = None,
        attn_implementation: str = "sdpa",
        memory: bool = True,
    ) -> None:
        super().__init__()
        check_positive("input_dim", input_dim)
        check_positive("d_model", d_model)
        check_positive("num_layers", num_layers)
        check_positive("num_heads", num_heads)
        check(d_model % num_heads == 0, "num_heads", num_heads, f"a divisor of d_model={d_model}")
        check_positive("max_context", max_context)
        if d_inner is not None:
            check_positive("d_inner", d_inner)
        check(
            attn_implementation in ("eager", "sdpa"),
            "attn_implementation",
            attn_implementation,
            "'eager' or 'sdpa'",
        )
        check(isinstance(memory, bool), "memory", memory, "a bool")
        from transformers import GPT2Config, GPT2Model

        self.config: GPT2Config = GPT2Config(
            vocab_size=1,  # fed inputs_embeds: the token table is unused (and frozen below)
            n_positions=max_context,
            n_embd=d_model,
            n_layer=num_layers,
            n_head=num_heads,
            n_inner=d_inner,
            activation_function="gelu",  # exact GELU: cheaper here than GPT-2's tanh form
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=None,
            eos_token_id=None,
            attn_implementation=attn_implementation,
        )
        self.embed = nn.Linear(input_dim, d_model)
        self.gpt = GPT2Model(self.config)
        self.gpt.wte.weight.requires_grad_(False)
        self.d_model = self.out_dim = d_model
        self.num_layers, self.num_heads, self.max_context = num_layers, num_heads, max_context
        self.memory = memory

    def initial_memory(self, batch_size: int, device: torch.device | str = "cpu") -> Memory:
        """An empty cache at position 0 (without memory, only the position)."""
        pos = torch.zeros(batch_size, dtype=torch.long, device=device)
        if not self.memory:
            return {"pos": pos}
        hd = self.d_model // self.num_heads
        empty = torch.zeros(batch_size, self.num_heads, 0, hd, device=device)
        layers = tuple(empty.clone() for _ in range(self.num_layers))
        return {
            "keys": layers,
            "values": tuple(e.clone() for e in layers),
            "valid": torch.zeros(batch_size, 0, dtype=torch.bool, device=device),
            "pos": pos,
        }

    def reset_memory(self, memory: Memory, mask: Tensor) -> Memory:
        """Masked rows restart at position 0 with every cache entry invalid."""
        pos = torch.where(mask, torch.zeros_like(memory["pos"]), memory["pos"])
        if not self.memory:
            return {"pos": pos}
        return _compact({**memory, "valid": memory["valid"] & ~mask[:, None], "pos": pos})

    def _positions(self, pos: Tensor, t: int) -> Tensor:
        last = int(pos.max()) + t if pos.numel() else t
        check(
            last <= self.max_context,
            "max_context",
            self.max_context,
            f">= {last} here: the context since the last reset has reached {last} positions, and "
            "the whole task may need more (a run checks max_context against the task's length "
            "before training; reset memory between episodes, or build a larger max_context)",
        )
        return pos[:, None] + torch.arange(t, device=pos.device)  # (B, T)

    def forward(self, x: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """(B, T, D) -> (B, T, d_model), attending to the cache and causally within T."""
        b, t, _ = x.shape
        positions = self._positions(memory["pos"], t)  # (B, T)
        emb = self.embed(x)  # (B, T, d_model)
        if t == 1:
            return self._decode_step(emb, positions, memory)
        return self._gpt_forward(emb, positions, memory)

    def _gpt_forward(self, emb: Tensor, positions: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """``GPT2Model`` on embedded steps (B, T, d_model) at their positions, with the cache."""
        b, t, _ = emb.shape
        if not self.memory:
            flat = rearrange(emb, "b t d -> (b t) 1 d")  # (B*T, 1, d_model): contexts of one
            out = self.gpt(inputs_embeds=flat, position_ids=rearrange(positions, "b t -> (b t) 1"))
            hidden = rearrange(out.last_hidden_state, "(b t) 1 d -> b t d", b=b)  # (B, T, d_model)
            return hidden, {"pos": positions[:, -1] + 1}
        from transformers import DynamicCache

        valid = torch.cat([memory["valid"], memory["valid"].new_ones(b, t)], dim=1)
        if memory["valid"].shape[1]:
            cache = DynamicCache(
                ddp_cache_data=list(zip(memory["keys"], memory["values"], strict=True))
            )
        else:
            cache = DynamicCache(config=self.config)
        out = self.gpt(
            inputs_embeds=emb,
            **{_cache_arg(): cache},
            attention_mask=valid.long(),  # (B, L+T); causality within T is added by GPT2Model
            position_ids=positions,
            use_cache=True,
        )
        layers = getattr(out, _cache_arg()).layers
        new_memory = {
            "keys": tuple(layer.keys for layer in layers),
            "values": tuple(layer.values for layer in layers),
            "valid": valid,
            "pos": positions[:, -1] + 1,
        }
        return out.last_hidden_state, new_memory

    def _decode_step(self, emb: Tensor, positions: Tensor, memory: Memory) -> tuple[Tensor, Memory]:
        """One step per row through GPT-2's blocks, the cache as plain tensors.

        The same operations as ``GPT2Model`` with ``inputs_embeds`` and ``position_ids``: learned
        positions added, per block pre-LN attention over the valid cache entries plus the new
        one (scaled by 1/sqrt(head_dim)) and a pre-LN GELU MLP, each with a residual; then the
        final LayerNorm. Dropout is 0 by construction.
        """
        gpt, d, nh = self.gpt, self.d_model, self.num_heads
        b = emb.shape[0]
        h = emb + F.embedding(positions, gpt.wpe.weight)  # (B, 1, d)
        cap = self.max_context  # the buffer a cache grows into in place (archs.cache)
        if self.memory:
            valid = append(memory["valid"], memory["valid"].new_ones(b, 1), 1, cap)
            mask = valid[:, None, None, :]  # (B, 1, 1, L+1)
        keys, values = [], []
        for i, block in enumerate(gpt.h):
            a = F.layer_norm(h, (d,), block.ln_1.weight, block.ln_1.bias, block.ln_1.eps)
            qkv = torch.addmm(block.attn.c_attn.bias, a[:, 0], block.attn.c_attn.weight)
            # (B, d) -> (B, heads, 1, head_dim) each
            q, k, v = (rearrange(z, "b (h e) -> b h 1 e", h=nh) for z in qkv.split(d, dim=1))
            if self.memory:
                k = append(memory["keys"][i], k, 2, cap)  # (B, heads, L+1, head_dim)
                v = append(memory["values"][i], v, 2, cap)
                keys.append(k)
                values.append(v)
                att = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, scale=block.attn.scaling
                )
            else:
                att = v  # a context of one: all attention on the step itself
            att = rearrange(att, "b h 1 e -> b (h e)")  # (B, d): the heads side by side
            att = torch.addmm(block.attn.c_proj.bias, att, block.attn.c_proj.weight)
            h = h + att[:, None]
            m = F.layer_norm(h, (d,), block.ln_2.weight, block.ln_2.bias, block.ln_2.eps)[:, 0]
            m = F.gelu(torch.addmm(block.mlp.c_fc.bias, m, block.mlp.c_fc.weight))
            h = h + torch.addmm(block.mlp.c_proj.bias, m, block.mlp.c_proj.weight)[:, None]
        out = F.layer_norm(h, (d,), gpt.ln_f.weight, gpt.ln_f.bias, gpt.ln_f.eps)
        pos = positions[:, -1] + 1
        if not self.memory:
            return out, {"pos": pos}
        return out, {"keys": tuple(keys), "values": tuple(values), "valid": valid, "pos": pos}


def _compact(memory: Memory) -> Memory:
    """Drop the oldest cache entries that no row may attend to any more."""
    valid = memory["valid"]
    alive = valid.any(dim=0)  # (L,)
    if valid.shape[1] == 0 or bool(alive[0]):
        return memory
    first = int(alive.int().argmax()) if bool(alive.any()) else valid.shape[1]
    return {
        "keys": tuple(k[:, :, first:] for k in memory["keys"]),
        "values": tuple(v[:, :, first:] for v in memory["values"]),
        "valid": valid[:, first:],
        "pos": memory["pos"],
    }
