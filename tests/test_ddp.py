"""DistributedDataParallel: two CPU processes (gloo) launched by torchrun train in lockstep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _train_data import make_tiny_dataset

from slm_course import checkpoint

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

WORKER = """
import os, sys
from pathlib import Path
import torch
sys.path.insert(0, {tests!r})
from _train_data import tiny_configs
from slm_course.model import GPT
from slm_course.trainer import train_model

torch.set_num_threads(1)
rank = int(os.environ["RANK"])
model_config, train_config = tiny_configs(
    (Path({data_dir!r}), Path({tokenizer!r})), Path({run_dir!r}), grad_accum_steps=4, max_iters=12, eval_interval=6
)
torch.manual_seed(100 + rank)  # different initial weights on each rank: DDP must start them all from rank 0's
model = GPT(model_config)
train_model(model_config, train_config, model=model, verbose=rank == 0)
torch.save(model.state_dict(), Path({run_dir!r}) / f"rank{{rank}}.pt")
"""


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_weights_and_learn(tmp_path):
    data_dir, tokenizer = make_tiny_dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(tests=str(TESTS), data_dir=str(data_dir), tokenizer=str(tokenizer),
                                    run_dir=str(run_dir)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "SLM_CACHE": str(tmp_path / "cache")}
    env.pop("SLM_DEVICE", None)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 process(es)" in result.stderr + result.stdout

    ranks = [torch.load(run_dir / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, ranks[1][name]), f"{name} differs between ranks"

    records = checkpoint.read_metrics(run_dir)
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == list(range(1, 13))  # written once, by rank 0 only
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 6, 12]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.3
    assert checkpoint.load_state(run_dir)["step"] == 12
    assert len(checkpoint.load_state(run_dir)["rng"]) == 2  # both ranks' random states, for resuming
