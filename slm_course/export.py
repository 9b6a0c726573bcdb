"""Use a trained run with Hugging Face ``transformers``, and load GPT-2's weights into our GPT.

Our GPT keeps GPT-2's architecture and GPT-2's parameter names (``transformer.h.0.attn.c_attn``,
nanoGPT's naming), so each direction is a weight mapping plus checks that nothing is lost on the way:

* GPT-2's projections are ``Conv1D`` modules that store their matrices (in, out); ours are
  ``nn.Linear``, which store (out, in). The four projection matrices of every block are transposed.
* Both models tie the output head to the token embedding, so the head is stored once.
* GPT-2 always has biases. A model trained with ``bias=False`` is exported with zero biases, which
  compute exactly what no bias computes.
* The MLP's GELU: ours is the exact (erf) GELU, while GPT-2's released weights were trained with the
  tanh approximation. An export names the activation our model uses (``"gelu"``, exact), so
  transformers computes what we compute. An import of a tanh-GELU model puts
  ``nn.GELU(approximate="tanh")`` into each of our MLPs, so we compute what it computes. GPTConfig
  has no field for the activation, so that choice lives in the modules: a model saved with
  ``checkpoint.save`` and loaded back has the exact GELU again (which differs by at most 5e-4).
* The tokenizer: a tiktoken encoding is a table of token bytes -> rank and a pre-tokenization
  regex, while transformers' BPE wants the merges (see :func:`merges_from_ranks`). The exported
  tokenizer splits text with our own regex (not the GPT-2 regex built into transformers' ByteLevel
  pre-tokenizer, so a tokenizer trained with GPT-4's pattern splits the same way too), writes bytes
  as GPT-2's printable characters (:func:`byte_level_alphabet`), and, as tiktoken does, takes a
  pre-token that is a whole token as it is. Every export checks that transformers' tokenizer gives
  our ids on a probe text, and refuses to write one that doesn't.

What one side can't express in the other's terms is an error naming it, never a silently different
model: a GPTConfig field this module doesn't know, an architecture option GPT-2 lacks (RoPE, RMSNorm), a GPT-2 with an
untied head or another activation, a tokenizer larger than the model's vocabulary.

Export a run, then use it like any model on the Hugging Face hub::

    python -m slm_course.train --preset cpu-quick --pos_emb learned --out_dir runs/cpu-quick-gpt2
    python -m slm_course.export --checkpoint runs/cpu-quick-gpt2 --out exported/cpu-quick

    from transformers import pipeline
    generate = pipeline("text-generation", model="exported/cpu-quick")
    print(generate("Once upon a time", max_new_tokens=60)[0]["generated_text"])

A GPT-2 model can't look past its ``n_positions`` (our ``block_size``) tokens: keep the prompt plus
``max_new_tokens`` within it (our own sampler slides its window instead; transformers' doesn't).

Load OpenAI's GPT-2 (124M) into the GPT you built, when you are online: the first call downloads
~550 MB into the Hugging Face cache (``~/.cache/huggingface``), later calls read the cache, offline
too::

    from slm_course.export import import_hf
    from slm_course.sample import generate_text
    from slm_course.tokenizer import gpt2_encoding

    model = import_hf("openai-community/gpt2")  # a hub name, a local directory or a GPT2LMHeadModel
    print(generate_text(model, gpt2_encoding(), "Once upon a time", 40, temperature=0.8, top_k=50))

``transformers`` is an optional dependency: ``pip install -e ".[hf]"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import tiktoken
import torch
import torch.nn as nn

from slm_course.checkpoint import load_run
from slm_course.config import GPTConfig
from slm_course.fileio import fsync_dir, temporary_path
from slm_course.model import GPT
from slm_course.tokenizer import ENDOFTEXT

if TYPE_CHECKING:
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

# The GPTConfig fields an export knows how to write, each with where it goes in GPT2Config. A
# config with any other field is refused: a new option (RoPE, RMSNorm, ...) changes what the model
# computes, so it needs a line here (or a clear refusal) before an export can be trusted.
EXPORTED_FIELDS = {
    "vocab_size": "vocab_size",
    "block_size": "n_positions",
    "n_layer": "n_layer",
    "n_head": "n_head",
    "n_embd": "n_embd",
    "dropout": "resid_pdrop, embd_pdrop and attn_pdrop",
    "bias": "zero biases when False (GPT-2 always has biases)",
    "pos_emb": "only 'learned' (wpe)",
    "norm": "only 'layernorm' (ln_1, ln_2, ln_f)",
    "mlp": "only 'gelu' (activation_function)",
    "qk_norm": "only False",
    "tie_embeddings": "only True (GPT2LMHeadModel ties lm_head to wte)",
}
# The architecture options GPT-2 has exactly one answer to: a model with any other value computes
# something no GPT2LMHeadModel can, so it is refused by name (see check_exportable).
GPT2_VALUES = {"pos_emb": "learned", "norm": "layernorm", "mlp": "gelu", "qk_norm": False, "tie_embeddings": True}
LAYER_NORM_EPS = 1e-5  # the epsilon slm_course.model.LayerNorm uses, and GPT-2's
# The matrices GPT-2 keeps in Conv1D modules, stored transposed: (in, out) there, (out, in) here.
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
HEAD = "lm_head.weight"  # tied to transformer.wte.weight on both sides
# GPT2Config.activation_function -> nn.GELU's `approximate` that computes it.
HF_GELUS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
EXPORTED_GELUS = {"none": "gelu", "tanh": "gelu_pytorch_tanh"}
# Text on which every exported tokenizer must give our ids: the cases where regex engines and BPE
# implementations tend to differ (runs of whitespace, line ends, contractions, digits, non-ASCII
# letters and marks, mojibake, emoji, a special token inside text).
PROBE_TEXT = (
    "Once upon a time, Lily's dog  said \"Hi!\"\n\nThey'll play.   \r\n\tThe END 1234567 x2.5\n"
    "I'M SURE we've won't DON'T  café naïve Ünïcödé résumé  e\u0301 \u00a0nbsp\u2003em\u3000ideo\n"
    "\u00e2\u20ac\u0153mojibake\u00e2\u20ac\u009d \u00c3\u00a9t\u00c3\u00a9 \u4e2d\u6587 \u0645\u0631\u062d\u0628\u0627 "
    "\U0001f600\U0001f468\u200d\U0001f469 <|endoftext|>Next story.  \n  "
)
REPORT_LIMIT = 5  # how many names an error lists before "and N more"


def _transformers() -> ModuleType:
    """transformers, imported on first use: it is an optional extra, never needed by the lessons."""
    try:
        import transformers
    except ImportError:
        raise ImportError(
            "slm_course.export needs the Hugging Face transformers library, an optional extra: "
            "pip install -e \".[hf]\" (or pip install transformers)"
        ) from None
    return transformers


def _listed(names: list[str]) -> str:
    """A short listing for an error message. Example: ``["a", "b"]`` -> ``"'a', 'b'"``"""
    shown = ", ".join(repr(name) for name in names[:REPORT_LIMIT])
    return shown + (f" and {len(names) - REPORT_LIMIT} more" if len(names) > REPORT_LIMIT else "")


# --- the model ------------------------------------------------------------------------------------


def check_exportable(config: GPTConfig) -> None:
    """Refuse a config with a field this module doesn't know how to write as GPT-2 (see EXPORTED_FIELDS),
    or with an architecture option set to anything but GPT-2's value (see GPT2_VALUES)."""
    unknown = [field.name for field in dataclasses.fields(config) if field.name not in EXPORTED_FIELDS]
    if unknown:
        raise ValueError(
            f"GPT-2's config can't express GPTConfig field(s) {_listed(unknown)}: slm_course.export only knows "
            f"{_listed(list(EXPORTED_FIELDS))}. Teach slm_course/export.py what each new field means for "
            f"GPT-2 (or refuse it there with a reason) before exporting such a model"
        )
    other = [f"{name}={getattr(config, name)!r}" for name, gpt2 in GPT2_VALUES.items() if getattr(config, name) != gpt2]
    if other:
        raise ValueError(
            f"GPTConfig {', '.join(other)} is not expressible in GPT-2, whose config has no such option "
            f"(GPT-2 is {', '.join(f'{name}={GPT2_VALUES[name]!r}' for name in GPT2_VALUES)}); only a model "
            f"trained with GPT-2's values exports to transformers' GPT2LMHeadModel. To make one, train with "
            f"{' '.join(_cli_option(name, GPT2_VALUES[name]) for name in GPT2_VALUES if getattr(config, name) != GPT2_VALUES[name])} "
            f"(e.g. python -m slm_course.train --preset cpu-quick --pos_emb learned)"
        )


