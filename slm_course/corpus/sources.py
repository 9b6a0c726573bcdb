"""Where stories come from: a local copy, the Hugging Face hub, or the embedded synthetic corpus.

``open_stories(split, source)`` finds one split and returns a ``StorySource``: a label saying
where the stories are, an *identity* that the caches key on, and a fresh pass over the stories
each time it is iterated. Nothing is read when a source is opened, so a run on the 1.9 GB train
split reads only the stories it uses, and a second run that finds its tokens cached reads none.
``load_tinystories(split, source, max_stories)`` is the same thing as a ``Stories`` list, for
lessons that want a few thousand stories in memory.

The first source that applies wins:

1. ``source=``, else the ``SLM_TINYSTORIES`` environment variable: a ``.txt`` / ``.jsonl`` /
   ``.parquet`` file, a directory (``*train*.txt`` and ``*valid*.txt`` files; else parquet shards
   laid out like the hub repo, ``data/train-00000-of-00004.parquet``; else anything
   ``datasets.load_dataset`` reads), ``"synthetic"`` or ``"hub"``;
2. the Hugging Face hub (``datasets.load_dataset``, with its cache);
3. when the hub can't be reached and the dataset isn't cached: the embedded synthetic corpus,
   with one warning that says how to get the real data.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from slm_course.corpus import synthetic
from slm_course.tokenizer import ENDOFTEXT

HUB_DATASET = "roneneldan/TinyStories"
SPLITS = ("train", "validation")
SYNTHETIC_SOURCE = "embedded synthetic corpus (generated, NOT real TinyStories)"
SYNTHETIC_SIZES = {"train": 20_000, "validation": 1_000}  # default number of stories per split
SYNTHETIC_SEEDS = {"train": 0, "validation": 1}
HOLDOUT_FRACTION = 0.05  # of a single file's stories, kept back as validation when it has no twin
# No TinyStories story comes near this; a longer one means the <|endoftext|> separators are missing.
MAX_STORY_CHARS = 1 << 20

_SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation"}
# How the hub (and datasets.load_dataset) names a split's shards: data/train-00000-of-00004-<hash>.parquet
_SHARD_NAMES = {"train": re.compile(r"(train|training)[-_.]", re.I),
                "validation": re.compile(r"(validation|valid|val|dev)[-_.]", re.I)}
_DATASETS_FILES = (".parquet", ".jsonl", ".json", ".csv", ".arrow")  # what load_dataset reads from a folder
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
_TXT_BLOCK_CHARS = 1 << 22  # how much of a .txt file to read at a time
_BATCH_ROWS = 4096  # parquet / Arrow rows per batch: a few MB of text, so memory stays flat
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


@dataclass(frozen=True)
class StorySource:
    """One split of one source, read on demand.

    ``source`` says where the stories are, for people. ``identity`` says what they are, for caches,
    without reading them: the path, size, modification time and inode of each file, the
    ``datasets`` fingerprint of a hub split, or the version of the synthetic generator; any change
    to the stories changes it. ``None`` means there is nothing cheaper than the stories themselves
    (a few streamed from the hub), and a cache must hash their text. Each iteration is a fresh
    pass from the first story.
    """

    split: str
    source: str
    identity: dict[str, Any] | None
    read: Callable[[], Iterator[str]] = field(repr=False, compare=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self.read())


# --------------------------------------------------------------------------- choosing a source


def open_stories(
    split: str = "train", source: str | os.PathLike | None = None, max_stories: int | None = None
) -> StorySource:
    """One split (``"train"`` or ``"validation"``) of the first source that applies (see the module
    docstring), ready to stream. ``max_stories`` keeps the first that many, read from the start of
    the split without touching the rest (a lesson's fixed slice)."""
    split = _canonical_split(split)
    if max_stories is not None and (isinstance(max_stories, bool) or not isinstance(max_stories, int)
                                    or max_stories < 1):
        raise ValueError(f"max_stories must be a positive integer or None, got {max_stories!r}")
    origin = "the source argument"
    if source is None and os.environ.get("SLM_TINYSTORIES"):
        source, origin = os.environ["SLM_TINYSTORIES"], "SLM_TINYSTORIES"
    if source is None or str(source) == "hub":
        return _from_hub(split, max_stories)
    if str(source) == "synthetic":
        return _synthetic(split, max_stories)
    return _from_path(Path(source).expanduser(), split, max_stories, origin)


def load_tinystories(
    split: str = "train", source: str | os.PathLike | None = None, max_stories: int | None = None
) -> Stories:
    """The stories of one split as a list, from the first source that applies (see ``open_stories``).

    Meant for a lesson's slice: with ``max_stories`` only that many are read. Without it the whole
    split is held in memory (2.1M stories for the real train split); training streams instead.
    """
    opened = open_stories(split, source, max_stories)
    stories = Stories(opened, opened.source)
    if not stories:
        raise ValueError(f"{opened.source} holds no stories for the {opened.split} split; "
                         f"point SLM_TINYSTORIES (or source=) at {_EXPECTED_SOURCE}")
    return stories


def _canonical_split(split: str) -> str:
    if split not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'validation' (or 'valid'/'val')")
    return _SPLIT_ALIASES[split]


def _with_limit(identity: dict[str, Any], max_stories: int | None) -> dict[str, Any]:
    return {**identity, "max_stories": max_stories}


def _synthetic(split: str, max_stories: int | None) -> StorySource:
    """The embedded corpus. The generator repeats a few short stories, so each story belongs to
    the split given by the parity of its CRC: no story can be in both train and validation."""
    count = max_stories or SYNTHETIC_SIZES[split]
    parity = SPLITS.index(split)

    def read() -> Iterator[str]:
        stories = synthetic.iter_stories(SYNTHETIC_SEEDS[split])
        return itertools.islice((s for s in stories if zlib.crc32(s.encode()) % 2 == parity), count)

    identity = {"kind": "synthetic", "generator": synthetic.code_fingerprint(), "split": split, "count": count}
    return StorySource(split, SYNTHETIC_SOURCE, identity, read)


# --------------------------------------------------------------------------- local files


def _from_path(path: Path, split: str, max_stories: int | None, origin: str) -> StorySource:
    if not path.exists():
        raise FileNotFoundError(f"{origin} points at {path}, which does not exist; expected {_EXPECTED_SOURCE}")
    if path.is_dir():
        return _from_directory(path, split, max_stories)
    if path.suffix.lower() not in _READERS:
        raise ValueError(f"{origin} points at {path}, which is not a format we read; expected {_EXPECTED_SOURCE}")
    return _from_files({name: [p] if p else [] for name, p in _twin_files(path).items()}, split, max_stories,
                       lambda files: f"local file: {files[0]}")


def _from_directory(path: Path, split: str, max_stories: int | None) -> StorySource:
    """A directory: its ``*train*.txt`` / ``*valid*.txt`` pair, else its parquet shards named like
    the hub's (read lazily, shard by shard), else whatever ``datasets.load_dataset`` makes of it."""
    texts = sorted(path.glob("*.txt"), key=lambda p: (len(p.name), p.name))
    pair = {name: [p for p in texts if key in p.name.lower()][:1] for name, key in zip(SPLITS, ("train", "valid"))}
    if any(pair.values()):
        return _from_files(pair, split, max_stories, lambda files: f"local file: {files[0]}")
    parquet = sorted(path.rglob("*.parquet"), key=lambda p: p.relative_to(path).as_posix())
    shards = {name: [p for p in parquet if pattern.match(p.name)] for name, pattern in _SHARD_NAMES.items()}
    if any(shards.values()):
        return _from_files(shards, split, max_stories, lambda files: f"local dataset directory: {path} ({split})")
    if any(p.suffix.lower() in _DATASETS_FILES for p in path.rglob("*") if p.is_file()):
        try:
            return _from_datasets(str(path), split, max_stories, f"local dataset directory: {path} ({split})")
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(f"{path}: datasets.load_dataset could not read its {split} split "
                             f"({error}); expected {_EXPECTED_SOURCE}") from None
    raise ValueError(f"{path} holds no stories: it is a directory without .txt, .parquet or .jsonl files; "
                     f"expected {_EXPECTED_SOURCE}")


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


def _from_files(
    files: dict[str, list[Path]], split: str, max_stories: int | None, label: Callable[[list[Path]], str]
) -> StorySource:
    """Read the split's own files in order; with files for one split only, hold out their last
    stories as validation (which takes one pass to count them, as the end is unknown until then)."""
    if files["train"] and files["validation"]:
        own = files[split]
        return StorySource(split, label(own), _with_limit(_files_identity(own), max_stories),
                           lambda: itertools.islice(_read_files(own), max_stories))
    only = files["train"] or files["validation"]
    percent = f"{HOLDOUT_FRACTION:.0%}"

    def read() -> Iterator[str]:
        n = sum(1 for _ in tqdm(_read_files(only), desc=f"counting the stories of {only[0].name}", unit=" stories",
                                delay=3))
        if n < 2:
            raise ValueError(f"{only[0]} holds {n} stories; it needs at least 2 so that one can be held out "
                             f"for validation (or put a *valid* file beside it)")
        held_out = max(1, round(n * HOLDOUT_FRACTION))
        stories = _read_files(only)
        part = itertools.islice(stories, n - held_out) if split == "train" else itertools.islice(stories, n - held_out, None)
        return itertools.islice(part, max_stories)

    note = (f"all but its last {percent} of stories" if split == "train"
            else f"its last {percent} of stories, held out for validation")
    identity = {**_files_identity(only), "part": f"{split}: {note}"}
    return StorySource(split, f"{label(only)} ({note})", _with_limit(identity, max_stories), read)


def _files_identity(paths: list[Path]) -> dict[str, Any]:
    """Which files, as they are now: a changed, replaced or re-downloaded file gets a new identity."""
    def stamp(path: Path) -> list[Any]:
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]

    return {"kind": "files", "files": [stamp(path) for path in paths]}


