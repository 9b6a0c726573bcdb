"""Training: schedule, validation, mixed precision, exact resume, divergence, Ctrl-C, CLI, plots."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _train_data import VOCAB, make_tiny_dataset, tiny_configs, tokenize_synthetic
from matplotlib.figure import Figure

from slm_course import checkpoint, sample, trainer
from slm_course.checkpoint import load_run
from slm_course.config import GPTConfig, TrainConfig
from slm_course.lessons import demo
from slm_course.lessons.viz import LiveLossPlot, plot_losses, plot_lr_schedule
from slm_course.model import GPT
from slm_course.optim import lr_at, make_optimizer, make_scheduler, optimizer_step, schedule_counts_skipped_updates
from slm_course.presets import PRESETS, preset
from slm_course.runtime import seed_everything
from slm_course.tokenizer import load_encoding, token_byte_lengths
from slm_course.train import build_parser, configs_from_args, main
from slm_course.trainer import RunMismatchError, TrainingDiverged, estimate_loss, plan_budget, train_model

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SLM_DEVICE", raising=False)


configs = tiny_configs


def records(run_dir, kind):
    return [r for r in checkpoint.read_metrics(run_dir) if r["kind"] == kind]


# --- configuration --------------------------------------------------------------------------------


def test_min_lr_above_lr_is_an_error_that_names_the_seeds_bug():
    with pytest.raises(ValueError, match=r"min_lr \(0.0005\) is larger than TrainConfig.lr \(0.0001\).*seed"):
        TrainConfig(lr=1e-4, min_lr=5e-4)


@pytest.mark.parametrize("changes, field", [
    ({"warmup_iters": 100, "max_iters": 100}, "warmup_iters"),
    ({"batch_size": 0}, "batch_size"),
    ({"dtype": "fp16"}, "dtype"),
    ({"betas": (0.9, 1.5)}, "betas"),
    ({"tokenizer": "bpe-100"}, "tokenizer"),
    ({"tokenizer": "bpe-4096", "data_dir": "somewhere"}, "tokenizer"),
])
def test_bad_train_config_names_the_field(changes, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**changes)


def test_presets_are_valid_and_the_seed_preset_keeps_the_seeds_budget():
    for name in PRESETS:
        model_config, train_config = preset(name)
        assert train_config.min_lr < train_config.lr
    model_config, seed = preset("seed")
    assert model_config == GPTConfig.seed() and seed.tokenizer == "gpt2"
    # The seed ran 20,000 micro-batches of 32 x 128 tokens, 32 per update.
    assert seed.max_iters * seed.grad_accum_steps * seed.batch_size == 20_000 * 32
    assert preset("cpu-quick")[0].vocab_size == 4096 == int(preset("cpu-quick")[1].tokenizer.split("-")[1])
    with pytest.raises(ValueError, match="did you mean 'cpu-quick'"):
        preset("cpu_quick")


def test_presets_hand_out_copies():
    preset("lesson")[1].lr = 1.0
    preset("lesson")[0].n_layer = 9
    assert preset("lesson")[1].lr == 3e-3 and preset("lesson")[0].n_layer == 2


# --- optimizer and schedule -----------------------------------------------------------------------


@pytest.mark.parametrize("warmup, max_iters", [(10, 100), (0, 37), (1, 2), (99, 100)])
def test_scheduler_gives_the_closed_form_lr_at_every_step(warmup, max_iters):
    config = TrainConfig(lr=3e-3, min_lr=2e-4, warmup_iters=warmup, max_iters=max_iters)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = make_scheduler(optimizer, config)
    for step in range(max_iters):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_at(step, config), rel=1e-9, abs=1e-15)
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(config.min_lr)  # after the last update
    if warmup:
        rising = [lr_at(step, config) for step in range(warmup + 1)]
        assert rising == sorted(set(rising)) and rising[-1] == pytest.approx(config.lr)


def test_training_steps_the_schedule_once_per_update_not_per_micro_batch(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", grad_accum_steps=3, max_iters=8)
    run_dir = train_model(model_config, train_config, verbose=False)
    logged = records(run_dir, "train")
    assert [r["step"] for r in logged] == list(range(1, 9))
    for record in logged:  # a record's lr is the one its last update used
        assert record["lr"] == pytest.approx(lr_at(record["step"] - 1, train_config), rel=1e-9)


def test_weight_decay_applies_to_2d_weights_only():
    model = GPT(GPTConfig.tiny())
    decayed, plain = make_optimizer(model, TrainConfig(weight_decay=0.1), torch.device("cpu")).param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_a_skipped_first_update_steps_the_schedule_silently_but_other_warnings_still_show():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = make_scheduler(optimizer, TrainConfig(warmup_iters=2, max_iters=10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with schedule_counts_skipped_updates():
            scheduler.step()  # as after a first update GradScaler skipped: optimizer.step never ran
            warnings.warn("another warning", UserWarning)
        scheduler.step()  # outside the block torch's warnings are back (here: no warning is due)
    assert [str(w.message) for w in caught] == ["another warning"]


# --- mixed precision ------------------------------------------------------------------------------


def test_fp16_grad_scaler_on_cpu_skips_an_inf_step_and_lowers_its_scale():
    """torch 2.13 supports fp16 autocast and GradScaler("cpu") on the CPU, so the fp16 path runs here."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny())
    optimizer = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu")
    x = torch.randint(0, 256, (2, 8))

    def backward():
        with torch.autocast("cpu", dtype=torch.float16):
            logits, loss = model(x, x)
        assert logits.dtype == torch.float16  # the fp16 path is really taken
        scaler.scale(loss).backward()

    backward()
    before = [p.detach().clone() for p in model.parameters()]
    scale = scaler.get_scale()
    model.lm_head.weight.grad[0, 0] = float("inf")
    assert optimizer_step(model, optimizer, scaler, grad_clip=1.0) is True
    assert scaler.get_scale() == scale / 2
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))  # the update was skipped
    backward()
    assert optimizer_step(model, optimizer, scaler, grad_clip=1.0) is False
    assert not all(torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_fp16_training_counts_a_skipped_step(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", dtype="float16", max_iters=6)
    torch.manual_seed(0)
    model = GPT(model_config)
    backwards = 0

    def poison_third_backward(grad):
        nonlocal backwards
        backwards += 1
        return grad * float("inf") if backwards == 3 else grad

    model.lm_head.weight.register_hook(poison_third_backward)
    run_dir = train_model(model_config, train_config, model=model, verbose=False)
    logged = records(run_dir, "train")
    assert [r["skipped_steps"] for r in logged] == [0, 0, 1, 1, 1, 1]
    assert logged[2]["loss_scale"] == logged[1]["loss_scale"] / 2
    assert checkpoint.load_state(run_dir)["skipped_steps"] == 1


# --- evaluation -----------------------------------------------------------------------------------


def test_estimate_loss_uses_the_same_batches_and_restores_train_mode(dataset):
    from slm_course.data import load_tokens

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.5)).train()
    splits = {split: load_tokens(dataset[0] / f"{split}.bin") for split in ("train", "validation")}
    token_bytes = token_byte_lengths(load_encoding(str(dataset[1])))
    first = estimate_loss(model, splits, batch_size=4, eval_iters=3, token_bytes=token_bytes, seed=5)
    assert model.training
    # fixed batches, no dropout
    assert first == estimate_loss(model, splits, batch_size=4, eval_iters=3, token_bytes=token_bytes, seed=5)
    assert first != estimate_loss(model, splits, batch_size=4, eval_iters=3, token_bytes=token_bytes, seed=6)
    assert set(first) == {"train", "validation"} and all(
        math.isfinite(v.nats_per_token) and math.isfinite(v.bits_per_byte) for v in first.values())