def _cli_option(name: str, value: Any) -> str:
    """The training CLI's option that sets ``name`` to ``value``. Example: ``("qk_norm", False)`` -> ``"--no-qk_norm"``"""
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no-{name}"
    return f"--{name} {value}"


def gpt2_parameter_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter of a GPT-2 of this shape, under the names both models use, in our (out, in) layout.

    Example: ``GPTConfig.tiny()`` -> ``{"transformer.wte.weight": (256, 32), ..., "lm_head.weight": (256, 32)}``
    """
    C, V = config.n_embd, config.vocab_size
    shapes = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (config.block_size, C)}
    for i in range(config.n_layer):
        block = {
            "ln_1.weight": (C,), "ln_1.bias": (C,),
            "attn.c_attn.weight": (3 * C, C), "attn.c_attn.bias": (3 * C,),
            "attn.c_proj.weight": (C, C), "attn.c_proj.bias": (C,),
            "ln_2.weight": (C,), "ln_2.bias": (C,),
            "mlp.c_fc.weight": (4 * C, C), "mlp.c_fc.bias": (4 * C,),
            "mlp.c_proj.weight": (C, 4 * C), "mlp.c_proj.bias": (C,),
        }
        shapes |= {f"transformer.h.{i}.{name}": shape for name, shape in block.items()}
    shapes |= {"transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,), HEAD: (V, C)}
    return shapes


def hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """The model's weights as GPT2LMHeadModel holds them: Conv1D matrices transposed, the tied head
    left out (transformers ties it back), and zero biases where a ``bias=False`` model has none.

    A parameter GPT-2 has no place for, or one of another shape, is an error naming it: the model
    module changed in a way this export does not know.
    """
    check_exportable(model.config)
    if model.lm_head.weight is not model.transformer.wte.weight:
        raise ValueError("the model's lm_head is not tied to transformer.wte, and GPT-2 ties them: it can't be exported")
    ours = model.state_dict()
    expected = gpt2_parameter_shapes(model.config)
    unexpected = [name for name in ours if name not in expected]
    misshapen = [f"{name} {tuple(ours[name].shape)} (GPT-2: {expected[name]})"
                 for name in ours if name in expected and tuple(ours[name].shape) != expected[name]]
    missing = [name for name in expected if name not in ours and not (name.endswith(".bias") and not model.config.bias)]
    if unexpected or misshapen or missing:
        problems = [f"{what} {_listed(names)}" for what, names in
                    (("parameters GPT-2 has no place for:", unexpected), ("shapes GPT-2 can't hold:", misshapen),
                     ("missing parameters:", missing)) if names]
        raise ValueError(f"the model is not shaped like GPT-2 ({'; '.join(problems)}): it can't be exported")
    dtype = model.transformer.wte.weight.dtype
    tensors = {}
    for name, shape in expected.items():
        if name == HEAD:
            continue
        tensor = ours[name].detach().cpu() if name in ours else torch.zeros(shape, dtype=dtype)
        tensors[name] = (tensor.t() if name.endswith(CONV1D_WEIGHTS) else tensor).contiguous()
    return tensors


def mlp_activation(model: GPT) -> str:
    """GPT2Config.activation_function for the GELU in the model's MLPs: ``"gelu"`` (exact, what
    training uses) or ``"gelu_pytorch_tanh"`` (the tanh approximation :func:`import_hf` puts in)."""
    found = {block.mlp.gelu.approximate if type(block.mlp.gelu) is nn.GELU else type(block.mlp.gelu).__name__
             for block in model.transformer.h}
    if len(found) != 1 or not found <= EXPORTED_GELUS.keys():
        raise ValueError(
            f"GPT-2's config can't express the MLP activation(s) {_listed(sorted(found))}: it needs the same "
            f"nn.GELU (exact or approximate='tanh') in every block"
        )
    return EXPORTED_GELUS[found.pop()]


def gpt2_config(config: GPTConfig, activation: str = "gelu", eot_id: int | None = None) -> GPT2Config:
    """The GPT2Config that computes what a GPT of ``config`` computes (``eot_id``: <|endoftext|>'s id)."""
    check_exportable(config)
    return _transformers().GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=None,  # 4 * n_embd, our MLP's width
        activation_function=activation,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        layer_norm_epsilon=LAYER_NORM_EPS,
        scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False,
        tie_word_embeddings=True,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        architectures=["GPT2LMHeadModel"],
    )