def _read_files(paths: list[Path]) -> Iterator[str]:
    for path in paths:
        yield from _READERS[path.suffix.lower()](path)


def _read_txt(path: Path) -> Iterator[str]:
    """Stories from the dataset's own format, streamed in blocks so a 2 GB file is never in memory."""
    try:
        with open(path, encoding="utf-8") as file:
            rest, offset = "", 0
            while block := file.read(_TXT_BLOCK_CHARS):
                *stories, rest = (rest + block).split(ENDOFTEXT)
                offset += sum(len(story) + len(ENDOFTEXT) for story in stories)
                _check_story_length(path, rest, offset)
                yield from _clean(stories)
            yield from _clean([rest])
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); TinyStories .txt files are UTF-8") from None


def _check_story_length(path: Path, pending: str, offset: int) -> None:
    if len(pending) > MAX_STORY_CHARS:
        where = "from its start" if offset == 0 else f"after character {offset:,}"
        raise ValueError(
            f"{path}: {len(pending):,} characters {where} hold no {ENDOFTEXT} line, more than any story. "
            f"A TinyStories .txt file separates stories with a line holding only {ENDOFTEXT}; this file "
            f"is not in that format (one story per line? then save it as .jsonl with a 'text' field)"
        )


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
    """The ``text`` column, a few thousand rows at a time. A damaged file (a download cut short)
    fails with its name whether the damage is in the footer or in a page further in."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        if "text" not in parquet.schema_arrow.names:
            raise ValueError(f"{path} has no 'text' column (it has {parquet.schema_arrow.names})")
        for batch in parquet.iter_batches(columns=["text"], batch_size=_BATCH_ROWS):
            yield from _clean(batch.column(0).to_pylist())
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path} is not a readable parquet file ({error}); it is damaged or truncated "
                         f"(an interrupted download?): download it again") from None


def _clean(texts: Iterable[str | None]) -> Iterator[str]:
    """Stories without surrounding whitespace, dropping empty ones, the same for every source."""
    return (text.strip() for text in texts if isinstance(text, str) and text.strip())


_READERS = {".txt": _read_txt, ".jsonl": _read_jsonl, ".parquet": _read_parquet}


# --------------------------------------------------------------------------- datasets and the hub


def _from_datasets(name: str, split: str, max_stories: int | None, source: str, offline: bool = True) -> StorySource:
    """One split through ``datasets.load_dataset``: the hub's own code path (download once, then an
    Arrow file in the Hugging Face cache, memory-mapped), iterated in batches, keyed on the
    dataset's fingerprint. A local directory never needs the network, hence ``offline``."""
    import datasets

    with _hub_offline(offline):
        dataset = datasets.load_dataset(name, split=split)
    if "text" not in dataset.column_names:
        raise ValueError(f"{source} has no 'text' column (it has {dataset.column_names})")

    def read() -> Iterator[str]:
        batches = dataset.iter(batch_size=_BATCH_ROWS)
        return itertools.islice(itertools.chain.from_iterable(_clean(b["text"]) for b in batches), max_stories)

    identity = {"kind": "datasets", "name": name, "split": split, "fingerprint": dataset._fingerprint}
    return StorySource(split, source, _with_limit(identity, max_stories), read)


def _from_hub(split: str, max_stories: int | None) -> StorySource:
    """The real dataset from the hub, or from the datasets cache when offline; else the embedded one."""
    import datasets

    online = not datasets.config.HF_HUB_OFFLINE and _hub_reachable()
    source = f"Hugging Face hub: {HUB_DATASET} ({split})" + ("" if online else ", from the local cache")
    try:
        if online and max_stories is not None:  # stream just the stories we need
            rows = datasets.load_dataset(HUB_DATASET, split=split, streaming=True).take(max_stories)
            stories = list(_clean(row["text"] for row in rows))
            return StorySource(split, source, None, lambda: iter(stories))
        return _from_datasets(HUB_DATASET, split, max_stories, source, offline=not online)
    except Exception as error:  # noqa: BLE001 - any failure to get the real data falls back, loudly
        _warn_fallback(f"{type(error).__name__}: {error}" if online else "offline: the hub is "
                       "unreachable or HF_HUB_OFFLINE is set, and the dataset is not in the local cache")
        return _synthetic(split, max_stories)


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