class FixedDistribution(torch.nn.Module):
    """A stand-in model that predicts the same known distribution at every position."""

    def __init__(self, probabilities):
        super().__init__()
        self.config = GPTConfig(vocab_size=len(probabilities), block_size=4, n_layer=1, n_head=1, n_embd=4)
        self.log_p = torch.nn.Parameter(torch.tensor(probabilities).log())

    def forward(self, idx, targets):
        logits = self.log_p.expand(*idx.shape, -1)
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def test_bits_per_byte_divides_the_text_tokens_nats_by_their_bytes_and_ln2():
    # Tokens 0, 1, 2 stand for 2, 1 and 4 bytes of text; token 3 is <|endoftext|>, no text at all.
    token_bytes = np.array([2, 1, 4, 0])
    model = FixedDistribution([0.5, 0.25, 0.125, 0.125])  # -ln p = (1, 2, 3, 3) x ln 2 nats
    data = np.tile(np.arange(4, dtype=np.uint16), 50)  # any 4 consecutive targets hold each token once
    loss = estimate_loss(model, {"validation": data}, batch_size=3, eval_iters=2, token_bytes=token_bytes)["validation"]
    # Per window: (1 + 2 + 3 + 3) ln 2 nats over 4 tokens; the text's (1 + 2 + 3) ln 2 nats over 2 + 1 + 4 bytes.
    assert loss.nats_per_token == pytest.approx(9 / 4 * math.log(2))
    assert loss.bits_per_byte == pytest.approx(6 / 7)


