"""Sampling: the KV cache is exact, the filters do what they say, stop tokens, streaming, text, CLI."""

import json
import shutil
import subprocess
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from slm_course import sample
from slm_course.config import GPTConfig, TrainConfig
from slm_course.model import GPT
from slm_course.sample import (
    decode_stream,
    generate_text,
    logits_to_probs,
    next_token_distribution,
    stream_text,
    top_k_filter,
    top_p_filter,
)
from slm_course.tokenizer import gpt2_encoding
from slm_course.trainer import train_model

CONFIGS = {
    "tiny": GPTConfig.tiny(),
    "4-heads-dropout": GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=4, n_embd=32, dropout=0.1),
    "1-head-no-bias": GPTConfig(vocab_size=50, block_size=8, n_layer=3, n_head=1, n_embd=16, dropout=0.0, bias=False),
}


def make(cfg: GPTConfig, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(cfg)


def prompts(cfg: GPTConfig, batch: int = 3, length: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, cfg.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- the KV cache ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_greedy_with_cache_equals_without_including_past_the_window(name):
    cfg = CONFIGS[name]
    model = make(cfg).train()  # left in train mode on purpose: generation must switch dropout off
    idx = prompts(cfg)
    steps = 2 * cfg.block_size + 3  # fills the window, then slides it
    cached = sample.generate(model, idx, steps, temperature=0, use_cache=True)
    recomputed = sample.generate(model, idx, steps, temperature=0, use_cache=False)
    assert cached.shape == (3, 5 + steps)
    assert torch.equal(cached, recomputed)
    assert model.training, "generate should restore the model's mode"


@pytest.mark.parametrize("name", CONFIGS)
def test_per_step_logits_with_cache_match_full_recompute(name):
    cfg = CONFIGS[name]
    model = make(cfg).eval()
    idx = prompts(cfg, batch=2, length=3)
    kv_cache = model.new_kv_cache(batch_size=2)
    for _ in range(cfg.block_size + 4):
        with torch.no_grad():
            cached = model.next_token_logits(idx, kv_cache)
            full, _ = model(idx[:, -cfg.block_size :])
        torch.testing.assert_close(cached, full[:, -1], rtol=1e-5, atol=1e-5)
        idx = torch.cat((idx, cached.argmax(-1, keepdim=True)), dim=1)


def test_cache_feeds_one_token_per_step_until_the_window_is_full():
    cfg = CONFIGS["4-heads-dropout"]
    model = make(cfg).eval()
    fed = []
    model.transformer.wte.register_forward_hook(lambda module, inputs, out: fed.append(inputs[0].size(1)))
    single_steps = cfg.block_size - 4  # after the prompt, steps whose input still fits the window
    sample.generate(model, prompts(cfg, length=4), 1 + single_steps + 2, temperature=0)
    assert fed == [4] + [1] * single_steps + [cfg.block_size] * 2
    fed.clear()
    sample.generate(model, prompts(cfg, length=4), 3, temperature=0, use_cache=False)
    assert fed == [4, 5, 6]


def test_prompt_fed_to_the_cache_in_pieces_gives_the_same_logits():
    """Several new tokens after cached ones need the shifted causal mask."""
    cfg = CONFIGS["tiny"]
    model = make(cfg).eval()
    idx = prompts(cfg, batch=2, length=11)
    kv_cache = model.new_kv_cache(batch_size=2)
    with torch.no_grad():
        model.next_token_logits(idx[:, :4], kv_cache)
        pieces = model.next_token_logits(idx, kv_cache)
        full, _ = model(idx)
    assert kv_cache.length == 11
    torch.testing.assert_close(pieces, full[:, -1], rtol=1e-5, atol=1e-5)


def test_cache_misuse_gets_a_clear_error():
    cfg = CONFIGS["tiny"]
    model = make(cfg).eval()
    kv_cache = model.new_kv_cache(batch_size=1)
    with torch.no_grad():
        model.next_token_logits(prompts(cfg, batch=1), kv_cache)
        with pytest.raises(ValueError, match="KV cache holds 5 positions of 1 sequences"):
            model.next_token_logits(prompts(cfg, batch=2, length=6), kv_cache)
        with pytest.raises(ValueError, match="KV cache holds 5 positions"):
            model.next_token_logits(prompts(cfg, batch=1, length=5), kv_cache)


# --- temperature, top-k, top-p ---------------------------------------------------------------------


def test_top_k_filter_keeps_exactly_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0, 2.5], [5.0, 4.0, 3.0, 2.0, 1.0]])
    kept = top_k_filter(logits, 2)
    assert torch.equal(torch.isfinite(kept), torch.tensor([[0, 1, 0, 0, 1], [1, 1, 0, 0, 0]], dtype=torch.bool))
    assert torch.equal(kept[torch.isfinite(kept)], logits[torch.isfinite(kept)])
    assert torch.equal(top_k_filter(logits, 99), logits)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_keeps_the_smallest_set_reaching_p_and_renormalises(p):
    torch.manual_seed(0)
    probs = F.softmax(3 * torch.randn(8, 100), dim=-1)
    filtered = top_p_filter(probs, p)
    torch.testing.assert_close(filtered.sum(-1), torch.ones(8))
    for row, out in zip(probs, filtered):
        kept = out > 0
        assert row[kept].min() >= row[~kept].max(), "the kept tokens are the most likely ones"
        mass = row[kept].sum()
        assert mass >= p - 1e-6, "the kept set reaches p"
        assert mass - row[kept].min() < p, "dropping any kept token falls short of p: the set is minimal"
        torch.testing.assert_close(out[kept], row[kept] / mass)


