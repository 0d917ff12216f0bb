"""The benchmark's comparison with PyTorch eager: interleaved rounds, medians; a Python that cannot run it is
"not measured", in one line."""
import pytest
from conftest import fake_devices

from ablations.perf import benchmark
from ablations.perf.benchmark import Bench, torch_reference
from ablations.runner.training import TrainSettings
from model import GPTConfig


def test_a_missing_torch_python_is_not_measured_in_one_line(capsys):
    assert torch_reference("/nonexistent/bin/python") is None
    assert capsys.readouterr().out.strip().splitlines() == [
        "PyTorch eager baseline not measured (/nonexistent/bin/python: No such file or directory)"]


TINY_BENCH = Bench("tiny", GPTConfig(vocab_size=32, d_model=16, n_heads=2, n_layers=1, max_len=16),
                   TrainSettings(steps=10, batch_size=2, seq_len=16, log_every=2, warmup=1))


@pytest.fixture(scope="module")
def tiny():
    """TINY_BENCH compiled once for the tests that time it (each call trains on from where the last stopped)."""
    return benchmark.compile_bench(TINY_BENCH)


@pytest.mark.slow  # compiles and times a training chunk
def test_the_lab_and_the_baseline_are_timed_in_turns_and_medians_compared(tmp_path, monkeypatch, tiny):
    """A stand-in baseline (a script in place of a torch Python) that logs when it runs: rounds alternate."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho torch >> {log}\nout=$(echo "$@" | sed "s/.*--out //")\n'
                    'echo \'{"torch": "stand-in", "step_ms": 20.0, "tokens_per_s": 1.0}\' > "$out"\n')
    fake.chmod(0o755)
    original = benchmark.Compiled.step_s

    def logged(self, dispatches):
        with log.open("a") as f:
            f.write("lab\n")
        return original(self, dispatches)

    monkeypatch.setattr(benchmark.Compiled, "step_s", logged)
    row = benchmark.compare_with_torch(tiny, str(fake), rounds=2, dispatches=1)
    assert log.read_text().split() == ["torch", "lab"] * 2
    assert row["torch_ms"] == [20.0] * 2 and len(row["lab_ms"]) == 2
    assert row["lab_speedup"] == 20.0 / row["lab_median_ms"]


@pytest.mark.slow  # compiles and times a training chunk
def test_a_baseline_that_cannot_run_ends_the_comparison_not_measured(capsys, tiny):
    assert benchmark.compare_with_torch(tiny, "/nonexistent/bin/python", rounds=2, dispatches=1) is None
    assert "not measured" in capsys.readouterr().out


def test_mfu_is_quoted_against_the_data_sheet_on_a_known_gpu_and_the_measured_peak_elsewhere(monkeypatch):
    f32_bench = TINY_BENCH
    assert benchmark.mfu_peak(f32_bench, 123.0) == (123.0, "measured f32 matmul peak")
    bf16_bench = Bench("tiny bf16", GPTConfig(vocab_size=32, d_model=16, n_heads=2, n_layers=1, max_len=16,
                                              dtype="bfloat16"), TINY_BENCH.settings)
    device = lambda kind: fake_devices("gpu", "cuda 12080", kind=kind)
    monkeypatch.setattr(benchmark.jax, "devices", device("NVIDIA H100 80GB HBM3"))
    assert benchmark.mfu_peak(bf16_bench, 123.0) == (989e12, "NVIDIA H100 80GB HBM3 data-sheet bf16 peak")
    for kind, peak in (("NVIDIA H100 PCIe", 756e12), ("NVIDIA L40S", 362e12), ("NVIDIA L4", 121e12)):
        monkeypatch.setattr(benchmark.jax, "devices", device(kind))
        assert benchmark.mfu_peak(bf16_bench, 123.0)[0] == peak
    monkeypatch.setattr(benchmark.jax, "devices", device("cpu"))
    monkeypatch.setattr(benchmark, "matmul_peak", lambda dtype: 7.0 if dtype == benchmark.jnp.bfloat16 else None)
    assert benchmark.mfu_peak(bf16_bench, 123.0) == (7.0, "measured bf16 matmul peak")


def test_gpt2_small_times_the_fused_kernel_cudnn_on_a_gpu_and_each_preset_has_its_other_kernel(monkeypatch):
    from model import gpt

    gpt2, nanogpt = benchmark.CONFIGS["gpt2-small"]()[0], benchmark.CONFIGS["nanogpt-cpu"]()[0]
    assert (gpt2.model.dtype, gpt2.model.attention, nanogpt.model.attention) == ("bfloat16", "fused", "einsum")
    monkeypatch.setattr(gpt.jax, "devices", fake_devices("cpu", "cpu"))
    assert benchmark.attention_kernel(gpt2) == "xla"  # a CPU: XLA's implementation of the fused call
    monkeypatch.setattr(gpt.jax, "devices", fake_devices("gpu", "cuda 12080"))
    assert benchmark.attention_kernel(gpt2) == "cudnn" and benchmark.attention_kernel(nanogpt) == "einsum"
    for name, bench in (("gpt2-small-einsum", gpt2), ("nanogpt-cpu-fused", nanogpt)):
        (other,) = benchmark.CONFIGS[name]()  # each config's row is named as the command line names it
        assert other.name == name and other.model.attention != bench.model.attention
        assert other.model == GPTConfig(**{**vars(bench.model), "attention": other.model.attention})


@pytest.mark.slow  # compiles and times a training chunk
def test_a_program_larger_than_the_machine_is_compiled_not_timed_in_one_line(monkeypatch, capsys, tiny):
    monkeypatch.setattr(benchmark, "machine_memory", lambda: 1024)  # bytes
    row = benchmark.run_bench(tiny, 1e9, dispatches=1)
    assert "step_ms" not in row and row["program_memory_mb"] > 1 / 1024
    assert capsys.readouterr().out.strip().splitlines() == [
        f"tiny not timed: its program needs {row['program_memory_mb'] / 1024:,.1f} GiB, this machine has 0.0 GiB "
        "(compiled only)"]
