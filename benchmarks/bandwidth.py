"""Memory traffic: what the large-batch kernels move per second against a plain copy.

    .venv/bin/python benchmarks/bandwidth.py [--rows 864] [--repeats 20]

A population approaches its core's one-big-batch rate, and at large batches on the CPU the
steps that dominate move more bytes than they compute. Side by side in one process, one
thread, each the median of ``--repeats`` calls:

- peer: ``copy_`` of 64 MB into a kept buffer (read and write), the streaming bandwidth;
- the transformer's acting attention (``scaled_dot_product_attention`` with one query, as
  ``TransformerCore``'s decode step calls it) at ``--rows`` episodes, its 2 heads of width 8, a
  cache of 50 and of 100 entries: the bytes of keys and values it must read per call;
- an elementwise pass (ReLU) over one layer's training activations of a population of that
  many episodes (the ffn at its matched width 98, 100 steps): read and write, into a kept
  buffer and allocating its output as autograd does.

Prints GB/s per line and its ratio to the copy's.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mesalab.studies.device import keep_freed_memory


def gb_per_s(fn: Callable[[], object], nbytes: int, repeats: int) -> float:
    """Bytes moved per second by ``fn`` (median of ``repeats`` calls after two warm-ups)."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return nbytes / statistics.median(times) / 1e9


def main() -> None:
    """Measure each and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=864, help="episodes (population x batch)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()  # as every run does
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(16 << 20, generator=gen)  # 64 MB
    dst = torch.empty_like(src)
    copy = gb_per_s(lambda: dst.copy_(src), 2 * src.nbytes, args.repeats)
    rows: list[tuple[str, float]] = []
    heads, width, cap = 2, 8, 256
    for entries in (50, 100):
        # the cache as TransformerCore keeps it: a buffer of max_context entries, a view of L
        k = torch.randn(args.rows, heads, cap, width, generator=gen)[:, :, :entries]
        v = torch.randn(args.rows, heads, cap, width, generator=gen)[:, :, :entries]
        q = torch.randn(args.rows, heads, 1, width, generator=gen)
        nbytes = 2 * args.rows * heads * entries * width * 4
        rate = gb_per_s(
            lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, scale=width**-0.5),
            nbytes,
            args.repeats,
        )
        rows.append((f"acting attention, {args.rows} rows, cache of {entries}", rate))
    act = torch.randn(args.rows * 100, 98, generator=gen)
    out = torch.empty_like(act)
    rows.append(
        (
            f"ReLU over {act.nbytes / 1e6:.0f} MB of activations, into a kept buffer",
            gb_per_s(lambda: torch.clamp_min(act, 0, out=out), 2 * act.nbytes, args.repeats),
        )
    )
    rows.append(
        (
            "the same, allocating its output",
            gb_per_s(lambda: torch.relu(act), 2 * act.nbytes, args.repeats),
        )
    )
    print(f"torch {torch.__version__}, 1 thread, median of {args.repeats} calls\n")
    print("| what | GB/s | of the copy's |")
    print("|---|---:|---:|")
    print(f"| copy_ of 64 MB (peer: streaming bandwidth) | {copy:.1f} | 1.00 |")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate / copy:.2f} |")


if __name__ == "__main__":
    main()
