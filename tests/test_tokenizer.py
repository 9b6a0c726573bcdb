"""Tests for slm_course.tokenizer and slm_course.bpe_train: training, encoding, files, tiktoken, GPT-2."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from slm_course import bpe_train, tokenizer
from slm_course.runtime import shared_data_dir
from slm_course.tokenizer import (
    ENDOFTEXT,
    GPT2_PATTERN,
    GPT4_PATTERN,
    BPETokenizer,
    compression_stats,
    encoding_fingerprint,
    gpt2_encoding,
    load_encoding,
)

# A small multilingual text, so that merges form inside multi-byte characters too.
TOY_TEXT = (
    "Once upon a time, there was a little girl named Lily. She loved her red ball!\n"
    "Tom said, \"Let's play in the park.\" They played and played until 5:30 pm.\r\n"
    "Le café était très agréable; l'été dernier, nous y allions souvent.\n"
    "小猫在花园里玩。它很高兴。小狗也来了。\n"
    "We're happy 😀😀 and she'll smile 👩‍👩‍👧 at 12345 birds.\t\tThe end.\n"
) * 4
TOY_VOCAB = 400

# Pieces that tokenizers get wrong: combining marks, ZWJ emoji, CJK, control characters, lone \r,
# whitespace runs, contractions, digits, and fragments of the special token.
AWKWARD = [
    "\r", "\n", "\r\n", "\n\n", " ", "   ", "\t", "\x00", "\x1b", "\x7f", "é", "e\u0301", "\u0301\u0302",
    "你好", "世界", "😀", "👩‍👩‍👧", "🏳️‍🌈", "'s", "'LL", "123456", "\u200b", "\ufeff",
    "<|", "|>", "endoftext",
]
texts = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(AWKWARD)), max_size=24).map("".join)


@pytest.fixture(scope="module")
def toy() -> BPETokenizer:
    return BPETokenizer.train(TOY_TEXT, TOY_VOCAB)


@pytest.fixture(scope="module")
def toy_export(toy: BPETokenizer) -> tiktoken.Encoding:
    return toy.to_tiktoken()


def real_text(name: str, n_bytes: int | None = None) -> str:
    data = shared_data_dir()
    if data is None:
        pytest.skip("real TinyStories text not found at ../shared/data/ (beside the repository)")
    raw = (data / name).read_bytes()[:n_bytes]
    return raw.decode("utf-8", errors="ignore")


@pytest.fixture(scope="module")
def stories_tokenizer() -> BPETokenizer:
    """The benchmark's tokenizer: 4,096 tokens learned from 5 MB of real TinyStories."""
    return BPETokenizer.train(real_text("TinyStories-train.subset.txt", 5_000_000), 4096)


def replay_merges(tok: BPETokenizer, text: str) -> list[int]:
    """The encoder lesson 01 writes: apply the merges to each pre-token in the order they were learned."""
    ids = []
    for piece in bpe_train.pretokenize(text, tok.pattern, []):
        chunk = list(piece)
        while len(chunk) > 1:
            pair = min(zip(chunk, chunk[1:]), key=lambda p: tok.merges.get(p, float("inf")))
            if pair not in tok.merges:
                break
            chunk = bpe_train.merge_pair(chunk, pair, tok.merges[pair])
        ids += chunk
    return ids


# -- GPT-2, offline ------------------------------------------------------------------------------


def test_gpt2_encoding_is_exact_and_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("gpt2_encoding tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    gpt2_encoding.cache_clear()
    try:
        enc = gpt2_encoding()
    finally:
        gpt2_encoding.cache_clear()
    assert enc.encode("Once upon a time") == [7454, 2402, 257, 640]
    assert enc.n_vocab == 50257
    assert enc.eot_token == 50256
    assert enc.encode(ENDOFTEXT, allowed_special={ENDOFTEXT}) == [50256]
    text = "Hello world! It's 2024 — naïve café 😀\n\n  end"
    assert enc.decode(enc.encode(text)) == text


def test_gpt2_encoding_refuses_a_changed_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer, "_GPT2_VOCAB_BPE_SHA256", "0" * 64)
    gpt2_encoding.cache_clear()
    try:
        with pytest.raises(ValueError, match="[Hh]ash"):
            gpt2_encoding()
    finally:
        gpt2_encoding.cache_clear()


