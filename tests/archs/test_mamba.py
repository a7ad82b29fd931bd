"""Mamba core: it computes MambaModel's function, its budget matches, its log is quiet.

The interface contract (stepping = whole sequence, causality, resets, gradients) is checked
for every core, mamba included, in ``test_archs.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import DynamicCache

from mesalab.archs import Learner, MambaCore, matched_widths
from mesalab.archs import mamba as mamba_module
from mesalab.archs.budget import count_learner, default_budget
from mesalab.studies.config import memory_flag, validate
from mesalab.studies.load import build_core
from mesalab.studies.run import CONFIG_DIR
from mesalab.studies.sweep import dedupe_jobs

D, B = 5, 3


def make(seed: int = 0, **kwargs) -> MambaCore:
    torch.manual_seed(seed)
    return MambaCore(D, **{"d_model": 8, "state_size": 4, **kwargs})


def leaves(memory) -> list[torch.Tensor]:
    return [*memory["conv"], *memory["ssm"]]


def hf_cache_holding(core: MambaCore, memory, emb: torch.Tensor) -> DynamicCache:
    """A transformers cache whose conv and scan states are copies of ``memory``."""
    cache = DynamicCache(config=core.config)
    core.mamba(inputs_embeds=emb, cache=cache, use_cache=True)  # allocates the layers
    for layer, conv, ssm in zip(cache.layers, memory["conv"], memory["ssm"], strict=True):
        layer.conv_states[0].copy_(conv)
        layer.recurrent_states[0].copy_(ssm)
    return cache


def test_sequence_is_mamba_model_with_its_cache():
    """Whole sequences give MambaModel's output, final cache and gradients."""
    core = make()
    x = torch.randn(B, 9, D, generator=torch.Generator().manual_seed(1))
    results = []
    for ours in (True, False):
        core.zero_grad()
        if ours:
            out, mem = core(x, core.initial_memory(B))
            cache = leaves(mem)
        else:
            hf = DynamicCache(config=core.config)
            out = core.mamba(inputs_embeds=core.embed(x), cache=hf, use_cache=True)
            out = out.last_hidden_state
            cache = [layer.conv_states[0] for layer in hf.layers]
            cache += [layer.recurrent_states[0] for layer in hf.layers]
        (out.square().sum() + sum(c.square().sum() for c in cache)).backward()
        grads = [p.grad.clone() for p in core.parameters() if p.requires_grad]
        results.append((out, cache, grads))
    (out, cache, grads), (ref_out, ref_cache, ref_grads) = results
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=1e-5)
    for a, b in zip(cache, ref_cache, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert all(g.abs().max() > 0 for g in grads)


def test_step_is_mamba_model_cached_step():
    """Acting steps give MambaModel's cached step, also after a reset of some rows."""
    core = make()
    x = torch.randn(B, 6, D, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, mem = core(x[:, :5], core.initial_memory(B))
        mem = core.reset_memory(mem, torch.tensor([True, False, False]))
        cache = hf_cache_holding(core, mem, core.embed(x[:, :5]))
        ref = core.mamba(inputs_embeds=core.embed(x[:, 5:]), cache=cache, use_cache=True)
        out, new = core(x[:, 5:], mem)
    torch.testing.assert_close(out, ref.last_hidden_state, atol=1e-6, rtol=1e-5)
    ref_leaves = [layer.conv_states[0] for layer in cache.layers]
    ref_leaves += [layer.recurrent_states[0] for layer in cache.layers]
    for a, b in zip(leaves(new), ref_leaves, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert not torch.equal(new["ssm"][0], mem["ssm"][0])  # the step moved the state


def test_a_sequence_continues_a_memory():
    """T > 1 from a carried memory (which transformers' own scan would drop) = one sequence."""
    core = make()
    x = torch.randn(B, 10, D, generator=torch.Generator().manual_seed(2))
    full, mem_full = core(x, core.initial_memory(B))
    _, mem = core(x[:, :4], core.initial_memory(B))
    rest, mem_rest = core(x[:, 4:], mem)
    torch.testing.assert_close(rest, full[:, 4:], atol=1e-6, rtol=0)
    for a, b in zip(leaves(mem_rest), leaves(mem_full), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    fresh = core(x[:, 4:], core.initial_memory(B))[0]
    assert (fresh - rest).abs().max() > 1e-3  # the carried memory mattered


def test_stepping_a_study_episode_matches_the_full_forward():
    """100 trials, the study's episode, at the matched widths: steps = sequence to 1e-5."""
    torch.manual_seed(0)
    core = MambaCore(D, **matched_widths()["mamba"])
    x = torch.randn(B, 100, D, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full, mem_full = core(x, core.initial_memory(B))
        mem, outs = core.initial_memory(B), []
        for t in range(x.shape[1]):
            out, mem = core(x[:, t : t + 1], mem)
            outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), full, atol=1e-5, rtol=0)
    for a, b in zip(leaves(mem), leaves(mem_full), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_memory_is_the_cache_per_layer_and_outlasts_the_conv_window():
    core = make(num_layers=3, conv_kernel=2)
    mem = core.initial_memory(B)
    assert [m.shape for m in mem["conv"]] == [(B, core.d_inner, 2)] * 3
    assert [m.shape for m in mem["ssm"]] == [(B, core.d_inner, 4)] * 3
    assert not any(leaf.any() for leaf in leaves(mem))
    x = torch.randn(B, 9, D, generator=torch.Generator().manual_seed(4))
    x2 = x.clone()
    x2[:, 0] = torch.randn(B, D)

    def change_at_last_step(core: MambaCore) -> float:
        with torch.no_grad():
            last, last2 = (core(v, core.initial_memory(B))[0][:, -1] for v in (x, x2))
        return float((last - last2).abs().max())

    # Step 0 is far outside one layer's window of 2 (3 layers reach back 3 steps): only the
    # scan state carries it to step 8. At initialisation that trace is about 1e-6 here: small
    # time steps (0.001-0.1) and small B, C projections. With a large time step, a slow decay
    # and larger B, C it is plain; with a decay of zero it is gone.
    core = make(num_layers=1, conv_kernel=2)
    mixer = core.mamba.layers[0].mixer
    with torch.no_grad():
        mixer.dt_proj.bias.fill_(0.0)  # time step softplus(0) = 0.69
        mixer.A_log.fill_(-3.0)  # decay exp(-0.69 * e^-3) = 0.97 per step
        mixer.x_proj.weight.mul_(10.0)  # B and C ten times larger
        assert change_at_last_step(core) > 1e-3
        mixer.A_log.fill_(20.0)  # decay exp(-dt * e^20) = 0: the state forgets every step
        assert change_at_last_step(core) < 1e-6


def test_matched_width_within_ten_percent_and_the_config_uses_it():
    kwargs = matched_widths()["mamba"]
    count = count_learner(MambaCore, kwargs, 5, 2)
    assert abs(count - default_budget()) / default_budget() <= 0.10, count
    arch = OmegaConf.load(f"{CONFIG_DIR}/arch/mamba.yaml")
    built = build_core(arch, 5, 2, memory=True)  # widths matched at instantiation
    assert (built.d_model, built.num_layers, built.state_size) == (21, 2, 16)
    assert Learner(built, 2).num_parameters() == count
    frozen = Learner(MambaCore(5, **kwargs), 2)
    assert not frozen.core.mamba.embeddings.weight.requires_grad  # the unused token table


def test_fallback_warnings_become_one_notice(monkeypatch, caplog):
    """transformers' per-kernel fallback warnings are dropped; one notice of ours is logged."""
    make(), make(seed=1)
    hub = logging.getLogger("transformers.integrations.hub_kernels")
    filters = [f for f in hub.filters if isinstance(f, mamba_module._OneFallbackNotice)]
    assert len(filters) == 1  # installed once however many cores are built
    monkeypatch.setattr(mamba_module._OneFallbackNotice, "said", False)
    caplog.set_level(logging.INFO, logger="mesalab.archs.mamba")
    fallback = "`selective_scan_fn` is falling back to its reference PyTorch implementation"

    def record(msg: str) -> logging.LogRecord:
        return hub.makeRecord(hub.name, logging.WARNING, __file__, 0, msg, None, None)

    assert not filters[0].filter(record(fallback))
    assert not filters[0].filter(record(fallback.replace("selective_scan_fn", "conv1d")))
    assert filters[0].filter(record("an unrelated kernel warning"))
    notices = [r for r in caplog.records if r.name == "mesalab.archs.mamba"]
    assert len(notices) == 1 and "pure-torch" in notices[0].getMessage()


BAD = [
    ({"d_model": 0}, "d_model", 0),
    ({"num_layers": 0}, "num_layers", 0),
    ({"state_size": -1}, "state_size", -1),
    ({"expand": 0}, "expand", 0),
    ({"conv_kernel": 0}, "conv_kernel", 0),
    ({"memory": "yes"}, "memory", "yes"),
]


@pytest.mark.parametrize("kwargs,field,value", BAD)
def test_bad_values_fail_at_construction(kwargs, field, value):
    with pytest.raises(ValueError, match=f"^{field}={value!r} is not allowed"):
        MambaCore(D, **kwargs)


STUDIES = sorted(p.stem for p in Path(CONFIG_DIR, "study").glob("*.yaml"))


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_sweep_takes_mamba_by_config(study):
    """A study's sweep runs mamba by an override of its arch axis, memory on and off."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        swap = [f"study={study}", "hydra.sweeper.params.arch=mamba"]
        params = compose("config", overrides=swap, return_hydra_config=True).hydra.sweeper.params
        assert params.arch == "mamba"
        tasks = [[f"task={t}"] for t in str(params.task).split(",")] if "task" in params else [[]]
        for task in tasks:  # the study's own task where it does not sweep tasks
            cfg = compose("config", overrides=[f"study={study}", *task, "arch=mamba"])
            validate(cfg)
            family = instantiate(cfg.task.family)
            core = build_core(cfg.arch, family.input_dim, family.num_actions, memory_flag(cfg))
            assert isinstance(core, MambaCore) and core.memory is memory_flag(cfg)
    jobs = [["arch=mamba", f"condition.memory={m}"] for m in ("true", "false")]
    assert dedupe_jobs(jobs) == jobs  # mamba has memory to switch: both runs are kept
