"""TinyStories in, batches of token ids out: load stories, tokenize them to a memmap, sample windows.

Three steps, each the way real training code does it:

1. ``load_tinystories`` finds stories: a local file or directory you name (``source`` or the
   ``SLM_TINYSTORIES`` environment variable), else the Hugging Face hub, else, when the hub can't
   be reached, the embedded synthetic corpus (``slm_course.synthetic``) with one warning, so that
   every lesson still runs offline. ``Stories.source`` always says which one you got.
2. ``prepare`` tokenizes them once into ``<split>.bin``, a flat array of uint16 token ids with
   ``<|endoftext|>`` after every story, plus a ``<split>.json`` sidecar that records how. Training
   then reads tokens from disk through ``numpy.memmap`` (``load_tokens``) instead of holding the
   dataset in memory, and a sidecar that no longer matches makes ``prepare`` rebuild.
3. ``get_batch`` cuts random windows out of that array: inputs ``x`` and targets ``y = x`` shifted
   by one token, which is all a GPT learns from.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken
import torch
from tqdm.auto import tqdm

from slm_course import synthetic
from slm_course.runtime import cache_dir
from slm_course.config import TrainConfig
from slm_course.fileio import temporary_path
from slm_course.tokenizer import (
    ENDOFTEXT,
    BPETokenizer,
    encoding_fingerprint,
    gpt2_encoding,
    load_encoding,
    parse_tokenizer_spec,
)

HUB_DATASET = "roneneldan/TinyStories"
SPLITS = ("train", "validation")
SYNTHETIC_SOURCE = "embedded synthetic corpus (generated, NOT real TinyStories)"
SYNTHETIC_SIZES = {"train": 20_000, "validation": 1_000}  # default number of stories per split
SYNTHETIC_SEEDS = {"train": 0, "validation": 1}
HOLDOUT_FRACTION = 0.05  # of a single file's stories, kept back as validation when it has no twin
FORMAT_VERSION = 1  # of the .bin/.json pair; bump it when their layout changes

_SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation"}
_EXPECTED_SOURCE = (
    "a TinyStories .txt file (stories separated by <|endoftext|> lines), a .jsonl or .parquet file "
    "with a 'text' column, a directory holding such files or laid out like the Hugging Face repo, "
    "'hub' or 'synthetic'"
)
_GET_REAL_DATA = (
    "To train on the real TinyStories, go online (the dataset downloads once, then loads from the "
    "Hugging Face cache) or set SLM_TINYSTORIES to a local copy, e.g. TinyStories-train.txt from "
    "https://huggingface.co/datasets/roneneldan/TinyStories."
)
_CHUNK_CHARS = 1 << 20  # text per encode call: big enough to amortize overhead, small for threads
_TXT_BLOCK_CHARS = 1 << 22  # how much of a .txt file to read at a time
_PROGRESS_MIN_CHARS = 32 << 20  # show a progress bar only for work that takes seconds
_ENCODE_THREADS = min(8, os.cpu_count() or 1)  # prepare()'s encoding threads (bench/data_pipeline.py reads it)
_fallback_warned = False
_probe_cache: tuple[float, bool] | None = None


class Stories(list):
    """A list of story strings that remembers where it came from, so lessons can say so."""

    def __init__(self, stories: Iterable[str], source: str) -> None:
        super().__init__(stories)
        self.source = source

    def __getitem__(self, index):  # a slice keeps its source label
        item = super().__getitem__(index)
        return Stories(item, self.source) if isinstance(index, slice) else item

    def __repr__(self) -> str:
        return f"<Stories: {len(self):,} from {self.source}>"


# --------------------------------------------------------------------------- loading stories


def load_tinystories(
    split: str = "train", source: str | os.PathLike | None = None, max_stories: int | None = None
) -> Stories:
    """The stories of one split (``"train"`` or ``"validation"``), from the first source that applies.

    ``source``, else the ``SLM_TINYSTORIES`` environment variable, may name a local ``.txt`` /
    ``.jsonl`` / ``.parquet`` file, a directory (``.txt`` files named like ``*train*.txt`` and
    ``*valid*.txt`` are read directly, anything else goes through ``datasets.load_dataset``),
    ``"synthetic"`` for the embedded corpus or ``"hub"`` for the Hugging Face hub. With neither,
    the hub is tried; if it can't be reached and the dataset isn't cached, the embedded synthetic
    corpus is used and one warning says how to get the real data. ``max_stories`` keeps the
    first that many (a lesson that needs only part streams just that part from the hub).
    """
    split = _canonical_split(split)
    if max_stories is not None and (isinstance(max_stories, bool) or not isinstance(max_stories, int)
                                    or max_stories < 1):
        raise ValueError(f"max_stories must be a positive integer or None, got {max_stories!r}")
    origin = "the source argument"
    if source is None and os.environ.get("SLM_TINYSTORIES"):
        source, origin = os.environ["SLM_TINYSTORIES"], "SLM_TINYSTORIES"
    if source is None or str(source) == "hub":
        stories = _from_hub(split, max_stories)
    elif str(source) == "synthetic":
        stories = _synthetic_stories(split, max_stories)
    else:
        stories = _from_path(Path(source).expanduser(), split, max_stories, origin)
    if not stories:
        raise ValueError(f"{stories.source} holds no stories for the {split} split; "
                         f"point SLM_TINYSTORIES (or source=) at {_EXPECTED_SOURCE}")
    return stories


def _canonical_split(split: str) -> str:
    if split not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'validation' (or 'valid'/'val')")
    return _SPLIT_ALIASES[split]


def _synthetic_stories(split: str, max_stories: int | None) -> Stories:
    """The embedded corpus. The generator repeats a few short stories, so each story belongs to
    the split given by the parity of its CRC: no story can be in both train and validation."""
    count = max_stories or SYNTHETIC_SIZES[split]
    parity = SPLITS.index(split)
    own = (s for s in synthetic.iter_stories(SYNTHETIC_SEEDS[split]) if zlib.crc32(s.encode()) % 2 == parity)
    return Stories(itertools.islice(own, count), SYNTHETIC_SOURCE)


def _from_path(path: Path, split: str, max_stories: int | None, origin: str) -> Stories:
    if not path.exists():
        raise FileNotFoundError(f"{origin} points at {path}, which does not exist; expected {_EXPECTED_SOURCE}")
    if path.is_dir():
        texts = sorted(path.glob("*.txt"), key=lambda p: (len(p.name), p.name))
        pair = {name: next((p for p in texts if key in p.name.lower()), None)
                for name, key in zip(SPLITS, ("train", "valid"))}
        if any(pair.values()):
            return _from_files(pair, split, max_stories)
        return _from_datasets_dir(path, split, max_stories)
    if path.suffix.lower() not in _READERS:
        raise ValueError(f"{origin} points at {path}, which is not a format we read; expected {_EXPECTED_SOURCE}")
    return _from_files(_twin_files(path), split, max_stories)


def _twin_files(path: Path) -> dict[str, Path | None]:
    """The train and validation files for a file source: the file itself, and its twin whose name
    swaps ``train`` for ``valid``/``validation`` (or back), if that exists beside it."""
    name = path.name
    if re.search("valid", name, re.I):
        twins = [path.with_name(re.sub("valid(ation)?", "train", name, flags=re.I))]
        pair = {"train": None, "validation": path}
    elif re.search("train", name, re.I):
        twins = [path.with_name(re.sub("train", other, name, flags=re.I)) for other in ("valid", "validation")]
        pair = {"train": path, "validation": None}
    else:
        return {"train": path, "validation": None}
    missing = "train" if pair["train"] is None else "validation"
    pair[missing] = next((twin for twin in twins if twin.exists()), None)
    return pair


def _from_files(pair: dict[str, Path | None], split: str, max_stories: int | None) -> Stories:
    """Read the split's own file; with only one file, hold out its last stories as validation."""
    if pair["train"] and pair["validation"]:
        path = pair[split]
        return Stories(itertools.islice(_READERS[path.suffix.lower()](path), max_stories), f"local file: {path}")
    path = pair["train"] or pair["validation"]
    stories = list(_READERS[path.suffix.lower()](path))
    if len(stories) < 2:
        raise ValueError(f"{path} holds {len(stories)} stories; it needs at least 2 so that one can "
                         f"be held out for validation (or put a *valid* file beside it)")
    held_out = max(1, round(len(stories) * HOLDOUT_FRACTION))
    if split == "train":
        stories, note = stories[:-held_out], f"all but its last {held_out:,} stories"
    else:
        stories, note = stories[-held_out:], f"its last {held_out:,} stories, held out for validation"
    return Stories(stories[:max_stories], f"local file: {path} ({note})")


