"""The CPU speedrun: which 10-minute recipe gives the lowest validation bits/byte on 2 cores.

Each variant is the ``cpu-quick`` preset with a few fields changed (VARIANTS). ``run`` trains one
from scratch on the real TinyStories text (``SLM_TINYSTORIES``, else ``../shared/data/``) with its
own empty cache, so the wall time counts the tokenizer and the tokenized data too, then scores the
final model on *every* token of the validation split (not the few batches the training log uses)
and appends a row to ``bench/cpu_speedrun.jsonl``. ``table`` turns those rows into the speedrun
section of docs/benchmarks.md, beside the published anchors converted to bits/byte.

    python bench/cpu_speedrun.py run baseline rope-lr3e-3   # ~10 min each, one after another
    python bench/cpu_speedrun.py table

Run variants one at a time on a quiet machine: two at once halve each other's throughput.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import REPO, machine, markdown_table, write_section  # noqa: E402
from slm_course import checkpoint  # noqa: E402
from slm_course.bigram import bits_per_byte  # noqa: E402
from slm_course.checkpoint import load_run  # noqa: E402
from slm_course.config import GPTConfig, TrainConfig  # noqa: E402
from slm_course.data import prepare_run_data, resolve_tokenizer  # noqa: E402
from slm_course.corpus import load_tinystories  # noqa: E402
from slm_course.presets import preset  # noqa: E402
from slm_course.runtime import shared_data_dir  # noqa: E402
from slm_course.sample import generate_text  # noqa: E402
from slm_course.tokenizer import token_byte_lengths  # noqa: E402
from slm_course.trainer import train_model  # noqa: E402

RESULTS = REPO / "bench" / "cpu_speedrun.jsonl"
STORY_SETTINGS = {"max_new_tokens": 300, "temperature": 0.8, "top_k": 50}  # empty prompt

# cpu-quick as it was before the speedrun (the "baseline"), as changes to the preset of today;
# every variant is the baseline plus its own changes, the ones the table lists.
OLD_MODEL = {"pos_emb": "learned", "n_embd": 192}
OLD_TRAIN = {"lr": 2e-3, "min_lr": 2e-4, "max_iters": 1500, "dtype": "auto", "time_budget": None}
VARIANTS: dict[str, tuple[dict, dict]] = {
    "baseline": ({}, {}),
    "rope-lr3e-3-10min": ({"pos_emb": "rope"}, {"lr": 3e-3, "min_lr": 3e-4, "time_budget": 585.0}),
    "rope-bf16-10min": ({"pos_emb": "rope"}, {"lr": 3e-3, "min_lr": 3e-4, "time_budget": 585.0, "dtype": "bfloat16"}),
    "rope-bf16-2200": ({"pos_emb": "rope"}, {"lr": 3e-3, "min_lr": 3e-4, "max_iters": 2200, "dtype": "fastest"}),
    "rope-bf16-E144-3000": ({"pos_emb": "rope", "n_embd": 144},
                            {"lr": 3e-3, "min_lr": 3e-4, "max_iters": 3000, "dtype": "fastest"}),
    "rope-bf16-rms-swiglu-10min": ({"pos_emb": "rope", "norm": "rmsnorm", "mlp": "swiglu"},
                                   {"lr": 3e-3, "min_lr": 3e-4, "time_budget": 585.0, "dtype": "bfloat16"}),
    # lesson 08's scaling-law fit picks ~1.5M parameters for cpu-quick's FLOPs: 4 x 144 is 1.6M
    "rope-bf16-E144-10min": ({"pos_emb": "rope", "n_embd": 144},
                             {"lr": 3e-3, "min_lr": 3e-4, "time_budget": 585.0, "dtype": "bfloat16"}),
}


def configs(name: str) -> tuple[GPTConfig, TrainConfig, dict]:
    """The configs of variant ``name`` ("preset": cpu-quick as it is now) and what it changes from
    the baseline."""
    model_config, train_config = preset("cpu-quick")
    if name == "preset":
        old_model, old_train = model_config.replace(**OLD_MODEL), train_config.replace(**OLD_TRAIN)
        changes = {k: v for k, v in model_config.to_dict().items() if v != old_model.to_dict()[k]}
        changes |= {k: v for k, v in train_config.to_dict().items() if v != old_train.to_dict()[k]}
        return model_config, train_config, changes
    model_changes, train_changes = VARIANTS[name]
    return (model_config.replace(**OLD_MODEL | model_changes), train_config.replace(**OLD_TRAIN | train_changes),
            model_changes | train_changes)


# Published TinyStories results, in nats/token, with the vocabulary they were measured at. Their
# bytes per token are estimated with our own BPE of that size on the validation text (theirs are
# not published), so the bits/byte column is an estimate.
ANCHORS = [
    ("Stanford CS336 assignment 1 target (H100, ~30-40 min)", 1.45, 10_000),
    ("llama2.c 260K-parameter model", 1.297, 512),
]


@torch.inference_mode()
def score_all(model: torch.nn.Module, tokens: np.ndarray, token_bytes: np.ndarray, batch: int = 32) -> dict:
    """Nats/token and bits/byte over every token of ``tokens``, in non-overlapping windows."""
    block = model.config.block_size
    n_windows = (len(tokens) - 1) // block
    ids = torch.from_numpy(np.asarray(tokens[: n_windows * block + 1], dtype=np.int64))
    inputs, targets = ids[:-1].view(n_windows, block), ids[1:].view(n_windows, block)
    nll = torch.cat([F.cross_entropy(model(x)[0].float().flatten(0, 1), y.flatten(), reduction="none")
                     for x, y in zip(inputs.split(batch), targets.split(batch))]).numpy()
    return {"val_tokens": len(nll), "val_nats_per_token": float(nll.mean()),
            "val_bpb": bits_per_byte(nll, targets.flatten().numpy(), token_bytes)}


def run(name: str, data: str, stories: int = 0) -> dict:
    """Train variant ``name`` from an empty cache and score it; the row appended to RESULTS.

    With ``stories``, the row also holds that many stories sampled from the final model
    (``STORY_SETTINGS``, seed 0), and the run's last evaluation record (``"last_eval"``).
    """
    model_config, train_config, changes = configs(name)
    with tempfile.TemporaryDirectory(prefix="speedrun-") as cache:
        os.environ["SLM_CACHE"] = cache  # a cold start: the tokenizer and the token files count too
        train_config = train_config.replace(data_source=data, device="cpu",
                                            out_dir=str(Path(cache) / "run"))
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        run_dir = train_model(model_config, train_config)
        wall = time.perf_counter() - start
        model, encoding, record = load_run(run_dir, device="cpu")
        state = checkpoint.load_state(run_dir)
        tokens = prepare_run_data(train_config, model_config.block_size).tokens["validation"]  # cached now
        score = score_all(model, tokens, token_byte_lengths(encoding))
        evals = [r for r in checkpoint.read_metrics(run_dir) if r["kind"] == "eval"]
        generator = torch.Generator().manual_seed(0)
        samples = [generate_text(model, encoding, "", generator=generator, **STORY_SETTINGS) for _ in range(stories)]
    row = {"variant": name, "changes": changes, "wall_s": round(wall, 1),
           "train_s": round(state["train_seconds"], 1), "updates": state["step"],
           "tokens": state["step"] * train_config.batch_size * train_config.grad_accum_steps * model_config.block_size,
           "params": model.num_params(), "load_before": load_before, "load_after": os.getloadavg()[0],
           "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), **score,
           "budget": record.get("budget"), "data": record["data"], "first_eval": evals[0], "last_eval": evals[-1],
           "stories": samples}
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def bytes_per_token(vocab: int, data: str) -> tuple[float, int]:
    """Mean UTF-8 bytes per token of our ``bpe-<vocab>`` on the validation stories (an estimate of
    a published tokenizer's of the same size), and the vocabulary it reached (the text at hand may
    offer fewer merges than asked for)."""
    stories = load_tinystories("validation", data)
    encoding, _ = resolve_tokenizer(f"bpe-{vocab}", lambda: load_tinystories("train", data))
    text = "".join(stories)
    return len(text.encode("utf-8")) / len(encoding.encode_ordinary(text)), encoding.n_vocab


def table(data: str) -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    body = ["## CPU speedrun: the best 10-minute `cpu-quick` (2 CPU cores)\n",
            "Each row trains from an empty cache (the tokenizer and token files count in the wall time) on "
            f"the shared real TinyStories text and scores the final model on every token of the validation "
            f"split. Run one at a time (`python bench/cpu_speedrun.py run VARIANT`); machine: {rows[-1]['machine']}.\n"]
    body.append(markdown_table(
        ["variant", "changes from the old cpu-quick", "updates", "tokens", "wall", "val nats/token", "val bits/byte"],
        [[r["variant"], ", ".join(f"{k}={v}" for k, v in r["changes"].items()) or "—",
          f"{r['updates']:,}", f"{r['tokens'] / 1e6:.2f}M", f"{r['wall_s'] / 60:.1f} min",
          f"{r['val_nats_per_token']:.3f}", f"**{r['val_bpb']:.3f}**"] for r in rows]))
    body.append(
        "\nReading it (every score on the shared validation text): "
        "Rotary positions with a 1.5x higher learning rate gain ~0.06 bits/byte at the same number of tokens; "
        "bf16 autocast on a CPU with native bf16 (AVX-512-BF16 here) makes each update ~1.6x faster, so the "
        "same ten minutes train on ~1.5x the tokens, another ~0.06. The model size lesson 08's scaling-law fit "
        "picks for this compute (~1.5M parameters; 4 x 144 is 1.6M) costs ~30% less per update: given the "
        "ten-minute budget it planned 3,771 updates (1.7x the tokens) and reached 0.907, but a slow spell of "
        "this machine stretched the run to 10.9 min. At about 8 minutes each the two sizes tie within noise "
        "(4 x 144 with 2,500 updates 0.949, 4 x 192 with 2,200 updates 0.941): on a CPU time is not FLOPs, "
        "since the vocabulary-wide softmax and each step's fixed costs don't shrink with the width. The "
        "preset takes 4 x 144 at 2,500 updates because that count fits ten minutes even in the slow spells "
        "(3,000 took 11.0 min in one), and it is reproducible; `--time_budget 10m` plans the count for "
        "another machine, from its first 50 updates (so a machine whose speed drifts, as this one's does by "
        "up to a third, can still overrun). "
        "For reference, the issue that asked for this measured the old preset at 1.023 bits/byte and a "
        "nanoGPT-style model (4 x 256, context 256, same vocabulary, 8.4 min) at 1.152, on 3,117 held-out "
        "stories of its own on the same machine class; numbers on different texts compare only roughly. "
        "Not measured here: RMSNorm, SwiGLU/ReLU², QK-norm, an untied head, other vocabularies, batch "
        "sizes and schedules (`rope-bf16-rms-swiglu-10min` is defined, not yet run).\n")
    anchors = []
    for label, nats, vocab in ANCHORS:
        bpt, reached = bytes_per_token(vocab, data)
        ours = f"{bpt:.2f}" + ("" if reached == vocab else f" (our BPE reached {reached:,} tokens on this text)")
        anchors.append([label, f"{nats} at vocabulary {vocab:,}", ours, f"≈ {nats / math.log(2) / bpt:.2f}"])
    body.append("\nPublished anchors, converted with our BPE's bytes/token at their vocabulary size (an estimate):\n")
    body.append(markdown_table(["result", "nats/token", "bytes/token (our BPE)", "bits/byte"], anchors))
    write_section("cpu_speedrun", "\n".join(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("variants", nargs="*", help=f"with run: any of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    shared = shared_data_dir()
    data = os.environ.get("SLM_TINYSTORIES") or (str(shared / "TinyStories-train.subset.txt") if shared else None)
    if data is None:
        sys.exit("bench/cpu_speedrun.py needs real TinyStories: set SLM_TINYSTORIES or keep ../shared/data/")
    if args.command == "table":
        table(data)
        return
    unknown = [name for name in args.variants if name not in [*VARIANTS, "preset"]]
    if unknown or not args.variants:
        sys.exit(f"name the variants to run (unknown: {unknown}); choose from {', '.join(VARIANTS)}, preset")
    for name in args.variants:
        row = run(name, data)
        print(json.dumps({k: v for k, v in row.items() if k != "stories"}), flush=True)


if __name__ == "__main__":
    main()
