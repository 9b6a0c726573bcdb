"""Stories in, batches of token ids out: tokenize stories to a memmap once, then sample windows.

Three steps, each the way real training code does it:

1. ``prepare`` tokenizes stories (a list, or a ``StorySource`` streamed from
   ``slm_course.corpus``) into ``<split>.bin``, a flat array of uint16 token ids with
   ``<|endoftext|>`` after every story, plus a ``<split>.json`` sidecar that records how. Training
   then reads tokens from disk through ``numpy.memmap`` (``load_tokens``) instead of holding the
   dataset in memory, and a sidecar that no longer matches makes ``prepare`` rebuild.
2. ``get_batch`` cuts random windows out of that array: inputs ``x`` and targets ``y = x`` shifted
   by one token, which is all a GPT learns from.
3. ``prepare_run_data`` does both for a training run, and only as much as the run needs: it trains
   a ``bpe-N`` tokenizer on the first ``BPE_SAMPLE_BYTES`` of the training stories, tokenizes the
   run's token budget (``token_budgets``) instead of the whole split, and keys its caches on what
   identifies the stories (``stories_key``: a file's path, size and modification time, not its
   1.9 GB of text), so a second run with the same data starts in seconds.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken
import torch
from tqdm.auto import tqdm

from slm_course.config import TrainConfig
from slm_course.corpus.sources import SPLITS, StorySource, open_stories
from slm_course.fileio import atomic_open, read_json, remove_temporaries, write_json
from slm_course.model import check_token_ids
from slm_course.runtime import cache_dir
from slm_course.tokenizer import (
    ENDOFTEXT,
    BPETokenizer,
    encoding_fingerprint,
    gpt2_encoding,
    load_encoding,
    parse_tokenizer_spec,
)

FORMAT_VERSION = 2  # of the .bin/.json pair; bump it when their layout changes
# A bpe-N tokenizer learns from this much of the training split, not all 1.9 GB of it. Measured on
# real TinyStories (bench/bpe.py --sample-curve, docs/benchmarks.md): a 4,096-token BPE is within 1%
# of its best validation compression from 2 MiB on; 4x that costs ~1.5 s to train and gains ~0.7%.
BPE_SAMPLE_BYTES = 8 << 20
# A run tokenizes TOKEN_MARGIN times the tokens it will read, so its random windows seldom repeat
# (each token is drawn a quarter of a time on average) while a 3M-token run reads ~50 MB, not 1.9 GB.
TOKEN_MARGIN = 4
# Evaluation reads a fixed slice from the start of the validation split (~8 MB of TinyStories text):
# the same stories for every run and every evaluation setting, enough for a stable estimate.
VALIDATION_TOKENS = 1 << 21

_CHUNK_CHARS = 1 << 20  # text per encode call: big enough to amortize overhead, small for threads
_PROGRESS_DELAY_S = 3  # a progress bar appears only for work that takes longer than this
_ENCODE_THREADS = min(8, os.cpu_count() or 1)  # prepare()'s encoding threads (bench/data_pipeline.py reads it)


# --------------------------------------------------------------------------- what identifies stories


def stories_key(stories: StorySource | Sequence[str]) -> dict[str, Any]:
    """What identifies a set of stories to the caches: the one story hash of this package.

    A ``StorySource`` is keyed on its identity (each file's path, size, modification time and
    inode; a dataset's fingerprint; the synthetic generator's version), so finding the cache of a
    1.9 GB split reads none of it; a list of stories, or a source with no cheaper identity, on the
    sha256 of its text.

    Example: ``stories_key(["Hi.", "Bye."])`` -> ``{"n_stories": 2, "sha256": "5b2e..."}``
    """
    identity = getattr(stories, "identity", None)
    if identity is not None:
        return {"source": identity}
    digest = hashlib.sha256()
    n_stories = 0
    for index, story in enumerate(stories):
        if not isinstance(story, str):
            raise TypeError(f"stories[{index}] is a {type(story).__name__}, not a str; prepare() takes story texts")
        data = story.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
        n_stories += 1
    return {"n_stories": n_stories, "sha256": digest.hexdigest()}


def cache_key(*parts: Any) -> str:
    """A short name for a cache entry made of ``parts`` (JSON values): equal parts, equal names.

    Example: ``cache_key({"n_stories": 2, "sha256": "5b2e..."}, 4096)`` -> ``"c0f3a1..."`` (16 hex digits)
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- tokenizing to disk


