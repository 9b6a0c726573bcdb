"""Sampling: turning next-token logits into text, one small function per idea.

The pipeline for one step is ``logits -> apply_temperature -> top_k_filter -> softmax ->
top_p_filter -> draw``; ``stream`` repeats it, feeding each drawn token back in, and
``stream_text`` / ``generate_text`` wrap that in a tokenizer. Every function takes a
``torch.Generator`` where it draws, so that a seed reproduces a story exactly.

Run ``python -m slm_course.sample --checkpoint RUN_DIR --prompt "Once upon a time"`` to stream
stories from a run written by ``python -m slm_course.train``.
"""

from __future__ import annotations

import argparse
import codecs
import itertools
import sys
from collections.abc import Iterable, Iterator

import tiktoken
import torch
import torch.nn.functional as F

from slm_course.checkpoint import load_run
from slm_course.model import GPT, check_token_ids
from slm_course.runtime import eval_mode, pick_device



def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise a ValueError naming the argument if temperature, top_k or top_p is out of range."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None (keep every token), got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] or None (keep every token), got {top_p!r}")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide the logits by the temperature: below 1 sharpens the distribution, above 1 flattens it.

    Temperature 0 is the limit "always the most likely token" (greedy), which no division can
    express; ``logits_to_probs`` and ``sample_next_token`` handle it with an argmax.
    """
    check_sampling_args(temperature, None, None)
    if temperature == 0:
        raise ValueError("temperature 0 means greedy: take logits.argmax(-1) instead of scaling")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the ``k`` largest logits of each row (a tie at the boundary is broken
    arbitrarily) and set the rest to -inf, so that softmax gives them probability 0. A k above the
    vocabulary keeps everything."""
    check_sampling_args(1.0, k, None)
    return _top_k(logits, k)


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    top = torch.topk(logits, min(k, logits.size(-1)), dim=-1)
    return torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)


