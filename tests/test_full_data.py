"""The full dataset at its real size: a run reads only what it needs, lazily, and caches by identity.

Small files stand in for the 1.9 GB split (bench/full_data.py measures the real size): each test
checks one promise of issue 16 — the same tokens through the lazy parquet reader and through
``datasets.load_dataset`` (the hub's own code path), a token budget instead of the whole split, a
warm start that reads no story, a rebuild when the source changes, and no trusted cache entry
after a prepare killed mid-write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data import hf_cache, isolated, write_txt  # noqa: F401 - fixtures shared with the data tests

from slm_course import data
from slm_course.config import TrainConfig
from slm_course.model import check_token_ids
from slm_course.corpus import load_tinystories, open_stories, sources
from slm_course.tokenizer import ENDOFTEXT, gpt2_encoding

REPO = Path(__file__).resolve().parent.parent
BLOCK = 16


def run_config(source, **changes) -> TrainConfig:
    """A run that reads 2 updates x 2 sequences x 16 tokens: a train budget of 4 x 64 = 256 tokens."""
    values = dict(tokenizer="gpt2", data_source=str(source), batch_size=2, max_iters=2, warmup_iters=1, eval_iters=1)
    return TrainConfig(**{**values, **changes})


def stories_of(n: int, tag: str = "") -> list[str]:
    return [f"Story {tag}{i}: Lily found a shiny stone by the river and took it home." for i in range(n)]


def hub_layout(root: Path, train: list[str], valid: list[str], shards: int = 3) -> Path:
    """A directory laid out like huggingface.co/datasets/roneneldan/TinyStories: data/<split>-0000k-of-0000n."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "data").mkdir(parents=True)
    size = -(-len(train) // shards)
    for k in range(shards):
        pq.write_table(pa.table({"text": train[k * size : (k + 1) * size]}),
                       root / "data" / f"train-{k:05d}-of-{shards:05d}.parquet", row_group_size=7)
    pq.write_table(pa.table({"text": valid}), root / "data" / "validation-00000-of-00001.parquet")
    return root


def test_token_budget_follows_the_run(monkeypatch):
    budget = data.token_budgets(run_config("x"), BLOCK)
    assert budget == {"train": 2 * 1 * 2 * BLOCK * data.TOKEN_MARGIN, "validation": data.VALIDATION_TOKENS}
    cpu_quick = TrainConfig(batch_size=16, max_iters=1500, warmup_iters=50)
    assert data.token_budgets(cpu_quick, 128) == {"train": 12_288_000, "validation": 2_097_152}
    lesson = cpu_quick.replace(max_stories=3000)  # a fixed slice is the data, whatever the run reads
    assert data.token_budgets(lesson, 128) == {"train": None, "validation": None}


def test_a_fixed_slice_is_tokenized_whole(tmp_path):
    write_txt(tmp_path / "s-train.txt", stories_of(200))
    write_txt(tmp_path / "s-valid.txt", stories_of(20, "v"))
    run = data.prepare_run_data(run_config(tmp_path / "s-train.txt", max_stories=150), BLOCK)
    assert run.description["stories"] == {"train": 150, "validation": 20}
    assert (run.tokens["train"] == gpt2_encoding().eot_token).sum() == 150


def test_a_run_tokenizes_its_budget_ending_on_a_whole_story(tmp_path, monkeypatch):
    stories = stories_of(400)
    write_txt(tmp_path / "big-train.txt", stories)
    write_txt(tmp_path / "big-valid.txt", stories_of(30, "v"))
    run = data.prepare_run_data(run_config(tmp_path / "big-train.txt"), BLOCK)
    tokens = run.tokens["train"]
    enc = gpt2_encoding()
    per_story = len(enc.encode_ordinary(stories[0])) + 1  # every story here is as long as the first
    assert 256 <= len(tokens) < 256 + per_story and tokens[-1] == enc.eot_token
    assert run.description["stories"] == {"train": len(tokens) // per_story, "validation": 30}
    assert run.description["token_budget"]["train"] == 256
    monkeypatch.setattr(data, "_CHUNK_CHARS", 50)  # other chunk boundaries, the same cut
    again = data.prepare(open_stories("train", tmp_path / "big-train.txt"), enc, tmp_path / "other", "train",
                         max_tokens=256)
    assert np.array_equal(data.load_tokens(again), tokens)


@pytest.mark.usefixtures("hf_cache")
def test_lazy_parquet_shards_give_the_same_tokens_as_datasets_load_dataset(tmp_path, monkeypatch):
    """The directory reader streams the shards itself; the hub path hands the same directory to
    ``datasets.load_dataset`` (an Arrow copy in the HF cache). Same stories, same order, same tokens,
    down to the BPE trained on them."""
    repo = hub_layout(tmp_path / "TinyStories", stories_of(500), stories_of(40, "v"))
    lazy = data.prepare_run_data(run_config(repo, tokenizer="bpe-300", max_iters=20), BLOCK)
    assert lazy.description["source"] == f"local dataset directory: {repo} (train)"
    assert not any((tmp_path / "hf").rglob("*.arrow"))

    monkeypatch.setattr(sources, "HUB_DATASET", str(repo))
    monkeypatch.setattr(sources, "_hub_reachable", lambda: False)  # offline: load_dataset reads the cache/dir
    eager = data.prepare_run_data(run_config("hub", tokenizer="bpe-300", max_iters=20), BLOCK)
    assert eager.description["source"].startswith(f"Hugging Face hub: {repo} (train)")
    assert any((tmp_path / "hf").rglob("*.arrow"))  # this one did go through datasets
    assert eager.tokenizer_file != lazy.tokenizer_file  # two caches, one per source...
    for split in ("train", "validation"):
        assert np.array_equal(eager.tokens[split], lazy.tokens[split]), split  # ...with identical contents
    assert len(lazy.tokens["train"]) < sum(len(s) for s in stories_of(500))  # a budget, not the whole split


def test_a_run_reads_only_the_head_of_a_big_file(tmp_path, monkeypatch):
    """Past what the run needs, the file is never read: here its tail is not even valid UTF-8."""
    # Reading and encoding blocks as small against this file as 4 MB and 1 MB are against 1.9 GB.
    monkeypatch.setattr(sources, "_TXT_BLOCK_CHARS", 1024)
    monkeypatch.setattr(data, "_CHUNK_CHARS", 500)
    path = write_txt(tmp_path / "huge-train.txt", stories_of(300))
    with open(path, "ab") as file:
        file.write(b"\xff\xfe broken bytes that a full read would choke on \n")
    write_txt(tmp_path / "huge-valid.txt", stories_of(10, "v"))
    run = data.prepare_run_data(run_config(path), BLOCK)
    assert len(run.tokens["train"]) >= 256
    assert load_tinystories("train", path, max_stories=5) == stories_of(5)  # a lesson's slice, the same way
    with pytest.raises(ValueError, match="is not UTF-8"):
        load_tinystories("train", path)


def test_the_warm_path_reads_no_story(tmp_path, monkeypatch):
    write_txt(tmp_path / "s-train.txt", stories_of(200))
    write_txt(tmp_path / "s-valid.txt", stories_of(20, "v"))
    config = run_config(tmp_path / "s-train.txt", tokenizer="bpe-300")
    cold = data.prepare_run_data(config, BLOCK)

    def no_reading(path):
        raise AssertionError(f"the warm path read {path}")

    monkeypatch.setitem(sources._READERS, ".txt", no_reading)
    warm = data.prepare_run_data(config, BLOCK)
    assert warm.tokenizer_file == cold.tokenizer_file and warm.description == cold.description
    assert np.array_equal(warm.tokens["train"], cold.tokens["train"])


def test_a_source_changed_since_it_was_cached_is_rebuilt(tmp_path, capsys):
    train = write_txt(tmp_path / "s-train.txt", stories_of(200))
    write_txt(tmp_path / "s-valid.txt", stories_of(20, "v"))
    first = data.prepare_run_data(run_config(train), BLOCK)
    write_txt(train, [s.replace("Lily", "Ruth") for s in stories_of(200)])  # same size, new text
    second = data.prepare_run_data(run_config(train), BLOCK)
    assert "Ruth" in gpt2_encoding().decode(second.tokens["train"][:40].tolist())
    assert "Lily" in gpt2_encoding().decode(first.tokens["train"][:40].tolist())
    # A fixed out_dir (prepare() called directly) says why it rebuilds.
    data.prepare(open_stories("train", train), gpt2_encoding(), tmp_path / "fixed", "train")
    os.utime(train, ns=(time.time_ns(), time.time_ns() + 10**9))
    capsys.readouterr()
    data.prepare(open_stories("train", train), gpt2_encoding(), tmp_path / "fixed", "train")
    assert "the source changed since it was tokenized" in capsys.readouterr().out


KILLED_PREPARE = """
import sys, time
from pathlib import Path
from slm_course import data
from slm_course.corpus import open_stories
from slm_course.tokenizer import gpt2_encoding
real_encode, real_write_json = data._encode_chunk, data.write_json
def slow_encode(stories, encoding):  # one chunk, then stall: the kill lands mid-write
    ids = real_encode(stories, encoding)
    print("wrote a chunk", flush=True)
    time.sleep(60)
    return ids
def stall(path, values):  # the .bin is complete and renamed; its sidecar never comes
    print("bin done", flush=True)
    time.sleep(60)
if sys.argv[1] == "mid-encode":
    data._encode_chunk = slow_encode
else:
    data.write_json = stall
data._ENCODE_THREADS = 1
data._CHUNK_CHARS = 2000
data.prepare(open_stories("train", sys.argv[2]), gpt2_encoding(), sys.argv[3], "train")
"""


@pytest.mark.parametrize("moment", ["mid-encode", "before-sidecar"])
def test_a_prepare_killed_mid_write_leaves_nothing_a_later_run_trusts(tmp_path, moment, capsys):
    source = write_txt(tmp_path / "k-train.txt", stories_of(300))
    out_dir = tmp_path / "cache"
    script = tmp_path / "prepare.py"
    script.write_text(KILLED_PREPARE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(script), moment, str(source), str(out_dir)],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().strip() in ("wrote a chunk", "bin done")
        time.sleep(0.2)  # let the chunk reach the file
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert not (out_dir / "train.json").exists()  # no sidecar: nothing here claims to be complete
    with pytest.raises(FileNotFoundError):
        data.load_tokens(out_dir / "train.bin")
    path = data.prepare(open_stories("train", source), gpt2_encoding(), out_dir, "train")
    enc = gpt2_encoding()
    expected = [t for s in load_tinystories("train", source) for t in [*enc.encode_ordinary(s), enc.eot_token]]
    assert data.load_tokens(path).tolist() == expected
    assert sorted(p.name for p in out_dir.iterdir()) == ["train.bin", "train.json"]  # the dead writer's temp is gone
    if moment == "before-sidecar":
        assert "its sidecar train.json is missing" in capsys.readouterr().out


def test_ids_outside_the_vocabulary_are_caught_where_data_enters(tmp_path):
    with pytest.raises(ValueError, match=r"token id 9 is outside the vocabulary \[0, 8\) in train\.bin"):
        check_token_ids(torch.tensor([1, 2, 9]), 8, "train.bin")
    check_token_ids(torch.tensor([0, 7]), 8, "fine")
    # A data_dir prepared with a bigger vocabulary than the run's tokenizer.
    big = data.prepare(stories_of(5), gpt2_encoding(), tmp_path / "gpt2", "train")
    for split in ("train", "validation"):
        (tmp_path / "prepared").mkdir(exist_ok=True)
        (tmp_path / "prepared" / f"{split}.bin").write_bytes(big.read_bytes())
        sidecar = json.loads(big.with_suffix(".json").read_text())
        sidecar.pop("encoding_fingerprint")
        (tmp_path / "prepared" / f"{split}.json").write_text(json.dumps(sidecar))
    from slm_course.tokenizer import BPETokenizer

    tokenizer = BPETokenizer({}).save(tmp_path / "bytes.bpe")
    with pytest.raises(ValueError, match=r"token id \d+ is outside the vocabulary \[0, 257\) in .*prepared/train\.bin; .*another tokenizer"):
        data.prepare_run_data(run_config("unused", tokenizer=str(tokenizer), data_dir=str(tmp_path / "prepared")), BLOCK)


def test_bad_input_is_named_with_what_was_expected(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A parquet shard cut short (an interrupted download).
    repo = hub_layout(tmp_path / "cut", stories_of(50), stories_of(5, "v"), shards=1)
    shard = repo / "data" / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-00000-of-00001\.parquet is not a readable parquet file .*download it again"):
        load_tinystories("train", repo)
    # A directory with no stories in it.
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("nothing to see")
    with pytest.raises(ValueError, match=r"empty holds no stories: it is a directory without \.txt, \.parquet"):
        load_tinystories("train", tmp_path / "empty")
    # A .txt with no <|endoftext|> separators: refused at the first MAX_STORY_CHARS, not read as one story.
    monkeypatch.setattr(sources, "MAX_STORY_CHARS", 1000)
    monkeypatch.setattr(sources, "_TXT_BLOCK_CHARS", 256)
    flat = tmp_path / "flat-train.txt"
    flat.write_text("".join(f"Story {i} is on one line, with no separator after it.\n" for i in range(400)))
    with pytest.raises(ValueError, match=r"flat-train\.txt: 1,0\d\d characters from its start hold no <\|endoftext\|>"):
        load_tinystories("train", flat, max_stories=1)
    # A run on a source whose split is empty.
    write_txt(tmp_path / "none-train.txt", [])
    write_txt(tmp_path / "none-valid.txt", stories_of(3))
    with pytest.raises(ValueError, match=r"no stories to prepare for the train split: local file: .*none-train\.txt holds none"):
        data.prepare_run_data(run_config(tmp_path / "none-train.txt"), BLOCK)
    # A parquet file without the column.
    pq.write_table(pa.table({"story": ["x"]}), tmp_path / "wrong.parquet")
    with pytest.raises(ValueError, match="no 'text' column"):
        load_tinystories("train", tmp_path / "wrong.parquet")
    assert ENDOFTEXT not in flat.read_text()


def test_a_corpus_too_small_for_the_vocabulary_caps_it_with_a_note_on_every_run(tmp_path, capsys):
    write_txt(tmp_path / "few-train.txt", stories_of(30))
    write_txt(tmp_path / "few-valid.txt", stories_of(3, "v"))
    config = run_config(tmp_path / "few-train.txt", tokenizer="bpe-4096")
    for _ in range(2):  # trained, then loaded from the cache: the note both times
        run = data.prepare_run_data(config, BLOCK)
        out = capsys.readouterr().out
        assert f"the bpe-4096 tokenizer is capped at {run.encoding.n_vocab:,} tokens" in out, out
        assert f"GPTConfig.vocab_size={run.encoding.n_vocab}" in out
    assert 257 < run.encoding.n_vocab < 4096 and int(run.tokens["train"].max()) < run.encoding.n_vocab