def prepare(
    stories: StorySource | Sequence[str],
    encoding: tiktoken.Encoding,
    out_dir: str | os.PathLike,
    split: str,
    source: str | None = None,
    max_tokens: int | None = None,
) -> Path:
    """Tokenize ``stories`` into ``<out_dir>/<split>.bin`` (+ ``.json`` sidecar) and return its path.

    Each story is followed by the ``<|endoftext|>`` id, so the model learns where stories end and
    sampling can stop there. Ids are uint16 (half the disk and memory of int32) unless the
    vocabulary needs more than 16 bits. ``max_tokens`` stops at the first story that brings the
    file to that many tokens, so a run tokenizes what it will read, however large the split.
    If the sidecar shows the same stories were already tokenized the same way, the file is
    reused; otherwise it is rebuilt, with a message. The sidecar is written last: a prepare that
    is killed part-way leaves nothing a later call trusts.
    """
    if isinstance(stories, str):
        raise TypeError("stories must be a sequence of story strings, not one string; wrap it in a list")
    if not isinstance(stories, (StorySource, Sequence)):
        stories = list(stories)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", split):
        raise ValueError(f"split {split!r} names the output file; use letters, digits, '_', '-' or '.'")
    if ENDOFTEXT not in encoding.special_tokens_set:
        raise ValueError(f"encoding {encoding.name!r} has no {ENDOFTEXT} token, which prepare() puts "
                         f"after every story; add it to the encoding's special tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be a positive integer or None, got {max_tokens!r}")
    out_dir = Path(out_dir)
    bin_path, meta_path = out_dir / f"{split}.bin", out_dir / f"{split}.json"
    dtype = np.dtype(np.uint16 if encoding.n_vocab <= 65_535 else np.uint32)
    wanted = {
        "format": FORMAT_VERSION,
        "encoding": encoding.name,
        "encoding_fingerprint": encoding_fingerprint(encoding),
        "eot_token": encoding.eot_token,
        "dtype": dtype.name,
        "stories": stories_key(stories),
        "max_tokens": max_tokens,
    }
    reason = _why_rebuild(bin_path, meta_path, wanted)
    if reason is None:
        return bin_path
    if reason != "it does not exist yet":
        print(f"rebuilding {bin_path}: {reason}")

    label = source or getattr(stories, "source", "unknown")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out_dir, keep_running=True)  # what a killed prepare left behind
    meta_path.unlink(missing_ok=True)  # never leave an old sidecar beside a new .bin
    with atomic_open(bin_path) as file:
        n_tokens, n_stories, whole = _encode_to_file(stories, encoding, dtype, file, max_tokens,
                                                     desc=f"tokenizing {split}")
        if n_stories == 0:
            raise ValueError(f"no stories to prepare for the {split} split: {label} holds none; "
                             f"load some with slm_course.corpus.load_tinystories()")
    write_json(meta_path, {**wanted, "n_tokens": n_tokens, "n_stories": n_stories, "whole_split": whole,
                           "source": label})
    return bin_path


