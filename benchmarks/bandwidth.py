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

Prints GB/s per line and its ratio to the copy's. Where a C compiler is at hand (``cc``), the
acting attention is timed a second time as a plain C loop of our own (one query per row and
head of width 8, all entries valid; compiled with ``-O3 -march=native -ffast-math`` into a temporary
directory, called through ``ctypes``), with the largest difference from PyTorch's result: what
a fused kernel would gain. The project does not ship it.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


C_LOOP = r"""
#include <math.h>
#define D 8 /* head width, fixed so that the compiler unrolls and vectorises over it */
/* One query per row and head: q (N, D); row n's keys and values start at n * stride, L of D. */
void attend(const float *q, const float *k, const float *v, float *out, long n_rows, long len,
            long stride, float scale) {
    float s[4096];
    for (long n = 0; n < n_rows; ++n) {
        const float *qn = q + n * D, *kn = k + n * stride, *vn = v + n * stride;
        float m = -INFINITY, z = 0.f, acc[D] = {0};
        for (long j = 0; j < len; ++j) {
            float a = 0.f;
            for (int d = 0; d < D; ++d) a += qn[d] * kn[j * D + d];
            s[j] = a * scale;
            m = s[j] > m ? s[j] : m;
        }
        for (long j = 0; j < len; ++j) { s[j] = expf(s[j] - m); z += s[j]; }
        for (long j = 0; j < len; ++j)
            for (int d = 0; d < D; ++d) acc[d] += s[j] * vn[j * D + d];
        for (int d = 0; d < D; ++d) out[n * D + d] = acc[d] / z;
    }
}
"""


def c_loop(tmp: Path) -> Callable | None:
    """The C loop above compiled and loaded, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    (tmp / "attend.c").write_text(C_LOOP)
    flags = ["-O3", "-march=native", "-ffast-math", "-fPIC", "-shared"]
    subprocess.run([cc, *flags, "attend.c", "-o", "attend.so", "-lm"], cwd=tmp, check=True)
    fn = ctypes.CDLL(str(tmp / "attend.so")).attend
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_long] * 3 + [ctypes.c_float]
    return fn


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
    heads, width, cap = 2, 8, 256  # cap <= 4096, the C loop's buffer of scores
    scale = width**-0.5
    with tempfile.TemporaryDirectory() as tmp:
        attend = c_loop(Path(tmp))
        for entries in (50, 100):
            # the cache as TransformerCore keeps it: a buffer of max_context entries, a view of L
            kbuf = torch.randn(args.rows, heads, cap, width, generator=gen)
            vbuf = torch.randn(args.rows, heads, cap, width, generator=gen)
            q = torch.randn(args.rows, heads, 1, width, generator=gen)
            nbytes = 2 * args.rows * heads * entries * width * 4
            sdpa = functools.partial(
                F.scaled_dot_product_attention,
                q, kbuf[:, :, :entries], vbuf[:, :, :entries], scale=scale,
            )  # fmt: skip
            rows.append(
                (
                    f"acting attention, {args.rows} rows, cache of {entries}",
                    gb_per_s(sdpa, nbytes, args.repeats),
                )
            )
            if attend is None:
                continue
            out = torch.empty_like(q)
            pointers = (t.data_ptr() for t in (q, kbuf, vbuf, out))
            call = functools.partial(
                attend, *pointers, args.rows * heads, entries, cap * width, scale
            )
            rate = gb_per_s(call, nbytes, args.repeats)
            diff = float((sdpa() - out).abs().max())
            rows.append((f"the same as a C loop (largest difference {diff:.0e})", rate))
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
