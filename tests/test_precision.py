"""Precision choice (slm_course.runtime): native bf16 only, fp16 + GradScaler elsewhere, TF32 for
fp32 on Ampere+, and a CPU sentence that follows the CPU's features and a measured matmul rate.

GPUs are faked by monkeypatching torch.cuda, so every case runs on a CPU-only machine. The fake
``is_bf16_supported`` follows torch's own rule: native from compute capability 8.0, and with
``including_emulation=True`` (torch's default) also yes on older GPUs, where a bf16 tensor can be
made but its arithmetic is emulated. That default is the bug these tests pin down.
"""

from __future__ import annotations

import math
import time

import pytest
import torch

from slm_course import runtime
from slm_course.runtime import configure_matmul_precision, native_bf16, resolve_dtype

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
GPUS = {  # name as torch reports it, compute capability
    "T4": ("Tesla T4", (7, 5)),
    "V100": ("Tesla V100-SXM2-16GB", (7, 0)),
    "A100": ("NVIDIA A100-SXM4-40GB", (8, 0)),
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0)),
}
NATIVE_BF16 = {"T4": False, "V100": False, "A100": True, "H100": True}


@pytest.fixture
def fake_gpu(monkeypatch):
    """``fake_gpu("T4")`` makes torch.cuda describe that GPU; ``old_torch=True`` gives
    ``is_bf16_supported`` no ``including_emulation`` argument (torch before 2.4)."""

    def install(gpu: str, old_torch: bool = False) -> None:
        name, capability = GPUS[gpu]
        if old_torch:
            def is_bf16_supported() -> bool:
                return True  # emulation counts, and there is no way to ask otherwise
        else:
            def is_bf16_supported(including_emulation: bool = True) -> bool:
                return capability >= (8, 0) or including_emulation
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.version, "hip", None)

    return install


@pytest.fixture
def matmul_precision(monkeypatch) -> list[str]:
    """The precisions passed to torch.set_float32_matmul_precision, which is not really called
    (it is process-wide and would leak into other tests)."""
    calls: list[str] = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", calls.append)
    return calls


@pytest.fixture
def fake_cpu(monkeypatch):
    """``fake_cpu({"avx2"}, 0.02)``: a CPU with these /proc/cpuinfo flags whose bf16 matmuls run
    at that multiple of fp32's speed."""

    def install(flags: set[str], speedup: float, capability: str = "AVX2") -> None:
        monkeypatch.setattr(runtime, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": frozenset(flags))
        monkeypatch.setattr(runtime, "cpu_bf16_speedup", lambda: speedup)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)

    return install


# --- GPUs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("old_torch", [False, True], ids=["torch>=2.4", "torch<2.4"])
@pytest.mark.parametrize("gpu", list(GPUS))
def test_auto_is_bf16_only_on_native_bf16_gpus_and_fp16_with_a_scaler_elsewhere(fake_gpu, gpu, old_torch):
    fake_gpu(gpu, old_torch=old_torch)
    name, (major, minor) = GPUS[gpu]
    dtype, why = resolve_dtype("auto", CUDA)
    scaler_enabled = dtype == torch.float16  # the trainer's rule, stated in resolve_dtype's docstring
    assert native_bf16(CUDA) is NATIVE_BF16[gpu]
    if NATIVE_BF16[gpu]:
        assert dtype == torch.bfloat16 and not scaler_enabled
        assert why.startswith("bfloat16 autocast") and "no loss scaling" in why and "GradScaler" not in why
    else:
        assert dtype == torch.float16 and scaler_enabled
        assert why.startswith("float16 autocast + GradScaler") and "no native bf16" in why
    assert f"{name} (compute capability {major}.{minor})" in why