def _encode_to_file(
    stories: Iterable[str], encoding: tiktoken.Encoding, dtype: np.dtype, file, max_tokens: int | None, desc: str
) -> tuple[int, int, bool]:
    """Encode ~1 MB chunks of stories on several threads (tiktoken releases the GIL) and append
    the ids to ``file``; return the tokens and stories written, and whether that was all of them.

    A chunk is its stories joined by ``<|endoftext|>``: tiktoken encodes the text between special
    tokens separately, so this gives exactly each story's own tokens plus the end-of-text id,
    without a Python int per token. With ``max_tokens`` the file ends after the first story that
    reaches it, wherever the chunk boundaries fall, so the result doesn't depend on the chunking.
    """
    def encode(chunk: list[str]) -> tuple[np.ndarray, int]:
        return _encode_chunk(chunk, encoding), len(chunk)

    n_tokens = n_stories = 0
    with ThreadPoolExecutor(_ENCODE_THREADS) as pool, tqdm(
        total=max_tokens, unit=" tokens", unit_scale=True, desc=desc, delay=_PROGRESS_DELAY_S
    ) as progress:
        chunks = _chunks(stories)
        while wave := list(itertools.islice(chunks, _ENCODE_THREADS)):  # a few chunks at a time bounds memory
            for ids, chunk_stories in pool.map(encode, wave):
                if max_tokens is not None and n_tokens + len(ids) >= max_tokens:
                    ends = np.flatnonzero(ids == encoding.eot_token)  # the last token of each story
                    last = int(np.searchsorted(ends, max_tokens - n_tokens - 1))
                    ids.astype(dtype, copy=False)[: ends[last] + 1].tofile(file)
                    progress.update(max_tokens - n_tokens)
                    return n_tokens + int(ends[last]) + 1, n_stories + last + 1, False
                ids.astype(dtype, copy=False).tofile(file)
                n_tokens += len(ids)
                n_stories += chunk_stories
                progress.update(len(ids))
    return n_tokens, n_stories, True


def _chunks(stories: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for story in stories:
        chunk.append(story)
        size += len(story)
        if size >= _CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _encode_chunk(stories: list[str], encoding: tiktoken.Encoding) -> np.ndarray:
    joined = ENDOFTEXT.join(stories) + ENDOFTEXT
    if joined.count(ENDOFTEXT) == len(stories):
        return encoding.encode_to_numpy(joined, allowed_special={ENDOFTEXT}, disallowed_special=())
    # Some story spells out "<|endoftext|>" as text: encode each story as ordinary text instead.
    eot = np.array([encoding.eot_token], dtype=np.uint32)
    return np.concatenate([part for story in stories
                           for part in (encoding.encode_to_numpy(story, disallowed_special=()), eot)])


def _why_rebuild(bin_path: Path, meta_path: Path, wanted: dict) -> str | None:
    """None when the existing files hold exactly what was asked for; else the reason they don't."""
    if not bin_path.exists() and not meta_path.exists():
        return "it does not exist yet"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return f"its sidecar {meta_path.name} is missing or unreadable"
    if not isinstance(meta, dict):
        return f"its sidecar {meta_path.name} is not a JSON object"
    if meta.get("format") != wanted["format"]:
        return f"it was written in format {meta.get('format')}, this code writes {wanted['format']}"
    if (meta.get("encoding"), meta.get("encoding_fingerprint")) != (wanted["encoding"], wanted["encoding_fingerprint"]):
        return (f"it was tokenized with encoding {meta.get('encoding')!r} "
                f"(fingerprint {str(meta.get('encoding_fingerprint'))[:8]}), not {wanted['encoding']!r} "
                f"(fingerprint {wanted['encoding_fingerprint'][:8]})")
    if meta.get("stories") != wanted["stories"]:
        return _stories_changed(meta.get("stories"), wanted["stories"])
    if meta.get("max_tokens") != wanted["max_tokens"]:
        return f"it holds a budget of {meta.get('max_tokens')} tokens, {wanted['max_tokens']} are wanted now"
    if meta.get("dtype") != wanted["dtype"] or meta.get("eot_token") != wanted["eot_token"]:
        return "its dtype or end-of-text id differs"
    n_tokens = meta.get("n_tokens")
    if (not isinstance(n_tokens, int) or not bin_path.exists()
            or bin_path.stat().st_size != n_tokens * np.dtype(wanted["dtype"]).itemsize):
        return f"{bin_path.name} is missing or not the size its sidecar records"
    return None


def _stories_changed(old: Any, new: dict[str, Any]) -> str:
    """Why a stories key no longer matches, in words: "the stories changed (50 stories then, 20 now)",
    or which file changed since it was tokenized."""
    if isinstance(old, dict) and "n_stories" in old and "n_stories" in new:
        return f"the stories changed ({old['n_stories']} stories then, {new['n_stories']} now)"
    return f"the source changed since it was tokenized (then: {_describe(old)}; now: {_describe(new)})"


def _describe(key: Any) -> str:
    if not isinstance(key, dict):
        return "unknown stories"
    if "n_stories" in key:
        return f"{key['n_stories']} stories"
    identity = key.get("source") or {}
    if identity.get("kind") == "files":
        return "; ".join(f"{Path(path).name}: {size:,} bytes, modified "
                         f"{datetime.datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec='seconds')}, inode {inode}"
                         for path, size, mtime_ns, inode in identity["files"])
    return json.dumps(identity, sort_keys=True)


def load_tokens(path: str | os.PathLike) -> np.memmap:
    """The token ids in a ``.bin`` written by ``prepare``, memory-mapped read-only.

    The sidecar is checked first, so a truncated file or one from another run fails here, with
    its name, instead of training on garbage.
    """
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"no token file at {path}; expected a <split>.bin written by "
                                f"slm_course.data.prepare() or prepare_tinystories()")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} has no sidecar at {meta_path}, so its dtype and length are "
                                f"unknown; run prepare() again to write both")
    try:
        meta = json.loads(meta_path.read_text())
        dtype, n_tokens = np.dtype(meta["dtype"]), meta["n_tokens"]
        if not isinstance(n_tokens, int):
            raise TypeError(f"n_tokens is {n_tokens!r}")
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{meta_path} is not a sidecar written by prepare() ({error!r}); "
                         f"run prepare() again") from None
    if dtype not in (np.uint16, np.uint32):
        raise ValueError(f"{meta_path} records dtype {dtype}; token files are uint16 or uint32")
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise ValueError(f"{path} is {size:,} bytes, not a whole number of {dtype} tokens "
                         f"({dtype.itemsize} bytes each): it is truncated or corrupt; delete it and run prepare() again")
    if size // dtype.itemsize != n_tokens:
        raise ValueError(f"{path} holds {size // dtype.itemsize:,} tokens but its sidecar {meta_path.name} "
                         f"says {n_tokens:,}: the two don't belong together; run prepare() again")
    if n_tokens == 0:
        raise ValueError(f"{path} holds no tokens; prepare it from a non-empty set of stories")
    return np.memmap(path, dtype=dtype, mode="r")


