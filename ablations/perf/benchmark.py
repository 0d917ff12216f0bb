"""Throughput benchmark (`python -m ablations.benchmark [--configs nanogpt-cpu suite] [--profile] [--suite]
[--torch-python PY] [--out F]`).

Prints one table — compile time, the compiled program's memory, steady-state step time, tokens/s,
peak memory and MFU (against this machine's matmul peak in the compute dtype, measured in the same process,
or a GPU's data-sheet bf16 peak) — plus, with --profile, an account of each timed config's step (ms per
part against its matmul floor), and, where a Python with torch is at hand, the lab and the PyTorch eager
baseline of nanogpt-cpu timed in interleaved rounds, medians compared; writes the figures as JSON."""
from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from ablations.perf import step_profile
from ablations.runner.config import CONF_DIR
from ablations.runner.memory import machine_memory
from ablations.runner.training import Members, TrainSettings, init_state, layer_groups, make_train_chunk, seed_slice
from model import GPTConfig, Mistakes, n_params
from model.config import ATTENTION_KERNELS
from model.gpt import fused_kernel


@dataclasses.dataclass(frozen=True)
class Bench:
    name: str
    model: GPTConfig
    settings: TrainSettings
    seeds: int = 1


def suite_benches(mistakes=()) -> list[Bench]:
    """The suite's default configuration, per variant of `mistakes` (catalogue entries; the deep ones included),
    3 seeds."""
    out = []
    for spec in (None, *mistakes):
        layers = spec.settings.get("model.n_layers", 2) if spec else 2
        model = GPTConfig(vocab_size=65, d_model=64, n_heads=4, n_layers=layers, max_len=32,
                          mistakes=Mistakes.of(spec.name) if spec else Mistakes())
        out.append(Bench(f"suite:{spec.name if spec else 'correct'}", model,
                         TrainSettings(steps=1000, batch_size=16, seq_len=32, log_every=20, warmup=30), seeds=3))
    return out


def merged_points() -> list[Bench]:
    """What training two study points in one program would buy (the studies' compile-identical points, e.g.
    warmup 0 and 300): post_norm's 8-layer variant with 3 seeds (one point) and 6 seeds (two points in one
    vmap). Two points one by one cost twice the first row; merged, the second row."""
    model = GPTConfig(vocab_size=65, d_model=64, n_heads=4, n_layers=8, max_len=32, mistakes=Mistakes.of("post_norm"))
    settings = TrainSettings(steps=1000, batch_size=16, seq_len=32, log_every=20, warmup=0)
    return [Bench(f"post_norm 8L, {n} seeds", model, settings, seeds=n) for n in (3, 6)]


def lr_grids(mistakes=()) -> list[Bench]:
    """What a learning-rate grid costs (comparison=best_lr): a correct variant of the suite at its one rate and at
    every rate of its mistake's grid in one program, 3 seeds, for the first mistake of each depth (`mistakes`:
    catalogue entries, for their depth and grid)."""
    out, depths = [], {}
    for spec in mistakes:
        depths.setdefault(spec.settings.get("model.n_layers", 2), spec)
    for layers, spec in sorted(depths.items()):
        model = GPTConfig(vocab_size=65, d_model=64, n_heads=4, n_layers=layers, max_len=32)
        one = TrainSettings(steps=1000, batch_size=16, seq_len=32, log_every=20, warmup=30)
        out += [Bench(f"{layers}L one rate", model, one, seeds=3),
                Bench(f"{layers}L grid of {len(spec.lr_grid)}", model, dataclasses.replace(one, lr_grid=spec.lr_grid),
                      seeds=3)]
    return out


