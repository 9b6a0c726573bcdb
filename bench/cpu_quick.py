"""The ``cpu-quick`` preset end to end on real TinyStories: wall time, loss, bits/byte, three stories.

Trains from scratch (tokenizer and tokenized data included, unless already cached) on the text in
``../shared/data/``, exactly as ``python -m slm_course.train --preset cpu-quick`` would with
``--data_source`` pointing there, then samples three stories from the checkpoint.

    python bench/cpu_quick.py [--max_iters N]     # N < the preset's: a shorter check run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, markdown_table, write_section  # noqa: E402
from slm_course import checkpoint  # noqa: E402
from slm_course.runtime import shared_data_dir  # noqa: E402
from slm_course.checkpoint import load_run  # noqa: E402
from slm_course.presets import preset  # noqa: E402
from slm_course.sample import generate_text  # noqa: E402
from slm_course.trainer import train_model  # noqa: E402

TEMPERATURE, TOP_K, MAX_NEW_TOKENS = 0.8, 50, 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max_iters", type=int, default=None, help="shorten the run (default: the preset's)")
    parser.add_argument("--out_dir", default=str(REPO / "runs" / "bench-cpu-quick"))
    args = parser.parse_args()
    data = shared_data_dir()
    if data is None:
        sys.exit("bench/cpu_quick.py needs the real TinyStories text in ../shared/data/ (see the README)")

    model_config, train_config = preset("cpu-quick")
    changes = {"data_source": str(data), "out_dir": args.out_dir, "device": "cpu"}
    if args.max_iters is not None:
        changes.update(max_iters=args.max_iters, warmup_iters=min(train_config.warmup_iters, args.max_iters // 10),
                       eval_interval=min(train_config.eval_interval, args.max_iters))
    train_config = train_config.replace(**changes)
    shutil.rmtree(train_config.out_dir, ignore_errors=True)

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    run_dir = train_model(model_config, train_config)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    state = checkpoint.load_state(run_dir)
    records = checkpoint.read_metrics(run_dir)
    evals = [r for r in records if r["kind"] == "eval"]
    logged = [r for r in records if r["kind"] == "train"]
    tokens_per_s = logged[-1]["tokens"] / state["train_seconds"]

    model, encoding, info = load_run(run_dir, device="cpu")
    generator = torch.Generator().manual_seed(0)
    stories = [generate_text(model, encoding, "", MAX_NEW_TOKENS, TEMPERATURE, top_k=TOP_K, generator=generator)
               for _ in range(3)]
    for story in stories:
        print("---\n" + story)

    c, t = model_config, train_config
    rows = [
        ["model", f"{c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, context {c.block_size}, "
                  f"vocab {c.vocab_size} ({t.tokenizer}); {model.num_params() / 1e6:.2f}M parameters"],
        ["data", f"{info['data']['source']}: {info['data']['train_tokens']:,} training tokens"],
        ["budget", f"{t.max_iters} updates x {t.batch_size * c.block_size:,} tokens = "
                   f"{logged[-1]['tokens'] / 1e6:.2f}M tokens ({logged[-1]['tokens'] / info['data']['train_tokens']:.1f} epochs)"],
        ["wall time, end to end", f"**{wall / 60:.1f} min** ({wall:.0f} s; tokenizer, data, training, evals, checkpoints)"],
        ["training loop alone", f"{state['train_seconds']:.0f} s, {tokens_per_s:,.0f} tokens/s "
                                f"({torch.get_num_threads()} torch thread(s); 1-min load average {load_before:.1f} at the start, "
                                f"{load_after:.1f} at the end)"],
        ["loss before training", f"{evals[0]['val_loss']:.3f} (ln {c.vocab_size} = {torch.log(torch.tensor(c.vocab_size)):.3f})"],
        ["final loss", f"train {evals[-1]['train_loss']:.3f}, **validation {evals[-1]['val_loss']:.3f}** nats/token"],
        ["final bits per byte", f"train {evals[-1]['train_bpb']:.3f}, **validation {evals[-1]['val_bpb']:.3f}** "
                                f"(nats over the text tokens / their UTF-8 bytes / ln 2; end-of-story tokens left out)"],
    ]
    body = (
        "## `cpu-quick` preset on real TinyStories (CPU)\n\n"
        + markdown_table(["", "result"], rows)
        + f"\n\nThree stories sampled from the final checkpoint (empty prompt, temperature {TEMPERATURE}, "
        f"top-k {TOP_K}, at most {MAX_NEW_TOKENS} tokens, seed 0):\n\n"
        + "\n\n".join("> " + story.strip().replace("\n", "\n> ") for story in stories)
    )
    if args.max_iters is not None:
        body += f"\n\n*A shortened check run (--max_iters {args.max_iters}), not the preset's full budget.*"
    write_section("cpu_quick", body)


if __name__ == "__main__":
    main()