# --------------------------------------------------------------------------- batches


def get_batch(
    data: np.ndarray | torch.Tensor,
    batch_size: int,
    block_size: int,
    device: str | torch.device,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``block_size`` tokens: inputs ``x`` and targets ``y``.

    ``y[b, t]`` is the token after ``x[b, t]``, so one window teaches the model ``block_size``
    next-token predictions at once. Windows start anywhere (not only at story starts) and never
    run past the end. Pass a ``torch.Generator`` to draw the same batches again.

    Example: ``get_batch(np.arange(10), 1, 4, "cpu")`` -> ``x = [[3, 4, 5, 6]]``, ``y = [[4, 5, 6, 7]]``
    (the window's start, here 3, is random)
    """
    for name, value in (("batch_size", batch_size), ("block_size", block_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(data, (np.ndarray, torch.Tensor)):
        raise TypeError(f"data must be a numpy array of token ids (e.g. from load_tokens) or a torch "
                        f"tensor, got {type(data).__name__}")
    if data.ndim != 1:
        raise ValueError(f"data must be a 1-D array of token ids, got shape {tuple(data.shape)}")
    if len(data) < block_size + 1:
        raise ValueError(f"block_size={block_size} needs at least {block_size + 1} tokens (a window plus "
                         f"the token after it), but the data has only {len(data)}; use a smaller "
                         f"block_size (GPTConfig.block_size) or more stories")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = starts[:, None] + torch.arange(block_size + 1)
    if isinstance(data, torch.Tensor):
        windows = data[offsets.to(data.device)].long()
    else:
        windows = torch.from_numpy(np.asarray(data[offsets.numpy()]).astype(np.int64))
    x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
    device = torch.device(device)
    if device.type == "cuda" and x.device.type == "cpu":  # pinned memory lets the copy overlap with the GPU's work
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


# --------------------------------------------------------------------------- all at once


def prepare_tinystories(
    encoding: tiktoken.Encoding,
    out_dir: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    max_stories: int | None = None,
) -> dict[str, Path]:
    """Tokenize the train and validation stories (all of them, or the first ``max_stories`` of
    each) and return ``{split: .bin path}``.

    By default the files go to ``cache_dir()/data/<encoding>-<fingerprint>-<source>-<key>/``, so
    different tokenizers and sources never overwrite each other, and a second call reuses them.
    """
    stories = {split: open_stories(split, source, max_stories) for split in SPLITS}
    if out_dir is None:
        out_dir = _data_cache_dir(encoding, stories, {split: None for split in SPLITS})
    paths = {split: prepare(these, encoding, out_dir, split) for split, these in stories.items()}
    for split, path in paths.items():
        print(f"{split}: {read_json(path.with_suffix('.json'))['n_stories']:,} stories from {stories[split].source}")
    return paths


def _data_cache_dir(encoding: tiktoken.Encoding, stories: dict[str, StorySource], budgets: dict[str, int | None]) -> Path:
    """The cache directory of one (tokenizer, stories, budget) triple, named so a person can tell them apart."""
    label = stories["train"].source
    tag = ("synthetic" if stories["train"].identity and stories["train"].identity["kind"] == "synthetic"
           else "hub" if label.startswith("Hugging Face hub") else "local")
    key = cache_key(encoding_fingerprint(encoding), {split: stories_key(s) for split, s in stories.items()}, budgets)
    return cache_dir() / "data" / f"{encoding.name}-{encoding_fingerprint(encoding)[:8]}-{tag}-{key}"


# --------------------------------------------------------------------------- what a run trains on


@dataclass
class RunData:
    """What a run trains on: the encoding, its file (None for GPT-2) and the token memmaps."""

    encoding: tiktoken.Encoding
    tokenizer_file: Path | None
    tokens: dict[str, np.ndarray]
    description: dict[str, Any]


def token_budgets(config: TrainConfig, block_size: int) -> dict[str, int | None]:
    """How many tokens of each split a run tokenizes: ``TOKEN_MARGIN`` times what its updates read
    from the training split, and the fixed ``VALIDATION_TOKENS`` slice of the validation split
    (never less than one window). A split smaller than its budget is tokenized whole. A run with
    ``max_stories`` (a lesson's fixed slice) has no budget: it trains on exactly those stories.

    Example: cpu-quick (2500 updates x 1 x 16 sequences x 128 tokens) -> ``{"train": 20_480_000,
    "validation": 2_097_152}``
    """
    if config.max_stories is not None:
        return {split: None for split in SPLITS}
    reads = config.max_iters * config.grad_accum_steps * config.batch_size * block_size
    return {"train": max(reads * TOKEN_MARGIN, block_size + 1), "validation": max(VALIDATION_TOKENS, block_size + 1)}


def prepare_run_data(config: TrainConfig, block_size: int) -> RunData:
    """Resolve the tokenizer and tokenize what the run will read, reusing cached results.

    Both caches are keyed on what identifies the stories (``stories_key``: a file's identity or a
    dataset's fingerprint, not its text) and on how much of them is used, so the second run on the
    same data reads no stories.
    """
    if config.data_dir is not None:
        return _prepared_run_data(config)
    stories = {split: open_stories(split, config.data_source, config.max_stories) for split in SPLITS}
    encoding, tokenizer_file = resolve_tokenizer(config.tokenizer, lambda: stories["train"])
    budgets = token_budgets(config, block_size)
    data_dir = _data_cache_dir(encoding, stories, budgets)
    paths = {split: prepare(stories[split], encoding, data_dir, split, max_tokens=budgets[split]) for split in SPLITS}
    sidecars = {split: read_json(path.with_suffix(".json"), "token file sidecar") for split, path in paths.items()}
    description = {"source": stories["train"].source,
                   "stories": {split: sidecar["n_stories"] for split, sidecar in sidecars.items()},
                   "token_budget": budgets}
    return _run_data(encoding, tokenizer_file, paths, description)


def _prepared_run_data(config: TrainConfig) -> RunData:
    """A run on token files someone prepared already (``TrainConfig.data_dir``)."""
    encoding, tokenizer_file = resolve_tokenizer(config.tokenizer, lambda: [])
    data_dir = Path(config.data_dir)
    paths = {split: data_dir / f"{split}.bin" for split in SPLITS}
    for path in paths.values():
        if not path.exists():
            raise FileNotFoundError(
                f"TrainConfig.data_dir has no {path.name} (looked for {path}); make it with "
                f"slm_course.data.prepare(stories, encoding, {str(data_dir)!r}, split), or unset data_dir"
            )
        made_with = read_json(path.with_suffix(".json"), "token file sidecar").get("encoding_fingerprint")
        if made_with is not None and made_with != encoding_fingerprint(encoding):
            raise ValueError(
                f"{path} was tokenized with another tokenizer than TrainConfig.tokenizer={config.tokenizer!r}; "
                f"set tokenizer to the file of the tokenizer that made it"
            )
    return _run_data(encoding, tokenizer_file, paths, {"data_dir": str(data_dir)})


def _run_data(encoding: tiktoken.Encoding, tokenizer_file: Path | None, paths: dict[str, Path],
              description: dict[str, Any]) -> RunData:
    """Map the token files and check their ids once, here, where the data enters the run."""
    tokens = {split: load_tokens(path) for split, path in paths.items()}
    for split, data in tokens.items():
        extremes = torch.tensor([int(data.min()), int(data.max())]) if len(data) else torch.empty(0)
        check_token_ids(extremes, encoding.n_vocab, str(paths[split]),
                        hint="it was tokenized with another tokenizer: prepare it again with this one (prepare() "
                             "rebuilds when the encoding changes), or use the tokenizer that made it")
        description[f"{split}_tokens"] = len(data)
    return RunData(encoding, tokenizer_file, tokens, description)


def resolve_tokenizer(
    spec: str, training_stories: Callable[[], StorySource | Sequence[str]]
) -> tuple[tiktoken.Encoding, Path | None]:
    """The encoding for a tokenizer spec, and its file (None for GPT-2, which is built in).

    ``bpe-N`` trains our BPETokenizer with N tokens once, on the first ``BPE_SAMPLE_BYTES`` of the
    training stories, and caches it in ``cache_dir()/tokenizers/`` under their ``stories_key``, so a
    different corpus gets its own. A corpus too small for N tokens (a few hundred stories, say)
    gets the largest vocabulary it supports, and a note says so on every run that uses it.
    """
    kind, value = parse_tokenizer_spec(spec)
    if kind == "gpt2":
        return gpt2_encoding(), None
    if kind == "bpe":
        stories = training_stories()
        label = getattr(stories, "source", "the training stories")
        path = cache_dir() / "tokenizers" / f"bpe-{value}-{cache_key(stories_key(stories), BPE_SAMPLE_BYTES)}.bpe"
        if not path.exists():
            sample = bpe_sample(stories)
            if not sample:
                raise ValueError(f"{label} holds no training stories to train the {spec} tokenizer on")
            print(f"training the {spec} tokenizer on the first {sum(len(s.encode()) for s in sample) / 1e6:.1f} MB "
                  f"({len(sample):,} stories) of the training split")
            path.parent.mkdir(parents=True, exist_ok=True)
            BPETokenizer.train(sample, value, allow_smaller=True).save(path)
        encoding = load_encoding(str(path))
        if encoding.n_vocab < value:
            print(f"note: the {spec} tokenizer is capped at {encoding.n_vocab:,} tokens: {label} offers no "
                  f"more merges (every word in it is already one token), so ids {encoding.n_vocab}..{value - 1} "
                  f"never occur; GPTConfig.vocab_size={encoding.n_vocab} drops their unused rows. More "
                  f"stories (or real TinyStories) give the full vocabulary.")
        return encoding, path
    path = value
    if not path.exists():
        raise FileNotFoundError(
            f"TrainConfig.tokenizer={spec!r} is neither 'gpt2', 'bpe-N' nor an existing file; "
            f"save one with BPETokenizer.save(path) or use 'bpe-4096'"
        )
    return load_encoding(str(path)), path


def bpe_sample(stories: Iterable[str], n_bytes: int = BPE_SAMPLE_BYTES) -> list[str]:
    """The first stories that together hold at least ``n_bytes`` of UTF-8 text (all, if fewer).

    Example: ``bpe_sample(["abc", "de", "f"], 4)`` -> ``["abc", "de"]``
    """
    sample, size = [], 0
    for story in stories:
        sample.append(story)
        size += len(story.encode("utf-8"))
        if size >= n_bytes:
            break
    return sample
