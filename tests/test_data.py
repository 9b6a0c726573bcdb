"""The data pipeline: finding stories (slm_course.corpus: local, hub, embedded), tokenizing them to disk, batches."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings

import numpy as np
import pytest
import tiktoken
import torch

from slm_course import data
from slm_course.corpus import sources
from slm_course.corpus import SYNTHETIC_SOURCE, load_tinystories
from slm_course.runtime import shared_data_dir
from slm_course.tokenizer import ENDOFTEXT, encoding_fingerprint, gpt2_encoding

SHARED = shared_data_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="real TinyStories text not found at ../shared/data/")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No SLM_TINYSTORIES from the caller, a private cache, and a fresh fallback warning and probe."""
    monkeypatch.delenv("SLM_TINYSTORIES", raising=False)
    monkeypatch.setenv("SLM_CACHE", str(tmp_path / "slm_cache"))
    monkeypatch.setattr(sources, "_fallback_warned", False)
    monkeypatch.setattr(sources, "_probe_cache", None)


@pytest.fixture
def hf_cache(monkeypatch, tmp_path):
    """Keep everything `datasets` writes inside tmp_path (it reads these settings at import)."""
    import datasets

    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(root))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(root / "datasets"))
    for name, sub in (("HF_DATASETS_CACHE", "datasets"), ("DOWNLOADED_DATASETS_PATH", "downloads"),
                      ("EXTRACTED_DATASETS_PATH", "extracted"), ("HF_MODULES_CACHE", "modules")):
        monkeypatch.setattr(datasets.config, name, root / sub)
    return datasets


@pytest.fixture(scope="module")
def enc() -> tiktoken.Encoding:
    return gpt2_encoding()


def reference_tokens(stories, encoding) -> list[int]:
    """What prepare() must write: each story encoded on its own as plain text, then <|endoftext|>."""
    return [t for story in stories for t in [*encoding.encode_ordinary(story), encoding.eot_token]]


def write_txt(path, stories):
    path.write_text("".join(f"{story}\n{ENDOFTEXT}\n" for story in stories))
    return path


# --------------------------------------------------------------------------- loading


def test_synthetic_source_is_labelled_and_has_default_sizes():
    valid = load_tinystories("validation", source="synthetic")
    assert len(valid) == sources.SYNTHETIC_SIZES["validation"]
    assert valid.source == SYNTHETIC_SOURCE and "NOT real TinyStories" in valid.source
    train = load_tinystories("train", source="synthetic", max_stories=3000)
    assert len(train) == 3000 and not set(train) & set(valid)  # the splits never share a story
    assert train[:10].source == train.source  # slicing keeps the label


def test_split_aliases_and_bad_split():
    for alias in ("valid", "val"):
        assert load_tinystories(alias, "synthetic", 5) == load_tinystories("validation", "synthetic", 5)
    with pytest.raises(ValueError, match="'train' or 'validation'"):
        load_tinystories("test", "synthetic")
    with pytest.raises(ValueError, match="max_stories"):
        load_tinystories("train", "synthetic", max_stories=0)


@needs_shared
def test_env_var_pointing_at_the_shared_real_text(monkeypatch):
    train_file = SHARED / "TinyStories-train.subset.txt"
    valid_file = SHARED / "TinyStories-valid.subset.txt"
    monkeypatch.setenv("SLM_TINYSTORIES", str(train_file))
    train = load_tinystories("train")
    assert train.source == f"local file: {train_file}"
    assert len(train) == train_file.read_text(encoding="utf-8").count(ENDOFTEXT)
    assert train[0] not in set(load_tinystories("train", "synthetic", 2000))
    valid = load_tinystories("validation")  # the twin file beside it
    assert valid.source == f"local file: {valid_file}" and len(valid) == valid_file.read_text().count(ENDOFTEXT)
    assert not set(train) & set(valid)
    assert len(load_tinystories("train", max_stories=25)) == 25


@needs_shared
def test_shared_directory_picks_the_file_by_split():
    valid = load_tinystories("validation", source=SHARED)
    assert valid.source == f"local file: {SHARED / 'TinyStories-valid.subset.txt'}"
    assert load_tinystories("train", source=SHARED, max_stories=3)[0] == \
        next(sources._read_txt(SHARED / "TinyStories-train.subset.txt"))