def _read_txt(path: Path) -> Iterator[str]:
    """Stories from the dataset's own format, streamed in blocks so a 2 GB file needn't fit twice."""
    try:
        with open(path, encoding="utf-8") as file:
            rest = ""
            while block := file.read(_TXT_BLOCK_CHARS):
                *stories, rest = (rest + block).split(ENDOFTEXT)
                yield from _clean(stories)
            yield from _clean([rest])
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); TinyStories .txt files are UTF-8") from None


def _read_jsonl(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{path}, line {number}: expected a JSON object with a 'text' field, "
                                 f"got {line[:80]!r}") from None
            yield from _clean([text])


def _read_parquet(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if "text" not in parquet.schema_arrow.names:
        raise ValueError(f"{path} has no 'text' column (it has {parquet.schema_arrow.names})")
    for batch in parquet.iter_batches(columns=["text"], batch_size=65_536):
        yield from _clean(batch.column(0).to_pylist())


def _clean(texts: Iterable[str | None]) -> Iterator[str]:
    """Stories without surrounding whitespace, dropping empty ones, the same for every source."""
    return (text.strip() for text in texts if isinstance(text, str) and text.strip())


_READERS = {".txt": _read_txt, ".jsonl": _read_jsonl, ".parquet": _read_parquet}


def _from_datasets_dir(path: Path, split: str, max_stories: int | None) -> Stories:
    """A directory laid out like a Hugging Face dataset repo (e.g. ``data/train-*.parquet``)."""
    import datasets

    with _hub_offline(True):  # a local directory never needs the network
        try:
            dataset = datasets.load_dataset(str(path), split=split)
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(f"{path}: datasets.load_dataset could not read its {split} split "
                             f"({error}); expected {_EXPECTED_SOURCE}") from None
    return _stories_from_dataset(dataset, max_stories, f"local dataset directory: {path} ({split})")


def _stories_from_dataset(dataset, max_stories: int | None, source: str) -> Stories:
    if "text" not in dataset.column_names:
        raise ValueError(f"{source} has no 'text' column (it has {dataset.column_names})")
    if max_stories is not None and max_stories < len(dataset):
        dataset = dataset.select(range(max_stories))
    return Stories(_clean(dataset["text"]), source)


# --------------------------------------------------------------------------- the Hugging Face hub


def _from_hub(split: str, max_stories: int | None) -> Stories:
    """The real dataset from the hub, or from the datasets cache when offline; else the embedded one."""
    import datasets

    online = not datasets.config.HF_HUB_OFFLINE and _hub_reachable()
    source = f"Hugging Face hub: {HUB_DATASET} ({split})" + ("" if online else ", from the local cache")
    try:
        with _hub_offline(not online):
            if online and max_stories is not None:  # stream just the stories we need
                rows = datasets.load_dataset(HUB_DATASET, split=split, streaming=True).take(max_stories)
                return Stories(_clean(row["text"] for row in rows), source)
            return _stories_from_dataset(datasets.load_dataset(HUB_DATASET, split=split), max_stories, source)
    except Exception as error:  # noqa: BLE001 - any failure to get the real data falls back, loudly
        _warn_fallback(f"{type(error).__name__}: {error}" if online else "offline: the hub is "
                       "unreachable or HF_HUB_OFFLINE is set, and the dataset is not in the local cache")
        return _synthetic_stories(split, max_stories)


def _warn_fallback(reason: str) -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        warnings.warn(f"Could not load {HUB_DATASET} ({reason}); using the {SYNTHETIC_SOURCE} instead. "
                      f"{_GET_REAL_DATA}", UserWarning, stacklevel=4)


def _hub_reachable(timeout: float = 1.5) -> bool:
    """Can we open a TCP connection to the hub (or the https proxy) within ``timeout`` seconds?

    ``datasets.load_dataset`` with no network retries for ~24 s before it gives up; this probe
    decides in under two, and DNS runs in a thread so a resolver that hangs can't stall us. The
    answer is reused for a minute so that loading both splits probes once.
    """
    global _probe_cache
    if _probe_cache and time.monotonic() - _probe_cache[0] < 60:
        return _probe_cache[1]
    from huggingface_hub import constants

    host = urllib.parse.urlsplit(constants.ENDPOINT).hostname or "huggingface.co"
    target = (host, 443)
    proxy = urllib.request.getproxies().get("https")
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        target = (proxy_url.hostname, proxy_url.port or 8080)
    connected = threading.Event()

    def probe() -> None:
        with contextlib.suppress(OSError), socket.create_connection(target, timeout=timeout):
            connected.set()

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    prober.join(timeout)  # returns as soon as the probe connects or fails
    reachable = connected.is_set()
    _probe_cache = (time.monotonic(), reachable)
    return reachable


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Switch datasets/huggingface_hub offline mode on for a block. Both read ``HF_HUB_OFFLINE``
    only at import, so setting the environment variable now would be too late."""
    import datasets
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    if offline:
        datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


# --------------------------------------------------------------------------- tokenizing to disk


def prepare(
    stories: Sequence[str],
    encoding: tiktoken.Encoding,
    out_dir: str | os.PathLike,
    split: str,
    source: str | None = None,
) -> Path:
    """Tokenize ``stories`` into ``<out_dir>/<split>.bin`` (+ ``.json`` sidecar) and return its path.

    Each story is followed by the ``<|endoftext|>`` id, so the model learns where stories end and
    sampling can stop there. Ids are uint16 (half the disk and memory of int32) unless the
    vocabulary needs more than 16 bits. If the sidecar shows the same stories were already
    tokenized with the same encoding, the file is reused; otherwise it is rebuilt, with a message.
    """
    if isinstance(stories, str):
        raise TypeError("stories must be a sequence of story strings, not one string; wrap it in a list")
    if not isinstance(stories, Sequence):
        stories = list(stories)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", split):
        raise ValueError(f"split {split!r} names the output file; use letters, digits, '_', '-' or '.'")
    if not stories:
        raise ValueError(f"no stories to prepare for the {split} split; load some with load_tinystories()")
    if ENDOFTEXT not in encoding.special_tokens_set:
        raise ValueError(f"encoding {encoding.name!r} has no {ENDOFTEXT} token, which prepare() puts "
                         f"after every story; add it to the encoding's special tokens")
    out_dir = Path(out_dir)
    bin_path, meta_path = out_dir / f"{split}.bin", out_dir / f"{split}.json"
    dtype = np.dtype(np.uint16 if encoding.n_vocab <= 65_535 else np.uint32)
    wanted = {
        "format": FORMAT_VERSION,
        "encoding": encoding.name,
        "encoding_fingerprint": encoding_fingerprint(encoding),
        "eot_token": encoding.eot_token,
        "dtype": dtype.name,
        "n_stories": len(stories),
        "stories_sha256": _stories_sha256(stories),
    }
    reason = _why_rebuild(bin_path, meta_path, wanted)
    if reason is None:
        return bin_path
    if reason != "it does not exist yet":
        print(f"rebuilding {bin_path}: {reason}")

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_bin = _temporary_name(bin_path)
    try:
        with open(tmp_bin, "wb") as file:
            n_tokens = _encode_to_file(stories, encoding, dtype, file, desc=f"tokenizing {split}")
        meta_path.unlink(missing_ok=True)  # never leave an old sidecar beside a new .bin
        os.replace(tmp_bin, bin_path)
    finally:
        tmp_bin.unlink(missing_ok=True)
    meta = {**wanted, "n_tokens": n_tokens, "source": source or getattr(stories, "source", "unknown")}
    _write_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    return bin_path


def _encode_to_file(stories: Sequence[str], encoding: tiktoken.Encoding, dtype: np.dtype, file, desc: str) -> int:
    """Encode ~1 MB chunks of stories on several threads (tiktoken releases the GIL) and append
    the ids to ``file``. A chunk is its stories joined by ``<|endoftext|>``: tiktoken encodes the
    text between special tokens separately, so this gives exactly each story's own tokens plus the
    end-of-text id, without a Python int per token."""
    def encode(chunk: list[str]) -> tuple[np.ndarray, int]:
        return _encode_chunk(chunk, encoding), sum(map(len, chunk))

    total_chars = sum(map(len, stories))
    n_tokens = 0
    with ThreadPoolExecutor(_ENCODE_THREADS) as pool, tqdm(
        total=total_chars, unit="char", unit_scale=True, desc=desc, disable=total_chars < _PROGRESS_MIN_CHARS
    ) as progress:
        chunks = _chunks(stories)
        while wave := list(itertools.islice(chunks, _ENCODE_THREADS)):  # a few chunks at a time bounds memory
            for ids, n_chars in pool.map(encode, wave):
                ids.astype(dtype, copy=False).tofile(file)
                n_tokens += len(ids)
                progress.update(n_chars)
    return n_tokens


def _chunks(stories: Sequence[str]) -> Iterator[list[str]]:
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


def _stories_sha256(stories: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for index, story in enumerate(stories):
        if not isinstance(story, str):
            raise TypeError(f"stories[{index}] is a {type(story).__name__}, not a str; prepare() takes story texts")
        data = story.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


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
    if (meta.get("n_stories"), meta.get("stories_sha256")) != (wanted["n_stories"], wanted["stories_sha256"]):
        return f"the stories changed ({meta.get('n_stories')} stories then, {wanted['n_stories']} now)"
    if meta.get("dtype") != wanted["dtype"] or meta.get("eot_token") != wanted["eot_token"]:
        return "its dtype or end-of-text id differs"
    n_tokens = meta.get("n_tokens")
    if (not isinstance(n_tokens, int) or not bin_path.exists()
            or bin_path.stat().st_size != n_tokens * np.dtype(wanted["dtype"]).itemsize):
        return f"{bin_path.name} is missing or not the size its sidecar records"
    return None


def _write_atomic(path: Path, text: str) -> None:
    tmp = _temporary_name(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def _temporary_name(path: Path) -> Path:
    """A hidden name beside ``path``, unique to this process and thread, to write then rename."""
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


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
    """Load the train and validation stories, tokenize both, and return ``{split: .bin path}``.

    By default the files go to ``cache_dir()/data/<encoding>-<fingerprint>-<source>/``, so
    different tokenizers and sources never overwrite each other, and a second call reuses them.
    """
    stories = {split: load_tinystories(split, source, max_stories) for split in SPLITS}
    for split, these in stories.items():
        print(f"{split}: {len(these):,} stories from {these.source}")
    if out_dir is None:
        tag = _source_tag(stories["train"].source) + (f"-n{max_stories}" if max_stories else "")
        out_dir = cache_dir() / "data" / f"{encoding.name}-{encoding_fingerprint(encoding)[:8]}-{tag}"
    return {split: prepare(these, encoding, out_dir, split) for split, these in stories.items()}


def _source_tag(source: str) -> str:
    if source == SYNTHETIC_SOURCE:
        return "synthetic"
    if source.startswith("Hugging Face hub"):
        return "hub"
    return "local-" + hashlib.sha256(source.encode()).hexdigest()[:8]


# --------------------------------------------------------------------------- what a run trains on


@dataclass
class RunData:
    """What a run trains on: the encoding, its file (None for GPT-2) and the token memmaps."""

    encoding: tiktoken.Encoding
    tokenizer_file: Path | None
    tokens: dict[str, np.ndarray]
    description: dict[str, Any]


def prepare_run_data(config: TrainConfig, block_size: int) -> RunData:
    """Resolve the tokenizer and tokenize the stories, reusing cached results keyed by content."""
    stories: dict[str, Sequence[str]] = {}

    def load_stories(split: str) -> Sequence[str]:
        if split not in stories:
            stories[split] = load_tinystories(split, source=config.data_source, max_stories=config.max_stories)
        return stories[split]

    encoding, tokenizer_file = resolve_tokenizer(config.tokenizer, lambda: load_stories("train"))
    if config.data_dir is not None:
        data_dir = Path(config.data_dir)
        paths = {split: data_dir / f"{split}.bin" for split in SPLITS}
        for path in paths.values():
            if not path.exists():
                raise FileNotFoundError(
                    f"TrainConfig.data_dir has no {path.name} (looked for {path}); make it with "
                    f"slm_course.data.prepare(stories, encoding, {str(data_dir)!r}, split), or unset data_dir"
                )
        for path in paths.values():
            made_with = json.loads(path.with_suffix(".json").read_text()).get("encoding_fingerprint")
            if made_with is not None and made_with != encoding_fingerprint(encoding):
                raise ValueError(
                    f"{path} was tokenized with another tokenizer than TrainConfig.tokenizer={config.tokenizer!r}; "
                    f"set tokenizer to the file of the tokenizer that made it"
                )
        description = {"data_dir": str(data_dir)}
    else:
        # One directory per (tokenizer, stories) pair; prepare() reuses its files when they match.
        digests = "-".join(stories_digest(load_stories(split))[:8] for split in SPLITS)
        data_dir = cache_dir() / "data" / f"{encoding.name}-{encoding_fingerprint(encoding)[:8]}-{digests}"
        paths = {split: prepare(load_stories(split), encoding, data_dir, split) for split in SPLITS}
        description = {"source": getattr(load_stories("train"), "source", str(config.data_source)),
                       "stories": {split: len(load_stories(split)) for split in SPLITS}}
    tokens = {split: load_tokens(path) for split, path in paths.items()}
    for split, data in tokens.items():
        description[f"{split}_tokens"] = len(data)
    return RunData(encoding, tokenizer_file, tokens, description)


def resolve_tokenizer(
    spec: str, training_stories: Callable[[], Sequence[str]]
) -> tuple[tiktoken.Encoding, Path | None]:
    """The encoding for a tokenizer spec, and its file (None for GPT-2, which is built in).

    ``bpe-N`` trains our BPETokenizer with N tokens on the training stories once and caches it in
    ``cache_dir()/tokenizers/`` under a digest of those stories, so a different corpus gets its own.
    """
    kind, value = parse_tokenizer_spec(spec)
    if kind == "gpt2":
        return gpt2_encoding(), None
    if kind == "bpe":
        stories = training_stories()
        path = cache_dir() / "tokenizers" / f"bpe-{value}-{stories_digest(stories)}.bpe"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_path(path)
            try:
                BPETokenizer.train(list(stories), value).save(tmp)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return load_encoding(str(path)), path
    path = value
    if not path.exists():
        raise FileNotFoundError(
            f"TrainConfig.tokenizer={spec!r} is neither 'gpt2', 'bpe-N' nor an existing file; "
            f"save one with BPETokenizer.save(path) or use 'bpe-4096'"
        )
    return load_encoding(str(path)), path


def stories_digest(stories: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for story in stories:
        digest.update(story.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
