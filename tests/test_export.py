"""transformers interop: exported runs and imported GPT-2s give our logits, our token ids, clear errors.

Every Hugging Face model here is built from a config with random weights: nothing is downloaded.
"""

import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tiktoken
import torch
import torch.nn as nn

transformers = pytest.importorskip("transformers", reason="transformers is the optional 'hf' extra")
import tokenizers  # a dependency of transformers

from slm_course import checkpoint, export, sample
from slm_course.config import GPTConfig, TrainConfig
from slm_course.fileio import write_json
from slm_course.model import GPT
from slm_course.runtime import shared_data_dir
from slm_course.tokenizer import ENDOFTEXT, GPT4_PATTERN, BPETokenizer, gpt2_encoding
from slm_course.trainer import train_model

TOLERANCE = 1e-5  # max abs logit difference allowed in fp32 (the bar)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def offline():
    """Nothing here may reach the hub: every model is built from a config and read from a directory.

    HF_HUB_OFFLINE covers subprocesses; huggingface_hub read it once, at import, into the flag its
    HTTP layer checks, so that flag is set too. Both are restored afterwards: other test modules
    (tests/test_data.py's hub tests) must see the settings they started with.
    """
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


# --- runs to export --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A function that trains a two-step run with a tiny model and returns its directory."""
    tmp = tmp_path_factory.mktemp("export-runs")

    def run(name: str, tokenizer: str, vocab_size: int) -> Path:
        model_config = GPTConfig(vocab_size=vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
        train_config = TrainConfig(
            tokenizer=tokenizer, data_source="synthetic", max_stories=40, batch_size=2, max_iters=2, warmup_iters=1,
            eval_interval=2, eval_iters=1, device="cpu", out_dir=str(tmp / name),
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLM_CACHE", str(tmp / "cache"))
            return Path(train_model(model_config, train_config, verbose=False))

    return run


@pytest.fixture(scope="module")
def gpt2_run(train_run) -> Path:
    return train_run("gpt2", "gpt2", 50257)


@pytest.fixture(scope="module")
def bpe_run(train_run) -> Path:
    return train_run("bpe", "bpe-300", 320)  # a padded vocabulary: more rows than tokens


RUNS = ["gpt2_run", "bpe_run"]
TOY_TEXT = (
    "Once upon a time, a little cat named Tom lived in a big red house. Every morning Tom sat on the mat "
    "and watched the birds. One day a bird came down and said, \"Hello, Tom! Do you want to play?\" Tom "
    "was happy. They played in the garden all day, and when the sun went down they were best friends.\n"
) * 5


@functools.cache
def toy_encoding(vocab_size: int = 290) -> tiktoken.Encoding:
    """A small BPE (its last id is <|endoftext|>) for models that need some tokenizer to be exported."""
    return BPETokenizer.train(TOY_TEXT, vocab_size).to_tiktoken()


def random_ids(vocab_size: int, length: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def hf_logits(model_dir: Path, ids: torch.Tensor) -> torch.Tensor:
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    assert type(hf_model).__name__ == "GPT2LMHeadModel"
    with torch.no_grad():
        return hf_model(ids).logits


def our_logits(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(ids)[0]


# --- export: logits, generation, tokens ------------------------------------------------------------


@pytest.mark.parametrize("run", RUNS)
def test_an_exported_run_gives_our_logits_in_transformers_and_back(run, request, tmp_path):
    run_dir = request.getfixturevalue(run)
    out = export.export_run(run_dir, tmp_path / "hf")
    model, encoding, _ = checkpoint.load_run(run_dir, device="cpu")
    ids = random_ids(encoding.n_vocab, model.config.block_size)
    ours = our_logits(model, ids)
    diff = max_diff(hf_logits(out, ids), ours)
    print(f"{run}: export max |logit diff| = {diff:.3g}")
    assert diff <= TOLERANCE
    assert max_diff(our_logits(export.import_hf(out), ids), ours) <= TOLERANCE
    config = json.loads((out / "config.json").read_text())
    assert (config["n_positions"], config["vocab_size"]) == (model.config.block_size, model.config.vocab_size)


def test_pipeline_generates_text_offline_and_greedy_tokens_match_ours(bpe_run, tmp_path):
    out = export.export_run(bpe_run, tmp_path / "hf")
    generated = transformers.pipeline("text-generation", model=str(out), device="cpu")("Once upon a time")
    text = generated[0]["generated_text"]
    assert text.startswith("Once upon a time") and len(text) > len("Once upon a time")

    model, encoding, _ = checkpoint.load_run(bpe_run, device="cpu")
    prompt = torch.tensor([encoding.encode_ordinary("Once upon a time")])
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    new_tokens = model.config.block_size - prompt.size(1)
    theirs = hf_model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                               max_new_tokens=new_tokens)[0].tolist()
    ours = sample.generate(model, prompt, new_tokens, temperature=0)[0].tolist()
    # transformers stops at <|endoftext|> (the eos token); up to there the greedy tokens are the same
    assert theirs == ours[: len(theirs)]
    assert len(theirs) == len(ours) or theirs[-1] == encoding.eot_token


def validation_text() -> str:
    """The shared TinyStories validation stories (715 of them, mojibake included), or a skip."""
    data = shared_data_dir()
    path = data / "TinyStories-valid.subset.txt" if data else Path(os.environ.get("SLM_TINYSTORIES", ""))
    if not path.is_file() or path.suffix != ".txt":
        pytest.skip("real TinyStories text not found at ../shared/data/ (beside the repository) nor in "
                    "SLM_TINYSTORIES (set it to TinyStories-valid.subset.txt)")
    return path.read_text(encoding="utf-8")


TOKENIZERS = {
    "gpt2": lambda text: gpt2_encoding(),
    "bpe-gpt2-pattern": lambda text: BPETokenizer.train(text, 2048).to_tiktoken(),
    "bpe-gpt4-pattern": lambda text: BPETokenizer.train(text, 2048, pattern=GPT4_PATTERN).to_tiktoken(),
}


def exported_tokenizer(encoding, out: Path):
    tiny = GPTConfig(vocab_size=encoding.n_vocab, block_size=8, n_layer=1, n_head=1, n_embd=4, dropout=0.0)
    export.export_model(GPT(tiny), encoding, out)
    return transformers.AutoTokenizer.from_pretrained(out)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_transformers_tokenizer_gives_our_ids_on_every_validation_story(name, tmp_path):
    text = validation_text()
    encoding = TOKENIZERS[name](text)
    tokenizer = exported_tokenizer(encoding, tmp_path / "hf")
    stories = [story.strip() for story in text.split(ENDOFTEXT) if story.strip()]
    assert len(stories) > 700 and any("\u00e2\u20ac" in story for story in stories)  # mojibake is in there
    theirs = tokenizer(stories, add_special_tokens=False, verbose=False)["input_ids"]
    ours = encoding.encode_ordinary_batch(stories)
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert differing == [], f"{len(differing)} stories tokenize differently, the first: {stories[differing[0]][:200]!r}"
    assert tokenizer.batch_decode(theirs) == stories
    # the class transformers 4.x and 5.x both build from tokenizer.json unchanged (GPT2Tokenizer, the
    # default for model_type "gpt2", would put GPT-2's own regex in place of a BPE's GPT-4 pattern)
    assert json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())["tokenizer_class"] == \
        "PreTrainedTokenizerFast"
    whole = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]  # <|endoftext|> included
    assert whole == encoding.encode(text, allowed_special="all")


TRICKY = [
    "", " ", "   ", "\n", "\n\n\n", " \n ", "a  b", "trailing   ", "\r\n\r\n", "\t\tx", "I'M don't DON'T",
    "1234567890", "x2.5e-3", "naïve café", "e\u0301", "\u00a0nbsp", "\u2003em\u3000",
    "\u00e2\u20ac\u0153q\u00e2\u20ac\u009d",  # mojibake: UTF-8 quotes read as cp1252
    "\U0001f600\U0001f468\u200d\U0001f469", "中文 مرحبا", ENDOFTEXT, f"a{ENDOFTEXT}b", f" {ENDOFTEXT}\n", "<|endoftext",
]


def test_transformers_tokenizer_gives_our_ids_on_tricky_text(gpt2_run, tmp_path):
    out = export.export_run(gpt2_run, tmp_path / "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    encoding = gpt2_encoding()
    for text in TRICKY:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids == encoding.encode(text, allowed_special="all"), text
        assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token == ENDOFTEXT and tokenizer.eos_token_id == 50256


def test_export_refuses_a_tokenizer_whose_regex_transformers_reads_differently(tmp_path):
    # "$" is the end of the text for tiktoken but the end of any line for transformers' regex engine,
    # so "ideo" before a newline in the probe text is one pre-token there and four here.
    pattern = r"[a-z]+$|[a-z]|[^a-z]"
    encoding = BPETokenizer.train(["ideo"] * 50, 260, pattern=pattern).to_tiktoken()
    with pytest.raises(ValueError, match="split text differently"):
        exported_tokenizer(encoding, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_merges_from_ranks_give_back_gpt2s_merges_and_our_trained_ones():
    gpt2_merges = export.merges_from_ranks(gpt2_encoding()._mergeable_ranks)
    assert len(gpt2_merges) == 50000
    assert gpt2_merges[:3] == [(b" ", b"t"), (b" ", b"a"), (b"h", b"e")]
    bpe = BPETokenizer.train(TOY_TEXT, 290)
    assert export.merges_from_ranks(bpe.to_tiktoken()._mergeable_ranks) == [
        (bpe.vocab[a], bpe.vocab[b]) for a, b in bpe.merges]
    with pytest.raises(ValueError, match="not a byte-level BPE"):
        export.merges_from_ranks({b"a": 0})
    ranks = {bytes([b]): b for b in range(256)} | {b"abc": 256}  # no "ab" or "bc" to make it from
    with pytest.raises(ValueError, match=r"token 256 \(b'abc'\) is not the merge of two earlier tokens"):
        export.merges_from_ranks(ranks)


def test_byte_level_alphabet_is_gpt2s():
    alphabet = export.byte_level_alphabet()
    assert len(set(alphabet)) == 256
    assert "".join(alphabet[b] for b in b" the\n") == "\u0120the\u010a"  # "Ġthe" and a newline as "Ċ"
    assert set(alphabet) == set(tokenizers.pre_tokenizers.ByteLevel.alphabet())


def test_bias_free_models_export_exactly_as_zero_biases(tmp_path):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=300, block_size=12, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=False)
    model = GPT(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_f.weight")):
                param.normal_(1.0, 0.3)  # LayerNorms that are not the identity
    out = export.export_model(model, toy_encoding(), tmp_path / "hf")
    ids = random_ids(300, 12)
    assert max_diff(hf_logits(out, ids), our_logits(model, ids)) <= TOLERANCE
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out)
    biases = [param for name, param in hf_model.named_parameters() if name.endswith(".bias")]
    assert len(biases) == 2 * 6 + 1 and all(not bias.any() for bias in biases)


# --- import ---------------------------------------------------------------------------------------


def random_gpt2(seed: int = 0, **config) -> "transformers.GPT2LMHeadModel":
    """A GPT2LMHeadModel with every parameter random (biases and LayerNorms too, so a weight put in
    the wrong place shows), in eval mode."""
    torch.manual_seed(seed)
    values = {"vocab_size": 300, "n_positions": 24, "n_embd": 48, "n_layer": 3, "n_head": 4,
              "bos_token_id": 299, "eos_token_id": 299} | config
    hf_model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**values)).eval()
    with torch.no_grad():
        for param in hf_model.parameters():
            param.normal_(0.0, 0.2)
    return hf_model


