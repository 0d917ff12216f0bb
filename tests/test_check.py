"""`python -m ablations.check`: no false alarm on the correct GPT, every mistake seen by its probe, any linen
module audited, one-line usage errors, a failing probe contained, stable JSON.

Small models only (d_model 16 and 32, 1-8 layers, 16 tokens); each config compiles once per process, seeds
reuse it. CLI runs share a JAX compilation cache (a temporary directory) so the second costs little."""
import dataclasses
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import flax.linen as nn
import numpy as np
import pytest
from conftest import HANG_GUARD_S

from ablations import catalogue, check
from ablations.audit import calibration, measurements
from ablations.audit.context import Context
from ablations.audit.detectors import Detector
from ablations.audit.adapters import from_linen, hf_gpt2, lab_gpt
from ablations.audit.interface import AuditModel, build, tokenizer_size
from model import names_of_all

ROOT = Path(__file__).resolve().parents[1]
SEEDS, SIZES, DTYPES = (0, 1, 2), (16, 32), ("float32", "bfloat16")
KEYS = ["mistake", "status", "value", "threshold", "margin", "why", "thin_margin"]
# a mistake whose catalogue entry has no detector, or one without a threshold yet, reports "not calibrated"
UNCALIBRATED = {name for name, d in catalogue.DETECTORS.items() if d is None or d.threshold is None}
CALIBRATED = [name for name in catalogue.DETECTORS if name not in UNCALIBRATED]


# ---------------------------------------------------------------- the lab's GPT, through the Python API


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d_model", SIZES)
def test_correct_gpt_raises_no_alarm(d_model, dtype):
    for seed in SEEDS:
        results = catalogue.audit(lab_gpt, {"d_model": d_model, "dtype": dtype, "seed": seed})
        assert [r["mistake"] for r in results] == list(names_of_all())
        assert all(list(r) == KEYS for r in results)
        statuses = {r["mistake"]: r["status"] for r in results}
        assert not [r for r in results if r["status"] in ("detected", "error")], results
        # every probe measured something: only the position probe may not see RoPE under bfloat16 rounding
        blind = {"position_overflow"} if dtype == "bfloat16" else set()
        assert {m for m, s in statuses.items() if s != "clear"} <= blind | UNCALIBRATED, statuses


@pytest.mark.slow
@pytest.mark.parametrize("name", CALIBRATED)
def test_each_mistake_is_detected_by_its_detector(name):
    [result] = catalogue.audit(lab_gpt, {"d_model": 16, "mistakes": (name,)}, only=(name,))
    assert result["status"] == "detected", result
    assert not result["thin_margin"], result


@pytest.mark.slow  # compiles and trains or audits models: tens of seconds
def test_a_probe_that_raises_is_reported_and_the_others_still_run():
    def exploding_decoder(**overrides):
        def generate(*args):
            raise RuntimeError("decoder exploded")
        return dataclasses.replace(lab_gpt(**overrides), generate=generate)

    results = {r["mistake"]: r for r in catalogue.audit(exploding_decoder, {"d_model": 16})}
    assert results["stale_kv_cache"]["status"] == "error"
    assert "RuntimeError: decoder exploded" in results["stale_kv_cache"]["why"]
    assert {r["status"] for m, r in results.items() if m not in {"stale_kv_cache", *UNCALIBRATED}} == {"clear"}


def test_an_audit_refuses_a_context_built_from_another_factory_or_other_overrides():
    from ablations.audit.detectors import audit

    built = Context(lab_gpt, {"d_model": 16}, model=None)  # what an earlier audit of lab_gpt(d_model=16) built
    for factory, overrides in ((lab_gpt, {"d_model": 32}), (lab_gpt, None), (hf_gpt2, {"d_model": 16})):
        with pytest.raises(ValueError, match="reuses that context's model"):
            audit(factory, catalogue.DETECTORS, overrides, ctx=built)


# ---------------------------------------------------------------- any Flax linen module


class Block(nn.Module):
    d_model: int
    post_norm: bool = False

    @nn.compact
    def __call__(self, x, allowed):  # x [B, T, D], allowed [B, 1, T, T]
        if self.post_norm:  # the original transformer's: the norm after the residual add
            x = nn.LayerNorm()(x + nn.MultiHeadDotProductAttention(num_heads=2)(x, mask=allowed))
            return nn.LayerNorm()(x + nn.Dense(self.d_model)(nn.gelu(nn.Dense(4 * self.d_model)(x))))
        x = x + nn.MultiHeadDotProductAttention(num_heads=2)(nn.LayerNorm()(x), mask=allowed)
        return x + nn.Dense(self.d_model)(nn.gelu(nn.Dense(4 * self.d_model)(nn.LayerNorm()(x))))


