"""The account of a training step (ablations.perf.step_profile): every op of a profiled chunk named by its part."""
import pytest

from ablations.perf import step_profile
from ablations.perf.benchmark import Bench, compile_bench, profile_bench
from ablations.runner.training import TrainSettings
from model import GPTConfig


def test_ops_are_named_by_their_source_path_and_direction():
    assert step_profile.part_of("ynn_fusion.170", "jvp(GPT)/block_0/attn/qkv/dot_general") == (
        "matmul: qkv projection", "forward")
    assert step_profile.part_of("dot.189", "loss/transpose(jvp(GPT))/block_0/attn/bthk,bshk->bhts/dot_general") == (
        "matmul: attention scores q·k", "backward")
    assert step_profile.part_of("transpose_copy_fusion.31", "jvp(GPT)/block_0/attn/reshape") == (
        step_profile.LAYOUT, "forward")
    assert step_profile.part_of("fusion.3", "optimizer/mul")[0] == "optimizer update (AdamW, clipping)"
    hlo = '%dot.5 = f32[2,3]{1,0} dot(...), metadata={op_name="jit(chunk)/while/body/closed_call/jvp(GPT)/x"}'
    assert step_profile.source_paths(hlo) == {"dot.5": "jvp(GPT)/x"}


def test_the_fused_attention_calls_matmuls_and_kernel_are_named_too():
    assert step_profile.part_of("dot.7", "loss/jvp(GPT)/block_0/attn/vmap(BTNH,BSNH->BNTS)/dot_general") == (
        "matmul: attention scores q·k", "forward")
    assert step_profile.part_of("dot.9", "loss/transpose(jvp(GPT))/block_1/attn/vmap(BNTS,BSNH->BTNH)/dot_general") \
        == ("matmul: attention-weighted values", "backward")
    # jax's cuDNN primitives (jax/_src/cudnn/fused_attention_stablehlo.py); on a GPU the matmuls are custom calls
    # too (cuBLAS), so the part goes by the primitive's name, not by the op's kind
    assert step_profile.part_of("custom-call.3", "loss/jvp(GPT)/block_0/attn/dot_product_attention_fwd") == (
        "attention: cuDNN fused kernel", "forward")
    assert step_profile.part_of("custom-call.4", "loss/jvp(GPT)/block_0/attn/qkv/dot_general") == (
        "matmul: qkv projection", "forward")


@pytest.mark.slow  # profiles a compiled training chunk
@pytest.mark.parametrize("attention", ["einsum", "fused"])
def test_a_profiled_step_is_accounted_for_part_by_part_with_matmul_floors(attention):
    model = GPTConfig(vocab_size=32, d_model=16, n_heads=2, n_layers=2, max_len=16, attention=attention)
    bench = Bench("tiny", model, TrainSettings(steps=10, batch_size=4, seq_len=16, log_every=2, warmup=1))
    rows = profile_bench(compile_bench(bench), peak=1e10, calls=1)
    parts = {(r["part"], r["direction"]) for r in rows}
    for family in step_profile.matmul_flops(model, 4, 16, 1):
        assert (family, "forward") in parts and (family, "backward") in parts
    assert {"layer norms", "optimizer update (AdamW, clipping)", "gradient norms, divergence freeze"} <= \
        {r["part"] for r in rows}
    assert all(r["ms"] > 0 and r["ops"] >= 1 and 0 < r["largest_op_ms"] <= r["ms"] for r in rows)
    assert all((r["floor_ms"] is not None) == r["part"].startswith("matmul") for r in rows)
    floor = {r["direction"]: r["floor_ms"] for r in rows if r["part"] == "matmul: FFN up"}
    flops = 2 * (4 * 16) * 16 * 64 * 2  # 2 · tokens · d_model · d_ff · layers
    assert floor["forward"] == flops / 1e10 * 1e3 and floor["backward"] == 2 * floor["forward"]
