"""Print every reference policy's score on held-out tasks of the named families and priors.

Decision families: mean total expected reward per episode. Prediction families: mean expected
loss (-expected reward) at the last position and over the episode. Same tasks and environment
noise for every reference (paired). Usage::

    python benchmarks/reference_table.py --families two_step harlow --num-tasks 2000
"""

from __future__ import annotations

import argparse
import time

from mesalab.tasks import FAMILIES, make_family, rollout, stream_generator


def main() -> None:
    """Roll out every reference of every family on every prior and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=sorted(FAMILIES))
    parser.add_argument("--num-tasks", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-priors", action="store_true")
    args = parser.parse_args()
    for name in args.families:
        family = make_family(name)
        for prior in family.priors if args.all_priors else family.priors[:1]:
            latent = family.sample_latent(
                args.num_tasks, stream_generator(args.seed, "eval"), prior
            )
            print(f"\n{name} / {prior} ({args.num_tasks} tasks, ideal: {family.ideal_reference})")
            for ref_name, policy in family.references().items():
                t0 = time.perf_counter()
                traj = rollout(
                    family,
                    latent,
                    policy,
                    stream_generator(args.seed + 1, "eval"),
                    stream_generator(args.seed + 2, "eval"),
                )
                secs = time.perf_counter() - t0
                r = traj.expected_rewards  # (N, T)
                if family.kind == "prediction":
                    last = -r[:, -1]
                    se = last.std().item() / len(last) ** 0.5
                    score = f"last loss {last.mean():8.4f} +- {se:.4f}   mean loss {-r.mean():8.4f}"
                else:
                    total = r.sum(1)
                    se = total.std().item() / len(total) ** 0.5
                    score = f"total reward {total.mean():8.3f} +- {se:.3f}"
                print(f"  {ref_name:14s} {score}   ({secs:.1f} s)")


if __name__ == "__main__":
    main()