def test_top_p_worked_example():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1]])
    torch.testing.assert_close(top_p_filter(probs, 0.8), torch.tensor([[0.0, 0.625, 0.375, 0.0]]))
    torch.testing.assert_close(top_p_filter(probs, 0.4), torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    assert torch.equal(top_p_filter(probs, 1.0), probs)


def test_temperature_sharpens_and_flattens_and_zero_is_greedy():
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    cold, warm = logits_to_probs(logits, 0.5), logits_to_probs(logits, 2.0)
    torch.testing.assert_close(cold, F.softmax(logits * 2, dim=-1))
    assert cold.max() > F.softmax(logits, dim=-1).max() > warm.max()
    assert torch.equal(logits_to_probs(logits, 0.0), torch.tensor([[0.0, 1.0, 0.0]]))


def test_top_k_1_equals_greedy():
    cfg = CONFIGS["tiny"]
    model = make(cfg)
    idx = prompts(cfg)
    sampled = sample.generate(model, idx, 20, temperature=1.3, top_k=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sampled, sample.generate(model, idx, 20, temperature=0))


def test_top_p_1_and_no_top_k_equal_plain_temperature_sampling():
    cfg = CONFIGS["4-heads-dropout"]
    model = make(cfg).eval()
    idx = prompts(cfg)
    out = sample.generate(model, idx, 20, temperature=0.7, top_p=1.0, generator=torch.Generator().manual_seed(5))
    reference, generator = idx, torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _ in range(20):
            logits, _ = model(reference[:, -cfg.block_size :])
            probs = F.softmax(logits[:, -1] / 0.7, dim=-1)
            reference = torch.cat((reference, torch.multinomial(probs, 1, generator=generator)), dim=1)
    assert torch.equal(out, reference)


def test_same_generator_seed_reproduces_a_sample_and_another_seed_does_not():
    cfg = CONFIGS["tiny"]
    model = make(cfg)
    idx = prompts(cfg)

    def draw(seed):
        return sample.generate(model, idx, 30, top_k=50, top_p=0.9, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))


def test_next_token_distribution_is_the_samplers_distribution():
    cfg = CONFIGS["tiny"]
    model = make(cfg).eval()
    idx = prompts(cfg, batch=2, length=cfg.block_size + 6)  # longer than the window: only its end counts
    with torch.no_grad():
        logits = model(idx[:, -cfg.block_size :])[0][:, -1]
    probs = next_token_distribution(model, idx, temperature=0.8, top_k=10, top_p=0.9)
    torch.testing.assert_close(probs, logits_to_probs(logits, 0.8, 10, 0.9))
    assert probs.shape == (2, cfg.vocab_size) and ((probs > 0).sum(-1) <= 10).all()
    assert torch.equal(next_token_distribution(model, idx, temperature=0).argmax(-1), logits.argmax(-1))


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature=-0.1), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_k=2.5), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
        (dict(stop_token=256), "stop_token 256"),
    ],
)
def test_bad_sampling_arguments_are_named(kwargs, message):
    model = make(CONFIGS["tiny"])
    args = dict(max_new_tokens=3) | kwargs
    with pytest.raises(ValueError, match=message):
        sample.generate(model, prompts(CONFIGS["tiny"]), **args)
    with pytest.raises(ValueError, match=message):
        sample.stream(model, prompts(CONFIGS["tiny"]), **args)  # checked at the call, before iterating


@pytest.mark.parametrize("bad_id", [256, -3])
def test_prompt_ids_outside_the_vocabulary_are_named(bad_id):
    cfg = CONFIGS["tiny"]
    idx = torch.tensor([[1, 2, 3], [4, bad_id, 5]])
    with pytest.raises(ValueError, match=rf"token id {bad_id} is outside the vocabulary \[0, 256\)"):
        sample.generate(make(cfg), idx, 3)
    with pytest.raises(ValueError, match=rf"token id {bad_id}"):
        next_token_distribution(make(cfg), idx)