class TinyLM(nn.Module):
    """A user's model, written without the lab: pre-norm, tied, no position code (the causal mask orders)."""
    vocab_size: int
    d_model: int
    n_layers: int
    causal: bool = True
    post_norm: bool = False

    @nn.compact
    def __call__(self, tokens, mask):  # [B, T] int32, [B, T] bool -> [B, T, V]
        embed = nn.Embed(self.vocab_size, self.d_model)
        causal = nn.make_causal_mask(tokens) if self.causal else None
        allowed = nn.combine_masks(nn.make_attention_mask(mask, mask), causal)  # [B, 1, T, T]
        x = embed(tokens)
        for i in range(self.n_layers):
            x = Block(self.d_model, self.post_norm, name=f"block_{i}")(x, allowed)
        return embed.attend(nn.LayerNorm()(x))


def tiny_lm(vocab_size=64, d_model=16, n_layers=2, seed=0, causal=True, post_norm=False):
    return from_linen(TinyLM(vocab_size, d_model, n_layers, causal, post_norm), vocab_size, seed=seed)


@pytest.mark.slow
def test_a_linen_module_is_audited_and_its_leak_found():
    results = {r["mistake"]: r for r in catalogue.audit(tiny_lm)}
    assert not [r for r in results.values() if r["status"] in ("detected", "error")], results
    unavailable = {"position_overflow", "tiny_vocab", "stale_kv_cache"}  # no max_len, tokenizer, generate given
    assert {m for m, r in results.items() if r["status"] == "not applicable"} == unavailable
    assert results["narrow_ffn"]["value"] == pytest.approx(4.0) and results["untied_embeddings"]["value"] == 1.0
    [leak] = catalogue.audit(tiny_lm, {"causal": False}, only=("norm_wrong_axis",))
    assert leak["status"] == "detected", leak
    # the blocks' outputs (block_0, block_1) are captured as the residual stream: a post-norm stack is seen
    [post_norm] = catalogue.audit(tiny_lm, {"post_norm": True}, only=("post_norm",))
    assert post_norm["status"] == "detected" and "over 1 block(s)" in post_norm["why"], post_norm


@pytest.mark.slow
def test_hugging_face_flax_gpt2_is_audited_clear():
    pytest.importorskip("transformers", reason="optional extra: pip install -e '.[hf]'")
    results = {r["mistake"]: r for r in catalogue.audit(hf_gpt2, {"d_model": 16})}
    assert not [r for r in results.values() if r["status"] in ("detected", "error")], results
    assert results["position_overflow"]["why"].startswith("raises past max_len=4")  # its causal mask is max_len long
    assert {m for m, r in results.items() if r["status"] == "not applicable"} == {"tiny_vocab"}  # no tokenizer given
    assert results["narrow_ffn"]["value"] == 4.0  # c_fc and c_proj, 4d wide, whatever GPT-2's Conv1D layout


@pytest.mark.slow
def test_hugging_face_flax_gpt2_with_a_narrow_ffn_is_detected():
    pytest.importorskip("transformers", reason="optional extra: pip install -e '.[hf]'")
    [narrow] = catalogue.audit(hf_gpt2, {"d_model": 16, "n_inner": 16}, only=("narrow_ffn",))
    assert narrow["status"] == "detected" and narrow["value"] == 1.0, narrow


@pytest.mark.slow
def test_hugging_faces_own_hidden_states_are_the_blocks_outputs_before_the_last():
    pytest.importorskip("transformers", reason="optional extra: pip install -e '.[hf]'")
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    from ablations.audit.adapters import from_hf

    hf = FlaxGPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=16, n_embd=16, n_layer=3, n_head=2), seed=0)
    tokens = np.random.default_rng(0).integers(1, 32, (2, 8)).astype(np.int32)
    captured = from_hf(hf, 32, hidden_states="blocks").hidden_states(tokens)
    reported = from_hf(hf, 32, hidden_states="hf").hidden_states(tokens)
    assert len(captured) == 3 and len(reported) == 2  # the last block's output comes back after the final norm
    for block, state in enumerate(reported):
        np.testing.assert_allclose(np.asarray(state), np.asarray(captured[block]), rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(captured[1]) - np.asarray(captured[0])).max() > 1e-3  # the blocks differ