def model_preset(name: str) -> dict:
    """A `model=` preset of the lab's config (ablations/conf/model/): the benchmark times what users run."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))


def nanogpt_cpu() -> Bench:
    # the classic "baby GPT on a laptop CPU": 4 layers, 4 heads, d 128, context 64, batch 12, 65 characters, AdamW
    return Bench("nanogpt-cpu", GPTConfig(vocab_size=65, max_len=64, **model_preset("nanogpt_cpu")),
                 TrainSettings(steps=1000, batch_size=12, seq_len=64, log_every=20))


def gpt2_small() -> Bench:
    # for accelerators: bf16 compute, f32 master weights, fused attention (cuDNN's on an NVIDIA GPU)
    return Bench("gpt2-small", GPTConfig(vocab_size=50257, max_len=1024, **model_preset("gpt2_small")),
                 TrainSettings(steps=1000, batch_size=8, seq_len=1024, log_every=5))


def other_kernel(bench: Bench) -> Bench:
    """The same bench with the attention kernel its preset does not choose, to set beside it."""
    kernel = next(k for k in ATTENTION_KERNELS if k != bench.model.attention)
    return dataclasses.replace(bench, name=f"{bench.name}-{kernel}",
                               model=dataclasses.replace(bench.model, attention=kernel))


def attention_kernel(bench: Bench) -> str:
    """The attention its training step runs: the lab's einsums, or the fused call's implementation on this device
    (a training batch has no padding: the causal mask alone)."""
    cfg, length = bench.model, bench.settings.seq_len
    if cfg.attention == "einsum":
        return "einsum"
    return fused_kernel(cfg.dtype, cfg.head_dim, (length, length), masked=False) or "xla"


CONFIGS = {  # "suite" times the suite's variants; the command passes it the catalogue's mistakes
    "nanogpt-cpu": lambda mistakes=(): [nanogpt_cpu()],
    "suite": suite_benches,
    "merged-points": lambda mistakes=(): merged_points(),
    "lr-grid": lr_grids,  # every seed at every rate of the grid in one program, against the one-rate program
    "gpt2-small": lambda mistakes=(): [gpt2_small()],
    # what the attention kernel buys: each preset with the other kernel (gpt2-small's: on an accelerator)
    "nanogpt-cpu-fused": lambda mistakes=(): [other_kernel(nanogpt_cpu())],
    "gpt2-small-einsum": lambda mistakes=(): [other_kernel(gpt2_small())],
}


# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s), by device kind: MFU on a GPU is quoted
# against these, as papers do. Elsewhere (and for f32), the peak is this machine's own measured matmul rate.
# Matched in order, the more specific names first (an H100 PCIe is not an SXM H100, an L40S is not an L4).
SPEC_BF16_PEAKS = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
                   ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12))


def matmul_peak(dtype=jnp.float32, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a large matmul in `dtype` on the default device: the denominator of MFU where no data-sheet
    peak is known."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    dot = jax.jit(jnp.dot)
    dot(a, a).block_until_ready()
    best = min(timed(lambda: dot(a, a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best


def mfu_peak(bench: Bench, measured_f32: float) -> tuple[float, str]:
    """The peak a bench's MFU is quoted against, and where it comes from: the device's data-sheet bf16 peak for
    bf16 compute on a known GPU, else this machine's measured matmul peak in the bench's compute dtype."""
    if bench.model.dtype == "bfloat16":
        kind = jax.devices()[0].device_kind
        spec = next((peak for name, peak in SPEC_BF16_PEAKS if name in kind), None)
        if spec:
            return spec, f"{kind} data-sheet bf16 peak"
        return matmul_peak(jnp.bfloat16), "measured bf16 matmul peak"
    return measured_f32, "measured f32 matmul peak"


def timed(fn) -> float:
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


def flops_per_token(cfg: GPTConfig, seq_len: int, params: int) -> float:
    """Training FLOPs per token: 6 per parameter plus attention's 12·layers·T·d (PaLM's accounting)."""
    return 6 * params + 12 * cfg.n_layers * seq_len * cfg.d_model


def peak_memory_mb() -> float:
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # host RSS (KiB on Linux)


def program_memory_mb(compiled) -> float:
    """What the compiled training chunk needs on its device, from XLA's buffer assignment: arguments,
    outputs not aliased to them (donated state), temporaries. (The CPU backend's `peak_memory_in_bytes`
    counts the arguments alone.)"""
    m = compiled.memory_analysis()
    return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes) / 2**20


@dataclasses.dataclass
class Compiled:
    """A bench's training chunk compiled ahead of time, with its state and inputs: call `run()` to train one
    chunk of `log_every` steps."""
    bench: Bench
    program: object
    state: dict
    tokens: jax.Array
    member_arrays: dict  # the chunk's `members` argument: every seed (at every rate of a grid)
    params: int
    compile_s: float
    calls: int = 0

    def run(self) -> None:
        start = self.calls * self.bench.settings.log_every
        self.state, metrics = self.program(self.state, self.tokens, self.member_arrays, start)
        jax.block_until_ready(metrics)
        self.calls += 1

    def step_s(self, dispatches: int) -> float:
        """Median seconds per step over `dispatches` calls."""
        times = [timed(self.run) / self.bench.settings.log_every for _ in range(dispatches)]
        return float(np.median(times))


def compile_bench(bench: Bench) -> Compiled:
    s, members = bench.settings, Members.of(bench.settings, list(range(bench.seeds)))
    state = init_state(bench.model, s, list(members.seeds))  # every seed at every rate of a grid
    chunk = make_train_chunk(bench.model, s, layer_groups(seed_slice(state["params"], 0)), 1)
    tokens = jax.random.randint(jax.random.key(1), (200_000,), 0, bench.model.vocab_size, jnp.int32)
    member_arrays = members.arrays()
    tic = time.perf_counter()
    program = chunk.lower(state, tokens, member_arrays, 0).compile()
    return Compiled(bench, program, state, tokens, member_arrays, n_params(seed_slice(state["params"], 0)),
                    time.perf_counter() - tic)


def run_bench(compiled: Compiled, peak: float, dispatches: int) -> dict:
    """Time `dispatches` calls of a bench's compiled chunk after one warm-up call (none: compile only, e.g.
    gpt2-small's memory on a CPU)."""
    bench, s = compiled.bench, compiled.bench.settings
    row = {"config": bench.name, "attention": attention_kernel(bench), "params": compiled.params,
           "compile_s": compiled.compile_s, "program_memory_mb": program_memory_mb(compiled.program)}
    if not dispatches:
        return row
    needed, available = row["program_memory_mb"] * 2**20, machine_memory()
    if needed > available:  # e.g. gpt2-small on a laptop: say so, rather than die of XLA's out-of-memory error
        print(f"{bench.name} not timed: its program needs {needed / 2**30:,.1f} GiB, this machine has "
              f"{available / 2**30:,.1f} GiB (compiled only)")
        return row
    compiled.run()
    step_s = compiled.step_s(dispatches)
    tokens_per_s = s.batch_size * s.seq_len * len(compiled.member_arrays["seed"]) / step_s
    against, source = mfu_peak(bench, peak)
    return {**row, "step_ms": step_s * 1e3, "tokens_per_s": tokens_per_s, "peak_memory_mb": peak_memory_mb(),
            "mfu": tokens_per_s * flops_per_token(bench.model, s.seq_len, compiled.params) / against,
            "mfu_against": source, "mfu_peak_flops": against}


