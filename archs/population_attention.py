"""Population versions of the attention cores: slot memory and the GPT-2 transformer.

As in ``mesalab.archs.population_cores``: inputs (P, B, T, D), memory leaves with leading
(P, B), weights read from the solo learner's parameter names with a leading P, and every
linear map one batched matmul over P. The attention itself is per row, so the members are
folded into the batch (P*B) for it.

The transformer is GPT-2 (``transformers.GPT2Model``) written out as batched tensor operations,
training and acting alike, on the same weights: learned positions added to the embedded input,
per block pre-LN attention (scaled by 1/sqrt(head_dim), causal within the call, over the valid
cache entries before it) and a pre-LN GELU MLP, each with a residual, then the final LayerNorm;
dropout is 0 by construction (tested against ``GPT2Model``). The cache is plain tensors, as in
``TransformerCore``'s decode step; ``memory=False`` is an attention window of one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mesalab.archs.base import Memory, check
from mesalab.archs.cache import append, keep
from mesalab.archs.population_cores import Params, PopulationCore, fold, pop_linear
from mesalab.archs.recurrence import Tape

# Torch reshapes, not einops, with shapes in comments: these run at every acting step and
# update, where einops' per-call Python work is not free (the issue 19 report compares).


def pop_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """LayerNorm over the last dim of (P, N, d) with per-member affine weights (P, d)."""
    return torch.addcmul(
        bias[:, None, :], F.layer_norm(x, x.shape[-1:], eps=eps), weight[:, None, :]
    )


def split_heads(x: Tensor, p: int, b: int, heads: int) -> Tensor:
    """(P, B*T, d) -> (P*B, heads, T, d/heads)."""
    t = x.shape[1] // b
    return x.reshape(p * b, t, heads, -1).transpose(1, 2)


def merge_heads(x: Tensor, p: int) -> Tensor:
    """(P*B, heads, T, d/heads) -> (P, B*T, d)."""
    pb, _, t, _ = x.shape
    return x.transpose(1, 2).reshape(p, pb // p * t, -1)


class PopulationSlot(PopulationCore):
    """``SlotCore``: controller, keys, values and output batched over P; the read per row."""

    def prepare(self, params: Params) -> dict[str, Tensor]:
        """Transposed weights; query, key and value as one matmul."""
        qkv = [self.param(params, f"{n}.weight") for n in ("query", "key", "value")]
        return {
            "c.w": self.param(params, "controller.0.weight").mT,
            "c.b": self.param(params, "controller.0.bias"),
            "qkv.w": torch.cat(qkv, dim=1).mT,  # (P, W, 3S)
            "qkv.b": torch.cat(
                [self.param(params, f"{n}.bias") for n in ("query", "key", "value")], 1
            ),
            "o.w": self.param(params, "output.0.weight").mT,
            "o.b": self.param(params, "output.0.bias"),
        }

    def initial_memory(self, p: int, b: int, device: torch.device | str) -> Memory:
        """No slots written yet, leading (P, B)."""
        mem = self.core.initial_memory(p * b, device)
        return {k: v.reshape(p, b, *v.shape[1:]) for k, v in mem.items()}  # (P, B, ...)

    def forward(
        self, w: dict[str, Tensor], x: Tensor, memory: Memory, tape: Tape | None = None
    ) -> tuple[Tensor, Memory]:
        """(P, B, T, D) -> (P, B, T, W) through ``SlotCore.read`` with P folded into B."""
        flat, (p, b, t) = fold(x)
        h = torch.relu(pop_linear(flat, w["c.w"], w["c.b"]))  # (P, B*T, W)
        q, k, v = pop_linear(h, w["qkv.w"], w["qkv.b"]).split(self.core.slot_dim, dim=-1)
        heads = self.core.num_heads
        # reshapes keep the slot buffers appendable in place (archs.cache)
        folded = {key: keep(val.flatten(0, 1), val) for key, val in memory.items()}  # (P*B, ...)
        read, new = self.core.read(*(split_heads(z, p, b, heads) for z in (q, k, v)), folded)
        read = merge_heads(read, p)  # (P, B*T, S)
        out = torch.relu(pop_linear(torch.cat([h, read], dim=-1), w["o.w"], w["o.b"]))
        new = {k: keep(v.reshape(p, b, *v.shape[1:]), v) for k, v in new.items()}  # (P, B, ...)
        return out.reshape(p, b, t, -1), new  # (P, B, T, W)


class PopulationTransformer(PopulationCore):
    """``TransformerCore``: GPT-2's blocks as batched tensor operations; the cache per row."""

    def prepare(self, params: Params) -> dict[str, Tensor]:
        """The weights under short names (GPT-2's Conv1D weights are already (in, out))."""
        pre = "gpt."
        w = {
            "emb.w": self.param(params, "embed.weight").mT,
            "emb.b": self.param(params, "embed.bias"),
            "wpe": self.param(params, pre + "wpe.weight"),
            "lnf.w": self.param(params, pre + "ln_f.weight"),
            "lnf.b": self.param(params, pre + "ln_f.bias"),
        }
        for i in range(self.core.num_layers):
            for part in ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                for kind in ("weight", "bias"):
                    w[f"{i}.{part}.{kind}"] = self.param(params, f"{pre}h.{i}.{part}.{kind}")
        return w

    def initial_memory(self, p: int, b: int, device: torch.device | str) -> Memory:
        """An empty cache at position 0 (without memory, only the position), leading (P, B)."""
        mem = self.core.initial_memory(p * b, device)
        return _unfold(mem, p, b)

    def forward(
        self, w: dict[str, Tensor], x: Tensor, memory: Memory, tape: Tape | None = None
    ) -> tuple[Tensor, Memory]:
        """(P, B, T, D) -> (P, B, T, d_model), attending to the cache and causally within T."""
        core, eps = self.core, self.core.config.layer_norm_epsilon
        flat, (p, b, t) = fold(x)
        d, nh = core.d_model, core.num_heads
        pos = memory["pos"]  # (P, B)
        last = int(pos.max()) + t if pos.numel() else t
        check(
            last <= core.max_context,
            "max_context",
            core.max_context,
            f">= {last}, the context since the last reset",
        )
        positions = pos[..., None] + torch.arange(t, device=x.device)  # (P, B, T)
        member = torch.arange(p, device=x.device)[:, None, None]
        h = pop_linear(flat, w["emb.w"], w["emb.b"]) + w["wpe"][member, positions].reshape(
            p, b * t, d
        )
        cap = core.max_context  # the buffer a cache grows into in place (archs.cache)
        if core.memory:
            valid = append(memory["valid"], memory["valid"].new_ones(p, b, t), 2, cap)
            held = memory["valid"].shape[2]
            # No mask where none is needed (a fresh sequence is plainly causal; a step whose
            # cache is all valid sees all of it, as in every training rollout): the mask
            # costs more than the attention at these sizes. Rows never see other rows, so the
            # choice does not make a member depend on the others.
            mask, causal = None, held == 0 and t > 1
            if not causal and not (t == 1 and bool(memory["valid"].all())):
                tri = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()  # (T, T)
                mask = torch.cat(
                    [
                        memory["valid"].reshape(p * b, 1, 1, held).expand(p * b, 1, t, held),
                        tri.expand(p * b, 1, t, t),
                    ],
                    dim=3,
                )  # (P*B, 1, T, L+T)
        keys, values = [], []
        for i in range(core.num_layers):
            a = pop_layer_norm(h, w[f"{i}.ln_1.weight"], w[f"{i}.ln_1.bias"], eps)
            qkv = pop_linear(a, w[f"{i}.attn.c_attn.weight"], w[f"{i}.attn.c_attn.bias"])
            q, k, v = (split_heads(z, p, b, nh) for z in qkv.split(d, dim=-1))  # (P*B, nh, T, hd)
            if core.memory:
                # (P, B, nh, L+T, hd), the cache grown in place; folded (P*B, ...) for attention
                keys.append(append(memory["keys"][i], k.reshape(p, b, *k.shape[1:]), 3, cap))
                values.append(append(memory["values"][i], v.reshape(p, b, *v.shape[1:]), 3, cap))
                k, v = keys[-1].flatten(0, 1), values[-1].flatten(0, 1)  # (P*B, nh, L+T, hd)
                att = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, is_causal=causal, scale=(d // nh) ** -0.5
                )
            else:
                att = v  # a context of one: all attention on the step itself
            att = merge_heads(att, p)  # (P, B*T, d)
            h = h + pop_linear(att, w[f"{i}.attn.c_proj.weight"], w[f"{i}.attn.c_proj.bias"])
            m = pop_layer_norm(h, w[f"{i}.ln_2.weight"], w[f"{i}.ln_2.bias"], eps)
            m = F.gelu(pop_linear(m, w[f"{i}.mlp.c_fc.weight"], w[f"{i}.mlp.c_fc.bias"]))
            h = h + pop_linear(m, w[f"{i}.mlp.c_proj.weight"], w[f"{i}.mlp.c_proj.bias"])
        out = pop_layer_norm(h, w["lnf.w"], w["lnf.b"], eps).reshape(p, b, t, d)
        new_pos = positions[..., -1] + 1
        if not core.memory:
            return out, {"pos": new_pos}
        return out, {"keys": tuple(keys), "values": tuple(values), "valid": valid, "pos": new_pos}


def _unfold(mem: Memory, p: int, b: int) -> Memory:
    """Leading P*B -> (P, B) on every leaf of a (nested) memory."""
    if isinstance(mem, Tensor):
        return mem.reshape(p, b, *mem.shape[1:])  # (P, B, ...)
    if isinstance(mem, tuple):
        return tuple(_unfold(m, p, b) for m in mem)
    return {k: _unfold(v, p, b) for k, v in mem.items()}