def test_txt_reader_splits_strips_and_survives_block_boundaries(tmp_path, monkeypatch):
    stories = [f"Story {i} begins.\nIt has two lines, and ends here." for i in range(50)]
    path = tmp_path / "mine.txt"
    path.write_text("\n".join(f"  {s}  \n{ENDOFTEXT}\n\n" for s in stories) + "Last story, no separator.\n")
    monkeypatch.setattr(sources, "_TXT_BLOCK_CHARS", 7)  # separators fall across block edges
    assert list(sources._read_txt(path)) == [*stories, "Last story, no separator."]


def test_single_file_without_a_twin_holds_out_its_last_stories(tmp_path):
    stories = [f"Once there was a cat number {i}." for i in range(100)]
    path = write_txt(tmp_path / "cats.txt", stories)
    train, valid = load_tinystories("train", path), load_tinystories("validation", path)
    assert train + valid == stories and len(valid) == 5
    assert "held out for validation" in valid.source and str(path) in train.source


def test_twin_files_by_name(tmp_path):
    write_txt(tmp_path / "my-train.txt", ["A train story."])
    write_txt(tmp_path / "my-validation.txt", ["A validation story."])
    assert load_tinystories("validation", tmp_path / "my-train.txt") == ["A validation story."]
    assert load_tinystories("train", tmp_path / "my-validation.txt") == ["A train story."]


def test_jsonl_source(tmp_path):
    rows = [{"text": f"Tom had a red ball number {i}."} for i in range(40)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "valid.jsonl").write_text(json.dumps({"text": "  Mia sang a song.  "}) + "\n")
    assert load_tinystories("train", train) == [r["text"] for r in rows]
    assert load_tinystories("validation", train) == ["Mia sang a song."]
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"story": "no text field"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: .*'text'"):
        load_tinystories("train", tmp_path / "bad.jsonl")


def test_parquet_file_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [f"Sue saw a bird number {i}." for i in range(30)]}), tmp_path / "s.parquet")
    assert load_tinystories("train", tmp_path / "s.parquet")[0] == "Sue saw a bird number 0."
    pq.write_table(pa.table({"story": ["x"]}), tmp_path / "wrong.parquet")
    with pytest.raises(ValueError, match="no 'text' column"):
        load_tinystories("train", tmp_path / "wrong.parquet")


def test_local_hugging_face_layout_directory_is_read_shard_by_shard(tmp_path, hf_cache):
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path / "TinyStories"
    (repo / "data").mkdir(parents=True)
    splits = {"train": [f"Ben ran to the park, time {i}." for i in range(60)], "validation": ["Lily hugged her bear."]}
    for split, texts in splits.items():
        pq.write_table(pa.table({"text": texts}), repo / "data" / f"{split}-00000-of-00001.parquet")
    for split, texts in splits.items():
        stories = load_tinystories(split, repo)
        assert stories == texts and stories.source == f"local dataset directory: {repo} ({split})"
    assert len(load_tinystories("train", repo, max_stories=7)) == 7
    assert not any((tmp_path / "hf").rglob("*.arrow"))  # read in place: no 1.9 GB Arrow copy in the cache


def test_other_dataset_directories_go_through_datasets(tmp_path, hf_cache):
    repo = tmp_path / "stories"
    repo.mkdir()
    (repo / "train.jsonl").write_text("".join(json.dumps({"text": f"Tom hid number {i}."}) + "\n" for i in range(9)))
    (repo / "validation.jsonl").write_text(json.dumps({"text": "Mia found him."}) + "\n")
    assert load_tinystories("validation", repo) == ["Mia found him."]
    assert load_tinystories("train", repo, max_stories=3) == [f"Tom hid number {i}." for i in range(3)]
    assert any((tmp_path / "hf").rglob("*.arrow"))  # datasets' cache went to tmp_path, not ~/.cache


def test_missing_unsupported_and_empty_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.txt, which does not exist; expected a TinyStories"):
        load_tinystories("train", tmp_path / "nowhere.txt")
    (tmp_path / "notes.csv").write_text("text\nhello\n")
    with pytest.raises(ValueError, match="not a format we read"):
        load_tinystories("train", tmp_path / "notes.csv")
    write_txt(tmp_path / "empty-train.txt", [])
    write_txt(tmp_path / "empty-valid.txt", [])
    with pytest.raises(ValueError, match="holds no stories"):
        load_tinystories("train", tmp_path / "empty-train.txt")


