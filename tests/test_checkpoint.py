"""Checkpoints: round trip, atomic writes, recovery from a save killed at any point, safe loading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from slm_course import checkpoint, sample
from slm_course.fileio import atomic_write
from slm_course.config import GPTConfig
from slm_course.model import GPT
from slm_course.tokenizer import BPETokenizer

REPO = Path(__file__).resolve().parent.parent
CONFIG = GPTConfig(vocab_size=64, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0)


def model_at(step: int) -> GPT:
    """A model whose every weight equals ``step``, so a file's weights reveal which save wrote them."""
    model = GPT(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(step)
    return model


def state_at(step: int) -> dict:
    return {"step": step, "rng": [{"torch": torch.get_rng_state()}], "best_val_loss": 1.5}


def assert_consistent(run_dir: Path) -> int:
    """The committed weights and state belong to the same step; return it."""
    step = checkpoint.load_state(run_dir)["step"]
    model = GPT(CONFIG)
    assert checkpoint.load_weights(run_dir, model, step=step) == step
    assert all(torch.all(p == step) for p in model.parameters())
    return step


def test_round_trip_stores_tied_weights_once_and_loads_them_back(tmp_path):
    torch.manual_seed(0)
    model = GPT(CONFIG)
    state = state_at(3)
    checkpoint.save(tmp_path, model, state)
    stored = load_file(tmp_path / checkpoint.WEIGHTS)
    assert ("transformer.wte.weight" in stored) != ("lm_head.weight" in stored)  # one name for the tied matrix
    restored = GPT(CONFIG)
    assert checkpoint.load_weights(tmp_path, restored, step=3) == 3
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name
    assert restored.lm_head.weight is restored.transformer.wte.weight  # still tied after loading
    loaded = checkpoint.load_state(tmp_path)
    assert loaded["step"] == 3 and torch.equal(loaded["rng"][0]["torch"], state["rng"][0]["torch"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint.WEIGHTS, checkpoint.STATE]


def test_weights_of_another_step_or_shape_are_refused(tmp_path):
    checkpoint.save(tmp_path, model_at(2), state_at(2))
    with pytest.raises(ValueError, match="weights of step 2 but .*state.pt is at step 5"):
        checkpoint.load_weights(tmp_path, GPT(CONFIG), step=5)
    with pytest.raises(ValueError, match=r"shapes differ: transformer.wte.weight \(64, 16\) in the file, \(64, 32\) in the model"):
        checkpoint.load_weights(tmp_path, GPT(CONFIG.replace(n_embd=32)))


def test_a_failed_atomic_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "file.bin"
    atomic_write(path, b"old contents")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new contents that never land")
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_recover_discards_an_unfinished_save(tmp_path):
    checkpoint.save(tmp_path, model_at(1), state_at(1))
    # Killed while writing the new weights: a partial .next file.
    (tmp_path / (checkpoint.WEIGHTS + checkpoint.PENDING)).write_bytes(b"\x00" * 10)
    checkpoint.recover(tmp_path)
    assert assert_consistent(tmp_path) == 1 and len(list(tmp_path.iterdir())) == 2
    # Killed after writing both .next files, before the first rename.
    atomic_write(tmp_path / (checkpoint.WEIGHTS + checkpoint.PENDING), checkpoint.weights_bytes(model_at(2), 2))
    (tmp_path / (checkpoint.STATE + checkpoint.PENDING)).write_bytes(b"complete or not, it is discarded")
    checkpoint.recover(tmp_path)
    assert assert_consistent(tmp_path) == 1


def test_recover_completes_a_save_killed_between_its_two_renames(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, model_at(1), state_at(1))
    real_replace, calls = os.replace, []

    def die_on_state_rename(src, dst):
        calls.append(Path(dst).name)
        if Path(dst).name == checkpoint.STATE and Path(src).name.endswith(checkpoint.PENDING):
            raise KeyboardInterrupt  # stands in for a kill at this exact point
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_on_state_rename)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, model_at(2), state_at(2))
    monkeypatch.setattr(os, "replace", real_replace)
    assert checkpoint.STATE in calls
    with pytest.raises(ValueError, match="step"):  # the committed pair is torn until recover() runs
        assert_consistent(tmp_path)
    checkpoint.recover(tmp_path)
    assert assert_consistent(tmp_path) == 2