def test_evaluations_record_and_print_bits_per_byte(dataset, tmp_path, capsys):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    run_dir = train_model(model_config, train_config, verbose=True)
    evals = records(run_dir, "eval")
    assert [r["step"] for r in evals] == [0, 4]
    for record in evals:
        assert 0 < record["val_bpb"] < record["val_loss"] / math.log(2)  # more than 1 byte per token
        assert math.isfinite(record["train_bpb"])
    out = capsys.readouterr().out
    assert f"val loss {evals[-1]['val_loss']:.4f} ({evals[-1]['val_bpb']:.3f} bits/byte)" in out
    best = min(evals, key=lambda r: r["val_loss"])
    assert f"best validation loss {best['val_loss']:.4f} ({best['val_bpb']:.3f} bits/byte)" in out
    assert checkpoint.load_state(run_dir)["best_val_bpb"] == best["val_bpb"]


def test_data_from_another_tokenizer_is_caught_before_any_batch(dataset, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(dataset[0], data_dir)
    tokens = np.memmap(data_dir / "train.bin", dtype=np.uint16, mode="r+")
    tokens[:] = 1000  # ids a 300-token vocabulary cannot have made
    tokens.flush()
    model_config, train_config = configs(dataset, tmp_path / "run", data_dir=str(data_dir), vocab_size=2000)
    with pytest.raises(ValueError, match=rf"token id 1000 is outside the vocabulary \[0, {VOCAB}\) in .*train\.bin; .*another tokenizer"):
        train_model(model_config, train_config, verbose=False)


# --- resume, divergence, interruption -------------------------------------------------------------


def stop_at(step):
    def callback(record):
        if record["kind"] == "train" and record["step"] == step:
            raise KeyboardInterrupt

    return callback


def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(dataset, tmp_path):
    model_config, straight = configs(dataset, tmp_path / "straight", grad_accum_steps=2)
    train_model(model_config, straight, verbose=False)
    stopped = straight.replace(out_dir=str(tmp_path / "stopped"))
    with pytest.raises(KeyboardInterrupt):
        train_model(model_config, stopped, callback=stop_at(5), verbose=False)  # dropout is on: RNG matters
    assert checkpoint.load_state(stopped.out_dir)["step"] == 5
    train_model(model_config, stopped, resume=True, verbose=False)

    def without_timings(run_dir):
        return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "train_seconds")}
                for r in checkpoint.read_metrics(run_dir)]

    assert without_timings(stopped.out_dir) == without_timings(straight.out_dir)  # every loss, bit for bit
    a, _, _ = load_run(straight.out_dir, device="cpu")
    b, _, _ = load_run(stopped.out_dir, device="cpu")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_drops_metrics_logged_after_the_last_checkpoint(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=6)
    run_dir = train_model(model_config, train_config, verbose=False)
    checkpoint.append_metrics(run_dir, {"kind": "train", "step": 99, "loss": 1.0})  # as if killed later
    with open(run_dir / checkpoint.METRICS, "a") as f:
        f.write('{"kind": "tra')  # a torn last line
    train_model(model_config, train_config, resume=True, verbose=False)  # already complete: nothing to do
    assert max(r["step"] for r in checkpoint.read_metrics(run_dir)) == 6