def profile_bench(compiled: Compiled, peak: float, calls: int = 5) -> list[dict]:
    """The account of one step of a bench's compiled chunk (ablations.perf.step_profile), after a warm-up call."""
    compiled.run()
    bench, s = compiled.bench, compiled.bench.settings
    return step_profile.account(compiled.program, compiled.run, s.log_every, calls, bench.model, s.batch_size,
                                s.seq_len, len(compiled.member_arrays["seed"]), peak)


def compare_with_torch(compiled: Compiled, python: str, rounds: int, dispatches: int) -> dict | None:
    """The lab's compiled chunk and the PyTorch eager baseline timed in turns, `rounds` each (so that whatever
    else the machine does falls on both alike), medians compared; None if the baseline cannot run."""
    compiled.run()
    lab_ms, torch_rows = [], []
    for _ in range(rounds):
        reference = torch_reference(python)
        if reference is None:
            return None
        torch_rows.append(reference)
        lab_ms.append(compiled.step_s(dispatches) * 1e3)
    torch_ms = [r["step_ms"] for r in torch_rows]
    return {"config": f"{compiled.bench.name}: lab vs PyTorch eager, interleaved", "torch": torch_rows[0]["torch"],
            "rounds": rounds, "lab_ms": lab_ms, "torch_ms": torch_ms, "lab_median_ms": float(np.median(lab_ms)),
            "torch_median_ms": float(np.median(torch_ms)),
            "lab_speedup": float(np.median(torch_ms) / np.median(lab_ms))}


def measure(bench: Bench, peak: float, args) -> list[dict]:
    """One config, compiled once: its row, its step's account (--profile), and for nanogpt-cpu the interleaved
    comparison with PyTorch eager as a row of its own."""
    compiled = compile_bench(bench)
    row = run_bench(compiled, peak, args.dispatches)
    if "step_ms" not in row:
        return [row]
    if args.profile:
        row["account"] = profile_bench(compiled, row["mfu_peak_flops"])
    comparison = compare_with_torch(compiled, args.torch_python, args.rounds, args.dispatches) \
        if bench.name == "nanogpt-cpu" else None
    return [row, comparison] if comparison else [row]


