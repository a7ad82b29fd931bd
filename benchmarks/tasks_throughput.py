"""Environment steps per second: mesalab's batched generator vs gymnasium's usual way and gymnax.

    python benchmarks/tasks_throughput.py [--task dependent_bandit] [--batches 1,64,1024,16384]

Columns of the batched table, all on a two-armed bandit (T trials per episode, uniformly
random actions), each run in this one process:

- ``mesalab``: the functional generator as the rollout uses it: per trial ``observe`` +
  :func:`mesalab.tasks.inputs.build_inputs` (the learner input) + random actions + ``step``, whole
  episodes, new tasks every episode, batched over B with torch; the task is ``--task``
  (default: the dependent bandit, p1 ~ U(0, 1), p2 = 1 - p1);
- ``mesalab gym``: the same through :class:`mesalab.tasks.gym_adapter.TaskVectorEnv`
  (numpy in and out, same-step autoreset);
- ``gymnasium``: a plain one-environment ``gymnasium.Env`` written with numpy, the usual way,
  in a ``gymnasium.vector.SyncVectorEnv`` of B copies (same-step autoreset), returning the
  same 5-number observation, on the same task as ``mesalab``;
- ``mesalab easy`` and ``gymnax``: gymnax's ``BernoulliBandit-misc`` (jit + vmap + scan over
  whole episodes, its own auto-reset) draws p1 from {0.1, 0.9}, p2 = 1 - p1, so it is set
  against mesalab's generator on that very task (``dependent_bandit``, ``variant="easy"``);
  both columns need the ``bench`` extra (``pip install -e ".[bench]"``: gymnax, jax on CPU).

The ratios are mesalab / gymnasium and mesalab easy / gymnax. A second table times one
environment at a time, as single-environment clients (stable-baselines3, ...) step it:
``gymnasium.make("mesalab/<Family>-v0")`` against ``gymnasium.make`` of the numpy env, both
with gymnasium's default wrappers, one ``step`` per Python call, ``reset`` at each episode end.
Every figure is the best of ``--repeats`` timed runs of at least ``--min-time`` seconds each
(after a warm-up), with ``--threads`` torch threads (and XLA held to one thread when 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from mesalab.tasks import FAMILIES, build_inputs, make_family, stream_generator
from mesalab.tasks.gym_adapter import TaskVectorEnv, env_id

BANDITS = ["dependent_bandit", "bernoulli_bandit"]  # two-armed in both, by default


class NumpyBandit(gymnasium.Env):
    """A two-armed bandit, one environment at a time, in numpy (the usual way)."""

    metadata = {"render_modes": []}

    def __init__(self, num_trials: int = 100, dependent: bool = True) -> None:
        self.num_trials, self.dependent = num_trials, dependent
        self.observation_space = spaces.Box(0.0, 1.0, shape=(5,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """A new task: p1 ~ U(0, 1), p2 = 1 - p1 (dependent) or p2 ~ U(0, 1) (independent)."""
        super().reset(seed=seed)
        p1 = self.np_random.uniform()
        self.probs = np.array([p1, 1.0 - p1 if self.dependent else self.np_random.uniform()])
        self.t = 0
        obs = np.zeros(5, dtype=np.float32)
        obs[4] = 1.0  # episode-start flag, as in mesalab's input
        return obs, {}

    def step(self, action):
        """Pull an arm: Bernoulli reward; observation = one-hot action, reward, t / T, flag."""
        reward = float(self.np_random.uniform() < self.probs[action])
        self.t += 1
        obs = np.zeros(5, dtype=np.float32)
        obs[action] = 1.0
        obs[2] = reward
        obs[3] = self.t / self.num_trials
        return obs, reward, self.t >= self.num_trials, False, {}


def timed(run_chunk: Callable[[], int], min_time: float, repeats: int) -> float:
    """Best steps/s over ``repeats`` runs, each calling ``run_chunk`` (-> steps) >= min_time."""
    run_chunk()  # warm-up
    best = 0.0
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < min_time:
            steps += run_chunk()
        best = max(best, steps / elapsed)
    return best


def bench_mesalab(
    task: str, batch: int, trials: int, min_time: float, repeats: int, **family_kwargs: object
) -> float:
    """Whole episodes of the functional generator with uniformly random actions."""
    family = make_family(task, num_trials=trials, **family_kwargs)
    gen = stream_generator(0, "train")

    def episode() -> int:
        latent = family.sample_latent(batch, gen)
        state = family.reset(latent, gen)
        prev_action = prev_feedback = None
        for _ in range(trials):
            obs = family.observe(latent, state)
            build_inputs(family, obs, prev_action, prev_feedback, state.t)  # (B, D)
            action = torch.randint(0, family.num_actions, (batch,), generator=gen)
            state, out = family.step(latent, state, action, gen)
            prev_action, prev_feedback = action, out.feedback
        return batch * trials

    return timed(episode, min_time, repeats)


def bench_vector_env(envs, batch: int, steps: int, min_time: float, repeats: int) -> float:
    """``steps`` random-action steps of any gymnasium vector env per timed chunk."""
    rng = np.random.default_rng(0)
    envs.reset(seed=0)

    def chunk() -> int:
        for _ in range(steps):
            envs.step(rng.integers(0, 2, size=batch))
        return batch * steps

    return timed(chunk, min_time, repeats)


def bench_single_env(
    make: Callable[[], gymnasium.Env], steps: int, min_time: float, repeats: int
) -> float:
    """One environment stepped one call at a time, reset at every episode end."""
    env = make()
    env.reset(seed=0)
    actions = [int(a) for a in np.random.default_rng(0).integers(0, 2, size=steps)]

    def chunk() -> int:
        for a in actions:
            if env.step(a)[2]:
                env.reset()
        return steps

    return timed(chunk, min_time, repeats)


def gymnax_version() -> str | None:
    """gymnax's version when it and jax import, else None."""
    try:
        import gymnax  # noqa: F401
        import jax  # noqa: F401
    except ImportError:
        return None
    from importlib.metadata import version

    return version("gymnax")