# ---------------------------------------------------------------- a measurement on toys with a known answer


def stream_toy(states):
    """A factory whose model gives `states(n_layers)` as its residual stream (tokens [4, 16], vocab 8)."""
    def make(n_layers=1):
        return AuditModel(forward=None, vocab_size=8, n_params=0, max_len=16,
                          hidden_states=lambda tokens: states(n_layers))
    return make


def test_stream_scale_spread_reads_the_scale_spread_a_block_leaves_per_unit_of_its_change():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 512))
    change = rng.normal(size=(4, 16, 512)) * 0.1  # a block that changes the stream by 10%

    def normalised(h):
        return h / np.sqrt((h ** 2).mean(-1, keepdims=True))

    pre_norm = stream_toy(lambda n: [x, x + change])  # the add keeps x's spread (~1 at any width): 1 / 0.1 = 10
    # every token at RMS 3 then its normalised change: no spread at all, whatever the block changed
    post_norm = stream_toy(lambda n: [3 * normalised(x), 3 * normalised(x + change)])
    # BLOOM-like: embeddings normalised, a small add; the spread the add leaves is of the size of the add
    small_add = stream_toy(lambda n: [normalised(x), normalised(x) + change])
    detector = catalogue.DETECTORS["post_norm"]

    def measure(factory):
        return detector.measure(Context(factory, {}, factory()))

    reading = measure(pre_norm)
    assert 8 < reading.value < 12 and "over 1 block(s)" in reading.note, reading
    assert measure(post_norm).value == pytest.approx(0.0, abs=1e-6)
    assert 0.5 < measure(small_add).value < 2, measure(small_add)
    assert [catalogue.audit(f, only=("post_norm",))[0]["status"] for f in (post_norm, pre_norm, small_add)] == [
        "detected", "clear", "clear"]
    [missing] = catalogue.audit(lambda: AuditModel(forward=None, vocab_size=8, n_params=0), only=("post_norm",))
    assert missing["status"] == "not applicable" and "AuditModel.hidden_states" in missing["why"], missing
    [one] = catalogue.audit(stream_toy(lambda n: [x]), only=("post_norm",))
    assert one["status"] == "not applicable" and "no block whose input is seen" in one["why"], one


def test_stream_carry_reads_the_slope_of_a_blocks_output_on_its_input():
    rng = np.random.default_rng(0)
    x, branch = rng.normal(size=(4, 16, 64)), rng.normal(size=(4, 16, 64))
    shared = rng.normal(size=64) * 10  # a direction every token shares (a bias) carries nothing of the token
    residual = stream_toy(lambda n: [x, x + branch + shared])
    no_residual = stream_toy(lambda n: [x, branch + shared])
    detector = catalogue.DETECTORS["no_residual"]
    values = [detector.measure(Context(f, {}, f())).value for f in (residual, no_residual)]
    assert values[0] == pytest.approx(1.0, abs=0.1) and values[1] == pytest.approx(0.0, abs=0.1), values
    assert [catalogue.audit(f, only=("no_residual",))[0]["status"] for f in (residual, no_residual)] == [
        "clear", "detected"]


