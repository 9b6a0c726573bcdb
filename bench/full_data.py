"""Time from command to first training step, and peak memory, for cpu-quick on a full-size dataset.

The real TinyStories train split is ~1.9 GB (2.1M stories). This builds a stand-in of that size
*outside the repository* by repeating the shared real text (``../shared/data/``), in the two
layouts a learner has: the dataset's own ``.txt`` pair, and a parquet directory laid out like the
hub repo (``data/train-0000k-of-00004.parquet``, 1,000-row row groups as ``datasets`` writes them).
Then it runs the README's main job, ``python -m slm_course.train --preset cpu-quick``, on each,
and stops it at its first training step (the first ``"train"`` record in ``metrics.jsonl``, with
``--log_interval 1``), reading the process's peak resident memory (VmHWM) just before:

* **cold**: an empty ``SLM_CACHE`` (no tokenizer, no token files): train the BPE on its sample,
  tokenize the run's budget;
* **warm**: the same command again, everything cached.

The parquet directory is measured twice: read shard by shard (``--data_source DIR``, what a
local copy gets), and through ``datasets.load_dataset`` (the code path of ``--data_source hub``,
pointed at the directory), whose first call also converts the parquet to an Arrow cache. Targets
on 2 cores: <= 30 s cold, <= 5 s warm, peak RSS <= 1 GB. The OS page cache is warm in every run
(the stand-in was just written or read), so "cold" measures this package's work, not the disk.

    python bench/full_data.py [--data /work/bigdata] [--skip-datasets]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, markdown_table, write_section  # noqa: E402
from slm_course.corpus import open_stories  # noqa: E402
from slm_course.fileio import atomic_open  # noqa: E402
from slm_course.runtime import shared_data_dir  # noqa: E402

TRAIN_BYTES = 1_920_000_000  # the real TinyStories-train.txt is ~1.92 GB
VALID_BYTES = 19_400_000  # and TinyStories-valid.txt ~19.4 MB
TRAIN_SHARDS = 4  # the hub repo's data/train-0000k-of-00004.parquet
ROW_GROUP = 1_000  # rows per parquet row group, as datasets' writer batches them
TARGETS = {"cold": 30.0, "warm": 5.0}
RSS_TARGET_MB = 1024
TIMEOUT_S = 1800
# Point the hub code path (datasets.load_dataset) at a local directory, then run the training CLI.
HUB_RUNNER = (
    "import runpy, sys; from slm_course.corpus import sources; sources.HUB_DATASET = sys.argv.pop(1); "
    "sys.argv[0] = 'slm_course.train'; runpy.run_module('slm_course.train', run_name='__main__')"
)


def repeat_to(source: Path, target: Path, n_bytes: int) -> None:
    """``target`` = ``source`` repeated until it holds at least ``n_bytes`` (whole copies)."""
    if target.exists() and target.stat().st_size >= n_bytes:
        return
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(target) as file:
        for _ in range(-(-n_bytes // len(data))):
            file.write(data)


def write_parquet(stories, path: Path) -> int:
    """Write ``stories`` to one parquet file with ``ROW_GROUP``-row groups; return how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("text", pa.string())])
    n = 0
    with atomic_open(path) as file, pq.ParquetWriter(file, schema) as writer:
        while batch := list(itertools.islice(stories, ROW_GROUP)):
            writer.write_table(pa.table({"text": batch}, schema=schema), row_group_size=ROW_GROUP)
            n += len(batch)
    return n