def bench_gymnax(batch: int, trials: int, min_time: float, repeats: int) -> float | None:
    """gymnax's Bernoulli bandit, jit(vmap(scan)) over whole episodes; None if not installed."""
    if gymnax_version() is None:
        return None
    import gymnax
    import jax

    env, params = gymnax.make("BernoulliBandit-misc")
    params = params.replace(max_steps_in_episode=trials, t_max=trials)

    def episode(key):
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset(k_reset, params)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            action = env.action_space(params).sample(k_act)
            # gymnax >= 1.0: obs, state, reward, terminated, truncated, info
            obs, state, reward, _, _, _ = env.step(k_step, state, action, params)
            return (obs, state), reward

        _, rewards = jax.lax.scan(body, (obs, state), jax.random.split(k_steps, trials))
        return rewards

    run = jax.jit(jax.vmap(episode))
    keys = jax.random.split(jax.random.PRNGKey(0), batch)

    def chunk() -> int:
        run(keys).block_until_ready()
        return batch * trials

    return timed(chunk, min_time, repeats)


def fmt(x: float | None) -> str:
    """Steps/s in a compact human form."""
    if x is None:
        return "n/a"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def ratio(ours: float | None, theirs: float | None) -> str:
    """ours / theirs as ``12.3x``, or n/a."""
    return "n/a" if ours is None or theirs is None else f"{ours / theirs:.2f}x"


def main(argv: list[str] | None = None) -> int:
    """Run every column at every batch size and print two markdown tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="dependent_bandit", choices=BANDITS)
    p.add_argument("--batches", default="1,64,1024,16384")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.task not in FAMILIES:
        p.error(f"argument --task: {args.task} is not registered (have {sorted(FAMILIES)})")
    if args.threads == 1:  # before jax is imported: one thread for XLA too, as for torch
        os.environ.setdefault(
            "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    dependent = args.task == "dependent_bandit"
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    gx = gymnax_version()
    task = "p1 ~ U(0, 1), p2 = 1 - p1" if dependent else "p1, p2 ~ U(0, 1)"
    print(
        f"{args.task} ({task}), {args.trials} trials/episode, random actions; torch "
        f"{torch.__version__} ({args.threads} thread), gymnasium {gymnasium.__version__}, numpy "
        f"{np.__version__}, gymnax {gx or 'not installed'}, "
        f"{platform.processor() or platform.machine()}, load average "
        f"{os.getloadavg()[0]:.1f}; env steps/s, best of {args.repeats}\n"
    )
    print(
        "mesalab easy and gymnax run p1 in {0.1, 0.9}, p2 = 1 - p1 (gymnax's "
        "BernoulliBandit-misc; mesalab's dependent_bandit variant='easy')\n"
    )
    print(
        "| batch | mesalab | mesalab gym adapter | gymnasium SyncVectorEnv | ratio to gymnasium "
        "| mesalab easy | gymnax | ratio to gymnax |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in batches:
        ours = bench_mesalab(args.task, b, args.trials, args.min_time, args.repeats)
        adapter = TaskVectorEnv(
            b, args.task, num_trials=args.trials, autoreset_mode=AutoresetMode.SAME_STEP
        )
        ours_gym = bench_vector_env(adapter, b, args.trials, args.min_time, args.repeats)
        # the per-env Python loop is slow at large B: fewer steps per timed chunk
        sync = SyncVectorEnv(
            [lambda: NumpyBandit(args.trials, dependent)] * b,
            autoreset_mode=AutoresetMode.SAME_STEP,
        )
        steps = max(1, min(args.trials, 20000 // b))
        theirs = bench_vector_env(sync, b, steps, args.min_time, args.repeats)
        jaxed = bench_gymnax(b, args.trials, args.min_time, args.repeats)
        easy = None
        if jaxed is not None:
            easy = bench_mesalab(
                "dependent_bandit", b, args.trials, args.min_time, args.repeats, variant="easy"
            )
        print(
            f"| {b} | {fmt(ours)} | {fmt(ours_gym)} | {fmt(theirs)} | {ratio(ours, theirs)} "
            f"| {fmt(easy)} | {fmt(jaxed) if jaxed is not None else 'not installed'} "
            f"| {ratio(easy, jaxed)} |",
            flush=True,
        )

    print("\n| one environment (gymnasium.make) | mesalab | numpy gymnasium env | slowdown |")
    print("|---|---:|---:|---:|")
    gymnasium.register(
        "benchmarks/NumpyBandit-v0",
        entry_point=lambda: NumpyBandit(args.trials, dependent),
    )
    steps = 20 * args.trials
    ours = bench_single_env(
        lambda: gymnasium.make(env_id(args.task), num_trials=args.trials),
        steps,
        args.min_time,
        args.repeats,
    )
    theirs = bench_single_env(
        lambda: gymnasium.make("benchmarks/NumpyBandit-v0"), steps, args.min_time, args.repeats
    )
    print(
        f"| {args.task}, one step per call | {fmt(ours)} | {fmt(theirs)} "
        f"| {theirs / ours:.2f}x (target: at most 3x) |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