def top_p_filter(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probabilities reach
    ``p``, zero the rest, and renormalise each row to sum to 1. ``p = 1`` keeps every token.

    Unlike top-k, the number kept adapts: a few tokens when the model is sure, many when it isn't.

    Example: probs ``[0.5, 0.3, 0.15, 0.05]``, p = 0.75 -> ``[0.625, 0.375, 0, 0]`` (0.5 alone is
    short of 0.75; 0.5 + 0.3 reaches it, so the two are kept and renormalised)
    """
    check_sampling_args(1.0, None, p)
    return _top_p(probs, p)


def _top_p(probs: torch.Tensor, p: float) -> torch.Tensor:
    if p == 1:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the more likely tokens
    keep_sorted = mass_before < p  # the set has not reached p yet, so this token is needed
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs.masked_fill(~keep, 0.0)
    return kept / kept.sum(dim=-1, keepdim=True)


def logits_to_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution a sampler draws from: temperature, then top-k, then softmax, then top-p.

    Temperature 0 gives all the probability to the most likely token (greedy).
    """
    check_sampling_args(temperature, top_k, top_p)
    return _probs(logits, temperature, top_k, top_p)


def _probs(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """``logits_to_probs`` without the argument checks, for callers that checked them once."""
    if temperature == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).to(logits.dtype)
    logits = logits / temperature
    if top_k is not None:
        logits = _top_k(logits, top_k)
    probs = F.softmax(logits, dim=-1)
    return probs if top_p is None else _top_p(probs, top_p)


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token id per row of logits (B, vocab_size) -> (B,). Temperature 0 is greedy and
    draws nothing from the generator."""
    check_sampling_args(temperature, top_k, top_p)
    return _draw(logits, temperature, top_k, top_p, generator)


def _draw(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator | None
) -> torch.Tensor:
    """``sample_next_token`` without the argument checks: the sampling loop checked them once."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = _probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


@torch.no_grad()
def next_token_distribution(
    model: GPT, idx: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The probabilities (B, vocab_size) the sampler would draw the token after idx (B, T) from."""
    check_sampling_args(temperature, top_k, top_p)
    idx = _check_prompt(model, idx)
    with eval_mode(model):
        logits = model.next_token_logits(idx)
    return _probs(logits.float(), temperature, top_k, top_p)


def stream(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_token: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    n_vocab: int | None = None,
) -> Iterator[torch.Tensor]:
    """Sample up to ``max_new_tokens`` tokens after the prompts idx (B, T), yielding each step's
    new token of every sequence, a (B,) tensor, as soon as it is drawn.

    - ``temperature`` 0 is greedy decoding; ``top_k`` / ``top_p`` restrict the candidates
      (see ``logits_to_probs``).
    - ``stop_token`` (usually ``<|endoftext|>``) ends a sequence. The batch stays rectangular: a
      finished sequence is padded with ``stop_token`` while the others go on, and the stream ends
      early once every sequence has finished.
    - An empty prompt (T = 0) starts from ``stop_token``, the ``<|endoftext|>`` that precedes
      every story in training; without a stop_token it is an error.
    - ``use_cache`` keeps a KV cache; the tokens are the same as without it (see
      ``GPT.next_token_logits`` for what happens past the context window).
    - ``n_vocab`` (the tokenizer's size) keeps the draw to ids a token has: a model's vocabulary
      may be padded past its tokenizer's (GPT-2's 50,257 tokens in 50,304 rows, for fast
      matmuls), and an untrained or briefly trained model gives those rows some probability.
    - The model runs in eval mode (no dropout) and without gradients, and is put back after.

    Arguments are checked here, before the first token, not when iteration starts.
    """
    idx = _check_generate_args(model, idx, max_new_tokens, temperature, top_k, top_p, stop_token, n_vocab)
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    return _stream_tokens(model, idx, max_new_tokens, sampling, stop_token, use_cache, n_vocab)


def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_token: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    n_vocab: int | None = None,
) -> torch.Tensor:
    """The prompts idx (B, T) followed by their sampled continuations: (B, T + steps).

    Steps is ``max_new_tokens``, or fewer if every sequence met ``stop_token``; finished sequences
    are padded with ``stop_token``. An empty prompt becomes ``[stop_token]``. See ``stream``.
    """
    idx = _check_generate_args(model, idx, max_new_tokens, temperature, top_k, top_p, stop_token, n_vocab)
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    new_tokens = _stream_tokens(model, idx, max_new_tokens, sampling, stop_token, use_cache, n_vocab)
    return torch.cat([idx, *(token[:, None] for token in new_tokens)], dim=1)


@torch.no_grad()
def _stream_tokens(
    model: GPT, idx: torch.Tensor, max_new_tokens: int, sampling: dict, stop_token: int | None, use_cache: bool,
    n_vocab: int | None,
) -> Iterator[torch.Tensor]:
    with eval_mode(model):
        kv_cache = model.new_kv_cache(idx.size(0)) if use_cache else None
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits = model.next_token_logits(idx, kv_cache)[:, :n_vocab]  # rows no token has: never
            token = _draw(logits.float(), **sampling)
            if stop_token is not None:
                token = token.masked_fill(finished, stop_token)
                finished |= token == stop_token
            idx = torch.cat((idx, token[:, None]), dim=1)
            yield token
            if stop_token is not None and bool(finished.all()):
                return


def _check_generate_args(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    stop_token: int | None,
    n_vocab: int | None,
) -> torch.Tensor:
    """Check everything ``stream`` is given; return the prompt to start from."""
    check_sampling_args(temperature, top_k, top_p)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    idx = _check_prompt(model, idx)
    vocab_size = model.config.vocab_size
    if n_vocab is not None and (isinstance(n_vocab, bool) or not isinstance(n_vocab, int)
                                or not 0 < n_vocab <= vocab_size):
        raise ValueError(f"n_vocab must be an integer in [1, GPTConfig.vocab_size={vocab_size}], got {n_vocab!r}")
    drawable = n_vocab or vocab_size
    if stop_token is not None and not 0 <= stop_token < drawable:
        raise ValueError(f"stop_token {stop_token} is outside the vocabulary [0, {drawable})")
    return _start_tokens(idx, stop_token)


def _check_prompt(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """Check that idx is a (batch, time) tensor of ids in the model's vocabulary; return it as long."""
    if not torch.is_tensor(idx) or idx.dim() != 2 or idx.is_floating_point() or idx.is_complex():
        shape = tuple(idx.shape) if torch.is_tensor(idx) else type(idx).__name__
        raise ValueError(f"idx must be a (batch, time) tensor of integer token ids, got {shape}")
    check_token_ids(idx, model.config.vocab_size, where="the prompt")
    return idx.long()


def _start_tokens(idx: torch.Tensor, stop_token: int | None) -> torch.Tensor:
    """Prompts with no tokens start from ``stop_token`` (``<|endoftext|>``, a story boundary)."""
    if idx.size(1) > 0:
        return idx
    if stop_token is None:
        raise ValueError("the prompt is empty: give at least one token, or a stop_token to start from")
    return torch.full((idx.size(0), 1), stop_token, dtype=torch.long, device=idx.device)


# --- text in, text out ---------------------------------------------------------------------------


def prompt_ids(encoding: tiktoken.Encoding, prompt: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Encode a prompt as a (1, T) tensor; an empty prompt becomes ``<|endoftext|>``, the token
    every training story follows. Special tokens typed in the prompt are kept as such."""
    ids = encoding.encode(prompt, allowed_special="all") or [encoding.eot_token]
    return torch.tensor([ids], dtype=torch.long, device=device)


def decode_stream(encoding: tiktoken.Encoding, token_ids: Iterable[int]) -> Iterator[str]:
    """Decode tokens to text as they arrive.

    One character can span several byte-level BPE tokens (an emoji is often 2 or 3), so decoding
    token by token would print U+FFFD for each half. An incremental UTF-8 decoder holds the bytes
    back until their character is complete.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token in token_ids:
        text = decoder.decode(encoding.decode_single_token_bytes(token))
        if text:
            yield text
    tail = decoder.decode(b"", final=True)  # a character the stream cut short
    if tail:
        yield tail


def stream_text(
    model: GPT,
    encoding: tiktoken.Encoding,
    prompt: str,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> Iterator[str]:
    """Yield the continuation of ``prompt`` (not the prompt itself) piece by piece, stopping at
    ``<|endoftext|>`` (not yielded). An empty prompt starts a fresh story."""
    if encoding.n_vocab > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer {encoding.name!r} has {encoding.n_vocab} tokens but the model only "
            f"GPTConfig.vocab_size={model.config.vocab_size}: use the encoding the model was trained with"
        )
    idx = prompt_ids(encoding, prompt, device=model.lm_head.weight.device)
    end = encoding.eot_token
    tokens = stream(model, idx, max_new_tokens, temperature, top_k, top_p, end, generator, use_cache,
                    n_vocab=encoding.n_vocab)
    return decode_stream(encoding, itertools.takewhile(lambda t: t != end, (int(t) for t in tokens)))


def generate_text(
    model: GPT,
    encoding: tiktoken.Encoding,
    prompt: str,
    max_new_tokens: int = 256,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> str:
    """The prompt followed by its sampled continuation, as one string (see ``stream_text``)."""
    pieces = stream_text(model, encoding, prompt, max_new_tokens, temperature, top_k, top_p, generator, use_cache)
    return prompt + "".join(pieces)


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``python -m slm_course.sample``: stream stories from a checkpoint to stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m slm_course.sample",
        description="Stream stories from a model trained with `python -m slm_course.train`.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="run directory written by training")
    parser.add_argument("--prompt", default="Once upon a time", help="text to continue ('' starts a fresh story)")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy; higher = more random")
    parser.add_argument("--top-k", type=int, default=None, help="sample only among the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None, help="sample only among the most likely tokens "
                        "whose probabilities add up to p (nucleus sampling)")
    parser.add_argument("--num-samples", type=int, default=1, help="how many stories to write")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="longest continuation, in tokens")
    parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed writes the same stories")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    args = parser.parse_args(argv)
    try:
        check_sampling_args(args.temperature, args.top_k, args.top_p)
        if args.num_samples < 1 or args.max_new_tokens < 0:
            raise ValueError("--num-samples must be at least 1 and --max-new-tokens at least 0")
        device = pick_device(args.device)
    except ValueError as err:
        parser.error(str(err))

    try:
        model, encoding, record = load_run(args.checkpoint, device=device)
    except (FileNotFoundError, ValueError) as err:
        parser.error(f"cannot load checkpoint {args.checkpoint!r}: {err}")
    # On stderr, so that stdout stays the stories: a model of the embedded corpus must say so.
    trained_on = record.get("data", {}).get("source") or record.get("data", {}).get("data_dir", "unknown data")
    print(f"model from {args.checkpoint} (step {record['step']}), trained on {trained_on}", file=sys.stderr)
    generator = torch.Generator(device=model.lm_head.weight.device).manual_seed(args.seed)
    for i in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        try:  # a prompt token outside the model's vocabulary is reported here
            pieces = stream_text(
                model, encoding, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p, generator
            )
        except ValueError as err:
            parser.error(str(err))
        print(args.prompt, end="", flush=True)
        for piece in pieces:
            print(piece, end="", flush=True)
        print()


if __name__ == "__main__":
    main()