# --- the tokenizer --------------------------------------------------------------------------------


def byte_level_alphabet() -> list[str]:
    """GPT-2's printable stand-in for each byte: ``alphabet[b]`` is the character that writes byte b.

    transformers keeps tokens as strings, but a token's bytes need not be valid UTF-8 (a merge can
    end inside a character). GPT-2 writes every byte as one printable character instead: the 188
    bytes that are printable in Latin-1 stand for themselves, the other 68 (control characters,
    space, NBSP, soft hyphen) take the characters from U+0100 on, in order. transformers' ByteLevel
    pre-tokenizer and decoder use this same table.

    Example: ``"".join(alphabet[b] for b in b" the")`` -> ``"Ġthe"`` (space is byte 32, the 33rd
    non-printable byte, so U+0100 + 32 = U+0120, "Ġ")
    """
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    alphabet, next_stand_in = [], 0x100
    for byte in range(256):
        if byte in printable:
            alphabet.append(chr(byte))
        else:
            alphabet.append(chr(next_stand_in))
            next_stand_in += 1
    return alphabet


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge that makes each multi-byte token, in rank order, from a tiktoken rank table.

    tiktoken keeps no merges, only each token's rank (its id; learned earlier = lower). But running
    BPE on a token's own bytes while allowing only tokens ranked *before* it stops exactly one merge
    short: at the two tokens whose merge made it. For GPT-2 this gives back OpenAI's ``vocab.bpe``
    line for line, and for our BPETokenizer its training merges.

    Example: GPT-2's first merges are ``(b" ", b"t")``, ``(b" ", b"a")``, ``(b"h", b"e")``
    """
    missing = [byte for byte in range(256) if bytes([byte]) not in ranks]
    if missing:
        raise ValueError(f"the tokenizer lacks the byte token(s) {missing[:REPORT_LIMIT]}: it is not a byte-level BPE")
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            earlier = [(ranks[a + b], i) for i, (a, b) in enumerate(itertools.pairwise(parts))
                       if ranks.get(a + b, rank) < rank]
            if not earlier:
                break
            _, i = min(earlier)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        if len(parts) != 2 or not all(ranks.get(part, rank) < rank for part in parts):
            raise ValueError(f"token {rank} ({token!r}) is not the merge of two earlier tokens: the tokenizer "
                             f"is not a BPE that transformers can replay")
        merges.append((parts[0], parts[1]))
    return merges


def hf_tokenizer(encoding: tiktoken.Encoding, model_max_length: int) -> PreTrainedTokenizerFast:
    """``encoding`` as a transformers tokenizer that gives the same ids (checked on PROBE_TEXT).

    Example: ``hf_tokenizer(gpt2_encoding(), 1024)("Hello world")["input_ids"]`` -> ``[15496, 995]``
    """
    transformers = _transformers()
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    alphabet = byte_level_alphabet()

    def written(token: bytes) -> str:
        return "".join(alphabet[byte] for byte in token)

    ranks, specials = encoding._mergeable_ranks, encoding._special_tokens
    vocab = {written(token): rank for token, rank in ranks.items()}
    clashes = [token for token in specials if token in vocab]
    if clashes:
        raise ValueError(f"special token(s) {_listed(clashes)} are spelled like ordinary tokens: they can't be told apart")
    vocab |= specials
    merges = [(written(a), written(b)) for a, b in merges_from_ranks(ranks)]
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True, fuse_unk=False))
    try:
        split = pre_tokenizers.Split(Regex(encoding._pat_str), behavior="isolated")
    except Exception as err:  # noqa: BLE001 (tokenizers raises a bare Exception for a regex it rejects)
        raise ValueError(
            f"transformers' tokenizers library can't compile the pre-tokenization regex {encoding._pat_str!r} "
            f"({err}); retrain the tokenizer with GPT-2's or GPT-4's pattern"
        ) from None
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False)
                                for token in sorted(specials, key=specials.get)])
    eot = ENDOFTEXT if ENDOFTEXT in specials else None
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=eot, eos_token=eot, model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,  # decode must give back the text, not "tidy" its spaces
    )
    _check_same_ids(encoding, tokenizer)
    return tokenizer


def _check_same_ids(encoding: tiktoken.Encoding, tokenizer: PreTrainedTokenizerFast) -> None:
    """Refuse a tokenizer that splits PROBE_TEXT differently from ours (e.g. a regex that the two
    regex engines read differently), naming the first token where they part."""
    ours = encoding.encode(PROBE_TEXT, allowed_special="all")
    theirs = tokenizer.backend_tokenizer.encode(PROBE_TEXT, add_special_tokens=False).ids
    if ours != theirs:
        k = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
        raise ValueError(
            f"transformers' tokenizer would split text differently from ours (from token {k} of the probe text: "
            f"ours {[encoding.decode([t]) for t in ours[k : k + 3]]}, transformers' "
            f"{[encoding.decode([t]) for t in theirs[k : k + 3]]}); the pre-tokenization regex "
            f"{encoding._pat_str!r} probably means different things to the two regex engines"
        )


# --- export ---------------------------------------------------------------------------------------


def export_model(model: GPT, encoding: tiktoken.Encoding, out_dir: str | os.PathLike, *,
                 overwrite: bool = False) -> Path:
    """Write ``model`` and ``encoding`` as a transformers model directory; return its path.

    The directory holds ``config.json``, ``generation_config.json`` and ``model.safetensors`` (a
    GPT2LMHeadModel) and ``tokenizer.json`` with ``tokenizer_config.json``. It is written beside
    ``out_dir`` under a temporary name and renamed into place when complete, so a failed export
    leaves nothing half-written. An existing non-empty ``out_dir`` is replaced only with
    ``overwrite`` and only if it holds an earlier export.

    Example: ``export_model(import_hf("openai-community/gpt2"), gpt2_encoding(), "exported/gpt2")``
    """
    transformers = _transformers()
    out_dir = Path(out_dir)
    _check_destination(out_dir, overwrite)
    check_exportable(model.config)  # first: an option GPT-2 lacks explains every mismatch found after it
    if encoding.n_vocab > model.config.vocab_size:
        raise ValueError(
            f"the tokenizer {encoding.name!r} has {encoding.n_vocab} tokens but GPTConfig.vocab_size is "
            f"{model.config.vocab_size}: the model has no row for its last {encoding.n_vocab - model.config.vocab_size}"
            f" token ids (were the model and tokenizer taken from different runs?)"
        )
    tokenizer = hf_tokenizer(encoding, model_max_length=model.config.block_size)
    eot_id = encoding._special_tokens.get(ENDOFTEXT)
    hf_model = transformers.GPT2LMHeadModel(gpt2_config(model.config, mlp_activation(model), eot_id))
    missing, unexpected = hf_model.load_state_dict(hf_state_dict(model), strict=False)
    if set(missing) - {HEAD} or unexpected:
        raise RuntimeError(
            f"transformers {transformers.__version__}'s GPT2LMHeadModel is laid out differently from what "
            f"slm_course.export writes (unfilled {_listed(sorted(set(missing) - {HEAD}))}, unknown "
            f"{_listed(sorted(unexpected))}); use transformers>=4.40 as pyproject.toml says, or report this"
        )
    hf_model.generation_config.pad_token_id = eot_id
    # Stop at the context length: GPT-2 can't place a token past n_positions (the pipeline would
    # otherwise ask for 256 new tokens).
    hf_model.generation_config.max_length = model.config.block_size

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(out_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        hf_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _name_tokenizer_class(tmp)
        for path in tmp.iterdir():
            with open(path, "rb") as file:
                os.fsync(file.fileno())
        fsync_dir(tmp)
        _replace_directory(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the latest checkpoint of a training run as a transformers model directory (see export_model).

    Example: ``export_run("runs/cpu-quick-gpt2", "exported/cpu-quick")``, then
    ``pipeline("text-generation", model="exported/cpu-quick")``
    """
    model, encoding, _ = load_run(run_dir, device="cpu")
    return export_model(model, encoding, out_dir, overwrite=overwrite)


