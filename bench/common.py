"""Shared helpers for the benchmarks: machine description, fp32 matmul peak, and writing results.

Each benchmark owns one section of ``docs/benchmarks.md``, delimited by
``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``; ``write_section`` replaces just that section
(appending it if new) and stamps it with the machine, the command and the date, so the numbers in
the docs are always ones a run printed.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from slm_course.runtime import cpu_bf16_features, cpu_flags

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"
_HEADER = (
    "# Benchmarks\n\n"
    "Every table below was written by the script named in it (`bench/`), on the machine it names.\n"
    "Re-run a script to refresh its section; compare numbers only within one section (one run).\n"
)


def machine() -> str:
    """One line naming the CPU, core count, torch build and (if any) GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # Two CPUs of one name may differ in what matters most here: the vector and bf16 instructions
    flags = cpu_flags()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    cpu += f" ({', '.join([vector, *cpu_bf16_features()]) if flags else 'CPU features unknown'})"
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} (torch threads: {torch.get_num_threads()})"
        f"{gpu}, Python {platform.python_version()}"
    )


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Measured matmul throughput of this machine (GFLOP/s), the denominator of CPU MFU."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * repeats / best / 1e9


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """``fn()``, its wall-clock seconds and its CPU seconds (all threads of this process).

    On a busy machine the wall time grows with the load while the CPU time barely moves, so the
    benchmarks report both: a gap between them means the machine was shared.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md with ``body``."""
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    stamp = (
        f"*Machine:* {machine()}  \n*Command:* `{command}`  \n"
        f"*Date:* {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}\n\n"
    )
    section = f"<!-- bench:{name} -->\n{stamp}{body.strip()}\n<!-- /bench:{name} -->"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    # Several benchmarks may finish at once: serialise the read-modify-write, then swap atomically.
    with open(DOC.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = DOC.read_text() if DOC.exists() else ""
        if not text.startswith("# Benchmarks"):
            text = _HEADER + text
        pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: section, text)
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
        tmp = DOC.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, DOC)
    print(f"wrote section {name!r} of {DOC.relative_to(REPO)}")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