# --------------------------------------------------------------------------- the hub and offline


def test_no_source_offline_falls_back_fast_with_one_warning(hf_cache):
    if sources._hub_reachable():
        pytest.skip("huggingface.co is reachable from here; this checks the offline fallback")
    sources._probe_cache = None
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = load_tinystories("train", max_stories=50)
        valid = load_tinystories("validation", max_stories=50)
    assert time.perf_counter() - start < 10  # "never hangs": a plain load_dataset retries ~24 s
    assert train.source == valid.source == SYNTHETIC_SOURCE and len(train) == 50
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "SLM_TINYSTORIES" in messages[0], messages


def test_probe_gives_up_when_the_network_black_holes(monkeypatch, hf_cache):
    """A firewall that drops packets (or a resolver that hangs) must not stall a lesson."""
    release = threading.Event()

    def black_hole(*args, **kwargs):
        release.wait(30)
        raise OSError("timed out (simulated)")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    try:
        start = time.perf_counter()
        with pytest.warns(UserWarning, match="unreachable"):
            stories = load_tinystories("validation", max_stories=10)
        assert time.perf_counter() - start < 10 and stories.source == SYNTHETIC_SOURCE
    finally:
        release.set()


def test_cached_hub_dataset_loads_with_the_hub_unreachable(monkeypatch, hf_cache):
    datasets = hf_cache
    calls = []

    def cached_load_dataset(name, split, streaming=False):
        calls.append((name, split, streaming, datasets.config.HF_HUB_OFFLINE))
        return datasets.Dataset.from_dict({"text": [f"Cached {split} story {i}. " for i in range(20)]})

    monkeypatch.setattr(sources, "_hub_reachable", lambda: False)
    monkeypatch.setattr(datasets, "load_dataset", cached_load_dataset)
    offline_before = datasets.config.HF_HUB_OFFLINE
    stories = load_tinystories("validation", max_stories=5)
    assert stories == [f"Cached validation story {i}." for i in range(5)]
    assert stories.source == f"Hugging Face hub: {sources.HUB_DATASET} (validation), from the local cache"
    assert calls == [(sources.HUB_DATASET, "validation", False, True)]  # asked in offline mode...
    assert datasets.config.HF_HUB_OFFLINE == offline_before  # ...which is switched back after


