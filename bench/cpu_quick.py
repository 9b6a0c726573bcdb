"""The ``cpu-quick`` preset end to end on real TinyStories: wall time, loss, bits/byte, three stories.

Trains from scratch, from an empty cache (the tokenizer and the tokenized data count in the wall
time), on the text in ``SLM_TINYSTORIES`` or ``../shared/data/``, exactly as
``python -m slm_course.train --preset cpu-quick`` would with ``--data_source`` pointing there;
scores the final model on every token of the validation split; samples three stories. The run is
also the ``preset`` row of the speedrun table (``bench/cpu_speedrun.py``).

    python bench/cpu_quick.py
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import markdown_table, write_section  # noqa: E402
from bench.cpu_speedrun import STORY_SETTINGS, run  # noqa: E402
from slm_course.presets import preset  # noqa: E402
from slm_course.runtime import shared_data_dir  # noqa: E402


def main() -> None:
    shared = shared_data_dir()
    data = os.environ.get("SLM_TINYSTORIES") or (str(shared / "TinyStories-train.subset.txt") if shared else None)
    if data is None:
        sys.exit("bench/cpu_quick.py needs real TinyStories: set SLM_TINYSTORIES or keep ../shared/data/")
    row = run("preset", data, stories=3)
    for story in row["stories"]:
        print("---\n" + story)

    c, t = preset("cpu-quick")
    first, last = row["first_eval"], row["last_eval"]
    arch = f"{c.pos_emb} positions, {c.norm}, {c.mlp} MLP"
    rows = [
        ["model", f"{c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, context {c.block_size}, {arch}, "
                  f"vocab {c.vocab_size} ({t.tokenizer}); {row['params'] / 1e6:.2f}M parameters"],
        ["data", f"{row['data']['source']}: {row['data']['train_tokens']:,} training tokens"],
        ["budget", f"{row['updates']:,} updates x {t.batch_size * t.grad_accum_steps * c.block_size:,} tokens = "
                   f"{row['tokens'] / 1e6:.2f}M tokens ({row['tokens'] / row['data']['train_tokens']:.1f} epochs)"],
        ["wall time, end to end", f"**{row['wall_s'] / 60:.1f} min** ({row['wall_s']:.0f} s from an empty cache: "
                                  f"tokenizer, data, training, evals, checkpoints)"],
        ["training loop alone", f"{row['train_s']:.0f} s, {row['tokens'] / row['train_s']:,.0f} tokens/s (1-min load "
                                f"average {row['load_before']:.1f} at the start, {row['load_after']:.1f} at the end)"],
        ["loss before training", f"{first['val_loss']:.3f} (ln {c.vocab_size} = {math.log(c.vocab_size):.3f})"],
        ["final loss, training log", f"train {last['train_loss']:.3f}, validation {last['val_loss']:.3f} nats/token "
                                     f"({t.eval_iters} batches per split)"],
        ["**final validation, every token**", f"**{row['val_bpb']:.3f} bits/byte**, {row['val_nats_per_token']:.3f} "
                                              f"nats/token over all {row['val_tokens']:,} validation tokens"],
    ]
    body = (
        "## `cpu-quick` preset on real TinyStories (CPU)\n\n"
        + markdown_table(["", "result"], rows)
        + f"\n\nThree stories sampled from the final checkpoint (empty prompt, temperature "
        f"{STORY_SETTINGS['temperature']}, top-k {STORY_SETTINGS['top_k']}, at most "
        f"{STORY_SETTINGS['max_new_tokens']} tokens, seed 0):\n\n"
        + "\n\n".join("> " + story.strip().replace("\n", "\n> ") for story in row["stories"])
    )
    write_section("cpu_quick", body)


if __name__ == "__main__":
    main()
