"""The runs the course names, as data: each preset is a model config and a training config.

Read a preset like a recipe: every value that differs from the dataclass default says why it was
chosen. ``python -m slm_course.train --preset NAME`` starts from one, and any option given on the
command line overrides a single field of it. Token budgets are counted per optimizer update:
``batch_size x grad_accum_steps x block_size`` tokens.
"""

from __future__ import annotations

import difflib

from slm_course.config import GPTConfig, TrainConfig

PRESETS: dict[str, tuple[GPTConfig, TrainConfig]] = {
    # The best model 10 minutes of 2 CPU cores make, chosen by measurement (the CPU speedrun in
    # docs/benchmarks.md) and by lesson 08's scaling law, whose compute-optimal size for this budget
    # is ~1.5M parameters. A slower machine can keep to ten minutes with --time_budget 10m.
    "cpu-quick": (
        GPTConfig(
            vocab_size=4096,  # our BPE's 4,096 tokens: embedding and head 12x smaller than GPT-2's 50,257
            block_size=128,  # most of a story fits; attention's cost grows with the square of it
            n_layer=4,  # 4 blocks x 144 wide = 1.6M parameters, lesson 08's compute-optimal size;
            n_head=4,  # 4 x 192 (2.6M) ties it in 8 minutes (0.941 vs 0.949 bits/byte) but costs ~40%
            n_embd=144,  # more per update, too much for ten minutes in a slow spell. 4 heads of 36 dims
            dropout=0.0,  # a few million tokens is too short a run to overfit; dropout would only slow it
            pos_emb="rope",  # rotary positions (lesson 05): 1.003 vs 1.059 bits/byte for learned ones (speedrun)
        ),
        TrainConfig(
            tokenizer="bpe-4096",  # trained on the training stories once, then cached
            batch_size=16,  # 16 x 128 = 2,048 tokens per update: small batches, many updates, for a CPU
            max_iters=2500,  # 5.1M tokens: 7-9 minutes on a 2-core Zen 4 in bf16, whose speed drifts by
            # a third with its neighbours' load (3,000 updates took 11 min at its slowest)
            lr=3e-3,  # small models tolerate (and need, in a short run) a high learning rate; with RoPE
            min_lr=3e-4,  # 3e-3 beat 2e-3 in the speedrun's sweep. Decay to lr / 10
            warmup_iters=50,  # ~2% of the run: long enough for AdamW's moment estimates to settle
            eval_interval=250,  # 11 evaluations + checkpoints: a curve to look at, little time spent
            eval_iters=10,  # 10 x 2,048 tokens per split: a stable enough estimate for the curve
            dtype="fastest",  # bf16 autocast where the CPU has native bf16 and measures it faster
            # (1.6x a whole step on a Zen 4), else fp32: the clock is what this run is judged by
            out_dir="runs/cpu-quick",
        ),
    ),
    # The small run lessons 03, 06 and 07 share in their quick profile: about a minute on 2 cores.
    "lesson": (
        GPTConfig(
            vocab_size=1024,  # a 1,024-token BPE trains in seconds on 3,000 stories
            block_size=64,  # short contexts keep each step cheap; a lesson needs a curve, not a story
            n_layer=2,  # 2 blocks x 128 wide: small enough to learn something in a minute
            n_head=4,
            n_embd=128,
            dropout=0.0,  # 1,200 updates (1.6 passes over the stories) barely overfit
        ),
        TrainConfig(
            tokenizer="bpe-1024",
            max_stories=3000,  # tokenizing the whole corpus would take longer than training on it
            batch_size=16,  # 16 x 64 = 1,024 tokens per update
            # 1,200 updates: enough to beat lesson 02's bigram (1.47 vs 1.63 bits/byte measured on the
            # shared real text; 300 updates reached only 1.80), about a minute on 2 quiet CPU cores
            max_iters=1200,
            lr=3e-3,  # the smaller the model, the higher the learning rate it trains best with
            min_lr=3e-4,  # lr / 10
            warmup_iters=40,  # ~3% of the run
            eval_interval=100,  # 13 points on the loss curve the lesson draws
            eval_iters=5,  # each evaluation stays a small fraction of the run's time
            out_dir="runs/lesson",
        ),
    ),
    # The seed project's model and token budget, with its schedule fixed. The seed ran 20,000
    # micro-batches of 32 x 128 tokens with 32-step accumulation (625 updates) but stepped its
    # scheduler per micro-batch and decayed *up* to eta_min=5e-4 from lr=1e-4.
    "seed": (
        GPTConfig.seed(),  # 6 layers x 384 wide, GPT-2 vocabulary: 30.0M parameters
        TrainConfig(
            tokenizer="gpt2",  # the seed's tokenizer
            batch_size=32,  # the seed's micro-batch...
            grad_accum_steps=32,  # ...and accumulation: 32 x 32 x 128 = 131K tokens per update
            max_iters=625,  # the seed's 20,000 micro-batches, counted as updates
            lr=6e-4,  # GPT-2 small's peak learning rate (the seed's 1e-4 was below its own eta_min)
            min_lr=6e-5,  # lr / 10: the cosine decays down, not up as in the seed
            warmup_iters=31,  # 5% of the updates
            eval_interval=25,  # an evaluation every 4% of the run
            eval_iters=20,  # 20 x 4,096 tokens per split
            out_dir="runs/seed",
        ),
    ),
    # A stronger single-GPU run: 8 layers x 512 wide on 256-token contexts, compiled, bf16.
    "gpu": (
        GPTConfig(
            vocab_size=50304,  # GPT-2's 50,257 padded to a multiple of 64 for faster matmuls; no token
            # is ever the target of the extra rows, so they learn to be unlikely
            block_size=256,  # twice the seed's context: whole stories, at a GPU's speed
            n_layer=8,
            n_head=8,  # 8 heads of 64 dimensions, the size GPU attention kernels are tuned for
            n_embd=512,
            dropout=0.0,  # 655M tokens is about 1.5 passes over TinyStories: too few to overfit
        ),
        TrainConfig(
            tokenizer="gpt2",
            batch_size=64,  # 64 x 256 tokens per micro-batch fit one GPU's memory in bf16...
            grad_accum_steps=8,  # ...and 8 of them make 131K tokens per update, as in the seed
            max_iters=5000,  # 655M tokens
            lr=1e-3,  # smaller models take higher peaks: this one is under half GPT-2 small (6e-4)
            min_lr=1e-4,  # lr / 10
            warmup_iters=200,  # 4% of the updates
            eval_interval=250,  # an evaluation + checkpoint every 5% of the run
            eval_iters=40,  # 40 x 16K tokens per split: a low-noise estimate, cheap on a GPU
            compile=True,  # torch.compile fuses the elementwise ops: a large speed-up on a GPU
            out_dir="runs/gpu",
        ),
    ),
}


def preset(name: str) -> tuple[GPTConfig, TrainConfig]:
    """The model and training configs of a named preset, as fresh copies (change them freely).

    Example: ``preset("lesson")[0].n_layer`` -> ``2``; ``preset("cpu_quick")`` raises
    ``ValueError: unknown preset 'cpu_quick'; did you mean 'cpu-quick'? ...``
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint} Presets: {', '.join(PRESETS)}")
    model_config, train_config = PRESETS[name]
    return model_config.replace(), train_config.replace()