@pytest.mark.parametrize("activation", ["gelu_new", "gelu", "gelu_pytorch_tanh"])
@pytest.mark.parametrize("from_dir", [False, True], ids=["model", "directory"])
def test_imported_gpt2_gives_its_logits(activation, from_dir, tmp_path):
    hf_model = random_gpt2(activation_function=activation)
    if from_dir:
        hf_model.save_pretrained(tmp_path / "gpt2")
    model = export.import_hf(tmp_path / "gpt2" if from_dir else hf_model)
    assert not model.training
    assert model.lm_head.weight is model.transformer.wte.weight
    ids = random_ids(300, 24)
    with torch.no_grad():
        diff = max_diff(our_logits(model, ids), hf_model(ids).logits)
    print(f"import ({activation}, {'directory' if from_dir else 'model'}) max |logit diff| = {diff:.3g}")
    assert diff <= TOLERANCE
    kv_cache = model.new_kv_cache(batch_size=2)  # our sampler's cached path sees the same weights
    with torch.no_grad():
        assert max_diff(model.next_token_logits(ids, kv_cache), hf_model(ids).logits[:, -1]) <= TOLERANCE


def test_cached_hub_model_finds_only_a_complete_cached_copy(tmp_path, monkeypatch):
    """Lesson 05's optional GPT-2 cell asks the cache, never the network; a config without weights
    (an interrupted download) is not a model."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert export.cached_hub_model("openai-community/gpt2") is None
    repo = tmp_path / "models--openai-community--gpt2"
    snapshot = repo / "snapshots" / ("a" * 40)
    random_gpt2().save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (snapshot / "model.safetensors").rename(snapshot / "partial")
    assert export.cached_hub_model("openai-community/gpt2") is None
    (snapshot / "partial").rename(snapshot / "model.safetensors")
    assert export.cached_hub_model("openai-community/gpt2") == snapshot
    assert max_diff(our_logits(export.import_hf(snapshot), random_ids(300, 8)),
                    transformers.GPT2LMHeadModel.from_pretrained(snapshot)(random_ids(300, 8)).logits) <= TOLERANCE


def test_an_imported_tanh_gelu_model_exports_back_unchanged(tmp_path):
    hf_model = random_gpt2(activation_function="gelu_new")
    out = export.export_model(export.import_hf(hf_model), toy_encoding(), tmp_path / "hf")
    assert json.loads((out / "config.json").read_text())["activation_function"] == "gelu_pytorch_tanh"
    ids = random_ids(300, 24)
    with torch.no_grad():
        assert max_diff(hf_logits(out, ids), hf_model(ids).logits) <= TOLERANCE


@pytest.mark.parametrize("change, named", [
    ({"activation_function": "relu"}, "activation_function='relu'"),
    ({"n_inner": 100}, "n_inner=100"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon=1e-06"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"attn_pdrop": 0.0}, "resid_pdrop, embd_pdrop, attn_pdrop"),
    ({"tie_word_embeddings": False}, "not tied"),
])
def test_import_refuses_a_gpt2_our_gpt_cannot_express(change, named):
    with pytest.raises(ValueError, match="can't be imported|can't express") as error:
        export.import_hf(random_gpt2(**change))
    assert named in str(error.value)


def test_import_refuses_other_architectures_and_objects(tmp_path):
    transformers.LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                             vocab_size=50).save_pretrained(tmp_path / "llama")
    with pytest.raises(ValueError, match="'llama' model, and only GPT-2 models"):
        export.import_hf(tmp_path / "llama")
    with pytest.raises(TypeError, match="not OrderedDict"):
        export.import_hf(random_gpt2().state_dict())


def test_a_hub_name_that_is_not_cached_fails_at_once_offline():
    with pytest.raises(OSError, match="can't load a model from 'slm-course/no-such-model'"):
        export.import_hf("slm-course/no-such-model")


def tampered_dir(tmp_path: Path, tamper) -> Path:
    from safetensors.torch import load_file, save_file

    directory = tmp_path / "gpt2"
    random_gpt2().save_pretrained(directory)
    tensors = load_file(directory / "model.safetensors")
    tamper(tensors)
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


def test_import_names_missing_weights_instead_of_filling_them_with_noise(tmp_path):
    directory = tampered_dir(tmp_path, lambda tensors: tensors.pop("transformer.h.1.mlp.c_fc.weight"))
    with pytest.raises(ValueError, match=r"does not hold a GPT-2 .*missing 'transformer.h.1.mlp.c_fc.weight'"):
        export.import_hf(directory)


def test_import_names_weights_of_the_wrong_shape(tmp_path):
    def shrink(tensors):
        tensors["transformer.h.0.attn.c_proj.weight"] = torch.zeros(48, 40)

    with pytest.raises(ValueError, match=r"transformer.h.0.attn.c_proj.weight \(48, 40\) \(config.json: \(48, 48\)\)"):
        export.import_hf(tampered_dir(tmp_path, shrink))


# --- export: what can't be exported ---------------------------------------------------------------


def incomplete_copy(run_dir: Path, tmp_path: Path, remove: str) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / remove).unlink()
    return copy


@pytest.mark.parametrize("remove", [checkpoint.CONFIG, checkpoint.WEIGHTS, "tokenizer.bpe"])
def test_exporting_an_incomplete_run_names_the_missing_file(bpe_run, tmp_path, remove):
    run_dir = incomplete_copy(bpe_run, tmp_path, remove)
    with pytest.raises(FileNotFoundError, match=remove.replace(".", r"\.")):
        export.export_run(run_dir, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_a_vocabulary_larger_than_the_config_is_refused(tmp_path):
    run_dir = tmp_path / "run"  # a run directory written by hand: a 256-row model with GPT-2's 50,257 tokens
    run_dir.mkdir()
    model = GPT(GPTConfig.tiny(vocab_size=256))
    checkpoint.save(run_dir, model, {"step": 1})
    write_json(run_dir / checkpoint.CONFIG, {"model": model.config.to_dict(),
                                             "tokenizer": {"spec": "gpt2", "n_vocab": 50257, "file": None}})
    with pytest.raises(ValueError, match="vocab_size"):
        export.export_run(run_dir, tmp_path / "hf")
    with pytest.raises(ValueError, match=r"50257 tokens but GPTConfig.vocab_size is 256"):
        export.export_model(model, gpt2_encoding(), tmp_path / "hf")


TINY = GPTConfig.tiny(vocab_size=300)


@dataclass
class RopeConfig(GPTConfig):
    """A future GPTConfig with an option GPT-2 has no word for."""

    rope: bool = False


def relu_mlps(model: GPT) -> GPT:
    for block in model.transformer.h:
        block.mlp.gelu = nn.ReLU()
    return model


def extra_parameter(model: GPT) -> GPT:
    model.transformer.h[0].attn.gate = nn.Parameter(torch.zeros(3))
    return model


def untied(model: GPT) -> GPT:
    model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone())
    return model


@pytest.mark.parametrize("make, named", [
    (lambda: GPT(RopeConfig(**dataclasses.asdict(TINY))), "GPTConfig field(s) 'rope'"),
    (lambda: relu_mlps(GPT(TINY)), "activation(s) 'ReLU'"),
    (lambda: extra_parameter(GPT(TINY)), "no place for: 'transformer.h.0.attn.gate'"),
    (lambda: untied(GPT(TINY)), "not tied"),
], ids=["unknown-config-field", "not-gelu", "extra-parameter", "untied-head"])
def test_what_gpt2_cannot_express_is_refused_by_name(make, named, tmp_path):
    with pytest.raises(ValueError, match="can't express|not shaped like GPT-2|not tied") as error:
        export.export_model(make(), toy_encoding(), tmp_path / "hf")
    assert named in str(error.value)
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("change", [{"pos_emb": "rope"}, {"norm": "rmsnorm"}, {"mlp": "swiglu"}, {"mlp": "relu2"},
                                    {"qk_norm": True}, {"tie_embeddings": False}], ids=lambda c: "-".join(map(str, c.values())))
def test_architecture_options_gpt2_lacks_are_refused_by_name(change, tmp_path):
    (name, value), = change.items()
    with pytest.raises(ValueError, match=rf"GPTConfig {name}={value!r} is not expressible in GPT-2") as error:
        export.export_model(GPT(TINY.replace(**change)), toy_encoding(), tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
    gpt2_value = export.GPT2_VALUES[name]  # the error names the training option that makes an exportable model
    option = (f"--{name}" if gpt2_value else f"--no-{name}") if isinstance(gpt2_value, bool) else f"--{name} {gpt2_value}"
    assert f"train with {option} " in str(error.value)


def test_gpt2s_own_values_of_the_architecture_options_export(tmp_path):
    explicit = TINY.replace(**export.GPT2_VALUES)
    assert explicit == TINY
    export.check_exportable(explicit)  # no error: the defaults are GPT-2


def test_export_never_replaces_what_it_did_not_write(bpe_run, tmp_path):
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="notes"):
            export.export_run(bpe_run, keep, overwrite=overwrite)
    assert (keep / "mine.txt").read_text() == "precious"
    with pytest.raises(FileExistsError, match="does not hold an earlier export"):  # nor the run itself
        export.export_run(bpe_run, bpe_run, overwrite=True)
    assert checkpoint.has_checkpoint(bpe_run)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        export.export_run(bpe_run, tmp_path / "file")


def test_overwrite_replaces_an_earlier_export_and_leaves_no_temporaries(bpe_run, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()  # an empty directory is fine
    export.export_model(GPT(GPTConfig.tiny(vocab_size=320)), checkpoint.load_run(bpe_run, "cpu")[1], out)
    with pytest.raises(FileExistsError, match="overwrite"):
        export.export_run(bpe_run, out)
    export.export_run(bpe_run, out, overwrite=True)
    model, encoding, _ = checkpoint.load_run(bpe_run, device="cpu")
    ids = random_ids(encoding.n_vocab, 16)
    assert max_diff(hf_logits(out, ids), our_logits(model, ids)) <= TOLERANCE
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hf"]


# --- the command line ----------------------------------------------------------------------------


def test_cli_exports_a_run(bpe_run, tmp_path, capsys):
    export.main(["--checkpoint", str(bpe_run), "--out", str(tmp_path / "hf")])
    assert f"wrote {tmp_path / 'hf'}" in capsys.readouterr().out
    assert (tmp_path / "hf" / "model.safetensors").is_file() and (tmp_path / "hf" / "tokenizer.json").is_file()


def test_cli_errors_name_the_problem(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "hf")])
    assert exit_info.value.code == 2
    assert f"cannot export {str(tmp_path / 'nothing')!r}" in capsys.readouterr().err


def test_cli_help_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "slm_course.export", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env=os.environ | {"PYTHONPATH": str(REPO)}, check=False)
    assert result.returncode == 0, result.stderr
    assert "--checkpoint RUN_DIR" in result.stdout and "--out OUT" in result.stdout and "--overwrite" in result.stdout
