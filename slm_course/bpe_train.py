"""How a byte-level BPE learns its merges: the naive loop lesson 01 teaches, and the fast one we use.

Both start the same way. The training text is cut into *pre-tokens* by a regex (GPT-2's splits
off words, numbers, punctuation runs and whitespace, so a merge never glues a word to the space
or full stop after it) and special tokens such as ``<|endoftext|>`` are cut out entirely. Every
pre-token starts as its UTF-8 bytes, ids 0-255. Then, over and over: find the most frequent
adjacent pair of ids, give it the next free id (256, 257, ...), and replace it everywhere.

**Tie-breaking.** When several pairs are equally frequent, the smallest pair of ids wins: the
smallest first id, then the smallest second id. Written as Python, the winner is
``min(counts, key=lambda pair: (-counts[pair], pair))``. Both trainers follow this rule, so they
learn exactly the same merges (``tests/test_tokenizer.py`` checks it on real text).

* ``iter_merges_naive`` recounts every pair in the whole text after every merge. It is ten lines
  and obviously right, but 4,096 tokens on 5 MB of text take it hours.
* ``iter_merges`` does the same arithmetic with three tricks: (1) it counts each distinct
  pre-token once and weights it by how often it occurs (5 MB of TinyStories has ~1.2 million
  pre-tokens but only ~8,000 distinct ones); (2) it keeps an index from each pair to the words
  that contain it, so a merge rewrites only those words and adjusts only their pairs' counts;
  (3) it finds the best pair with a heap. Counts only ever drop for existing pairs (new pairs
  contain the new id), so instead of updating the heap on every change it checks an entry when it
  comes to the top and pushes it back with its current count if it was stale ("lazy
  invalidation"). The result: seconds instead of hours.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence

import regex

Pair = tuple[int, int]


def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile a pre-tokenization regex, turning a bad one into an error that says so."""
    try:
        return regex.compile(pattern)
    except regex.error as err:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {err}") from None


def special_tokens_regex(tokens: Iterable[str]) -> regex.Pattern:
    """A regex matching any of ``tokens`` (longest first), with one capture group for ``split``."""
    alternatives = sorted(tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(token) for token in alternatives) + ")")


def fix_lone_surrogates(text: str) -> str:
    """Replace unpaired UTF-16 surrogates (which UTF-8 cannot encode) with U+FFFD, as tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def pretokenize(texts: str | Iterable[str], pattern: str, special_tokens: Iterable[str]) -> Iterator[bytes]:
    """Every pre-token of ``texts`` (a string or an iterable of strings) as UTF-8 bytes, in order.

    Special tokens are boundaries, not training material: the text is split at them and they are
    dropped, so no merge ever crosses a story boundary.
    """
    split_pattern = compile_pattern(pattern)
    specials = list(special_tokens)
    special_regex = special_tokens_regex(specials) if specials else None
    for text in [texts] if isinstance(texts, str) else texts:
        if not isinstance(text, str):
            raise TypeError(f"training texts must be strings, got {type(text).__name__}")
        text = fix_lone_surrogates(text)
        for part in special_regex.split(text)[::2] if special_regex else [text]:
            for piece in split_pattern.findall(part):
                yield piece.encode("utf-8")


def merge_pair(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair`` (scanning left to right) replaced by ``new_id``.

    Example: ``merge_pair([1, 2, 3, 1, 2], (1, 2), 4)`` -> ``[4, 3, 4]``
    """
    first, second = pair
    merged, i = [], 0
    while i < len(ids):
        if ids[i] == first and i + 1 < len(ids) and ids[i + 1] == second:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def iter_merges_naive(chunks: Iterable[Sequence[int]], first_id: int = 256) -> Iterator[tuple[Pair, int]]:
    """The textbook trainer: recount every pair, merge the winner everywhere, repeat.

    ``chunks`` holds one id sequence per pre-token *occurrence*. Yields ``(pair, count)`` for each
    merge; the k-th yielded pair becomes token ``first_id + k``. Stops when no pair is left.
    """
    chunks = [list(chunk) for chunk in chunks]
    new_id = first_id
    while True:
        counts: Counter[Pair] = Counter()
        for chunk in chunks:
            counts.update(zip(chunk, chunk[1:]))
        if not counts:
            return
        pair = min(counts, key=lambda p: (-counts[p], p))
        yield pair, counts[pair]
        chunks = [merge_pair(chunk, pair, new_id) if len(chunk) > 1 else chunk for chunk in chunks]
        new_id += 1