# -- training ------------------------------------------------------------------------------------


def test_merges_follow_the_documented_tie_breaking() -> None:
    # Worked by hand: in "aaabdaaabac" (a=97, b=98, c=99, d=100) "aa" is most frequent (4) -> 256.
    # Then "Za" (256, 97) and "ab" (97, 98) both occur twice: the smaller pair, (97, 98), wins -> 257.
    # Then (256, 257) occurs twice -> 258. Then four pairs occur once; the smallest is (97, 99).
    expected = {(97, 97): 256, (97, 98): 257, (256, 257): 258, (97, 99): 259}
    for naive in (False, True):
        tok = BPETokenizer.train("aaabdaaabac", 260, special_tokens=[], naive=naive)
        assert tok.merges == expected


def test_merge_pair_replaces_left_to_right_without_overlap() -> None:
    assert bpe_train.merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]
    assert bpe_train.merge_pair([1], (1, 1), 9) == [1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab c\n'", max_size=30), min_size=1, max_size=8))
def test_fast_trainer_learns_exactly_the_naive_merges_on_random_text(stories: list[str]) -> None:
    # Both trainers run until nothing is left to merge; small alphabets make ties everywhere.
    pieces = list(bpe_train.pretokenize(stories, GPT2_PATTERN, [ENDOFTEXT]))
    naive = list(bpe_train.iter_merges_naive([list(piece) for piece in pieces]))
    fast = list(bpe_train.iter_merges(Counter(pieces)))
    assert fast == naive


def test_fast_and_naive_agree_on_the_toy_text(toy: BPETokenizer) -> None:
    assert BPETokenizer.train(TOY_TEXT, TOY_VOCAB, naive=True).merges == toy.merges
    assert len(toy.merges) == TOY_VOCAB - 257
    assert toy.vocab_size == TOY_VOCAB
    assert toy.special_tokens == {ENDOFTEXT: TOY_VOCAB - 1}


@pytest.mark.slow
def test_fast_and_naive_agree_on_50_kb_of_real_stories() -> None:
    text = real_text("TinyStories-train.subset.txt", 50_000)
    fast = BPETokenizer.train(text, 400)
    assert BPETokenizer.train(text, 400, naive=True).merges == fast.merges


def test_training_accepts_an_iterable_and_ignores_special_tokens() -> None:
    stories = ["the cat sat.", "the dog sat."]
    joined = BPETokenizer.train(f"\n{ENDOFTEXT}\n".join(stories), 266)
    separate = BPETokenizer.train(iter([s + "\n" for s in stories]), 266)
    assert joined.merges == separate.merges
    assert all(b"<|" not in token for token in joined.vocab.values() if token != ENDOFTEXT.encode())


def test_gpt4_pattern_splits_digits_in_threes_and_exports_identically() -> None:
    assert list(bpe_train.pretokenize("12345", GPT4_PATTERN, [])) == [b"123", b"45"]
    tok = BPETokenizer.train(TOY_TEXT, 350, pattern=GPT4_PATTERN)
    text = TOY_TEXT[:500] + "HELLO'LL 1234567 ..\r\n"
    assert tok.to_tiktoken().encode(text) == tok.encode(text)


@pytest.mark.parametrize("vocab_size", [0, 100, 256])
def test_vocab_size_too_small_is_a_clear_error(vocab_size: int) -> None:
    with pytest.raises(ValueError, match=f"vocab_size={vocab_size} is too small.*at least 257"):
        BPETokenizer.train(TOY_TEXT, vocab_size)


@pytest.mark.parametrize("empty", ["", [], [ENDOFTEXT], ["", ""]])
def test_training_on_empty_text_is_a_clear_error(empty: object) -> None:
    for naive in (False, True):
        with pytest.raises(ValueError, match="empty text"):
            BPETokenizer.train(empty, 300, naive=naive)


def test_asking_for_more_merges_than_the_text_offers_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="offers only 2 merges.*needs 10.*lower vocab_size"):
        BPETokenizer.train("abc", 267)