def test_prompt_must_be_a_batch_of_integer_ids():
    model = make(CONFIGS["tiny"])
    for bad in (torch.tensor([1, 2, 3]), torch.zeros(1, 3), [[1, 2, 3]]):
        with pytest.raises(ValueError, match=r"\(batch, time\) tensor of integer token ids"):
            sample.generate(model, bad, 2)


def test_empty_prompt_starts_from_the_stop_token():
    cfg = CONFIGS["tiny"]
    model = make(cfg)
    empty = torch.zeros(2, 0, dtype=torch.long)
    out = sample.generate(model, empty, 4, temperature=0, stop_token=255)
    assert out.shape[0] == 2 and torch.equal(out[:, 0], torch.tensor([255, 255]))
    assert torch.equal(out, sample.generate(model, torch.full((2, 1), 255), 4, temperature=0, stop_token=255))
    with pytest.raises(ValueError, match="prompt is empty"):
        sample.generate(model, empty, 4)


# --- stop tokens, streaming and text: a scripted model makes the expected output exact --------------


class ScriptedLM(torch.nn.Module):
    """Stands in for a GPT: after a sequence of length t it predicts ``script[row, t]`` for sure.
    It records what it was fed, to check what the sampler gives the model."""

    def __init__(self, script: list[list[int]], vocab_size: int) -> None:
        super().__init__()
        self.config = types.SimpleNamespace(vocab_size=vocab_size, block_size=1024)
        self.script = torch.tensor(script)
        self.seen: list[torch.Tensor] = []
        self.lm_head = torch.nn.Linear(1, 1)  # where the sampler looks for the model's device

    def new_kv_cache(self, batch_size: int) -> None:
        return None

    def next_token_logits(self, idx: torch.Tensor, kv_cache: None = None) -> torch.Tensor:
        self.seen.append(idx.clone())
        return F.one_hot(self.script[:, idx.size(1)], self.config.vocab_size).float() * 30


STOP = 9


def test_finished_sequences_are_padded_with_the_stop_token_and_generation_ends_when_all_stop():
    script = [[0, 0, 1, STOP, 2, 3, 4, 5], [0, 0, 1, 2, 3, STOP, 6, 7]]
    model = ScriptedLM(script, vocab_size=10)
    out = sample.generate(model, torch.zeros(2, 2, dtype=torch.long), 6, temperature=0, stop_token=STOP)
    assert out.tolist() == [[0, 0, 1, STOP, STOP, STOP], [0, 0, 1, 2, 3, STOP]]
    no_stop = sample.generate(model, torch.zeros(2, 2, dtype=torch.long), 6, temperature=0)
    assert no_stop.tolist() == [row[:8] for row in script]


def test_stream_yields_each_step_as_generate_would():
    cfg = CONFIGS["tiny"]
    model = make(cfg)
    idx = prompts(cfg)
    steps = list(sample.stream(model, idx, 7, top_k=20, generator=torch.Generator().manual_seed(4)))
    assert len(steps) == 7 and all(step.shape == (3,) for step in steps)
    full = sample.generate(model, idx, 7, top_k=20, generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch.stack(steps, dim=1), full[:, 5:])


TEXT = "Tom saw a café 🙂 and said “日本”!"


