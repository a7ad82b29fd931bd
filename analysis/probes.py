"""Linear probes: is the ideal observer's posterior linearly readable from a frozen learner?

    mesalab-probe outputs/runs/<run>                 # -> <run>/probes.json, prints a summary
    mesalab-probe outputs/runs/<run> --source memory --tasks 2000

The frozen learner acts on held-out tasks (from the family prior, never a training-pool
task). Teacher-forced on its own history, the family-prior Bayes observer
(``family.prior_observer()``) gives its posterior statistics at every step, the probe target:

- bandits: the posterior mean reward of each arm (= the expected value of each action now);
- linear regression: the posterior mean of the weights w (ridge);
- Markov chains: the posterior mean transition matrix (Bayesian bigram), flattened.

The probe is ridge regression in closed form from standardised activations (plus intercept)
to all targets at once, fitted on half of the tasks and scored by R^2 on the other half
(tasks, not steps, are split: steps of one episode are not independent). Ridge's lambda is
chosen on a validation split of the fitting tasks. R^2 pools all targets: 1 - sum of squared
errors / sum of squares around the test mean. The control is the same probe on the same
histories fed to the *untrained* network of the same arch (the run's own initial weights,
the run's ``init`` stream before building, as in ``mesalab.studies.run``): random recurrent
features already carry a lot, so only the gap over the control says training put it there.

Activations (``source``): ``features``, the core's output at every step
(``LearnerOutput.features``), or ``memory``, every tensor of the carried memory after the
step, flattened (LSTM: h and c; slot: the slots); a growing memory (the transformer's cache)
has no fixed width and is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mesalab.archs.base import Learner
from mesalab.studies.policy.learner_policy import LearnerPolicy
from mesalab.studies.policy.location import ShadowPolicy
from mesalab.studies.policy.metrics import rollout_stats
from mesalab.tasks.base import TaskFamily, check
from mesalab.tasks.distributions import stream_generator, stream_seed

#: ridge penalties tried, relative to the number of fitting samples (standardised features)
LAMBDAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SOURCES = ("features", "memory")
#: target names by the kind of family observer
TARGETS = {
    "decision": "posterior mean reward of each arm",
    "real": "posterior mean of the regression weights",
    "simplex": "posterior mean transition matrix",
}


def _fit(x: Tensor, y: Tensor, lam: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Ridge on standardised x: (weights, x mean, x scale, y mean)."""
    mu, sd = x.mean(dim=0), x.std(dim=0).clamp_min(1e-8)
    z = (x - mu) / sd  # (N, H)
    y_mu = y.mean(dim=0)
    gram = z.T @ z + lam * z.shape[0] * torch.eye(z.shape[1], dtype=z.dtype)
    w = torch.linalg.solve(gram, z.T @ (y - y_mu))  # (H, F)
    return w, mu, sd, y_mu


def _predict(fit: tuple[Tensor, Tensor, Tensor, Tensor], x: Tensor) -> Tensor:
    w, mu, sd, y_mu = fit
    return ((x - mu) / sd) @ w + y_mu


def r2_score(y: Tensor, pred: Tensor) -> tuple[float, list[float | None]]:
    """Pooled R^2 over all target columns, and per column (None for a constant column)."""
    res = ((y - pred) ** 2).sum(dim=0)  # (F,)
    tot = ((y - y.mean(dim=0)) ** 2).sum(dim=0)
    per = [float(1 - r / t) if t > 1e-12 else None for r, t in zip(res, tot, strict=True)]
    pooled = float(1 - res.sum() / tot.sum()) if float(tot.sum()) > 1e-12 else float("nan")
    return pooled, per