def test_allow_smaller_caps_the_vocabulary_at_what_the_text_offers() -> None:
    capped = BPETokenizer.train("abc abc", 267, allow_smaller=True)
    assert capped.vocab_size == 256 + 3 + 1  # "ab", "abc", " abc" and the end-of-text token
    assert capped.merges == BPETokenizer.train("abc abc", 260).merges  # the same merges, in order
    assert BPETokenizer.train(TOY_TEXT, TOY_VOCAB, allow_smaller=True).merges == BPETokenizer.train(TOY_TEXT, TOY_VOCAB).merges


def test_bad_pattern_and_bad_special_tokens_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        BPETokenizer.train(TOY_TEXT, 300, pattern="(unclosed")
    with pytest.raises(ValueError, match="distinct non-empty"):
        BPETokenizer.train(TOY_TEXT, 300, special_tokens=[ENDOFTEXT, ENDOFTEXT])
    with pytest.raises(TypeError, match="a list of strings"):
        BPETokenizer.train(TOY_TEXT, 300, special_tokens=ENDOFTEXT)


# -- encoding and decoding -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(texts)
def test_round_trip_and_export_give_the_same_ids(
    toy: BPETokenizer, toy_export: tiktoken.Encoding, text: str
) -> None:
    ids = toy.encode(text)
    assert toy.decode(ids) == text
    assert toy_export.encode(text) == ids
    assert toy_export.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(texts, min_size=1, max_size=4))
def test_special_tokens_are_handled_like_tiktoken(
    toy: BPETokenizer, toy_export: tiktoken.Encoding, parts: list[str]
) -> None:
    text = ENDOFTEXT.join(parts)
    assert toy.encode(text, allowed_special="all") == toy_export.encode(text, allowed_special="all")
    as_text = toy.encode(text, disallowed_special=())
    assert as_text == toy_export.encode(text, disallowed_special=())
    assert toy.decode(as_text) == text
    if len(parts) > 1:
        with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'.*allowed_special"):
            toy.encode(text)
        with pytest.raises(ValueError):
            toy_export.encode(text)


def test_allowed_special_token_encodes_to_its_id(toy: BPETokenizer) -> None:
    eot = toy.special_tokens[ENDOFTEXT]
    ids = toy.encode(f"The end.{ENDOFTEXT}Once", allowed_special={ENDOFTEXT})
    assert ids.count(eot) == 1
    assert toy.decode(ids) == f"The end.{ENDOFTEXT}Once"
    assert eot not in toy.encode(f"The end.{ENDOFTEXT}", disallowed_special=())


def test_lone_surrogates_are_replaced_like_tiktoken(toy: BPETokenizer, toy_export: tiktoken.Encoding) -> None:
    text = "a\ud800b\udfff"
    assert toy.encode(text) == toy_export.encode(text)
    assert toy.decode(toy.encode(text)) == "a\ufffdb\ufffd"


def test_hand_made_merges_follow_tiktokens_rules_exactly() -> None:
    # Worked by hand. "aaa": both "aa" pairs rank the same, the leftmost wins -> [aa, a].
    # "abcd": merging by rank alone gets stuck at [a, bc, d], but the whole piece is token 259,
    # and tiktoken takes a whole-token piece as it is.
    merges = {(98, 99): 256, (97, 98): 257, (99, 100): 258, (257, 258): 259, (97, 97): 260}
    tok = BPETokenizer(merges, special_tokens=[])
    enc = tok.to_tiktoken()
    assert tok.encode("aaa") == enc.encode("aaa") == [260, 97]
    assert tok.encode("abcd") == enc.encode("abcd") == [259]
    for text in ("abcde", "aabcd", "aaaa abcd aaabcdd", "bcd abc"):
        assert tok.encode(text) == enc.encode(text)


def test_encode_equals_replaying_the_merges_in_order(toy: BPETokenizer) -> None:
    assert toy.encode(TOY_TEXT) == replay_merges(toy, TOY_TEXT)


@pytest.mark.parametrize("bad_id", [TOY_VOCAB, -1, 10**9])
def test_decoding_an_id_outside_the_vocabulary_names_it(toy: BPETokenizer, bad_id: int) -> None:
    with pytest.raises(ValueError, match=f"token id {bad_id} is not in this tokenizer's vocabulary"):
        toy.decode([65, bad_id])


def test_decoding_a_cut_character_gives_a_replacement_character(toy: BPETokenizer) -> None:
    assert toy.decode(list("😀".encode())[:2]) == "\ufffd"