def suite_wall_time() -> dict:
    """The whole paired suite, 3 seeds, default settings, as a user runs it (W&B off)."""
    with tempfile.TemporaryDirectory() as results:
        seconds = timed(lambda: subprocess.run([sys.executable, "-m", "ablations.run", "mistake=all",
                                                f"results_dir={results}", "wandb.mode=disabled"],
                                               check=True, capture_output=True))
    return {"config": "suite wall time (mistake=all)", "wall_s": seconds}


def torch_reference(python: str) -> dict | None:
    """The PyTorch eager baseline of nanogpt-cpu (`ablations.perf.torch_baseline`), timed in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reference.json"
        try:
            done = subprocess.run([python, "-m", "ablations.perf.torch_baseline", "--out", str(out)],
                                  cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
        except OSError as error:  # no such interpreter, or not executable
            print(f"PyTorch eager baseline not measured ({python}: {error.strerror or error})")
            return None
        if done.returncode:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            print(f"PyTorch eager baseline not measured ({python}: {why})")
            return None
        return json.loads(out.read_text())


def print_table(rows: list[dict]) -> None:
    print(f"{'config':28} {'attention':9} {'params':>11} {'compile s':>9} {'program MB':>10} {'step ms':>8} "
          f"{'tokens/s':>9} {'peak MB':>7} {'MFU':>6}")
    for r in rows:
        timed_part = (f"{r['step_ms']:>8.2f} {r['tokens_per_s']:>9,.0f} {r['peak_memory_mb']:>7.0f} {r['mfu']:>6.1%}"
                      if "step_ms" in r else "(compile only)")
        print(f"{r['config']:28} {r['attention']:9} {r['params']:>11,} {r['compile_s']:>9.2f} "
              f"{r['program_memory_mb']:>10,.0f} {timed_part}")


def print_accounts(rows: list[dict]) -> None:
    for row in (r for r in rows if "account" in r):
        print(f"\n{row['config']}:")
        step_profile.print_account(row["account"], row["step_ms"])


def merged_summary(rows: list[dict]) -> dict | None:
    merged = [r for r in rows if r["config"].startswith("post_norm 8L") and "step_ms" in r]
    if len(merged) != 2:
        return None
    alone, both = merged
    print(f"two study points: one by one {2 * alone['step_ms']:.1f} ms/step + 2 compiles; merged in one vmap "
          f"{both['step_ms']:.1f} ms/step + 1 compile (saves {1 - both['step_ms'] / (2 * alone['step_ms']):.0%} "
          "per step)")
    return {"config": "two points merged vs one by one", "one_by_one_ms": 2 * alone["step_ms"],
            "merged_ms": both["step_ms"], "compile_saved_s": alone["compile_s"]}


def print_comparison(rows: list[dict]) -> None:
    for c in (r for r in rows if "lab_speedup" in r):
        print(f"nanogpt-cpu, {c['rounds']} interleaved rounds each: the lab {c['lab_median_ms']:.2f} ms/step "
              f"({min(c['lab_ms']):.2f}–{max(c['lab_ms']):.2f}), PyTorch {c['torch']} eager "
              f"{c['torch_median_ms']:.2f} ({min(c['torch_ms']):.2f}–{max(c['torch_ms']):.2f}); "
              f"the lab runs at {c['lab_speedup']:.2f}x PyTorch eager")


def main(args, mistakes) -> None:
    """The benchmark with the command's arguments; `mistakes`: the catalogue's entries, whose variants the "suite"
    config times."""
    peak = matmul_peak()
    device = f"{jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()})"
    print(f"device: {device}; measured f32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    rows = [row for name in args.configs for bench in CONFIGS[name](mistakes) for row in measure(bench, peak, args)]
    print_table([r for r in rows if "params" in r])
    print_accounts(rows)
    merged = merged_summary(rows)
    if merged:
        rows.append(merged)
    print_comparison(rows)
    if args.suite:
        rows.append(suite_wall_time())
        print(f"suite wall time (mistake=all, 3 seeds, paired): {rows[-1]['wall_s'] / 60:.1f} min")
    with open(args.out, "w") as f:
        json.dump({"device": device, "matmul_peak_flops": peak, "rows": rows}, f, indent=1)
    print(f"wrote {args.out}")