def _is_export(directory: Path) -> bool:
    """True if ``directory`` looks like what export_model writes (so ``overwrite`` may replace it)."""
    try:
        architectures = json.loads((directory / "config.json").read_text(encoding="utf-8")).get("architectures")
    except (OSError, ValueError, AttributeError):
        return False
    return architectures == ["GPT2LMHeadModel"] and (directory / "tokenizer.json").is_file()


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    """Fail before any work if out_dir can't be written: it is a file, or holds something we must keep."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; choose a directory to export into")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} already exists and is not empty; delete it, choose another "
                                  f"directory, or pass overwrite=True (--overwrite) to replace an earlier export")
        if not _is_export(out_dir):
            raise FileExistsError(f"refusing to replace {out_dir}: it does not hold an earlier export (a "
                                  f"GPT2LMHeadModel config.json and a tokenizer.json); choose another directory")


def _name_tokenizer_class(directory: Path) -> None:
    """Name the one tokenizer class that transformers 4.40 to 5.x all build from tokenizer.json as it is.

    transformers 5 writes ``TokenizersBackend``, a name 4.x doesn't know; ``PreTrainedTokenizerFast``
    means the same in both. (Left unnamed, model_type "gpt2" would pick GPT2Tokenizer, which in
    transformers 5 rebuilds the pipeline with GPT-2's own regex and drops ours.)
    """
    path = directory / "tokenizer_config.json"
    values = json.loads(path.read_text(encoding="utf-8"))
    values["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _replace_directory(new: Path, target: Path) -> None:
    """Rename the complete directory ``new`` to ``target``, moving an old ``target`` aside first."""
    if not target.exists():
        os.replace(new, target)
    else:
        old = temporary_path(target.with_name(target.name + ".old"))
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old)
    fsync_dir(target.parent)


# --- import ---------------------------------------------------------------------------------------


def gpt_config_from_hf(hf_config: GPT2Config) -> tuple[GPTConfig, str]:
    """Our GPTConfig for a GPT2Config, and the GELU approximation (``"none"`` or ``"tanh"``) it uses.

    Every GPT2Config option our GPT can't express is named in one error.
    """
    if hf_config.model_type != "gpt2":
        raise ValueError(f"this is a {hf_config.model_type!r} model, and only GPT-2 models (model_type 'gpt2') "
                         f"can be imported into our GPT")
    n_embd = hf_config.n_embd
    problems = []
    if hf_config.activation_function not in HF_GELUS:
        problems.append(f"activation_function={hf_config.activation_function!r} (ours is a GELU: "
                        f"{_listed(list(HF_GELUS))})")
    if hf_config.n_inner not in (None, 4 * n_embd):
        problems.append(f"n_inner={hf_config.n_inner} (our MLP is 4 * n_embd = {4 * n_embd} wide)")
    if hf_config.layer_norm_epsilon != LAYER_NORM_EPS:
        problems.append(f"layer_norm_epsilon={hf_config.layer_norm_epsilon} (ours is {LAYER_NORM_EPS})")
    if not hf_config.scale_attn_weights or hf_config.scale_attn_by_inverse_layer_idx:
        problems.append("scale_attn_weights=False or scale_attn_by_inverse_layer_idx=True (we scale by "
                        "1/sqrt(head_dim) only)")
    if hf_config.add_cross_attention:
        problems.append("add_cross_attention=True (ours is a decoder only)")
    dropouts = {hf_config.resid_pdrop, hf_config.embd_pdrop, hf_config.attn_pdrop}
    if len(dropouts) > 1:
        problems.append(f"resid_pdrop, embd_pdrop, attn_pdrop = {hf_config.resid_pdrop}, {hf_config.embd_pdrop}, "
                        f"{hf_config.attn_pdrop} (we have one dropout rate)")
    if problems:
        raise ValueError(f"our GPT can't express this GPT-2 model: {'; '.join(problems)}")
    config = GPTConfig(vocab_size=hf_config.vocab_size, block_size=hf_config.n_positions, n_layer=hf_config.n_layer,
                       n_head=hf_config.n_head, n_embd=n_embd, dropout=float(hf_config.resid_pdrop), bias=True)
    return config, HF_GELUS[hf_config.activation_function]


def import_hf(source: GPT2LMHeadModel | str | os.PathLike) -> GPT:
    """Our GPT (in eval mode, on the CPU) with the weights of a GPT2LMHeadModel, computing the same logits.

    ``source`` is a GPT2LMHeadModel, a directory holding one (what ``save_pretrained`` or
    :func:`export_model` writes), or a Hugging Face hub name such as ``"openai-community/gpt2"``
    (downloaded on first use, then read from the local cache). Conv1D matrices are transposed into
    our nn.Linear layout and the head is tied to the token embedding; a model with the tanh GELU
    (GPT-2's own) gets ``nn.GELU(approximate="tanh")`` in each MLP (see the module docstring).

    Example: ``import_hf(GPT2LMHeadModel(GPT2Config(n_layer=2)))`` -> a 2-layer GPT with its weights
    """
    transformers = _transformers()
    hf_model = _load_hf(transformers, source) if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(hf_model, transformers.GPT2LMHeadModel):
        raise TypeError(f"import_hf takes a GPT2LMHeadModel or the directory or hub name of one, "
                        f"not {type(hf_model).__name__}")
    config, approximate = gpt_config_from_hf(hf_model.config)
    if hf_model.get_output_embeddings().weight is not hf_model.get_input_embeddings().weight:
        raise ValueError("the model's lm_head is not tied to transformer.wte (tie_word_embeddings=False), and our "
                         "GPT's is: it can't be imported")
    model = GPT(config)
    for block in model.transformer.h:
        block.mlp.gelu = nn.GELU(approximate=approximate)
    theirs = hf_model.state_dict() | {HEAD: hf_model.get_input_embeddings().weight}
    model.load_state_dict({name: theirs[name].t() if name.endswith(CONV1D_WEIGHTS) else theirs[name]
                           for name in model.state_dict()})
    return model.eval()


def cached_hub_model(name: str = "openai-community/gpt2") -> Path | None:
    """The local directory of hub model ``name`` if its config and safetensors weights are in the
    Hugging Face cache already, else None. Never touches the network, so an offline lesson can ask.

    Example: ``cached_hub_model()`` -> ``~/.cache/huggingface/hub/models--openai-community--gpt2/snapshots/<sha>``
    once ``import_hf("openai-community/gpt2")`` has run online; ``None`` before
    """
    from huggingface_hub import try_to_load_from_cache

    found = [try_to_load_from_cache(name, filename) for filename in ("config.json", "model.safetensors")]
    if not all(isinstance(path, str) for path in found):  # None (never fetched) or a "known missing" marker
        return None
    return Path(found[0]).parent


def _load_hf(transformers: ModuleType, source: str | os.PathLike) -> GPT2LMHeadModel:
    """A GPT2LMHeadModel from a directory or hub name, refusing weights that don't fill its config.

    transformers fills a parameter missing from the weights file with random numbers and only logs
    it; here it is an error naming the parameters, as is a parameter of the wrong shape.
    """
    try:
        hf_config = transformers.AutoConfig.from_pretrained(source)
    except OSError as err:  # transformers' message names neither the directory nor the hub name
        raise OSError(f"can't load a model from {str(source)!r}: {err}") from err
    gpt_config_from_hf(hf_config)  # refuse an inexpressible model before reading its weights
    hf_model, info = transformers.GPT2LMHeadModel.from_pretrained(
        source, config=hf_config, output_loading_info=True, ignore_mismatched_sizes=True
    )
    missing = sorted(set(info["missing_keys"]) - {HEAD})
    # transformers lists (name, shape in the file, shape the config wants)
    misshapen = sorted(f"{name} {tuple(found)} (config.json: {tuple(wanted)})" for name, found, wanted in info["mismatched_keys"])
    if missing or misshapen:
        problems = [f"{what} {_listed(names)}" for what, names in
                    (("missing", missing), ("of the wrong shape for its config.json", misshapen)) if names]
        raise ValueError(f"{source}: the weights file does not hold a GPT-2 of its config.json's shape "
                         f"({'; '.join(problems)})")
    return hf_model


# --- command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m slm_course.export",
        description="Write a run trained with `python -m slm_course.train` as a Hugging Face transformers "
                    "model directory: a GPT2LMHeadModel and its tokenizer (needs pip install -e \".[hf]\").",
        epilog="Then, in Python: from transformers import pipeline; "
               "pipeline('text-generation', model=OUT)('Once upon a time')",
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="run directory written by training")
    parser.add_argument("--out", required=True, metavar="OUT", help="directory to write (must not exist or be empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier export")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``python -m slm_course.export``: export a run for transformers."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out_dir = export_run(args.checkpoint, args.out, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError) as err:
        parser.error(f"cannot export {args.checkpoint!r}: {err}")
    print(f"wrote {out_dir}: load it with transformers' AutoModelForCausalLM.from_pretrained({str(out_dir)!r}) "
          f"and AutoTokenizer.from_pretrained({str(out_dir)!r})")


if __name__ == "__main__":
    main()