# -- the real 4,096-token TinyStories tokenizer --------------------------------------------------


@pytest.mark.slow
def test_tinystories_tokenizer_round_trips_and_matches_its_export(stories_tokenizer: BPETokenizer) -> None:
    text = real_text("TinyStories-valid.subset.txt")
    ids = stories_tokenizer.encode(text, allowed_special="all")
    assert stories_tokenizer.vocab_size == 4096
    assert stories_tokenizer.decode(ids) == text
    assert stories_tokenizer.to_tiktoken().encode(text, allowed_special="all") == ids
    start = text[:100_000]
    assert replay_merges(stories_tokenizer, start) == stories_tokenizer.encode_ordinary(start)


@pytest.mark.slow
def test_tinystories_tokenizer_uses_its_small_vocabulary_well(stories_tokenizer: BPETokenizer) -> None:
    text = real_text("TinyStories-valid.subset.txt")
    stats = compression_stats(text, [stories_tokenizer, gpt2_encoding()])
    ours, gpt2 = stats[stories_tokenizer.name], stats["gpt2"]
    assert ours.n_stories == gpt2.n_stories > 700
    # A 4,096-token vocabulary learned on stories uses most of itself while GPT-2's 50,257 mostly
    # sit idle, yet it cuts the stories into almost as few tokens.
    assert ours.vocab_used / ours.n_vocab > 0.5 > 0.2 > gpt2.vocab_used / gpt2.n_vocab
    assert 0.9 * gpt2.bytes_per_token < ours.bytes_per_token <= gpt2.bytes_per_token


# -- saving, loading, exporting ------------------------------------------------------------------


def test_save_load_round_trip(toy: BPETokenizer, tmp_path: Path) -> None:
    path = toy.save(tmp_path / "toy.bpe")
    assert [p.name for p in tmp_path.iterdir()] == ["toy.bpe"]  # written atomically: no temporary left
    loaded = BPETokenizer.load(path)
    assert loaded.merges == toy.merges
    assert loaded.pattern == toy.pattern
    assert loaded.special_tokens == toy.special_tokens
    assert loaded.name == toy.name
    assert loaded.encode(TOY_TEXT) == toy.encode(TOY_TEXT)
    header = ["slm-bpe v1", f"pattern {json.dumps(GPT2_PATTERN)}", "specials 1"]
    assert path.read_text().splitlines()[:3] == header


def corrupt(path: Path, line_number: int, replacement: str | None) -> None:
    lines = path.read_text().splitlines()
    lines[line_number - 1 : line_number] = [] if replacement is None else [replacement]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line_number", "replacement", "message"),
    [
        (1, "slm-bpe v9", "expected the header"),
        (2, "pattern not-json", "JSON string"),
        (2, 'pattern "(unclosed"', "not a valid regular expression"),
        (3, "specials x", "expected 'specials <count>'"),
        (4, '"<|endoftext|>" 7', "must have 399"),
        (4, "<|endoftext|> 399", "JSON string"),
        (5, "merges 999", "the file ends where merge 144 of 999 should be"),
        (6, "32 116 7", "expected a merge"),
        (6, "32 999", "token id 999 does not exist yet"),
        (7, "<copy of line 6>", "already merged"),
        (None, "junk", "unexpected content"),
    ],
)
def test_loading_a_malformed_file_names_the_file_and_line(
    toy: BPETokenizer, tmp_path: Path, line_number: int | None, replacement: str, message: str
) -> None:
    path = toy.save(tmp_path / "toy.bpe")
    if line_number is None:
        line_number = len(path.read_text().splitlines()) + 1
        path.write_text(path.read_text() + replacement + "\n")
    else:
        if replacement == "<copy of line 6>":
            replacement = path.read_text().splitlines()[5]
        corrupt(path, line_number, replacement)
    if "file ends" in message:
        line_number = len(path.read_text().splitlines()) + 1
    with pytest.raises(ValueError, match=f"{path}, line {line_number}: .*{message}"):
        BPETokenizer.load(path)