SAVER = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_checkpoint import model_at, state_at
from slm_course import checkpoint
from pathlib import Path
run_dir = Path({run_dir!r})
step = 0
while True:
    step += 1
    checkpoint.save(run_dir, model_at(step), state_at(step))
    print(step, flush=True)
"""


@pytest.mark.slow
def test_a_process_killed_mid_save_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL (no cleanup code runs) at several moments of a save loop; every time, recover() and
    load give a weights/state pair of one and the same step."""
    script = tmp_path / "saver.py"
    script.write_text(SAVER.format(tests=str(Path(__file__).parent), run_dir=str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for delay in (0.0, 0.021):
        process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
        first = process.stdout.readline()  # at least one save committed
        assert first.strip(), "the saver died before saving"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        checkpoint.recover(tmp_path)
        assert assert_consistent(tmp_path) >= 1


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["EXPLOIT_MARKER"]),))


def test_loading_state_never_unpickles_arbitrary_objects(tmp_path, monkeypatch):
    marker = tmp_path / "code-was-run"
    monkeypatch.setenv("EXPLOIT_MARKER", str(marker))
    torch.save({"step": 1, "payload": _Exploit()}, tmp_path / checkpoint.STATE)
    with pytest.raises(ValueError, match=r"state\.pt is damaged \(Weights only load failed"):
        checkpoint.load_state(tmp_path)
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="state.pt"):
        checkpoint.load_state(tmp_path / "elsewhere")


def test_metrics_skip_a_torn_line_and_truncate_to_a_step(tmp_path):
    for step in (1, 2, 3):
        checkpoint.append_metrics(tmp_path, {"kind": "train", "step": step})
    with open(tmp_path / checkpoint.METRICS, "a") as f:
        f.write('{"kind": "tr')
    assert [r["step"] for r in checkpoint.read_metrics(tmp_path)] == [1, 2, 3]
    checkpoint.truncate_metrics(tmp_path, 2)
    assert [r["step"] for r in checkpoint.read_metrics(tmp_path)] == [1, 2]
    assert checkpoint.read_metrics(tmp_path / "none") == []


def make_run(run_dir: Path) -> Path:
    """A run directory as training writes it: config.json, a byte-level tokenizer, one checkpoint."""
    model_config = CONFIG.replace(vocab_size=260)
    run_dir.mkdir()
    BPETokenizer({}).save(run_dir / "tokenizer.bpe")  # 256 bytes + <|endoftext|>
    (run_dir / checkpoint.CONFIG).write_text(json.dumps({
        "format": 1, "model": model_config.to_dict(), "train": {"max_iters": 3},
        "tokenizer": {"spec": "bpe-257", "file": "tokenizer.bpe"}, "data": {}}))
    checkpoint.save(run_dir, GPT(model_config), state_at(3))
    return run_dir


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_damaged_weights_are_an_error_naming_the_file_and_what_to_do(tmp_path, damage, capsys):
    run_dir = make_run(tmp_path / "run")
    weights = run_dir / checkpoint.WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\xff" * 8 + data[8:])
    with pytest.raises(ValueError, match=r"model\.safetensors is damaged .*retrain"):
        checkpoint.load_run(run_dir, device="cpu")
    with pytest.raises(SystemExit) as exit_info:  # the sampling CLI reports it, without a traceback
        sample.main(["--checkpoint", str(run_dir), "--device", "cpu"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and str(weights) in err and "retrain" in err and "Traceback" not in err


@pytest.mark.parametrize("keep", [0, 100, -10])
def test_damaged_state_is_an_error_naming_the_file_and_weights_still_load(tmp_path, keep):
    run_dir = make_run(tmp_path / "run")
    state = run_dir / checkpoint.STATE
    state.write_bytes(state.read_bytes()[:keep])
    with pytest.raises(ValueError, match=r"state\.pt is damaged .*cannot resume"):
        checkpoint.load_state(run_dir)
    with pytest.raises(ValueError, match=r"state\.pt is damaged"):
        checkpoint.is_complete(run_dir)
    model, encoding, record = checkpoint.load_run(run_dir, device="cpu")  # sampling needs only the weights
    assert record["step"] == 3 and encoding.n_vocab == 257


def test_a_damaged_run_config_is_named(tmp_path):
    run_dir = make_run(tmp_path / "run")
    (run_dir / checkpoint.CONFIG).write_text('{"model": ')
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON .*run config is damaged"):
        checkpoint.read_run_config(run_dir)
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        checkpoint.read_run_config(tmp_path)