def toy_transformer(vocab_size=16, d_model=12, n_layers=1, hidden=48, gated=False, attention=True, causal=True,
                    seed=0, stacked=False):
    """A pre-RMSNorm transformer in a few lines of jax.numpy: one attention head (or none), an FFN of `hidden` units
    (GELU, or SwiGLU when gated), norm gains, tied embeddings; a next-token cross-entropy loss. stacked: every
    block's parameters in one array per name, [n_layers, ...], as a scan over layers keeps them."""
    import jax
    import jax.numpy as jnp

    from ablations.audit.adapters import next_token_cross_entropy

    keys = iter(jax.random.split(jax.random.key(seed), 1 + 7 * n_layers))

    def dense(*shape):
        return jax.random.normal(next(keys), shape) / np.sqrt(shape[0])

    names = {"q": (d_model, d_model), "k": (d_model, d_model), "v": (d_model, d_model), "o": (d_model, d_model),
             "up": (d_model, hidden), "down": (hidden, d_model), **({"gate": (d_model, hidden)} if gated else {})}
    blocks = [{**{name: dense(*shape) for name, shape in names.items() if attention or name not in "qkvo"},
               "gain_attention": jnp.ones(d_model), "gain_ffn": jnp.ones(d_model)} for _ in range(n_layers)]
    if stacked:
        blocks = jax.tree.map(lambda *per_block: jnp.stack(per_block), *blocks)
    params = {"embed": dense(vocab_size, d_model), "blocks": blocks}

    def rms(x):
        return x / jnp.sqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)

    def run(p, tokens):  # [B, T] -> [B, T, V]
        x, t = p["embed"][tokens], tokens.shape[1]
        allowed = jnp.tril(jnp.ones((t, t), bool)) if causal else jnp.ones((t, t), bool)
        for i in range(n_layers):
            b = jax.tree.map(lambda a: a[i], p["blocks"]) if stacked else p["blocks"][i]
            if attention:
                h = rms(x) * b["gain_attention"]
                scores = jnp.where(allowed, (h @ b["q"]) @ jnp.swapaxes(h @ b["k"], 1, 2) / np.sqrt(d_model), -1e30)
                x = x + jax.nn.softmax(scores) @ (h @ b["v"]) @ b["o"]
            h = rms(x) * b["gain_ffn"]
            x = x + ((jax.nn.silu(h @ b["gate"]) * (h @ b["up"])) if gated else jax.nn.gelu(h @ b["up"])) @ b["down"]
        return rms(x) @ p["embed"].T

    forward = jax.jit(run)
    return AuditModel(forward=lambda tokens, mask: forward(params, jnp.asarray(tokens)), vocab_size=vocab_size,
                      n_params=0, params=params, max_len=16,
                      loss=lambda p, tokens: next_token_cross_entropy(run(p, tokens), tokens))


FFN_TOYS = {"d_ff = 4d": ({}, 4.0), "d_ff = d": ({"hidden": 12}, 1.0),  # 2·d·d_ff / 2d²
            "SwiGLU, hidden 8d/3": ({"hidden": 32, "gated": True}, 4.0),  # 3·d·h / 2d² = 1.5 · 32 / 12
            "SwiGLU, hidden d": ({"hidden": 12, "gated": True}, 1.5)}


@pytest.mark.parametrize("toy,stacked", [
    *[(toy, False) for toy in FFN_TOYS],
    pytest.param("d_ff = d", True, id="d_ff = d, blocks stacked in one array"),  # a scan over layers keeps them so
    *[pytest.param(toy, True, id=f"{toy}, blocks stacked in one array", marks=pytest.mark.slow)
      for toy in FFN_TOYS if toy != "d_ff = d"]])
def test_ffn_width_counts_the_ffns_parameters_past_attentions(toy, stacked):
    overrides, width = {**FFN_TOYS[toy][0], "stacked": stacked}, FFN_TOYS[toy][1]
    reading = measurements.ffn_width(Context(toy_transformer, overrides, toy_transformer(**overrides)))
    # stacked, the two blocks' [2, d] gains would pass for matrices: 4d more parameters, 4.17 for 4
    assert reading.value == pytest.approx(width) and "twice the 288 of attention's queries and keys" in reading.note


def test_ffn_width_says_why_it_cannot_tell_attention_apart():
    def why(**overrides):
        [record] = catalogue.audit(toy_transformer, overrides, only=("narrow_ffn",))
        assert record["status"] == "not applicable", record
        return record["why"]

    assert "a leak of the future" in why(causal=False)  # the first token sees the others: no one-token context
    assert "no parameter a block adds has zero gradient" in why(attention=False)  # no queries or keys
    [fixed] = catalogue.audit(lambda d_model=12: toy_transformer(d_model=d_model), only=("narrow_ffn",))
    assert fixed["status"] == "not applicable" and "takes no n_layers" in fixed["why"], fixed


def head_toy(head, scale=None, vocab_size=64, d_model=8):
    """A factory whose stream after its last block is a fixed random table lookup (per-token RMS spread as random
    vectors'), and whose logits are head(stream); scale: per-token scales the stream is set to (one scale: 1)."""
    rng = np.random.default_rng(0)
    table, positions = rng.normal(size=(vocab_size, d_model)), rng.normal(size=(16, d_model))
    out = rng.normal(size=(d_model, vocab_size))

    def stream(tokens):  # [B, T] -> [B, T, D]
        x = table[tokens] + 0.5 * positions[: tokens.shape[1]]
        return x if scale is None else x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True)) * scale

    def make():
        return AuditModel(forward=lambda tokens, mask: head(stream(np.asarray(tokens))) @ out, vocab_size=vocab_size,
                          n_params=0, max_len=16, hidden_states=lambda tokens: [stream(np.asarray(tokens))])
    return make