def test_resuming_with_a_different_config_lists_the_differing_fields(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    train_model(model_config, train_config, verbose=False)
    with pytest.raises(RunMismatchError) as error:
        train_model(model_config.replace(n_embd=64), train_config.replace(lr=5e-3, eval_iters=9), resume=True,
              verbose=False)
    message = str(error.value)
    assert "model.n_embd: checkpoint has 32, config asks for 64" in message
    assert "train.lr: checkpoint has 0.01, config asks for 0.005" in message
    assert "eval_iters" not in message  # evaluation settings may change on resume


def test_a_second_run_into_the_same_directory_needs_resume(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    train_model(model_config, train_config, verbose=False)
    with pytest.raises(FileExistsError, match="resume"):
        train_model(model_config, train_config, verbose=False)


class NaNAfter(GPT):
    """A GPT whose training loss turns NaN after ``good_calls`` forward passes."""

    def __init__(self, config, good_calls):
        super().__init__(config)
        self.good_calls = good_calls

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        if self.training and targets is not None:
            self.good_calls -= 1
            if self.good_calls < 0:
                loss = loss * float("nan")
        return logits, loss


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run")
    torch.manual_seed(0)
    with pytest.raises(TrainingDiverged, match="step 6.*last good checkpoint"):
        train_model(model_config, train_config, model=NaNAfter(model_config, good_calls=5), verbose=False)
    run_dir = Path(train_config.out_dir)
    assert checkpoint.load_state(run_dir)["step"] == 4  # the evaluation before the NaN
    model, _, info = load_run(run_dir, device="cpu")
    assert info["step"] == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_then_exits(dataset, tmp_path):
    data_dir, tokenizer = dataset
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "slm_course.train", "--preset", "lesson", "--tokenizer", str(tokenizer),
               "--data_dir", str(data_dir), "--vocab_size", str(VOCAB), "--block_size", "16", "--n_layer", "1",
               "--n_embd", "32", "--max_iters", "100000", "--log_interval", "1", "--out_dir", str(run_dir),
               "--device", "cpu", "--max_stories", "none"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not records(run_dir, "train") if (run_dir / checkpoint.METRICS).exists() else True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training never logged a step"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "--resume" in err and str(run_dir) in err
    step = checkpoint.load_state(run_dir)["step"]
    assert step >= 1 and max(r["step"] for r in checkpoint.read_metrics(run_dir)) == step


# --- tokenizer and data plumbing ------------------------------------------------------------------


def test_a_bpe_spec_trains_once_caches_and_travels_with_the_run(tmp_path):
    model_config = GPTConfig(vocab_size=300, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0)
    train_config = TrainConfig(tokenizer="bpe-300", data_source="synthetic", max_stories=80, batch_size=4,
                               max_iters=2, warmup_iters=1, eval_interval=2, eval_iters=1, device="cpu",
                               out_dir=str(tmp_path / "a"))
    run_dir = train_model(model_config, train_config, verbose=False)
    cached = list((tmp_path / "cache" / "tokenizers").glob("bpe-300-*.bpe"))
    assert len(cached) == 1 and (run_dir / "tokenizer.bpe").read_bytes() == cached[0].read_bytes()
    mtime = cached[0].stat().st_mtime_ns
    train_model(model_config, train_config.replace(out_dir=str(tmp_path / "b")), verbose=False)
    assert cached[0].stat().st_mtime_ns == mtime  # reused, not retrained
    record = json.loads((run_dir / "config.json").read_text())
    assert {k: record["tokenizer"][k] for k in ("spec", "n_vocab", "file")} == {
        "spec": "bpe-300", "n_vocab": 300, "file": "tokenizer.bpe"}
    assert "synthetic" in record["data"]["source"] and record["data"]["stories"]["train"] == 80


def test_a_vocabulary_smaller_than_the_tokenizer_is_an_error(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", vocab_size=100)
    with pytest.raises(ValueError, match=f"vocab_size \\(100\\) is smaller than the tokenizer's {VOCAB}"):
        train_model(model_config, train_config, verbose=False)


def test_missing_data_files_are_named(tmp_path, dataset):
    model_config, train_config = configs(dataset, tmp_path / "run", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="train.bin"):
        train_model(model_config, train_config, verbose=False)


def test_a_run_written_before_the_split_loads_and_resumes(tmp_path, monkeypatch):
    """tests/fixtures/old-run was written by the old train.train (see tests/fixtures/README.md)."""
    shutil.copytree(FIXTURES / "old-run", tmp_path / "old-run")
    monkeypatch.chdir(tmp_path)  # its config names the tokenizer and the data by relative paths
    model, encoding, record = load_run("old-run", device="cpu")
    assert record["step"] == 2 and encoding.n_vocab == 260 and model.config.n_embd == 8
    tokenize_synthetic(encoding, "data", {"train": 60, "validation": 20})
    before = checkpoint.read_metrics("old-run")
    run_dir = train_model(GPTConfig.from_dict(record["model"]), TrainConfig(**record["train"]), resume=True,
                          verbose=False)
    after = checkpoint.read_metrics(run_dir)
    assert after[: len(before)] == before and [r["step"] for r in after[len(before):]] == [3, 4, 4]
    assert "val_bpb" not in before[-1] and "val_bpb" in after[-1]
    assert checkpoint.is_complete(run_dir) and checkpoint.load_state(run_dir)["step"] == 4
    assert isinstance(plot_losses(run_dir), Figure)  # some evaluations without bits/byte, some with


# --- using a finished run -------------------------------------------------------------------------


def test_load_run_gives_an_eval_model_its_tokenizer_and_the_record(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    run_dir = train_model(model_config, train_config, verbose=False)
    model, encoding, info = load_run(run_dir, device="cpu")
    assert not model.training and model.config == model_config and info["step"] == 4
    assert encoding.n_vocab == VOCAB and info["train"]["lr"] == train_config.lr
    ids = encoding.encode("Once upon a time")
    out = sample.generate(model, torch.tensor([ids]), max_new_tokens=5)
    assert out.shape == (1, len(ids) + 5)


def test_load_run_errors_name_the_missing_file_or_bad_field(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_run(tmp_path / "nothing-here")
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    run_dir = train_model(model_config, train_config, verbose=False)
    record = json.loads((run_dir / "config.json").read_text())
    record["model"]["n_embd"] = 64
    (run_dir / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="different model config"):
        load_run(run_dir)
    (run_dir / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_run(run_dir)


def test_demo_run_trains_once_then_reuses_the_checkpoint(dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "lesson", configs(dataset, "unused", max_iters=4))
    first = demo.demo_run("quick")
    assert first == tmp_path / "cache" / "runs" / "demo-quick" and checkpoint.is_complete(first)

    def no_training(*args, **kwargs):
        raise AssertionError("demo_run retrained a complete run")

    with monkeypatch.context() as patch:
        patch.setattr(demo, "train_model", no_training)
        assert demo.demo_run("quick") == first
    # A preset changed since the cached run was made (e.g. by an update of the course): train again.
    monkeypatch.setitem(PRESETS, "lesson", configs(dataset, "unused", max_iters=4, lr=5e-3))
    assert demo.demo_run("quick") == first
    assert json.loads((first / "config.json").read_text())["train"]["lr"] == 5e-3 and checkpoint.is_complete(first)


def test_demo_run_retrains_when_the_data_source_changes(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(PRESETS, "lesson", configs(dataset, "unused", max_iters=4))
    monkeypatch.delenv("SLM_TINYSTORIES", raising=False)
    run = demo.demo_run("quick")
    assert "training the demo model" in capsys.readouterr().out
    assert demo.demo_run("quick") == run
    assert "reusing the finished demo model" in capsys.readouterr().out
    monkeypatch.setenv("SLM_TINYSTORIES", str(tmp_path / "other-stories.txt"))
    demo.demo_run("quick")
    assert "training the demo model" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["train"]["data_source"] == str(tmp_path / "other-stories.txt")


def test_demo_run_passes_the_callback_to_training(dataset, monkeypatch):
    monkeypatch.setitem(PRESETS, "lesson", configs(dataset, "unused", max_iters=4))
    records = []
    demo.demo_run("quick", retrain=True, callback=records.append)
    assert {r["kind"] for r in records} >= {"train", "eval"}


def test_stories_at_each_evaluation_come_from_the_trained_model_and_change_nothing(dataset, monkeypatch, capsys):
    """Lesson 06 samples from the model as it trains; the run must be the one it would be without."""
    monkeypatch.setitem(PRESETS, "lesson", configs(dataset, "unused", max_iters=8))  # dropout 0.1: RNG-sensitive
    plain = demo.demo_run("quick", retrain=True)
    plain_metrics = checkpoint.read_metrics(plain)
    model_config, train_config = PRESETS["lesson"]
    seed_everything(train_config.seed)  # as train_model does before it builds a model itself
    model = GPT(model_config)
    stories = demo.StoryAtEachEval(model, plain, max_new_tokens=6)
    run = demo.demo_run("quick", retrain=True, model=model, callback=stories)

    def losses(records):
        return [(r["kind"], r["step"], r.get("loss"), r.get("train_loss"), r.get("val_loss")) for r in records]

    assert losses(checkpoint.read_metrics(run)) == losses(plain_metrics)
    evals = [r for r in plain_metrics if r["kind"] == "eval"]
    assert [step for step, _ in stories.stories] == [r["step"] for r in evals] == [0, 4, 8]
    assert all(story.startswith("Once upon a time") for _, story in stories.stories)
    assert stories.stories[0][1] != stories.stories[-1][1], "a model that trained should write something else"
    trained, _, _ = load_run(run, device="cpu")
    assert torch.equal(trained.lm_head.weight, model.lm_head.weight.detach().cpu()), "it sampled the trained instance"
    assert "step    8 (" in capsys.readouterr().out


# --- wall-clock budget ----------------------------------------------------------------------------


def test_plan_budget_fits_the_updates_and_evaluations_into_what_is_left():
    # 582 s (3% kept back) - 60 s spent - 3 s for the last evaluation = 519 s at 0.2 + 3/250 s per update
    assert plan_budget(600, 60, 50, 0.2, 3.0, 250) == 50 + int(519 / 0.212)
    assert plan_budget(10, 20, 5, 0.1, 0.0, 10) == 6, "a spent budget still plans one more update"


def budgeted(dataset, out_dir, seconds=3.0):
    # a provisional max_iters of 10 that the budget replaces
    return configs(dataset, out_dir, time_budget=seconds, max_iters=10, warmup_iters=5, eval_interval=8,
                   log_interval=1, dropout=0.0)


@pytest.fixture
def plan_of_25(monkeypatch):
    """plan_budget as the trainer calls it, but answering 25 updates whatever the machine's speed."""
    calls = []

    def plan(*args):
        calls.append(args)
        return 25

    monkeypatch.setattr(trainer, "plan_budget", plan)
    return calls


def test_time_budget_fixes_max_iters_and_a_consistent_schedule(dataset, tmp_path, plan_of_25):
    model_config, train_config = budgeted(dataset, tmp_path / "run")
    run_dir = train_model(model_config, train_config, verbose=False)
    (budget, elapsed, step, update_seconds, eval_seconds, eval_interval), = plan_of_25
    assert (budget, step, eval_interval) == (3.0, 5, 8) and elapsed > 0 and update_seconds > 0 and eval_seconds > 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["budget"]["max_iters"] == saved["train"]["max_iters"] == 25 and saved["budget"]["planned_at_step"] == 5
    assert checkpoint.load_state(run_dir)["step"] == 25
    assert [r["max_iters"] for r in records(run_dir, "budget")] == [25]
    final = TrainConfig(**{**saved["train"], "betas": tuple(saved["train"]["betas"])})
    lrs = {r["step"]: r["lr"] for r in records(run_dir, "train")}
    assert sorted(lrs) == list(range(1, 26))
    for step, lr in lrs.items():  # every update's lr, before and after the plan, is lr_at's for max_iters=25
        assert lr == pytest.approx(lr_at(step - 1, final), rel=1e-9), step
    assert [r["step"] for r in records(run_dir, "eval")] == [0, 8, 16, 24, 25]


def test_a_time_budgeted_run_resumes_to_the_max_iters_it_planned(dataset, tmp_path, plan_of_25):
    model_config, train_config = budgeted(dataset, tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        train_model(model_config, train_config, callback=stop_at(9), verbose=False)
    train_model(model_config, train_config, resume=True, verbose=False)  # the same configs: max_iters=10
    assert len(plan_of_25) == 1, "a resumed run keeps its plan"
    assert checkpoint.load_state(train_config.out_dir)["step"] == 25
    assert [r["step"] for r in records(train_config.out_dir, "budget")] == [5]


def test_a_time_budgeted_run_ends_within_its_budget(dataset, tmp_path):
    model_config, train_config = budgeted(dataset, tmp_path / "run")
    # Checkpoints are not timed before the plan: BUDGET_MARGIN covers a real run's few (cpu-quick:
    # 9 of ~0.1 s in 600 s), not one every 8 updates of a model whose update takes 2 ms.
    train_config = train_config.replace(eval_interval=100_000)
    start = time.perf_counter()
    run_dir = train_model(model_config, train_config, verbose=False)
    wall = time.perf_counter() - start
    plan = json.loads((run_dir / "config.json").read_text())["budget"]
    assert checkpoint.load_state(run_dir)["step"] == plan["max_iters"] > 5
    # A loaded machine may spend the budget before the plan (then one more update is all it does),
    # and slow down after it: allow for both, but not for ignoring the budget.
    allowed = max(train_config.time_budget, plan["elapsed_seconds"] + 2 * plan["update_seconds"])
    assert wall < 1.5 * allowed + 1.0, f"a {train_config.time_budget} s budget took {wall:.1f} s ({plan})"


def test_cli_time_budget_takes_durations_and_none():
    parser = build_parser()
    assert configs_from_args(parser.parse_args(["--time_budget", "10m"]))[1].time_budget == 600.0
    assert configs_from_args(parser.parse_args(["--time_budget", "90"]))[1].time_budget == 90.0
    assert configs_from_args(parser.parse_args(["--time_budget", "none"]))[1].time_budget is None


# --- command line ---------------------------------------------------------------------------------


def test_cli_help_lists_presets_and_fields(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--preset", "--resume", "--lr", "--min_lr", "--n_layer", "--betas", "--compile", "cpu-quick"):
        assert option in out


@pytest.mark.parametrize("typo, suggestion", [("--lrr", "--lr"), ("--warmup_iter=5", "--warmup_iters"),
                                              ("--nlayer", "--n_layer")])
def test_cli_unknown_option_suggests_the_closest(capsys, typo, suggestion):
    with pytest.raises(SystemExit) as exit_info:
        main([typo, "3"] if "=" not in typo else [typo])
    assert exit_info.value.code == 2
    assert f"did you mean {suggestion}?" in capsys.readouterr().err


def test_cli_bad_value_is_a_clean_error(capsys):
    with pytest.raises(SystemExit):
        main(["--lr", "1e-4", "--min_lr", "5e-4"])
    assert "seed project's bug" in capsys.readouterr().err


def test_cli_trains_and_prints_where_everything_went(dataset, tmp_path, capsys):
    data_dir, tokenizer = dataset
    status = main(["--preset", "lesson", "--tokenizer", str(tokenizer), "--data_dir", str(data_dir),
                   "--max_stories", "none", "--vocab_size", str(VOCAB), "--block_size", "16", "--n_layer", "1",
                   "--n_embd", "32", "--max_iters", "3", "--warmup_iters", "1", "--eval_interval", "3",
                   "--eval_iters", "1", "--betas", "0.8", "0.9", "--device", "cpu", "--out_dir", str(tmp_path / "run")])
    assert status == 0
    out = capsys.readouterr().out
    assert f"checkpoint: {tmp_path / 'run' / 'model.safetensors'}" in out and "metrics.jsonl" in out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert saved["betas"] == [0.8, 0.9] and saved["max_stories"] is None and saved["lr"] == preset("lesson")[1].lr


def test_cli_error_during_the_run_exits_1_naming_it(dataset, tmp_path, capsys):
    _, tokenizer = dataset
    status = main(["--preset", "lesson", "--tokenizer", str(tokenizer), "--data_dir", str(tmp_path / "nowhere"),
                   "--vocab_size", str(VOCAB), "--device", "cpu", "--out_dir", str(tmp_path / "run")])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train.bin" in err


# --- plots ----------------------------------------------------------------------------------------


def test_plots_draw_the_logged_losses_and_the_schedule(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    live = LiveLossPlot()
    run_dir = train_model(model_config, train_config, callback=live, verbose=False)
    assert live.records == checkpoint.read_metrics(run_dir)
    fig = plot_losses(run_dir)
    assert isinstance(fig, Figure)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines["validation"].get_xdata()) == [0, 4]
    assert list(lines["training loss (batches)"].get_ydata()) == [r["loss"] for r in records(run_dir, "train")]
    fig = plot_lr_schedule(train_config, run_dir=run_dir)
    closed, torch_lr, logged = fig.axes[0].get_lines()[:3]
    assert list(torch_lr.get_ydata()) == pytest.approx(list(closed.get_ydata()))
    assert list(logged.get_ydata()) == pytest.approx([lr_at(s, train_config) for s in range(4)])
    assert isinstance(live.figure(), Figure)
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        plot_losses(tmp_path / "empty")


def test_the_loss_plot_shows_validation_bits_per_byte_on_a_second_axis(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", max_iters=4)
    run_dir = train_model(model_config, train_config, verbose=False)
    fig = plot_losses(run_dir)
    assert len(fig.axes) == 2 and "bits per byte" in fig.axes[1].get_ylabel()
    (line,) = fig.axes[1].get_lines()
    assert list(line.get_ydata()) == [r["val_bpb"] for r in records(run_dir, "eval")]
    legend = [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    assert "validation" in legend and any("bits/byte" in label for label in legend)


# --- GPU (skipped without CUDA) -------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)")
def test_cuda_run_uses_autocast_compile_and_resumes(dataset, tmp_path):
    model_config, train_config = configs(dataset, tmp_path / "run", device="cuda", compile=True, max_iters=8)
    with pytest.raises(KeyboardInterrupt):
        train_model(model_config, train_config, callback=stop_at(3), verbose=False)
    run_dir = train_model(model_config, train_config, resume=True, verbose=False)
    evals = records(run_dir, "eval")
    assert [r["step"] for r in evals] == [0, 4, 8] and evals[-1]["val_loss"] < evals[0]["val_loss"]
    model, _, _ = load_run(run_dir)
    assert next(model.parameters()).is_cuda
