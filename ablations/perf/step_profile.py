"""An account of one training step (`python -m ablations.benchmark --profile`): the compiled chunk is traced with
`jax.profiler`, every op of the trace is named by its source path in the compiled program's HLO (the model's
module names, einsum names and the step's named scopes), and the op time is summed per part of the step,
beside each matmul family's floor at the machine's measured matmul peak."""
from __future__ import annotations

import collections
import re
import tempfile
from pathlib import Path

import jax

from model import GPTConfig

# (part, pattern on the op's source path); the first match names the op. Matmuls first, then what surrounds them.
PARTS = (
    # cuDNN's fused attention (model.attention=fused on an NVIDIA GPU): scores, mask, softmax and values in one op
    ("attention: cuDNN fused kernel", r"/attn/.*dot_product_attention_(fwd|bwd)"),
    ("matmul: qkv projection", r"/attn/qkv/"),
    ("matmul: attention output projection", r"/attn/proj/"),
    ("matmul: FFN up", r"/ffn/up/"),
    ("matmul: FFN down", r"/ffn/down/"),
    # the lab's einsums, or jax.nn.dot_product_attention's (model.attention=fused: XLA's maps them over heads)
    ("matmul: attention scores q·k", r"/attn/(vmap\()?(bthk,bshk->bhts|BTNH,BSNH->BNTS)\)?/dot_general"),
    ("matmul: attention-weighted values", r"/attn/(vmap\()?(bhts,bshk->bthk|BNTS,BSNH->BTNH)\)?/dot_general"),
    ("matmul: logits (tied embedding)", r"embed\.attend/dot_general"),
    ("embedding lookup and its gradient", r"embed"),
    ("attention softmax, mask, rotary", r"/attn/"),
    ("layer norms", r"norm"),
    ("GELU", r"/ffn/"),
    ("loss (log-softmax, cross-entropy)", r"^loss/|/loss/"),
    ("optimizer update (AdamW, clipping)", r"optimizer/"),
    ("gradient norms, divergence freeze", r"metrics/"),
    ("batch sampling", r"batch/"),
)
LAYOUT = "copies and transposes"
OTHER = "other"
CONTAINERS = ("while", "call", "conditional")  # their events enclose their ops' events
HLO_LINE = re.compile(r'^\s*(?:ROOT\s+)?%?([\w.\-]+) = .*?op_name="([^"]*)"', re.MULTILINE)


def source_paths(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> its source path (metadata op_name without the `jit(chunk)/while/body/...` prefix)."""
    return {name: re.sub(r"^jit\([^)]*\)/(while/body/)?(closed_call/)?", "", path)
            for name, path in HLO_LINE.findall(hlo_text)}


def part_of(op: str, path: str) -> tuple[str, str]:
    """(part of the step, "forward" | "backward" | "") of one compiled op."""
    backward = "transpose(jvp(" in path or "dot_product_attention_bwd" in path  # cuDNN's own backward call
    direction = "backward" if backward else "forward" if "jvp(" in path else ""
    if re.match(r"(transpose|copy)", op) or "_copy_fusion" in op or "transpose_" in op:
        return LAYOUT, direction
    for part, pattern in PARTS:
        if re.search(pattern, path):
            return part, direction
    return OTHER, ""


def op_times(trace_dir: str, module: str) -> dict[str, float]:
    """Nanoseconds per HLO op of `module` in a trace, summed over its events (over every thread)."""
    files = sorted(Path(trace_dir).rglob("*.xplane.pb"))
    data = jax.profiler.ProfileData.from_file(str(files[-1]))
    times = collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                stats = dict(event.stats)
                if stats.get("hlo_module") == module and not event.name.startswith(CONTAINERS):
                    times[stats.get("hlo_op", event.name)] += event.duration_ns
    return times


def matmul_flops(cfg: GPTConfig, batch: int, seq_len: int, seeds: int) -> dict[str, float]:
    """FLOPs per step of each matmul family, forward (backward: twice that)."""
    n, d, f, layers = batch * seq_len * seeds, cfg.d_model, cfg.ffn_mult * cfg.d_model, cfg.n_layers
    attention = 2 * batch * seeds * seq_len * seq_len * d * layers  # all heads: H·K = d
    return {"matmul: qkv projection": 2 * n * d * 3 * d * layers,
            "matmul: attention output projection": 2 * n * d * d * layers,
            "matmul: FFN up": 2 * n * d * f * layers, "matmul: FFN down": 2 * n * f * d * layers,
            "matmul: attention scores q·k": attention, "matmul: attention-weighted values": attention,
            "matmul: logits (tied embedding)": 2 * n * d * cfg.vocab_size}


def account(compiled, run_once, steps_per_call: int, calls: int, cfg: GPTConfig, batch: int, seq_len: int,
            seeds: int, peak: float) -> list[dict]:
    """Profile `calls` calls of the compiled chunk (`run_once()` makes one); rows of ms per step per part and
    direction, with the matmul floor at `peak` FLOP/s, largest first."""
    hlo = compiled.as_text()
    paths, module = source_paths(hlo), re.search(r"HloModule (\S+?)[,\s]", hlo).group(1)
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(calls):
                run_once()
        times = op_times(trace_dir, module)
    per_part, ops, largest = collections.Counter(), collections.Counter(), collections.Counter()
    for op, ns in times.items():
        key, ms = part_of(op, paths.get(op, "")), ns / 1e6 / (calls * steps_per_call)  # (part, direction)
        per_part[key] += ms
        ops[key] += 1
        largest[key] = max(largest[key], ms)
    flops = matmul_flops(cfg, batch, seq_len, seeds)
    rows = []
    for (part, direction), ms in per_part.most_common():
        work = flops.get(part, 0) * (2 if direction == "backward" else 1)
        rows.append({"part": part, "direction": direction, "ms": ms, "ops": ops[part, direction],
                     "largest_op_ms": largest[part, direction], "floor_ms": work / peak * 1e3 if work else None})
    return rows


def print_account(rows: list[dict], step_ms: float) -> None:
    total = sum(r["ms"] for r in rows)
    print(f"account of one step: {total:.1f} ms of op time (summed over threads) in a {step_ms:.1f} ms step, "
          f"{sum(r['ops'] for r in rows)} compiled ops")
    print(f"{'part':45} {'':9} {'ms':>7} {'share':>6} {'floor ms':>9} {'ops':>5} {'largest op ms':>13}")
    for r in rows:
        floor = f"{r['floor_ms']:>9.2f}" if r["floor_ms"] is not None else f"{'':>9}"
        print(f"{r['part']:45} {r['direction']:9} {r['ms']:>7.2f} {r['ms'] / total:>6.1%} {floor} {r['ops']:>5} "
              f"{r['largest_op_ms']:>13.3f}")