@pytest.mark.parametrize("gpu", list(GPUS))
def test_tf32_is_enabled_for_fp32_runs_on_ampere_and_newer_and_said(fake_gpu, matmul_precision, gpu):
    fake_gpu(gpu)
    sentence = configure_matmul_precision(CUDA, torch.float32)
    if NATIVE_BF16[gpu]:  # Ampere (8.0) brought bf16 and TF32 tensor cores together
        assert matmul_precision == ["high"]
        assert "TF32" in sentence and "set_float32_matmul_precision('high')" in sentence
    else:
        assert matmul_precision == []
        assert "full precision" in sentence and "8.0" in sentence and GPUS[gpu][0] in sentence


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_and_other_devices_leave_the_matmul_precision_alone(fake_gpu, matmul_precision, dtype):
    fake_gpu("H100")
    assert configure_matmul_precision(CUDA, dtype) == ""
    assert configure_matmul_precision(CPU, torch.float32) == ""
    assert configure_matmul_precision(torch.device("mps"), torch.float32) == ""
    assert matmul_precision == []


def test_amd_gpus_get_no_tf32_claim(fake_gpu, matmul_precision, monkeypatch):
    fake_gpu("A100")
    monkeypatch.setattr(torch.version, "hip", "6.2")
    assert configure_matmul_precision(CUDA, torch.float32) == "" and matmul_precision == []


def test_configured_bf16_on_an_emulating_gpu_says_it_is_slow(fake_gpu):
    fake_gpu("T4")
    dtype, why = resolve_dtype("bfloat16", CUDA)
    assert dtype == torch.bfloat16 and "emulates" in why and "float16 + GradScaler" in why
    fake_gpu("A100")
    assert resolve_dtype("bfloat16", CUDA) == (torch.bfloat16, "bfloat16 as configured")


def test_configured_dtypes_are_used_as_given(fake_gpu):
    fake_gpu("H100")
    assert resolve_dtype("float32", CUDA) == (torch.float32, "float32 as configured")
    dtype, why = resolve_dtype("float16", CUDA)
    assert dtype == torch.float16 and "GradScaler" in why


# --- CPU and MPS ----------------------------------------------------------------------------------


def test_cpu_with_amx_says_bf16_may_be_faster_and_keeps_fp32(fake_cpu):
    fake_cpu({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}, 3.0, capability="AVX512")
    dtype, why = resolve_dtype("auto", CPU)
    assert dtype == torch.float32 and native_bf16(CPU)
    assert "AMX-BF16 and AVX-512-BF16" in why and "3.0x faster than fp32" in why
    assert "dtype='bfloat16' may train faster" in why and "150" not in why
    assert resolve_dtype("bfloat16", CPU) == (torch.bfloat16, "bfloat16 as configured")


def test_cpu_with_bf16_instructions_that_measure_slow_does_not_recommend_bf16(fake_cpu):
    fake_cpu({"avx512f", "avx512_bf16"}, 0.8, capability="AVX512")
    why = resolve_dtype("auto", CPU)[1]
    assert "AVX-512-BF16" in why and "1.2x slower than fp32" in why and "bf16 would not be faster" in why


def test_cpu_without_bf16_instructions_reports_the_measured_slowdown(fake_cpu):
    fake_cpu({"sse4_2", "avx", "avx2", "fma"}, 1 / 40)
    dtype, why = resolve_dtype("auto", CPU)
    assert dtype == torch.float32 and not native_bf16(CPU)
    assert "no AVX-512-BF16, AMX or Arm BF16" in why and "AVX2" in why and "40.0x slower than fp32" in why
    dtype, why = resolve_dtype("bfloat16", CPU)
    assert dtype == torch.bfloat16 and why.startswith("bfloat16 as configured, but") and "40.0x slower" in why


def test_arm_bf16_counts_and_unreadable_flags_are_said(fake_cpu):
    fake_cpu({"fp", "asimd", "sve", "bf16"}, 1.5, capability="SVE256")
    assert "Arm BF16" in resolve_dtype("auto", CPU)[1]
    fake_cpu(set(), 0.5, capability="DEFAULT")
    why = resolve_dtype("auto", CPU)[1]
    assert "feature flags could not be read" in why and "2.0x slower" in why