def make_stand_ins(shared: Path, root: Path) -> tuple[Path, Path]:
    """The .txt pair and the hub-layout parquet directory, built once and reused."""
    txt = root / "txt"
    repeat_to(shared / "TinyStories-train.subset.txt", txt / "TinyStories-train.txt", TRAIN_BYTES)
    repeat_to(shared / "TinyStories-valid.subset.txt", txt / "TinyStories-valid.txt", VALID_BYTES)
    hub = root / "hub"
    done = hub / "data" / ".complete"
    if not done.exists():
        (hub / "data").mkdir(parents=True, exist_ok=True)
        train = iter(open_stories("train", txt / "TinyStories-train.txt"))
        n_train = sum(1 for _ in open_stories("train", txt / "TinyStories-train.txt"))
        per_shard = -(-n_train // TRAIN_SHARDS)
        for k in range(TRAIN_SHARDS):
            print(f"writing parquet shard {k + 1}/{TRAIN_SHARDS}", flush=True)
            write_parquet(itertools.islice(train, per_shard),
                          hub / "data" / f"train-{k:05d}-of-{TRAIN_SHARDS:05d}.parquet")
        write_parquet(iter(open_stories("validation", txt / "TinyStories-valid.txt")),
                      hub / "data" / "validation-00000-of-00001.parquet")
        done.write_text("")
    return txt, hub


def first_step(command: list[str], env: dict[str, str], run_dir: Path, log: Path) -> dict[str, float]:
    """Run ``command`` until ``run_dir/metrics.jsonl`` holds a training record; then kill it.

    Returns the seconds from launch to that record and to ``config.json`` (which training writes as
    soon as its data is ready: the tokenizer and token files are this package's part, the step-0
    evaluation and the first step the model's), the process's peak RSS (MB) and its CPU seconds.
    """
    metrics, config = run_dir / "metrics.jsonl", run_dir / "config.json"
    data_ready = None
    start = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the run ended (exit {process.returncode}) before its first step; see {log}")
            if data_ready is None and config.exists():
                data_ready = time.perf_counter() - start
            if metrics.exists() and '"kind": "train"' in metrics.read_text():
                seconds = time.perf_counter() - start
                break
            if time.perf_counter() - start > TIMEOUT_S:
                raise RuntimeError(f"no training step after {TIMEOUT_S} s; see {log}")
            time.sleep(0.05)
        status = Path(f"/proc/{process.pid}/status").read_text()
        peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        ticks = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu_s = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return {"seconds": seconds, "data_ready": data_ready, "rss_mb": peak_kb / 1024, "cpu_s": cpu_s}


def forward_ms(record: dict) -> float:
    """Wall milliseconds of one evaluation batch of the run's model, now: how loaded the machine is.

    The step-0 evaluation runs ``2 * eval_iters`` of these before the first update, so on a shared
    machine this, not the data, is what the time to the first step mostly measures.
    """
    import torch

    from slm_course.config import GPTConfig
    from slm_course.model import GPT

    model = GPT(GPTConfig.from_dict(record["model"])).eval()
    x = torch.randint(record["tokenizer"]["n_vocab"], (record["train"]["batch_size"], model.config.block_size))
    with torch.no_grad():
        model(x, x)
        start = time.perf_counter()
        for _ in range(5):
            model(x, x)
    return (time.perf_counter() - start) / 5 * 1000


def verdict(seconds: float, target: float | None) -> str:
    return "" if target is None else ("meets" if seconds <= target else "MISSES")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/bigdata"),
                        help="where the stand-in lives (outside the repository; ~3 GB, ~5 GB with --datasets)")
    parser.add_argument("--skip-datasets", action="store_true", help="skip the datasets.load_dataset runs")
    args = parser.parse_args()
    shared = shared_data_dir()
    if shared is None:
        sys.exit("bench/full_data.py needs the real TinyStories text in ../shared/data/ (see its README)")
    if REPO in args.data.resolve().parents or args.data.resolve() == REPO:
        sys.exit(f"--data {args.data} is inside the repository; the stand-in must live outside it")
    txt, hub = make_stand_ins(shared, args.data)
    train_txt = txt / "TinyStories-train.txt"
    n_stories = sum(1 for _ in open_stories("train", train_txt))
    parquet_mb = sum(p.stat().st_size for p in (hub / "data").glob("train-*.parquet")) / 1e6

    work = Path(tempfile.mkdtemp(prefix="full-data-", dir=args.data))
    base_env = {key: value for key, value in os.environ.items() if key != "SLM_TINYSTORIES"}
    base_env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_HOME=str(work / "hf"))
    cli = [sys.executable, "-m", "slm_course.train", "--preset", "cpu-quick", "--log_interval", "1"]
    cases = [("`.txt` pair", cli + ["--data_source", str(txt)]),
             ("parquet shards, read lazily", cli + ["--data_source", str(hub)])]
    if not args.skip_datasets:
        hub_cli = [sys.executable, "-c", HUB_RUNNER, str(hub), "--preset", "cpu-quick", "--log_interval", "1",
                   "--data_source", "hub"]
        cases.append(("parquet through `datasets.load_dataset`", hub_cli))
    loads = [os.getloadavg()[0]]
    rows = []
    try:
        for index, (name, command) in enumerate(cases):
            env = {**base_env, "SLM_CACHE": str(work / f"cache-{index}")}
            runs = ["cold", "warm"]
            if "datasets" in name:
                runs = ["first load", *runs]
                env["SLM_CACHE"] = str(work / "cache-first")  # the first load also fills SLM_CACHE...
            for run in runs:
                if run == "cold" and "datasets" in name:
                    env["SLM_CACHE"] = str(work / f"cache-{index}")  # ...so cold gets a fresh one
                run_dir = work / f"run-{index}-{run.replace(' ', '-')}"
                result = first_step(command + ["--out_dir", str(run_dir)], env, run_dir, work / f"{run_dir.name}.log")
                target = TARGETS.get(run)
                data_verdict, step_verdict = verdict(result["data_ready"], target), verdict(result["seconds"], target)
                rss_verdict = "meets" if result["rss_mb"] <= RSS_TARGET_MB else "MISSES"
                print(f"{name}, {run}: data ready after {result['data_ready']:.1f} s ({data_verdict}), "
                      f"{result['seconds']:.1f} s to the first step ({step_verdict}), peak RSS "
                      f"{result['rss_mb']:.0f} MB ({rss_verdict}), {result['cpu_s']:.1f} CPU s", flush=True)
                rows.append([name, run, f"{result['data_ready']:.1f} s {data_verdict}",
                             f"**{result['seconds']:.1f} s** {step_verdict}",
                             f"{result['seconds'] - result['data_ready']:.1f} s",
                             f"{result['rss_mb']:.0f} MB {rss_verdict if target else ''}", f"{result['cpu_s']:.1f} s"])
                loads.append(os.getloadavg()[0])
        record = json.loads((work / "run-0-cold" / "config.json").read_text())
        batch_ms = forward_ms(record)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    body = (
        "## Full-size data: command to first training step (cpu-quick, CPU)\n\n"
        f"`python -m slm_course.train --preset cpu-quick` on a {train_txt.stat().st_size / 1e9:.2f} GB stand-in "
        f"for the real train split ({n_stories:,} stories: the shared real text repeated; validation "
        f"{(txt / 'TinyStories-valid.txt').stat().st_size / 1e6:.1f} MB), stopped at its first training step. "
        f"Parquet: {TRAIN_SHARDS} train shards, {parquet_mb:.0f} MB, {ROW_GROUP:,}-row groups. The run reads "
        f"{record['data']['train_tokens']:,} train tokens (budget {record['data']['token_budget']['train']:,}) and "
        f"{record['data']['validation_tokens']:,} validation tokens, from the first "
        f"{record['data']['stories']['train']:,} stories; its BPE learns from the first 8 MiB. Time includes "
        "Python start-up, imports and the step-0 evaluation; *data ready* is when training has its tokenizer "
        "and token files (it writes the run's `config.json`), the rest is the model's start-up, the step-0 "
        "evaluation (10 batches per split) and one update. *cold* = empty `SLM_CACHE`; *first load* = "
        "empty Hugging Face cache too (`datasets` converts the parquet to Arrow). OS page cache warm "
        f"throughout. lscpu: {model}, {os.cpu_count()} CPUs; 1-min load average "
        f"{min(loads):.1f}–{max(loads):.1f} during the runs"
        + (" (**the machine was shared with other jobs: wall times are inflated**; CPU s is the "
           "process's own work)" if max(loads) > 1.5 else "") + ".\n\n"
        + markdown_table(["source", "run", "data ready", "time to first step", "of which model start-up, step-0 "
                          "eval, 1 update", "peak RSS", "CPU s"], rows)
        + f"\n\nTargets: ≤ {TARGETS['cold']:.0f} s cold, ≤ {TARGETS['warm']:.0f} s warm, peak RSS ≤ "
        f"{RSS_TARGET_MB / 1024:.0f} GB. What follows *data ready* is the trainer's, not the data's: right after "
        f"the runs, one evaluation batch of this model ({record['train']['batch_size']} x "
        f"{record['model']['block_size']} tokens, 2 threads) took **{batch_ms:.0f} ms**, and the step-0 "
        f"evaluation runs {2 * record['train']['eval_iters']} of them before the first update "
        f"(~{2 * record['train']['eval_iters'] * batch_ms / 1000:.0f} s at that speed).\n"
    )
    write_section("full_data", body)


if __name__ == "__main__":
    main()