def layer_norm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6) * 1.5 + 0.1


def test_output_fit_reads_whether_the_logits_follow_the_stream_or_the_normalised_stream():
    rms_norm = lambda x: x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True))  # noqa: E731
    detector = catalogue.DETECTORS["no_final_norm"]

    def measure(factory):
        return detector.measure(Context(factory, {}, factory()))

    without = measure(head_toy(lambda x: x + 0.3))  # an unembedding with a bias: affine in the stream itself
    assert without.value < 1e-9 and detector.fires(without.value), without
    assert measure(head_toy(rms_norm)).value > 1e4 and "each token's RMS" in measure(head_toy(rms_norm)).note
    assert measure(head_toy(layer_norm)).value > 1e4 and "each token's std" in measure(head_toy(layer_norm)).note
    # a stream already normalised (post-norm) reaches the output normalised, with or without a final norm
    normalised = measure(head_toy(lambda x: x, scale=1.0))
    assert normalised.status == "clear" and normalised.value is None and "at one RMS" in normalised.note
    # logits of something else than the last hidden state: neither fit, not applicable with why
    [neither] = catalogue.audit(head_toy(lambda x: np.tanh(3 * x)), only=("no_final_norm",))
    assert neither["status"] == "not applicable" and "neither of the last hidden state" in neither["why"], neither


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    """One JAX persistent compilation cache for this module's CLI runs (JAX's own env settings)."""
    return {"JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def run_check(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ablations.check", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=HANG_GUARD_S)


def table_rows(stdout: str) -> list[list[str]]:
    """The table's rows: `#  mistake  status ...` lines, split on runs of 2+ spaces."""
    return [re.split(r"\s{2,}", line) for line in stdout.splitlines() if re.match(r"\d+\s{2,}", line)]


@pytest.mark.slow
def test_cli_audits_the_lab_gpt_clear_with_identical_json(tmp_path, compile_cache):
    runs = [run_check("--json", str(tmp_path / f"{i}.json"), env=compile_cache) for i in range(2)]
    first, second = ((tmp_path / f"{i}.json").read_text() for i in range(2))
    assert first == second
    body = json.loads(first)
    assert body["factory"] == check.DEFAULT_FACTORY
    assert [list(r) for r in body["results"]] == [KEYS] * len(catalogue.MISTAKES)
    for run in runs:
        assert run.returncode == 0, run.stderr
        rows = table_rows(run.stdout)
        assert [row[1] for row in rows] == list(names_of_all())
        assert [row[2] for row in rows] == [r["status"] + " (thin margin)" * r["thin_margin"] for r in body["results"]]
    assert {r["status"] for r in body["results"]} <= {"clear", "not applicable", "not calibrated"}
    # the reported bugs' checks, a group apart (tests/test_reported_bugs.py): clear on the lab's GPT too
    assert {r["check"]: r["status"] for r in body["reported_bugs"]} == dict.fromkeys(catalogue.REPORTED_DETECTORS,
                                                                                     "clear")


@pytest.mark.slow
def test_cli_mistakes_switch_on_and_are_detected(tmp_path, compile_cache):
    # mistakes outside the forward pass: the compiled forward and decoding come from the cache of the run above
    run = run_check("--mistakes", "argmax_gradient,tiny_vocab", "--json", str(tmp_path / "out.json"),
                    env=compile_cache)
    assert run.returncode == 1, run.stderr
    statuses = {r["mistake"]: r["status"] for r in json.loads((tmp_path / "out.json").read_text())["results"]}
    assert statuses["argmax_gradient"] == statuses["tiny_vocab"] == "detected"
    assert f"2 of {len(catalogue.MISTAKES)} detected: argmax_gradient, tiny_vocab" in run.stdout