@pytest.mark.parametrize("flags, speedup, expected", [
    ({"avx512f", "avx512_bf16"}, 3.4, torch.bfloat16),  # Zen 4: native and fast
    ({"avx512f", "avx512_bf16", "amx_bf16"}, 1.6, torch.bfloat16),
    ({"avx512f", "avx512_bf16"}, 1.2, torch.float32),  # native but barely faster: not worth bf16's rounding
    ({"avx2", "fma"}, 1 / 150, torch.float32),  # emulated: fastest must never pick it
    ({"avx2", "fma"}, 2.0, torch.float32),  # a fluke of the probe without bf16 instructions is not trusted
], ids=["zen4", "amx", "barely-faster", "avx2-only", "no-flags-fast-probe"])
def test_fastest_takes_bf16_on_a_cpu_only_where_it_is_native_and_measured_fast(fake_cpu, flags, speedup, expected):
    fake_cpu(flags, speedup, capability="AVX512")
    dtype, why = resolve_dtype("fastest", CPU)
    assert dtype == expected, why
    assert "fastest" in why
    if expected == torch.bfloat16:
        assert f"{speedup:.1f}x faster" in why


@pytest.mark.parametrize("gpu", [*GPUS, None])
def test_fastest_is_auto_off_the_cpu(fake_gpu, gpu):
    if gpu is not None:
        fake_gpu(gpu)
    device = CUDA if gpu else torch.device("mps")
    assert resolve_dtype("fastest", device) == resolve_dtype("auto", device)


def test_mps_stays_fp32():
    dtype, why = resolve_dtype("auto", torch.device("mps"))
    assert dtype == torch.float32 and "MPS" in why


@pytest.mark.parametrize("line_key", ["flags", "Features"])
def test_cpu_flags_reads_the_x86_and_arm_lines(tmp_path, line_key):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Test CPU\n{line_key}\t\t: fpu avx2 amx_bf16\n\n"
                       f"processor\t: 1\n{line_key}\t\t: fpu\n")
    assert runtime.cpu_flags(str(cpuinfo)) == frozenset({"fpu", "avx2", "amx_bf16"})
    assert runtime.cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_this_cpus_sentence_is_measured_cheaply_and_cached():
    """On the real machine: the features it names are in /proc/cpuinfo, and the measurement is
    quick once and free after (it runs each time a run starts on a CPU)."""
    runtime.cpu_bf16_speedup.cache_clear()
    threads = torch.get_num_threads()
    start = time.perf_counter()
    dtype, why = resolve_dtype("auto", CPU)
    first = time.perf_counter() - start
    speedup = runtime.cpu_bf16_speedup()
    assert torch.get_num_threads() == threads, "the one-thread check must give torch its threads back"
    assert dtype == torch.float32 and why.startswith("float32 on CPU")
    assert math.isfinite(speedup) and speedup > 0 and "quick one-thread check" in why
    assert first < 2.0, f"the CPU check took {first:.2f} s; it should take about 0.1 s"
    assert all(runtime.CPU_BF16_FLAGS[flag] in why for flag in runtime.CPU_BF16_FLAGS if flag in runtime.cpu_flags())
    start = time.perf_counter()
    assert resolve_dtype("auto", CPU)[1] == why
    assert time.perf_counter() - start < 0.05


# --- a real GPU (skipped without CUDA) ------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)")
def test_a_real_gpu_gets_bf16_exactly_when_its_capability_is_8_or_more():
    dtype, why = resolve_dtype("auto", CUDA)
    native = torch.cuda.get_device_capability() >= (8, 0)
    assert dtype == (torch.bfloat16 if native else torch.float16)
    assert torch.cuda.get_device_name() in why