def test_decode_stream_never_splits_a_character():
    encoding = gpt2_encoding()
    tokens = encoding.encode(TEXT)
    broken = [t for t in tokens if not _is_utf8(encoding.decode_single_token_bytes(t))]
    assert broken, "the example should contain characters spread over several tokens"
    pieces = list(decode_stream(encoding, tokens))
    assert "".join(pieces) == TEXT
    assert not any("\ufffd" in piece for piece in pieces)
    assert list(decode_stream(encoding, tokens[:-3] + broken[:1]))[-1].endswith("\ufffd"), (
        "a character cut short at the very end is flushed as a replacement character, not lost"
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_text_helpers_stream_the_continuation_and_stop_at_endoftext():
    encoding = gpt2_encoding()
    prompt, story = "Once upon a time", TEXT
    prompt_ids, story_ids = encoding.encode(prompt), encoding.encode(story)
    script = prompt_ids + story_ids + [encoding.eot_token, *encoding.encode(" never shown")]
    model = ScriptedLM([script], vocab_size=encoding.n_vocab)
    pieces = list(stream_text(model, encoding, prompt, max_new_tokens=100, temperature=0))
    assert "".join(pieces) == story and len(pieces) > 1
    assert generate_text(model, encoding, prompt, max_new_tokens=100, temperature=0) == prompt + story
    assert generate_text(model, encoding, prompt, max_new_tokens=2, temperature=0) == prompt + encoding.decode(
        story_ids[:2]
    )


def test_empty_text_prompt_starts_a_fresh_story():
    encoding = gpt2_encoding()
    story_ids = encoding.encode(" Lily")
    model = ScriptedLM([[0, *story_ids, encoding.eot_token]], vocab_size=encoding.n_vocab)
    assert generate_text(model, encoding, "", max_new_tokens=10, temperature=0) == " Lily"
    assert model.seen[0].tolist() == [[encoding.eot_token]]


def test_a_tokenizer_larger_than_the_models_vocabulary_is_named():
    model = make(CONFIGS["tiny"])  # 256 tokens: most GPT-2 ids don't exist for it
    with pytest.raises(ValueError, match=r"'gpt2' has 50257 tokens but the model only GPTConfig.vocab_size=256"):
        generate_text(model, gpt2_encoding(), "Once upon a time")


# --- the command line, on a checkpoint written by slm_course.train ---------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sample-cli")
    model_config = GPTConfig(vocab_size=50257, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0)
    train_config = TrainConfig(
        tokenizer="gpt2", data_source="synthetic", max_stories=40, batch_size=2, max_iters=2, warmup_iters=1,
        eval_interval=2, eval_iters=1, device="cpu", out_dir=str(tmp / "run"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLM_CACHE", str(tmp / "cache"))
        return train_model(model_config, train_config, verbose=False)


CLI_ARGS = ["--prompt", "Once upon a time", "--temperature", "0.8", "--top-k", "50", "--top-p", "0.95",
            "--max-new-tokens", "12", "--device", "cpu"]


def test_cli_streams_reproducible_samples_from_a_checkpoint(run_dir, capsys):
    from slm_course.checkpoint import load_run

    sample.main(["--checkpoint", str(run_dir), *CLI_ARGS, "--num-samples", "2", "--seed", "3"])
    out = capsys.readouterr().out
    model, encoding, _ = load_run(run_dir, device="cpu")
    generator = torch.Generator().manual_seed(3)
    expected = [generate_text(model, encoding, "Once upon a time", 12, 0.8, 50, 0.95, generator) for _ in range(2)]
    assert out == f"--- sample 1 ---\n{expected[0]}\n--- sample 2 ---\n{expected[1]}\n"
    assert expected[0] != expected[1]


@pytest.mark.slow
def test_cli_runs_as_a_module(run_dir):
    command = [sys.executable, "-m", "slm_course.sample", "--checkpoint", str(run_dir), *CLI_ARGS, "--seed", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Once upon a time") and len(result.stdout) > len("Once upon a time\n")


def test_cli_names_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sample.main(["--checkpoint", str(tmp_path / "nowhere"), "--device", "cpu"])
    assert exit_info.value.code == 2
    assert f"cannot load checkpoint '{tmp_path / 'nowhere'}'" in capsys.readouterr().err


def test_cli_names_a_checkpoint_that_does_not_fit_its_config(run_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    record = json.loads((broken / "config.json").read_text())
    record["model"]["n_embd"] = 32
    (broken / "config.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit):
        sample.main(["--checkpoint", str(broken), "--device", "cpu"])
    assert "does not fit the model" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--temperature", "-1"), ("--top-k", "0"), ("--top-p", "2")])
def test_cli_rejects_bad_sampling_options_before_loading(option, value, capsys):
    with pytest.raises(SystemExit):
        sample.main(["--checkpoint", "unused", option, value])
    assert option.lstrip("-").replace("-", "_") in capsys.readouterr().err


def test_n_vocab_keeps_the_draw_to_ids_the_tokenizer_has():
    """A vocabulary padded past the tokenizer (GPT-2's 50,257 tokens in 50,304 rows) has rows no
    token decodes from; a model that favours them must still never sample one."""
    cfg = CONFIGS["tiny"]
    model = make(cfg)
    with torch.no_grad():
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight[200:] = 5.0  # rows 200.. (the padding) now win every draw
    idx = prompts(cfg)
    assert int(sample.generate(model, idx, 5, temperature=1.0).max()) >= 200  # the test can fail
    for use_cache in (True, False):
        out = sample.generate(model, idx, 20, temperature=1.0, n_vocab=200, use_cache=use_cache,
                              generator=torch.Generator().manual_seed(0))
        assert int(out[:, idx.size(1):].max()) < 200
    with pytest.raises(ValueError, match=r"n_vocab must be an integer in \[1, GPTConfig.vocab_size=256\]"):
        sample.generate(model, idx, 2, n_vocab=257)
    with pytest.raises(ValueError, match=r"stop_token 220 is outside the vocabulary \[0, 200\)"):
        sample.generate(model, idx, 2, n_vocab=200, stop_token=220)
