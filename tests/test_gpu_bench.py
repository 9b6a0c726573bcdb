"""bench/gpu.py works before GPU time is spent on it: its dry run runs every stage on the CPU with
the packages the GPU machine lacks made unimportable, and its pieces behave as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import gpu
from slm_course.runtime import shared_data_dir

REPO = Path(__file__).resolve().parent.parent
STAGES = ("environment", "timing", "training", "samples", "files")
# On the GPU machine: not installed (datasets, ipywidgets, nbval, IPython) or not to be needed at
# import time (huggingface_hub is there, but only the hub path of slm_course.data may use it).
HIDDEN = ("datasets", "ipywidgets", "nbval", "IPython", "huggingface_hub")
RUNNER = """
import importlib.abc, runpy, sys
hidden = set({hidden!r})
assert not hidden & set(sys.modules), "imported before the blocker: " + str(hidden & set(sys.modules))
class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden: the GPU machine lacks it)", name=name)
        return None
sys.meta_path.insert(0, Hidden())
sys.argv = [{script!r}, *{args!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


@pytest.mark.slow
def test_dry_run_runs_every_stage_without_the_packages_the_gpu_machine_lacks(tmp_path):
    data = shared_data_dir()
    source = str(data / "TinyStories-train.subset.txt") if data else "synthetic"
    out = tmp_path / "out"
    args = ["--dry-run", "--data", source, "--out", str(out), "--budget-s", "3000"]  # no variant skipped for time
    code = RUNNER.format(hidden=HIDDEN, script=str(REPO / "bench" / "gpu.py"), args=args)
    env = {k: v for k, v in os.environ.items() if k not in ("SLM_TINYSTORIES", "SLM_DEVICE", "SLM_PROFILE")}
    env.update(PYTHONPATH=str(REPO), SLM_CACHE=str(tmp_path / "cache"), TQDM_DISABLE="1")
    doc = REPO / "docs" / "benchmarks.md"
    doc_before = doc.read_bytes() if doc.exists() else None
    gpu_docs_before = sorted((REPO / "docs" / "gpu").glob("*"))

    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    for stage in STAGES:
        assert f"== {stage} done" in run.stdout, f"stage {stage} printed no result:\n{log[-4000:]}"
    assert "FAILED" not in run.stdout and "all stages done" in run.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["dry_run"] is True and results["failures"] == {}
    rows = results["timing"]
    assert {(r["precision"], r["mode"].split()[0]) for r in rows} == {
        (p, m) for p in ("fp32", "TF32", "bf16 autocast", "fp16 + GradScaler") for m in ("eager", "compiled")}
    assert all("error" not in r and r["tokens_per_s"] > 0 and r["update_ms"] > 0 for r in rows)
    large = [r for r in rows if r["micro_batch"] > rows[0]["micro_batch"]]
    assert len(rows) == 9 and [(r["precision"], r["mode"]) for r in large] == [("bf16 autocast", "eager")]
    assert len({r["tokens_per_update"] for r in rows}) == 1, "every variant must time the same update"
    training = results["training"]
    assert training["reached"] and training["step_at_target"] > 0 and training["tokens_per_s"] > 0
    assert training["dtype"] == "float32" and training["compiled"] is False
    assert [s["prompt"] for s in results["samples"]] == list(gpu.PROMPTS)
    assert all(s["text"].startswith(s["prompt"]) and len(s["text"]) > len(s["prompt"]) for s in results["samples"])

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in records} == {"train", "eval"} and all("wall_seconds" in r for r in records)
    assert (out / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "samples.txt").read_text().count("--- prompt") == 3
    section = (out / "benchmarks-section.md").read_text()
    assert "| fp16 + GradScaler | compiled" in section and "Training the `seed` preset" in section
    # A rehearsal never writes the docs.
    assert (doc.read_bytes() if doc.exists() else None) == doc_before
    assert sorted((REPO / "docs" / "gpu").glob("*")) == gpu_docs_before


@pytest.mark.parametrize("name, peak, dtype", [
    ("NVIDIA H100 80GB HBM3", 989.0, "bf16"),
    ("NVIDIA H100 PCIe", 756.0, "bf16"),
    ("NVIDIA H200", 989.0, "bf16"),
    ("NVIDIA A100-SXM4-40GB", 312.0, "bf16"),
    ("NVIDIA A100 80GB PCIe", 312.0, "bf16"),
    ("NVIDIA L4", 121.0, "bf16"),
    ("Tesla T4", 65.0, "fp16"),
    ("Tesla V100-SXM2-16GB", 125.0, "fp16"),
])
def test_gpu_peaks_match_the_datasheet_table(name, peak, dtype):
    assert gpu.gpu_peak(name) == (peak, f"dense {dtype} peak (datasheet)")


@pytest.mark.parametrize("name", ["NVIDIA L40S", "NVIDIA H100 NVL", "NVIDIA H200 NVL", "NVIDIA GeForce RTX 4090"])
def test_gpus_not_in_the_table_say_so_instead_of_borrowing_a_neighbours_peak(name):
    peak, note = gpu.gpu_peak(name)
    assert peak is None and name in note and "--peak-tflops" in note


def test_the_stop_callback_stops_at_the_target_but_not_at_step_0_and_at_the_cap():
    stop = gpu.StopAtTarget(target=2.39, cap_s=3600)
    stop({"kind": "eval", "step": 0, "val_loss": 1.0})  # an untrained model's loss never counts
    stop({"kind": "eval", "step": 25, "val_loss": 2.5})
    with pytest.raises(KeyboardInterrupt):
        stop({"kind": "eval", "step": 50, "val_loss": 2.38})
    assert stop.reached["step"] == 50 and not stop.capped
    assert [r["step"] for r in stop.records] == [0, 25, 50] and all("wall_seconds" in r for r in stop.records)
    capped = gpu.StopAtTarget(target=2.39, cap_s=-1)
    with pytest.raises(KeyboardInterrupt):
        capped({"kind": "train", "step": 10, "loss": 5.0})
    assert capped.capped and capped.reached is None


def test_a_real_run_refuses_to_start_without_real_text(monkeypatch, tmp_path):
    monkeypatch.delenv("SLM_TINYSTORIES", raising=False)
    monkeypatch.setattr(gpu, "DEFAULT_DATA", tmp_path / ".gpu_data" / "TinyStories-train.subset.txt")
    with pytest.raises(SystemExit, match=r"\.gpu_data"):
        gpu.main([])
    with pytest.raises(SystemExit, match="real TinyStories"):
        gpu.main(["--data", "synthetic"])
    with pytest.raises(SystemExit, match="does not exist"):
        gpu.main(["--data", str(tmp_path / "missing.txt")])


@pytest.mark.skipif(gpu.torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_a_real_run_on_a_machine_without_cuda_points_at_the_dry_run(tmp_path):
    text = tmp_path / "TinyStories-train.txt"
    text.write_text("Once upon a time.\n<|endoftext|>\n")
    with pytest.raises(SystemExit, match="--dry-run"):
        gpu.main(["--data", str(text)])


def _timing_row(tokens_per_s: float) -> dict:
    return {"tokens_per_update": 256, "update_ms": 1.0, "tokens_per_s": tokens_per_s, "tflops": 1.0, "mfu": None,
            "peak_memory_gib": None, "first_update_s": 0.1}


def test_timing_runs_eager_first_then_bf16_compiled_records_failures_and_respects_its_time(monkeypatch):
    def fake_time_update(model_config, train_config, label, compiled, device, peak, updates, dry_run):
        if compiled and label == "fp32":
            raise RuntimeError("inductor: no working C compiler\n(a long traceback)")
        return _timing_row(1000.0 if compiled and label == "bf16 autocast" else 10.0)

    monkeypatch.setattr(gpu, "time_update", fake_time_update)
    model_config, train_config = gpu.run_configs(dry_run=True)
    rows, summary = gpu.timing(model_config, train_config, gpu.torch.device("cpu"), None, 1, True, seconds=60)
    modes = [(r["precision"], r["mode"].split()[0], r["micro_batch"]) for r in rows]
    eager = [(label, "eager", train_config.batch_size) for label in gpu.PRECISIONS]
    assert modes[:4] == eager and modes[4][:2] == ("bf16 autocast", "eager") and modes[4][2] > modes[0][2]
    assert modes[5][:2] == ("bf16 autocast", "compiled") and {m[1] for m in modes[5:]} == {"compiled"}
    failed = next(r for r in rows if "error" in r)
    assert (failed["precision"], failed["error"]) == ("fp32", "RuntimeError: inductor: no working C compiler")
    assert summary.startswith("8/9 variants timed; fastest bf16 autocast compiled")
    assert "failed: fp32 compiled" in summary

    rows, summary = gpu.timing(model_config, train_config, gpu.torch.device("cpu"), None, 1, True, seconds=0)
    assert all("skipped" in r for r in rows) and summary == "0/9 variants timed; 9 skipped (time)"
    assert "| skipped: the timing stage's 0 s were spent |" in gpu.section_body(
        {"environment": {"torch": "x", "auto_dtype_why": "x", "bf16_matmul_tflops": 1, "peak_tflops": None,
                         "peak_note": "no GPU"}, "timing": rows, "args": {"timing_updates": 1}, "failures": {}})
