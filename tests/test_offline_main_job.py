"""The README's main job on a machine with no network and no data, exactly as a learner types it.

`python -m slm_course.train --preset cpu-quick`, shortened to a few updates, then
`python -m slm_course.sample --checkpoint <its run>`, each in a fresh process with SLM_TINYSTORIES
unset and the hub switched off: both must work on the embedded synthetic corpus and say so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slm_course.corpus import SYNTHETIC_SOURCE

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # two fresh interpreters, a tokenizer and six updates: ~30-50 s on 2 cores
SHORTENED = ["--max_iters", "6", "--warmup_iters", "1", "--eval_interval", "3", "--eval_iters", "1"]


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SLM_TINYSTORIES"}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               SLM_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="default")
    return subprocess.run([sys.executable, "-m", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def main_job(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    tmp_path = tmp_path_factory.mktemp("offline")
    train = run(["slm_course.train", "--preset", "cpu-quick", *SHORTENED], tmp_path)
    assert train.returncode == 0, train.stdout + train.stderr
    # The command the training run prints as its last line is the one the learner runs next.
    printed = re.search(r"^sample: +python -m (slm_course\.sample --checkpoint \S+)$", train.stdout, re.M)
    assert printed, train.stdout
    sample = run([*printed.group(1).split(), "--max-new-tokens", "40"], tmp_path)
    return tmp_path / "runs" / "cpu-quick", train, sample


def test_training_says_once_that_it_is_on_the_embedded_corpus(main_job):
    run_dir, train, _ = main_job
    output = train.stdout + train.stderr
    assert output.count(SYNTHETIC_SOURCE) == 1, output
    assert "SLM_TINYSTORIES" in output  # ...and how to get the real data
    assert "capped" not in output  # the embedded corpus trains the preset's full 4,096-token BPE
    record = json.loads((run_dir / "config.json").read_text())
    assert record["data"]["source"] == SYNTHETIC_SOURCE and record["tokenizer"]["n_vocab"] == 4096


def test_sampling_its_checkpoint_prints_a_story(main_job):
    _, _, sample = main_job
    assert sample.returncode == 0, sample.stderr
    story = sample.stdout.strip()
    assert story.startswith("Once upon a time") and len(story.split()) > 8, story


def test_sampling_says_the_model_was_trained_on_the_embedded_corpus(main_job):
    _, _, sample = main_job
    assert SYNTHETIC_SOURCE in sample.stdout + sample.stderr