def ridge_probe(
    x: Tensor, y: Tensor, train: Tensor, test: Tensor, lambdas: Sequence[float] = LAMBDAS
) -> dict[str, Any]:
    """Fit on the ``train`` tasks, pick lambda on a held-out quarter of them, score on ``test``.

    ``x`` (N, T, H) activations, ``y`` (N, T, F) targets, ``train``/``test`` task indices.
    """
    x, y = x.double(), y.double()
    flat = lambda idx: (x[idx].flatten(0, 1), y[idx].flatten(0, 1))  # (n*T, .)
    n_val = max(1, len(train) // 4)
    fit_x, fit_y = flat(train[n_val:])
    val_x, val_y = flat(train[:n_val])
    scores = [r2_score(val_y, _predict(_fit(fit_x, fit_y, lam), val_x))[0] for lam in lambdas]
    best = max(range(len(lambdas)), key=lambda i: scores[i])
    all_x, all_y = flat(train)
    test_x, test_y = flat(test)
    r2, per = r2_score(test_y, _predict(_fit(all_x, all_y, lambdas[best]), test_x))
    return {"r2": r2, "r2_per_target": per, "lambda": lambdas[best]}


def split_tasks(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A seeded half/half split of task indices (train, test)."""
    check(n >= 4, "num_tasks", n, ">= 4 for a probe")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2], perm[n // 2 :]


class TargetRecorder(ShadowPolicy):
    """Acts as the learner; records the inputs and the observer's posterior mean at every step."""

    def __init__(self, actor: LearnerPolicy, observer: Any, seed: int = 0) -> None:
        check(
            hasattr(observer, "posterior_mean"),
            "observer",
            type(observer).__name__,
            "an observer with a posterior_mean (family.prior_observer())",
        )
        super().__init__(actor, {"observer": observer}, seed)
        self.inputs: list[list[Tensor]] = []
        self.targets: list[list[Tensor]] = []

    def reset(self, family: TaskFamily, batch_size: int, generator: torch.Generator) -> Any:
        """Start a new chunk."""
        self.inputs.append([])
        self.targets.append([])
        return super().reset(family, batch_size, generator)

    def act(self, pstate: Any, ctx: Any, generator: torch.Generator) -> tuple[Tensor, Any]:
        """Record the step's input and the posterior before the step's outcome."""
        self.inputs[-1].append(ctx.inputs)
        obs = self.observers["observer"]
        self.targets[-1].append(obs.posterior_mean(pstate["observer"], ctx).double())
        return super().act(pstate, ctx, generator)

    def stacked(self) -> tuple[Tensor, Tensor]:
        """Inputs (N, T, D) and targets (N, T, F)."""
        cat = lambda parts: torch.cat([torch.stack(p, dim=1) for p in parts])
        return cat(self.inputs), cat(self.targets)


def activations(learner: Learner, inputs: Tensor, source: str = "features") -> Tensor:
    """The learner's activations on whole input sequences (N, T, D) -> (N, T, H)."""
    check(source in SOURCES, "source", source, f"one of {list(SOURCES)}")
    mem = learner.initial_memory(inputs.shape[0], inputs.device)
    with torch.inference_mode():
        if source == "features":
            return learner(inputs, mem)[0].features
        steps = []
        for t in range(inputs.shape[1]):
            _, mem = learner(inputs[:, t : t + 1], mem)
            steps.append(torch.cat([m.reshape(m.shape[0], -1).float() for m in _leaves(mem)], 1))
        widths = {s.shape[1] for s in steps}
        check(len(widths) == 1, "source", source, "features for a memory that grows (a cache)")
        return torch.stack(steps, dim=1)


def _leaves(mem: Any) -> list[Tensor]:
    """Floating-point tensors of a (nested) memory."""
    if isinstance(mem, Tensor):
        return [mem] if mem.is_floating_point() else []
    if isinstance(mem, dict):
        return [x for v in mem.values() for x in _leaves(v)]
    if isinstance(mem, (tuple, list)):
        return [x for v in mem for x in _leaves(v)]
    return []


def probe_learner(
    learner: Learner,
    control: Learner,
    family: TaskFamily,
    latent: Any,
    seed: int = 0,
    source: str = "features",
    greedy: bool = False,
) -> dict[str, Any]:
    """Probe R^2 of the trained ``learner`` and of the ``control`` on the learner's histories."""
    observer = family.prior_observer()
    check(observer is not None, "task", family.name, "a family with a prior_observer()")
    rec = TargetRecorder(LearnerPolicy(learner, greedy=greedy), observer, seed)
    learner.eval()
    with torch.inference_mode():
        rollout_stats(family, latent, rec, seed)
    inputs, targets = rec.stacked()
    train, test = split_tasks(inputs.shape[0], seed)
    out: dict[str, Any] = {
        "source": source,
        "target": TARGETS["decision" if family.kind == "decision" else family.action_space],
        "observer": type(observer).__name__,
        "num_tasks": int(inputs.shape[0]),
        "num_trials": int(inputs.shape[1]),
        "num_targets": int(targets.shape[-1]),
    }
    for name, net in (("trained", learner), ("control", control)):
        net.eval()
        acts = activations(net, inputs, source)
        res = ridge_probe(acts, targets, train, test)
        out[name] = {"feature_dim": int(acts.shape[-1]), **res}
    out["r2"], out["control_r2"] = out["trained"]["r2"], out["control"]["r2"]
    return out


def probe_run(
    run_dir: str | Path,
    num_tasks: int = 1000,
    source: str = "features",
    device: str = "cpu",
) -> dict[str, Any]:
    """Probes of a finished run's frozen learner against its untrained initial weights."""
    from mesalab.studies.load import build_objects, load_run

    run = load_run(run_dir, device)
    cfg = run.cfg
    # the run's own initial weights: the same ``init`` stream as mesalab.studies.run
    torch.manual_seed(stream_seed(int(cfg.seed), "init"))
    _, _, control = build_objects(cfg, device)
    control.requires_grad_(False)
    latent = run.distribution.heldout(num_tasks, stream_generator(cfg.seed, "eval", device))
    out = probe_learner(
        run.learner, control, run.family, latent, cfg.seed, source, bool(cfg.eval.greedy)
    )
    return {"run": str(Path(run_dir)), "task": run.family.name, "arch": cfg.arch.name, **out}


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``mesalab-probe``."""
    parser = argparse.ArgumentParser(prog="mesalab-probe", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with checkpoint.pt")
    parser.add_argument("--tasks", type=int, default=1000, help="held-out tasks (default 1000)")
    parser.add_argument("--source", choices=SOURCES, default="features")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="default: <run_dir>/probes.json")
    args = parser.parse_args(argv)
    if not (args.run_dir / "checkpoint.pt").exists():
        parser.error(f"run_dir={str(args.run_dir)!r} has no checkpoint.pt")
    try:
        res = probe_run(args.run_dir, args.tasks, args.source, args.device)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = args.out or args.run_dir / "probes.json"
    out.write_text(json.dumps(res, indent=1))
    print(
        f"{res['task']} / {res['arch']}: probe R^2 of the {res['target']} from {res['source']}: "
        f"trained {res['r2']:.3f}, untrained control {res['control_r2']:.3f} "
        f"({res['num_tasks']} tasks x {res['num_trials']} trials) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
