"""Condition 1's history switch: ``condition.history_inputs=false`` hides the previous action
and feedback from every arch on every family, is recorded, named and kept apart by dedup."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from mesalab.archs.population import PopulationLearner, supports
from mesalab.studies.load import build_objects
from mesalab.studies.policy.learner_policy import LearnerPolicy
from mesalab.studies.record import RunRecord
from mesalab.studies.sweep import dedupe_jobs
from mesalab.tasks.distributions import stream_generator
from mesalab.tasks.inputs import HISTORY_PARTS, input_columns, input_slices
from mesalab.tasks.rollout import rollout

TASKS = (
    "dependent_bandit",
    "bernoulli_bandit",
    "restless_bandit",
    "two_step",
    "harlow",
    "markov_chain",
    "tabular_mdp",
    "linear_regression",
)
ARCHS = ("lstm", "gru", "slot", "ffn", "transformer", "mamba")


@pytest.mark.parametrize("task", TASKS)
def test_history_off_drops_exactly_previous_action_and_feedback(make_cfg, task: str) -> None:
    family = instantiate(make_cfg(f"task={task}").task.family)
    sl = input_slices(family)
    kept = input_columns(family, history_inputs=False)
    hist = {i for p in HISTORY_PARTS for i in range(sl[p].start, sl[p].stop)}
    assert hist and set(kept) == set(range(family.input_dim)) - hist
    for part in ("obs", "trial", "start"):  # what stays
        assert set(range(sl[part].start, sl[part].stop)) <= set(kept)
    assert input_columns(family) == list(range(family.input_dim))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("task", TASKS)
def test_history_off_learner_ignores_history_columns(make_cfg, task: str, arch: str) -> None:
    """Changing only the previous action/feedback columns changes nothing with history off
    (and does change the heads with history on, so the comparison can fail)."""
    outs = {}
    for hist in (True, False):
        cfg = make_cfg(f"task={task}", f"arch={arch}", f"condition.history_inputs={hist}")
        torch.manual_seed(0)
        family, _, learner = build_objects(cfg)
        cols = input_columns(family, hist)
        assert (
            learner.core(torch.zeros(1, 1, len(cols)), learner.initial_memory(1))[0].shape[1] == 1
        )
        x = torch.rand(3, 6, family.input_dim, generator=torch.Generator().manual_seed(1))
        y = x.clone()
        sl = input_slices(family)
        for p in HISTORY_PARTS:  # other earlier actions and rewards, same everything else
            y[..., sl[p]] = torch.rand(
                y[..., sl[p]].shape, generator=torch.Generator().manual_seed(2)
            )
        with torch.no_grad():
            a, _ = learner(x, learner.initial_memory(3))
            b, _ = learner(y, learner.initial_memory(3))
            outs[hist] = (a, b)
            if supports(learner):  # the population computation selects the same columns
                pop = PopulationLearner.view(learner)
                pa, _ = pop(x[None], pop.initial_memory(3))
                pb, _ = pop(y[None], pop.initial_memory(3))
                torch.testing.assert_close(pa.logits[0], a.logits, rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(pb.logits[0], b.logits, rtol=1e-4, atol=1e-5)
    on_a, on_b = outs[True]
    off_a, off_b = outs[False]
    assert not torch.allclose(on_a.value, on_b.value)
    torch.testing.assert_close(off_a.logits, off_b.logits, rtol=0, atol=0)
    torch.testing.assert_close(off_a.value, off_b.value, rtol=0, atol=0)


@pytest.mark.parametrize("arch", ("lstm", "transformer"))
def test_history_off_actions_do_not_depend_on_earlier_rewards(make_cfg, arch: str) -> None:
    """Two rollouts on other tasks with other noise: other rewards, the same greedy actions."""
    acts, rewards = {}, {}
    for hist in (True, False):
        cfg = make_cfg("task=dependent_bandit", f"arch={arch}", f"condition.history_inputs={hist}")
        torch.manual_seed(0)
        family, dist, learner = build_objects(cfg)
        torch.nn.init.normal_(learner.policy_head.weight, std=1.0)  # decisive logits
        policy = LearnerPolicy(learner.eval(), greedy=True)
        for s in (0, 1):
            latent = dist.sample(64, stream_generator(s, "eval"))
            with torch.no_grad():
                traj = rollout(
                    family,
                    latent,
                    policy,
                    stream_generator(s, "train"),
                    stream_generator(0, "policy"),
                )
            acts[hist, s], rewards[hist, s] = traj.actions, traj.rewards
    assert not torch.equal(rewards[False, 0], rewards[False, 1])
    assert torch.equal(acts[False, 0], acts[False, 1])
    assert not torch.equal(acts[True, 0], acts[True, 1])  # with history it reacts to rewards


def test_run_name_record_and_dedup_tell_history_apart(make_cfg) -> None:
    on = make_cfg("arch=lstm", "condition.memory=false")
    off = make_cfg("arch=lstm", "condition.memory=false", "condition.history_inputs=false")
    assert "hist" not in on.run_name  # run names from before the switch stay
    assert off.run_name == on.run_name.replace("_mem-off_", "_mem-off_hist-off_")
    assert RunRecord.from_dict({**_record(), "history_inputs": False}).history_inputs is False
    assert RunRecord.from_dict(_record()).history_inputs is None  # older records: absent
    jobs = [
        ["arch=ffn", "condition.memory=true", "condition.history_inputs=false"],
        ["arch=ffn", "condition.memory=false", "condition.history_inputs=false"],
        ["arch=ffn", "condition.memory=false", "condition.history_inputs=true"],
    ]
    kept = dedupe_jobs(jobs)
    assert len(kept) == 2
    assert {j[-1] for j in kept} == {
        "condition.history_inputs=false",
        "condition.history_inputs=true",
    }


def _record() -> dict:
    s = {
        "num_tasks": 1,
        "num_trials": 2,
        "improvement": 0.0,
        "improvement_ci95": [0.0, 0.0],
        "normalized_improvement": None,
        "regret": 0.0,
        "regret_ci95": [0.0, 0.0],
    }
    return {
        "task": "t",
        "arch": "a",
        "training": "rl",
        "memory": False,
        "distribution": "related",
        "seed": 0,
        "train": {"env_steps": 1, "wall_s": 1.0, "env_steps_per_s": 1.0},
        "eval": s,
        "references": {},
        "frozen": {"digest_before": "x", "digest_after": "x", "verified": True},
    }