def test_loading_a_truncated_file_names_the_file_and_line(toy: BPETokenizer, tmp_path: Path) -> None:
    path = toy.save(tmp_path / "toy.bpe")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(ValueError, match=f"{path}, line 101: the file ends where merge 96 of 143 should be"):
        BPETokenizer.load(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    with pytest.raises(ValueError, match=f"{path} is not a tokenizer file"):
        BPETokenizer.load(path)


def test_constructing_from_inconsistent_merges_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="merge number 1: .*token id 300 does not exist yet"):
        BPETokenizer({(97, 98): 256, (300, 97): 257})
    with pytest.raises(ValueError, match="merge number 0: .*count up from 256"):
        BPETokenizer({(97, 98): 300})
    with pytest.raises(ValueError, match="merge number 3: .*makes b'abc', which token 257 already is"):
        BPETokenizer({(97, 98): 256, (256, 99): 257, (98, 99): 258, (97, 258): 259})


def test_export_name_and_fingerprint_identify_the_content(toy: BPETokenizer) -> None:
    enc = toy.to_tiktoken()
    assert enc.n_vocab == TOY_VOCAB
    assert enc.name == toy.name
    assert enc.name.startswith(f"slm-bpe-{TOY_VOCAB}-")
    assert encoding_fingerprint(enc) == toy.fingerprint()
    assert toy.fingerprint().startswith(enc.name.rsplit("-", 1)[1])
    other = BPETokenizer.train(TOY_TEXT, TOY_VOCAB - 1)
    assert other.name != toy.name
    assert BPETokenizer(toy.merges, GPT4_PATTERN).fingerprint() != toy.fingerprint()
    assert BPETokenizer(toy.merges, special_tokens=["<|pad|>"]).fingerprint() != toy.fingerprint()


def test_gpt2_fingerprint_ignores_the_name_but_not_the_content() -> None:
    enc = gpt2_encoding()
    content = {"pat_str": enc._pat_str, "mergeable_ranks": enc._mergeable_ranks}
    renamed = tiktoken.Encoding(name="another-name", special_tokens=enc._special_tokens, **content)
    assert encoding_fingerprint(renamed) == encoding_fingerprint(enc)
    assert len(encoding_fingerprint(enc)) == 64
    moved = tiktoken.Encoding(name="gpt2", special_tokens={ENDOFTEXT: 50257}, **content)
    assert encoding_fingerprint(moved) != encoding_fingerprint(enc)


def test_load_encoding_accepts_gpt2_and_tokenizer_files(toy: BPETokenizer, tmp_path: Path) -> None:
    assert load_encoding("gpt2") is gpt2_encoding()
    path = toy.save(tmp_path / "toy.bpe")
    for spec in (path, str(path)):
        enc = load_encoding(spec)
        assert enc.name == toy.name
        assert enc.encode(TOY_TEXT) == toy.encode(TOY_TEXT)
    for bad in ("gpt-2", str(tmp_path / "missing.bpe"), str(tmp_path)):
        with pytest.raises(ValueError, match=f"unknown encoding '{bad}': use 'gpt2' or the path"):
            load_encoding(bad)


# -- compression statistics ----------------------------------------------------------------------


def test_compression_stats_counts_bytes_tokens_and_vocabulary(toy: BPETokenizer) -> None:
    stories = ["Once upon a time, Lily played.", "Tom said: let's go!", "小猫在花园里玩。"]
    stats = compression_stats(stories, {"toy": toy, "gpt2": gpt2_encoding()})
    assert list(stats) == ["toy", "gpt2"]
    for name, enc in (("toy", toy), ("gpt2", gpt2_encoding())):
        per_story = [enc.encode(story) for story in stories]
        n_tokens = sum(map(len, per_story))
        s = stats[name]
        assert s.n_stories == 3
        assert s.n_bytes == sum(len(story.encode()) for story in stories)
        assert s.n_tokens == n_tokens
        assert s.bytes_per_token == pytest.approx(s.n_bytes / n_tokens)
        assert s.tokens_per_story == pytest.approx(n_tokens / 3)
        assert s.vocab_used == len({i for ids in per_story for i in ids})
    as_one_string = compression_stats(f"\n{ENDOFTEXT}\n".join(stories) + f"\n{ENDOFTEXT}\n", {"toy": toy})
    assert as_one_string["toy"] == stats["toy"]
    with pytest.raises(ValueError, match="at least one non-empty story"):
        compression_stats(f"\n{ENDOFTEXT}\n", [toy])