def test_online_hub_streams_a_partial_split_and_falls_back_loudly_on_errors(monkeypatch, hf_cache):
    datasets = hf_cache

    class Stream:
        def take(self, n):
            return ({"text": f"Hub story {i}."} for i in range(n))

    calls = []
    monkeypatch.setattr(sources, "_hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split, streaming=False: calls.append(streaming) or Stream())
    stories = load_tinystories("train", max_stories=3)
    assert stories == ["Hub story 0.", "Hub story 1.", "Hub story 2."] and calls == [True]
    assert stories.source == f"Hugging Face hub: {sources.HUB_DATASET} (train)"

    def broken(*args, **kwargs):
        raise RuntimeError("HTTP 503 from the hub")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.warns(UserWarning, match="HTTP 503.*SLM_TINYSTORIES"):
        assert load_tinystories("train", max_stories=3).source == SYNTHETIC_SOURCE


# --------------------------------------------------------------------------- prepare / load_tokens


TRICKY = [
    "Once upon a time, there was a little dog.\nHe liked to run.",
    "Ends with spaces and a newline  \n",
    "  starts with spaces",
    f"Spells out {ENDOFTEXT} as plain text.",
    "Unicode: café, naïve, 😀 and â€œmojibakeâ€ kept as is.",
    "'s contractions at the start",
]


def test_prepare_writes_exactly_each_story_then_endoftext(tmp_path, enc, monkeypatch):
    stories = TRICKY + load_tinystories("train", "synthetic", 300)
    monkeypatch.setattr(data, "_CHUNK_CHARS", 2000)  # many chunks, several threads
    path = data.prepare(stories, enc, tmp_path, "train", source="test stories")
    tokens = data.load_tokens(path)
    assert path == tmp_path / "train.bin" and tokens.dtype == np.uint16
    assert tokens.tolist() == reference_tokens(stories, enc)
    meta = json.loads((tmp_path / "train.json").read_text())
    assert meta["encoding"] == "gpt2" and meta["dtype"] == "uint16" and meta["n_stories"] == len(stories)
    assert meta["n_tokens"] == len(tokens) and meta["source"] == "test stories"
    assert len(meta["encoding_fingerprint"]) == 64 and len(meta["stories"]["sha256"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.bin", "train.json"]  # no temp files left


def test_prepare_uses_uint32_for_vocabularies_over_65535(tmp_path):
    big = tiktoken.Encoding(name="bytes-big", pat_str=r"\S+|\s+",
                            mergeable_ranks={bytes([i]): i for i in range(256)},
                            special_tokens={ENDOFTEXT: 70_000})
    stories = ["hi there", "ok"]
    tokens = data.load_tokens(data.prepare(stories, big, tmp_path, "validation"))
    assert tokens.dtype == np.uint32 and tokens.tolist() == reference_tokens(stories, big)
    assert tokens[-1] == 70_000


def test_prepare_reuses_matching_files_and_rebuilds_with_a_message(tmp_path, enc, capsys):
    stories = load_tinystories("validation", "synthetic", 50)
    path = data.prepare(stories, enc, tmp_path, "validation")
    stamp = path.stat().st_mtime_ns
    assert data.prepare(list(stories), enc, tmp_path, "validation") == path
    assert path.stat().st_mtime_ns == stamp and capsys.readouterr().out == ""  # reused, silently

    bytes_only = tiktoken.Encoding(name="bytes", pat_str=r"\S+|\s+",
                                   mergeable_ranks={bytes([i]): i for i in range(256)},
                                   special_tokens={ENDOFTEXT: 256})
    data.prepare(stories, bytes_only, tmp_path, "validation")
    assert "tokenized with encoding 'gpt2'" in capsys.readouterr().out
    assert data.load_tokens(path).tolist() == reference_tokens(stories, bytes_only)

    data.prepare(stories[:20], bytes_only, tmp_path, "validation")
    assert "the stories changed (50 stories then, 20 now)" in capsys.readouterr().out
    assert json.loads((tmp_path / "validation.json").read_text())["n_stories"] == 20


def test_a_failed_prepare_leaves_no_partial_files(tmp_path, enc, monkeypatch):
    def explode(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(data, "_encode_chunk", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        data.prepare(["A story."], enc, tmp_path, "train")
    assert list(tmp_path.iterdir()) == []


def test_prepare_rejects_bad_input(tmp_path, enc):
    with pytest.raises(ValueError, match="no stories"):
        data.prepare([], enc, tmp_path, "train")
    with pytest.raises(TypeError, match="not one string"):
        data.prepare("Once upon a time.", enc, tmp_path, "train")
    with pytest.raises(TypeError, match=r"stories\[1\] is a bytes"):
        data.prepare(["ok", b"bytes"], enc, tmp_path, "train")
    with pytest.raises(ValueError, match="names the output file"):
        data.prepare(["x"], enc, tmp_path, "../train")
    plain = tiktoken.Encoding(name="no-eot", pat_str=r"\S+|\s+", mergeable_ranks={bytes([i]): i for i in range(256)},
                              special_tokens={})
    with pytest.raises(ValueError, match="has no <\\|endoftext\\|> token"):
        data.prepare(["x"], plain, tmp_path, "train")


def test_load_tokens_errors_name_the_file(tmp_path, enc):
    missing = tmp_path / "train.bin"
    with pytest.raises(FileNotFoundError, match=r"train\.bin; expected a <split>\.bin written by"):
        data.load_tokens(missing)
    path = data.prepare(["Tom and Lily played.", "The end."], enc, tmp_path, "train")
    sidecar = tmp_path / "train.json"
    saved = sidecar.read_text()
    sidecar.unlink()
    with pytest.raises(FileNotFoundError, match="has no sidecar"):
        data.load_tokens(path)
    sidecar.write_text(saved)
    with open(path, "ab") as file:
        file.write(b"\x00")  # half a token
    with pytest.raises(ValueError, match=r"train\.bin is .* not a whole number of uint16 tokens"):
        data.load_tokens(path)
    with open(path, "ab") as file:
        file.write(b"\x00")  # now a whole extra token
    with pytest.raises(ValueError, match=r"train\.bin holds \d+ tokens but its sidecar train\.json says"):
        data.load_tokens(path)
    sidecar.write_text("{not json")
    with pytest.raises(ValueError, match=r"train\.json is not a sidecar"):
        data.load_tokens(path)


# --------------------------------------------------------------------------- batches


def test_get_batch_shift_bounds_and_dtype():
    n, block = 40, 8
    tokens = np.arange(n, dtype=np.uint16)  # each window's values are its positions
    x, y = data.get_batch(tokens, 256, block, "cpu", torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (256, block) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y, x + 1)  # y is x shifted by one token
    assert torch.equal(x, x[:, :1] + torch.arange(block))  # contiguous windows
    assert x.min() >= 0 and y.max() <= n - 1  # never past the end...
    assert y.max() == n - 1 and x.min() == 0  # ...yet every start is reachable


def test_get_batch_reads_a_memmap_and_the_window_that_fills_it(tmp_path, enc):
    tokens = data.load_tokens(data.prepare(["One two three four five six seven."], enc, tmp_path, "train"))
    x, y = data.get_batch(tokens, 3, len(tokens) - 1, "cpu")
    assert x.tolist() == [tokens[:-1].tolist()] * 3 and y.tolist() == [tokens[1:].tolist()] * 3


def test_get_batch_is_reproducible_with_a_generator():
    tokens = np.arange(1000, dtype=np.uint16)
    first = data.get_batch(tokens, 4, 16, "cpu", torch.Generator().manual_seed(42))
    again = data.get_batch(tokens, 4, 16, "cpu", torch.Generator().manual_seed(42))
    other = data.get_batch(tokens, 4, 16, "cpu", torch.Generator().manual_seed(43))
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and not torch.equal(first[0], other[0])


def test_get_batch_accepts_a_tensor_and_rejects_bad_input():
    x, y = data.get_batch(torch.arange(100), 2, 10, torch.device("cpu"))
    assert torch.equal(y, x + 1)
    with pytest.raises(ValueError, match=r"block_size=10 needs at least 11 tokens .* only 10"):
        data.get_batch(np.arange(10), 2, 10, "cpu")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        data.get_batch(np.arange(100), 0, 10, "cpu")
    with pytest.raises(ValueError, match="1-D"):
        data.get_batch(np.zeros((4, 50)), 2, 10, "cpu")
    with pytest.raises(TypeError, match="numpy array of token ids"):
        data.get_batch(list(range(100)), 2, 10, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_get_batch_on_cuda():
    x, y = data.get_batch(np.arange(1000, dtype=np.uint16), 8, 32, "cuda", torch.Generator().manual_seed(0))
    assert x.is_cuda and y.is_cuda and torch.equal(y, x + 1)


# --------------------------------------------------------------------------- all at once


def test_prepare_tinystories_caches_by_encoding_and_source(enc, capsys, tmp_path):
    paths = data.prepare_tinystories(enc, source="synthetic", max_stories=120)
    fingerprint = encoding_fingerprint(enc)[:8]
    assert set(paths) == {"train", "validation"}
    assert paths["train"].parent.parent == tmp_path / "slm_cache" / "data"
    assert paths["train"].parent.name.startswith(f"gpt2-{fingerprint}-synthetic-")
    assert "train: 120 stories from embedded synthetic corpus" in capsys.readouterr().out
    train, valid = data.load_tokens(paths["train"]), data.load_tokens(paths["validation"])
    assert (train == enc.eot_token).sum() == 120 and (valid == enc.eot_token).sum() == 120
    x, y = data.get_batch(train, 2, 16, "cpu")
    assert torch.equal(x[:, 1:], y[:, :-1])
    stamp = paths["train"].stat().st_mtime_ns
    assert data.prepare_tinystories(enc, source="synthetic", max_stories=120) == paths
    assert paths["train"].stat().st_mtime_ns == stamp


@needs_shared
def test_prepare_tinystories_from_the_shared_real_text(enc, tmp_path):
    paths = data.prepare_tinystories(enc, out_dir=tmp_path / "real", source=SHARED, max_stories=200)
    tokens = data.load_tokens(paths["validation"])
    text = enc.decode(tokens[:400].tolist())
    assert ENDOFTEXT in text and "NOT real" not in json.loads(paths["validation"].with_suffix(".json").read_text())["source"]