def iter_merges(word_counts: Mapping[Sequence[int], int], first_id: int = 256) -> Iterator[tuple[Pair, int]]:
    """The fast trainer: the same merges as ``iter_merges_naive``, by incremental counting.

    ``word_counts`` maps each distinct pre-token (its ids, e.g. its bytes) to how often it occurs.
    Yields ``(pair, count)`` for each merge; the k-th pair becomes token ``first_id + k``.
    """
    words = [list(word) for word in word_counts]
    freqs = list(word_counts.values())
    pair_counts: defaultdict[Pair, int] = defaultdict(int)
    words_with_pair: defaultdict[Pair, set[int]] = defaultdict(set)
    for index, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            words_with_pair[pair].add(index)
    # Python's heap pops the smallest entry: (-count, pair) gives the highest count, then the
    # smallest pair, which is exactly the tie-breaking rule of the naive trainer.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    new_id = first_id
    while heap:
        negative_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -negative_count:  # stale entry: the pair has lost occurrences since it was pushed
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        yield pair, count

        new_pairs: set[Pair] = set()
        # The index may list words that lost the pair to an earlier merge; merging them changes nothing.
        for index in words_with_pair.pop(pair):
            word = words[index]
            merged = merge_pair(word, pair, new_id)
            if len(merged) == len(word):
                continue
            freq = freqs[index]
            for old in zip(word, word[1:]):
                pair_counts[old] -= freq
            for new in zip(merged, merged[1:]):
                pair_counts[new] += freq
                if new_id in new:
                    new_pairs.add(new)
                    words_with_pair[new].add(index)
            words[index] = merged
        del pair_counts[pair]
        for new in new_pairs:
            heapq.heappush(heap, (-pair_counts[new], new))
        new_id += 1


def check_special_tokens(special_tokens: Iterable[str]) -> list[str]:
    """``special_tokens`` as a list, after checking it is a collection of distinct non-empty strings."""
    if isinstance(special_tokens, str):
        raise TypeError(f"special_tokens must be a list of strings, e.g. [{special_tokens!r}], not a string")
    tokens = list(special_tokens)
    if not all(isinstance(token, str) and token for token in tokens) or len(set(tokens)) != len(tokens):
        raise ValueError(f"special_tokens must be distinct non-empty strings, got {tokens!r}")
    return tokens


def count_merges_wanted(vocab_size: int, special_tokens: Sequence[str]) -> int:
    """How many merges a vocabulary of ``vocab_size`` needs: all but the 256 bytes and the specials."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
    special_tokens = check_special_tokens(special_tokens)
    smallest = 256 + len(special_tokens)
    if vocab_size < smallest:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: a byte-level BPE needs the 256 byte tokens plus "
            f"{len(special_tokens)} special token(s), so vocab_size must be at least {smallest}"
        )
    return vocab_size - smallest


def collect_merges(merges: Iterator[tuple[Pair, int]], n_merges: int, allow_fewer: bool = False) -> dict[Pair, int]:
    """The first ``n_merges`` pairs of a trainer (started at id 256) as ``{pair: new_id}``.

    A text can run out of pairs first (every pre-token is then a single token): that is an error,
    unless ``allow_fewer``, which returns the merges there are.
    """
    learned = {pair: 256 + k for k, (pair, _count) in enumerate(itertools.islice(merges, n_merges))}
    if len(learned) < n_merges and not allow_fewer:
        raise ValueError(
            f"the training text offers only {len(learned)} merges (every pre-token is a single token "
            f"by then) but the vocabulary needs {n_merges}; lower vocab_size or train on more text"
        )
    return learned


def train_merges(
    texts: str | Iterable[str],
    vocab_size: int,
    pattern: str,
    special_tokens: Sequence[str],
    naive: bool = False,
    allow_smaller: bool = False,
) -> dict[Pair, int]:
    """Learn the merges ``{(id_a, id_b): new_id}`` (in order) of a ``vocab_size`` byte-level BPE.

    ``naive=True`` uses the reference trainer (recount everything after every merge): same result,
    much slower; tests and lesson 01 compare against it. ``allow_smaller=True`` makes ``vocab_size``
    a ceiling: a text too small to offer that many merges gives all the merges it has.
    """
    n_merges = count_merges_wanted(vocab_size, special_tokens)
    pieces = pretokenize(texts, pattern, special_tokens)
    # The naive trainer takes every pre-token occurrence, the fast one each distinct pre-token and its count.
    corpus = list(pieces) if naive else Counter(pieces)
    if not corpus:
        raise ValueError("cannot train a tokenizer on empty text: give it at least one non-empty string")
    return collect_merges(iter_merges_naive(corpus) if naive else iter_merges(corpus), n_merges, allow_smaller)