CLI_ERRORS = {
    "factory that does not import": (["no_such_module:make"], ["no_such_module", "module.path:callable"]),
    "factory that returns the wrong thing": (["builtins:dict"], ["builtins:dict", "dict", "AuditModel"]),
    "unknown mistake": (["--mistakes", "no_residuals"], ["no_residuals", "post_norm", "stale_kv_cache"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CLI_ERRORS, ids=list(CLI_ERRORS))
def test_cli_usage_error_is_one_line_and_exit_2(case):
    args, expected = CLI_ERRORS[case]
    run = run_check(*args)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert all(word in lines[0] for word in expected), lines[0]


MORE_ERRORS = {
    "no colon": (["ablations.adapters"], ["ablations.adapters", "module.path:callable"]),
    "missing callable": (["ablations.audit.adapters:nope"], ["nope", "callable"]),
    "unknown override": (["d_modell=3"], ["d_modell", "d_model"]),
    "bad override value": (["n_heads=5"], ["n_heads=5", "d_model=32"]),
    "not key=value": (["ablations.audit.adapters:lab_gpt", "deep"], ["'deep'", "key=value"]),
    "non-positive size": (["n_layers=0"], ["n_layers=0", "positive"]),
    "mistakes for a factory without them": (["ablations.audit.adapters:hf_gpt2", "--mistakes", "post_norm"],
                                            ["ablations.audit.adapters:hf_gpt2", "mistakes"]),
    "unknown flag": (["--jsn", "x"], ["--jsn"]),
}


@pytest.mark.parametrize("case", MORE_ERRORS, ids=list(MORE_ERRORS))
def test_usage_errors_in_process(case, capsys):
    args, expected = MORE_ERRORS[case]
    assert check.main(args) == check.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and all(w in lines[0] for w in expected), lines


class LenTokenizer:
    """A tokenizer that states its size only by len()."""
    unk_id = 0

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size


# the three ways a tokenizer states its size that build() reads
TOKENIZER_WAYS = {"vocab_size": lambda n: types.SimpleNamespace(vocab_size=n, unk_id=0),
                  "get_vocab_size()": lambda n: types.SimpleNamespace(get_vocab_size=lambda: n, unk_id=0),
                  "len()": LenTokenizer}


@pytest.mark.parametrize("way", TOKENIZER_WAYS)
def test_a_tokenizer_with_more_tokens_than_the_model_is_refused_in_one_line(way, capsys, monkeypatch):
    def make(vocab_size=8):  # builds nothing: build() refuses before any detector runs
        return AuditModel(forward=None, vocab_size=vocab_size, n_params=0, tokenizer=TOKENIZER_WAYS[way](10))

    monkeypatch.setitem(sys.modules, "oversized_tokenizer", types.SimpleNamespace(make=make))
    assert check.main(["oversized_tokenizer:make"]) == check.EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: factory oversized_tokenizer:make: "), lines
    assert "tokenizer states 10 tokens" in lines[0] and "vocab_size is 8" in lines[0], lines
    assert build(make, {"vocab_size": 10}, "make").vocab_size == 10  # as many tokens as the model: accepted


def test_a_tokenizer_states_the_largest_of_its_sizes():
    class Added(LenTokenizer):  # transformers' way: vocab_size leaves out added tokens, len() counts them
        vocab_size = 8

    assert tokenizer_size(Added(10)) == 10 and tokenizer_size(types.SimpleNamespace(unk_id=0)) is None


def test_unwritable_json_fails_before_the_audit(capsys, monkeypatch):
    for audit in ("audit", "full_audit"):  # the command runs full_audit (the 11 and the reported bugs' checks)
        monkeypatch.setattr(catalogue, audit, lambda *args, **kwargs: pytest.fail("audited before checking --json"))
    assert check.main(["--json", "/nonexistent/dir/out.json"]) == check.EXIT_USAGE
    assert capsys.readouterr().err.startswith("error: --json /nonexistent/dir/out.json cannot be written: no directory")


# ---------------------------------------------------------------- the calibration behind the thresholds


def test_the_catalogue_agrees_with_the_committed_calibration():
    """results/check/calibration.jsonl was measured with each detector's present threshold, every one of its decided
    readings is the status that threshold gives, and each `calibrated=` pair is its worst correct and mildest broken
    value over every architecture (to the 2-3 significant digits the catalogue writes)."""
    from ablations.calibrate import read_table

    rows = read_table(ROOT / "results" / "check" / "calibration.jsonl")
    assert {r["mistake"] for r in rows} == set(CALIBRATED)
    for mistake in CALIBRATED:
        detector, mine = catalogue.DETECTORS[mistake], [r for r in rows if r["mistake"] == mistake]
        assert {r["threshold"] for r in mine} == {detector.threshold}, mistake
        decided = [r for r in mine if r["status"] in ("clear", "detected") and r["value"] is not None]
        assert all(r["status"] == ("detected" if detector.fires(r["value"]) else "clear") for r in decided), mistake
        assert all(r["thin_margin"] == detector.thin(r["value"]) for r in decided), mistake
        correct, broken = (calibration.decided(group) for group in calibration.correct_and_broken(rows, mistake))
        nearest = ((max(correct), min(broken)) if detector.fires_above else (min(correct), max(broken)))
        assert detector.calibrated == pytest.approx(nearest, rel=0.01), mistake


def test_the_committed_calibration_has_no_false_alarm_no_miss_and_holds_leaving_out_each_architecture():
    """Over the lab's GPT and the zoo (the Hugging Face families included: the committed file was measured with the
    hf extra), at every size, dtype and seed: every correct model is clear on every detector but where its library
    builds the mistake in; every mutant is detected by its own detector; and each threshold fitted without one
    architecture classifies that architecture's models (calibration.leave_one_out)."""
    from ablations.calibrate import read_table

    rows = read_table(ROOT / "results" / "check" / "calibration.jsonl")
    architectures = calibration.architectures(rows)
    assert {"lab_gpt", "pure_jax_gpt", "parallel_gpt", "llama", "bloom"} <= set(architectures), architectures
    alarms = [r for r in rows if r["model"].startswith("correct") and r["status"] not in ("clear", "not applicable")
              and not r["built_in"]]
    assert not alarms, alarms[:3]
    misses = [r for r in rows if r["model"] == r["mistake"] and r["status"] != "detected"]
    # undecided only in bfloat16 without a float32 model, where the mistake's effect at init is within rounding
    assert all(r["status"] == "not applicable" and r["dtype"] == "bfloat16" and "rounding" in r["why"]
               for r in misses), [r for r in misses if r["dtype"] != "bfloat16" or "rounding" not in r["why"]][:3]
    for mistake, detector in catalogue.DETECTORS.items():
        for architecture in architectures:
            verdict = calibration.leave_one_out(rows, detector, mistake, architecture)
            assert verdict.startswith("holds"), (mistake, architecture, verdict)


def test_calibration_margin_is_the_nearer_side_and_the_table_flags_cross_detections():
    detector = Detector(measurements.stream_scale_spread, 0.06, fires_above=False)
    detectors = {"post_norm": detector, "no_residual": None}
    row = lambda model, value, status: {"architecture": "lab_gpt", "model": model, "mistake": "post_norm",  # noqa
                                        "value": value, "status": status, "d_model": 16, "dtype": "float32",
                                        "seed": 0, "why": "", "built_in": False}
    correct = [row("correct", 1.0, "clear"), row("correct", 0.849, "clear")]
    broken = [row("post_norm", 0.0036, "detected"), row("post_norm", 0.0041, "detected")]
    assert calibration.margin(detector, correct, broken) == "x14.2"  # 0.849 / 0.06 < 0.06 / 0.0041
    assert calibration.margin(detector, correct, [row("post_norm", 0.03, "detected")]) == "x2"  # 0.06 / 0.03
    assert calibration.margin(detector, correct, [row("post_norm", -0.2, "detected")]) == "x14.2"  # other sign: far
    text = calibration.table(correct + broken + [row("no_residual", 0.01, "detected")], detectors)
    assert "| 1 | post_norm | 0.849 .. 1 | 0.0036 .. 0.0041 | < 0.06 | x14.2 | clear 2 / detected 2 | 0.01 .. 0.01 |" \
        in text
    assert "lab_gpt: no_residual -> post_norm" in text


def test_fit_threshold_takes_the_geometric_mean_and_leaves_exact_rules_alone():
    assert calibration.fit_threshold([1.0, 4.0], [0.01, 0.0001], fires_above=False) == pytest.approx(0.1)
    assert calibration.fit_threshold([0.0], [2.0, 3.0], fires_above=True) is None  # correct exactly 0: exact rule
    assert calibration.fit_threshold([1.0], [2.0], fires_above=False) is None  # they do not separate
    assert calibration.fit_threshold([], [2.0], fires_above=True) is None
