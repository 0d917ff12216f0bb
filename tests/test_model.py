"""The GPT and its mistake switches: every test fails if its switch did nothing or the code were wrong.

Tiny configs, few distinct shapes: most forwards are [2, 12] so jit compiles are shared."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import fake_devices

from model import GPT, GPTConfig, Mistakes, generate, make_forward, names_of_all, next_token_loss

V, D, H, L, T, B = 20, 16, 2, 2, 12, 2
BASE = GPTConfig(vocab_size=V, d_model=D, n_heads=H, n_layers=L, max_len=16, position="rope")
MODEL_SIDE = ("post_norm", "no_residual", "narrow_ffn", "untied_embeddings", "no_final_norm",
              "position_overflow", "padding_mask", "stale_kv_cache")


def cfg_with(*mistakes, **changes) -> GPTConfig:
    return dataclasses.replace(BASE, mistakes=Mistakes.of(*mistakes), **changes)


@functools.lru_cache(maxsize=None)
def params_for(cfg: GPTConfig, seed: int = 0, length: int = T):
    # Eager init: its small ops compile once and are shared by every config, unlike a jitted init.
    return GPT(cfg).init(jax.random.key(seed), jnp.zeros((1, length), jnp.int32))


def forward(cfg, params, tokens, mask=None):
    return np.asarray(make_forward(cfg)(params, jnp.asarray(tokens), None if mask is None else jnp.asarray(mask)))


def n_params(cfg: GPTConfig) -> int:
    shapes = jax.eval_shape(GPT(cfg).init, jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))


def random_tokens(seed, shape=(B, T)):
    return np.random.default_rng(seed).integers(1, V, size=shape).astype(np.int32)


# ---------------------------------------------------------------- 1. parameter counts


def closed_form_count(V, d, n_layers, d_ff):
    per_layer = (d * 3 * d + 3 * d) + (d * d + d) + 2 * (2 * d) + (d * d_ff + d_ff) + (d_ff * d + d)
    return V * d + n_layers * per_layer + 2 * d  # embed, blocks, final norm; tied head adds nothing


@pytest.mark.parametrize("d,n_layers", [(16, 1), (32, 2)])
def test_param_count_matches_closed_form(d, n_layers):
    cfg = dataclasses.replace(BASE, d_model=d, n_layers=n_layers)
    assert n_params(cfg) == closed_form_count(V, d, n_layers, 4 * d)


def test_param_count_differences_of_switches():
    base, d = n_params(BASE), BASE.d_model
    assert n_params(cfg_with("narrow_ffn")) - base == -BASE.n_layers * 3 * d * (2 * d + 1)
    assert n_params(cfg_with("untied_embeddings")) - base == V * d
    assert n_params(cfg_with(position="learned")) - base == BASE.max_len * d
    # a learned table, whatever `position` says
    assert n_params(cfg_with("position_overflow")) - base == BASE.max_len * d
    for name in ("post_norm", "no_residual", "norm_wrong_axis", "padding_mask", "stale_kv_cache"):
        assert n_params(cfg_with(name)) == base, name


# ---------------------------------------------------------------- 2. causality


def prefix_and_changed_suffix(t, seed=1):
    a = random_tokens(seed, (1, T))
    b = a.copy()
    b[0, t + 1:] = (a[0, t + 1:] + 1 + np.arange(T - t - 1)) % V  # every later token changes
    assert (b[0, t + 1:] != a[0, t + 1:]).all()
    return np.concatenate([a, b])


@pytest.mark.parametrize("mistake", [None, *MODEL_SIDE])
def test_changing_later_tokens_leaves_earlier_logits_unchanged(mistake):
    cfg = cfg_with(*([mistake] if mistake else []))
    t = 5
    logits = forward(cfg, params_for(cfg), prefix_and_changed_suffix(t))
    np.testing.assert_allclose(logits[0, : t + 1], logits[1, : t + 1], atol=1e-6, rtol=0)
    assert np.abs(logits[0, t + 1:] - logits[1, t + 1:]).max() > 1e-3  # the change is visible where it may be


def test_norm_over_sequence_axis_leaks_the_future():
    cfg = cfg_with("norm_wrong_axis")
    t = 5
    logits = forward(cfg, params_for(cfg), prefix_and_changed_suffix(t))
    assert np.abs(logits[0, : t + 1] - logits[1, : t + 1]).max() > 1e-3


# ---------------------------------------------------------------- 3. left padding

PAD_LENS = (3, 7)


def left_padded(seed=2):
    """[B, T] left-padded batch (pad id 0), its mask, and each row's real tokens."""
    real = [random_tokens(seed + i, (1, T - p))[0] for i, p in enumerate(PAD_LENS)]
    tokens = np.zeros((B, T), np.int32)
    mask = np.zeros((B, T), bool)
    for i, (p, r) in enumerate(zip(PAD_LENS, real)):
        tokens[i, p:], mask[i, p:] = r, True
    return tokens, mask, real


@pytest.mark.parametrize("position", ["rope", "sinusoidal", "learned"])
def test_left_padded_rows_match_each_sequence_alone(position):
    cfg = cfg_with(position=position)
    params = params_for(cfg)
    tokens, mask, real = left_padded()
    padded = forward(cfg, params, tokens, mask)
    for i, (p, r) in enumerate(zip(PAD_LENS, real)):
        alone = forward(cfg, params, r[None])
        np.testing.assert_allclose(padded[i, p:], alone[0], atol=1e-5, rtol=0)
    assert np.isfinite(padded).all()  # pad rows attend to nothing: zeros, not NaN
    assert np.isfinite(padded[~mask]).all() and (~mask).any()


def test_without_padding_mask_padding_leaks_into_real_tokens():
    cfg = cfg_with("padding_mask")
    params = params_for(cfg)
    tokens, mask, real = left_padded()
    padded = forward(cfg, params, tokens, mask)
    assert np.isfinite(padded).all()
    for i, (p, r) in enumerate(zip(PAD_LENS, real)):
        alone = forward(cfg, params, r[None])
        assert np.abs(padded[i, p:] - alone[0]).max() > 1e-3


# ---------------------------------------------------------------- 4. KV cache

N_NEW = 4


def prompts():
    tokens = random_tokens(3, (B, 6))
    mask = np.ones((B, 6), bool)
    mask[0, :2] = False  # left padding on the first row
    tokens[~mask] = 0
    return jnp.asarray(tokens), jnp.asarray(mask)


def test_cached_generation_matches_full_recompute():
    cfg = BASE
    p, m = prompts()
    tok_c, log_c = generate(cfg, params_for(cfg), p, m, N_NEW, use_cache=True)
    tok_u, log_u = generate(cfg, params_for(cfg), p, m, N_NEW, use_cache=False)
    assert tok_c.shape == (B, N_NEW) and log_c.shape == (B, N_NEW, V)
    np.testing.assert_allclose(np.asarray(log_c), np.asarray(log_u), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(np.asarray(tok_c), np.asarray(tok_u))


def test_stale_kv_cache_diverges_from_full_recompute():
    cfg = cfg_with("stale_kv_cache")
    p, m = prompts()
    _, log_c = generate(cfg, params_for(cfg), p, m, N_NEW, use_cache=True)
    _, log_u = generate(cfg, params_for(cfg), p, m, N_NEW, use_cache=False)
    assert np.abs(np.asarray(log_c) - np.asarray(log_u)).max() > 1e-3


# ---------------------------------------------------------------- 5. learned table past its length


def test_learned_table_refuses_longer_input():
    cfg = cfg_with(position="learned", max_len=8)
    params = params_for(cfg, length=8)
    assert forward(cfg, params, np.zeros((1, 8), np.int32)).shape == (1, 8, V)  # at the table's length: fine
    with pytest.raises(ValueError) as err:
        forward(cfg, params, np.zeros((1, 12), np.int32))
    msg = str(err.value)
    assert "12" in msg and "max_len=8" in msg
    for choice in ("rope", "sinusoidal", "position_overflow"):
        assert choice in msg
    assert "\n" not in msg


def test_learned_table_init_refuses_longer_input():
    cfg = cfg_with(position="learned", max_len=8)
    with pytest.raises(ValueError, match="sequence length 12"):
        GPT(cfg).init(jax.random.key(0), jnp.zeros((1, 12), jnp.int32))


def test_position_overflow_clamps_to_last_row():
    cfg = cfg_with("position_overflow", max_len=8)
    params = params_for(cfg, length=8)
    logits = forward(cfg, params, random_tokens(4, (B, 12)))
    assert logits.shape == (B, 12, V) and np.isfinite(logits).all()
    tokens = jnp.full((1, 4), 5, jnp.int32)
    positions = jnp.array([[6, 7, 11, 100]], jnp.int32)
    emb = np.asarray(GPT(cfg).apply(params, tokens, positions, method=GPT.embed_tokens))[0]
    np.testing.assert_array_equal(emb[1], emb[2])  # 11 reads row 7, the last
    np.testing.assert_array_equal(emb[1], emb[3])
    assert np.abs(emb[0] - emb[1]).max() > 1e-4  # 6 and 7 are distinct rows
    table = np.asarray(params["params"]["pos_table"])
    np.testing.assert_allclose(emb[2] - emb[1], 0)
    np.testing.assert_allclose(emb[2], np.asarray(params["params"]["embed"]["embedding"])[5] + table[7], atol=1e-7)


@pytest.mark.parametrize("d", [64, pytest.param(32, marks=pytest.mark.slow)])
def test_position_codes_start_at_the_token_embeddings_scale(d):
    """At init, sinusoidal codes and the learned table both add about as much as a token embedding (norm ratio
    per position, mean over the batch, in [0.5, 2]), so mistake 7's fixes compare schemes, not amplitudes;
    RoPE adds nothing to the embeddings."""
    tokens = jnp.asarray(random_tokens(11, (8, T)))
    positions = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), tokens.shape)
    for position in ("sinusoidal", "learned", "rope"):
        cfg = cfg_with(position=position, d_model=d)
        params = params_for(cfg)
        plain = np.asarray(params["params"]["embed"]["embedding"])[np.asarray(tokens)]  # [B, T, d]
        codes = np.asarray(GPT(cfg).apply(params, tokens, positions, method=GPT.embed_tokens)) - plain
        if position == "rope":
            np.testing.assert_array_equal(codes, 0)
            continue
        ratio = (np.linalg.norm(codes, axis=-1) / np.linalg.norm(plain, axis=-1)).mean(axis=0)  # [T]
        assert ((0.5 <= ratio) & (ratio <= 2)).all(), (position, ratio)


# ---------------------------------------------------------------- 6. gradient through argmax


@pytest.mark.parametrize("argmax_gradient", [True, False])
def test_gradient_through_argmax_is_zero(argmax_gradient):
    cfg = BASE
    tokens = jnp.asarray(random_tokens(5))
    apply = GPT(cfg).apply

    def loss(params):
        logits = apply(params, tokens[:, :-1])
        return next_token_loss(logits, tokens[:, 1:], argmax_gradient=argmax_gradient)[0]

    value, grads = jax.jit(jax.value_and_grad(loss))(params_for(cfg))
    leaves = jax.tree_util.tree_leaves(grads)
    assert np.isfinite(float(value)) and leaves
    norm = float(jnp.sqrt(sum(jnp.sum(g ** 2) for g in leaves)))
    if argmax_gradient:
        assert 0.0 < float(value) <= 1.0  # a token error rate
        assert all(bool((g == 0).all()) for g in leaves)
    else:
        assert norm > 0


def test_loss_report_is_cross_entropy_either_way():
    logits = jax.random.normal(jax.random.key(1), (B, T, V))
    targets = jnp.asarray(random_tokens(6))
    obj_t, ce_t = next_token_loss(logits, targets, argmax_gradient=True)
    obj_f, ce_f = next_token_loss(logits, targets, argmax_gradient=False)
    np.testing.assert_allclose(ce_t, ce_f)
    np.testing.assert_allclose(obj_f, ce_f)
    assert abs(float(obj_t) - float(ce_t)) > 1e-3


# ---------------------------------------------------------------- 7. norm and residual switches


@pytest.mark.parametrize("mistake", ["post_norm", "no_residual", "no_final_norm"])
def test_switch_changes_logits_for_same_init(mistake):
    cfg = cfg_with(mistake)
    tokens = random_tokens(7)
    ref = forward(BASE, params_for(BASE), tokens)
    out = forward(cfg, params_for(cfg), tokens)
    assert np.isfinite(out).all()
    assert np.abs(out - ref).max() > 1e-3


def block_outputs(cfg, params, tokens):
    apply = jax.jit(functools.partial(GPT(cfg).apply, capture_intermediates=True))
    _, state = apply(params, jnp.asarray(tokens))
    inter = state["intermediates"]
    return [np.asarray(inter[f"block_{i}"]["__call__"][0][0]) for i in range(cfg.n_layers)]


def test_post_norm_normalises_residual_stream():
    tokens = random_tokens(8)
    for x in block_outputs(cfg_with("post_norm"), params_for(cfg_with("post_norm")), tokens):
        np.testing.assert_allclose(x.mean(-1), 0, atol=1e-4)
        np.testing.assert_allclose(x.std(-1), 1, atol=1e-2)
    for x in block_outputs(BASE, params_for(BASE), tokens):  # pre-norm: the stream keeps the embedding scale
        assert np.abs(x.std(-1) - 1).max() > 0.5


def zero_branch_outputs(params):
    def zero(path, leaf):
        keys = [getattr(k, "key", None) for k in path]
        return jnp.zeros_like(leaf) if ("proj" in keys or "down" in keys) else leaf
    return jax.tree_util.tree_map_with_path(zero, params)


def test_no_residual_drops_the_embedding_path():
    tokens = random_tokens(9)
    tokens[:, 1] = (tokens[:, 0] + 1) % V  # neighbouring positions hold different tokens
    params = zero_branch_outputs(params_for(BASE))
    n_zeroed = sum(int((np.asarray(a) != np.asarray(b)).any()) for a, b in
                   zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params_for(BASE))))
    assert n_zeroed == 2 * L  # the proj and down kernels (biases already zero at init)
    correct = forward(BASE, params, tokens)
    broken = forward(cfg_with("no_residual"), params, tokens)
    assert np.abs(correct - correct[:, :1]).max() > 1e-3  # logits follow the token at each position
    np.testing.assert_allclose(broken, np.broadcast_to(broken[:, :1], broken.shape), atol=1e-6)


def test_no_final_norm_has_no_final_norm_params():
    assert "norm_final" in params_for(BASE)["params"]
    assert "norm_final" not in params_for(cfg_with("no_final_norm"))["params"]


# ---------------------------------------------------------------- 8. composition


def test_switches_compose():
    names = ("post_norm", "narrow_ffn", "untied_embeddings", "no_final_norm")
    cfg = cfg_with(*names)
    assert cfg.mistakes.active() == names
    d = BASE.d_model
    expected = n_params(BASE) - L * 3 * d * (2 * d + 1) + V * d - 2 * d
    assert n_params(cfg) == expected
    params = params_for(cfg)
    assert "head" in params["params"] and "norm_final" not in params["params"]
    tokens = random_tokens(10)
    logits = forward(cfg, params, tokens)
    assert logits.shape == (B, T, V) and np.isfinite(logits).all()
    p, m = prompts()
    new, new_logits = generate(cfg, params, p, m, N_NEW)
    assert new.shape == (B, N_NEW) and np.isfinite(np.asarray(new_logits)).all()
    assert ((np.asarray(new) >= 0) & (np.asarray(new) < V)).all()


# ---------------------------------------------------------------- 9. bad configs


def one_line_error(fn, *needles):
    with pytest.raises(ValueError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def test_unknown_mistake_names_it_and_lists_choices():
    one_line_error(lambda: Mistakes.of("post_norm", "typo_mistake"), "typo_mistake", *names_of_all())


@pytest.mark.parametrize("changes,needles", [
    (dict(d_model=18, n_heads=4), ("n_heads=4", "d_model=18")),
    (dict(vocab_size=0), ("vocab_size=0",)),
    (dict(d_model=-16), ("d_model=-16",)),
    (dict(n_layers=0), ("n_layers=0",)),
    (dict(n_heads=-2), ("n_heads=-2",)),
    (dict(max_len=0), ("max_len=0",)),
    (dict(position="alibi"), ("'alibi'", "rope", "sinusoidal", "learned")),
    (dict(attention="flash"), ("'flash'", "einsum", "fused")),
])
def test_bad_config_is_one_line_value_error(changes, needles):
    one_line_error(lambda: dataclasses.replace(BASE, **changes), *needles)


def test_names_of_all_are_the_switches():
    assert names_of_all() == tuple(f.name for f in dataclasses.fields(Mistakes))
    assert set(MODEL_SIDE) <= set(names_of_all())
    assert Mistakes().active() == ()


# ---------------------------------------------------------------- 10. property


@settings(max_examples=10, deadline=None)
@given(pads=st.lists(st.integers(0, T - 1), min_size=B, max_size=B), seed=st.integers(0, 2**31 - 1))
def test_any_left_padding_matches_sequence_alone(pads, seed):
    """Reference: each row's real tokens at the start of a full-width row (by causality, the same as
    the sequence alone), so both forwards share one [B, T] shape and one compile."""
    cfg = BASE
    params = params_for(cfg)
    rng = np.random.default_rng(seed)
    real = rng.integers(1, V, size=(B, T)).astype(np.int32)
    tokens = np.zeros((B, T), np.int32)
    mask = np.zeros((B, T), bool)
    for i, p in enumerate(pads):
        tokens[i, p:], mask[i, p:] = real[i, : T - p], True
    padded = forward(cfg, params, tokens, mask)
    alone = forward(cfg, params, real, np.ones((B, T), bool))
    for i, p in enumerate(pads):
        np.testing.assert_allclose(padded[i, p:], alone[i, : T - p], atol=1e-5, rtol=0)
    assert np.isfinite(padded).all()


# ---------------------------------------------------------------- attention kernels


@pytest.mark.parametrize("full_forward,unpadded", [(True, True), (True, False), (False, False)])
def test_fused_attention_matches_the_labs_einsums_padding_and_fully_masked_rows_included(full_forward, unpadded):
    from model.gpt import attention

    q, k, v = (jax.random.normal(jax.random.key(i), (3, 7, 2, 4)) for i in range(3))
    pads = jnp.array([0, 0, 0]) if unpadded else jnp.array([0, 2, 7])  # a row of padding only: no key to see
    visible = jnp.arange(7)[None] >= pads[:, None]  # [B, S]
    causal = jnp.tril(jnp.ones((7, 7), bool)) if full_forward else jax.random.bernoulli(jax.random.key(5), 0.6, (7, 7))
    allowed = causal[None] & visible[:, None, :]  # [B, T, S]; not a full forward: any mask at all
    einsum = attention(q, k, v, allowed, "einsum")
    fused = attention(q, k, v, allowed, "fused", full_forward=full_forward, unpadded=unpadded)
    np.testing.assert_allclose(np.asarray(fused), np.asarray(einsum), atol=2e-6, rtol=0)
    assert np.all(np.asarray(fused)[~np.asarray(allowed).any(-1)] == 0) and np.abs(np.asarray(fused)).max() > 0.1


@pytest.mark.slow  # compiles the whole model twice more, and both decoders
@pytest.mark.parametrize("mistake", [None, "stale_kv_cache"])  # with and without padding; decode over S slots, or 1
def test_fused_attention_model_matches_einsum_model_forward_and_cached_decode(mistake):
    einsum_cfg = cfg_with(*([mistake] if mistake else []))
    fused_cfg = dataclasses.replace(einsum_cfg, attention="fused")
    params = params_for(einsum_cfg)  # the kernel adds no parameter: the same weights serve both
    tokens, mask = prompts()
    for pad_mask in (None, mask):
        np.testing.assert_allclose(forward(fused_cfg, params, tokens, pad_mask),
                                   forward(einsum_cfg, params, tokens, pad_mask), atol=1e-5, rtol=0)
    _, fused_logits = generate(fused_cfg, params, tokens, mask, N_NEW, use_cache=True)
    _, einsum_logits = generate(einsum_cfg, params, tokens, mask, N_NEW, use_cache=True)
    np.testing.assert_allclose(np.asarray(fused_logits), np.asarray(einsum_logits), atol=1e-4, rtol=0)


@pytest.mark.parametrize("platform,version,dtype,head_dim,lengths,masked,expected", [
    ("gpu", "cuda 12080", jnp.bfloat16, 64, (1024, 1024), False, "cudnn"),
    ("gpu", "cuda 12080", jnp.bfloat16, 64, (1024, 1024), True, "cudnn"),
    ("gpu", "cuda 12080", jnp.bfloat16, 64, (7, 7), False, "cudnn"),
    ("gpu", "cuda 12080", jnp.bfloat16, 64, (7, 7), True, None),  # cuDNN's bias needs even lengths
    ("gpu", "cuda 12080", jnp.bfloat16, 12, (8, 8), False, None),  # head size not a multiple of 8
    ("gpu", "cuda 12080", jnp.bfloat16, 256, (8, 8), False, None),  # head size past 128
    ("gpu", "cuda 12080", jnp.float32, 64, (8, 8), False, None),  # cuDNN's fused attention is 16-bit only
    ("gpu", "rocm 6.3", jnp.bfloat16, 64, (8, 8), False, None),  # an AMD GPU: no cuDNN
    ("cpu", "cpu", jnp.bfloat16, 64, (8, 8), False, None), ("tpu", "TFRT TPU", jnp.bfloat16, 64, (8, 8), False, None),
])
def test_fused_attention_asks_for_cudnn_only_where_it_runs(monkeypatch, platform, version, dtype, head_dim, lengths,
                                                          masked, expected):
    from model import gpt

    monkeypatch.setattr(gpt.jax, "devices", fake_devices(platform, version))
    assert gpt.fused_kernel(dtype, head_dim, lengths, masked) == expected


@pytest.mark.parametrize("capability,expected", [("7.0", None), ("7.5", None), ("8.0", "cudnn"), ("9.0", "cudnn"),
                                                 ("10.0", "cudnn")])
def test_cudnn_flash_attention_only_from_ampere_on(monkeypatch, capability, expected):
    from model import gpt

    monkeypatch.setattr(gpt.jax, "devices", fake_devices("gpu", "cuda 12080", capability))  # V100, T4, A100, ...
    assert gpt.fused_kernel(jnp.bfloat16, 64, (1024, 1024), masked=False) == expected


def test_training_gives_the_fused_call_no_mask_of_ours_padding_a_mask_and_decode_no_causal_flag(monkeypatch):
    """What the model tells the fused call, recorded: the fast path (no mask, cuDNN's own causal mask) is what a
    training batch takes, or the outputs alone could not tell it was lost."""
    from model import gpt

    calls, real = [], gpt.jax.nn.dot_product_attention

    def recorder(q, k, v, mask=None, is_causal=False, implementation=None):
        calls.append((mask is None, is_causal))
        return real(q, k, v, mask=mask, is_causal=is_causal, implementation=implementation)

    monkeypatch.setattr(gpt.jax.nn, "dot_product_attention", recorder)
    cfg = dataclasses.replace(BASE, attention="fused")
    params, (tokens, mask) = params_for(BASE), prompts()
    cache = gpt.init_cache(cfg, B, tokens.shape[1])  # for one decode step, at key slot 2
    for call in (lambda: GPT(cfg).apply(params, tokens), lambda: GPT(cfg).apply(params, tokens, mask),
                 lambda: GPT(cfg).apply(params, tokens[:, 2], jnp.full((B,), 2), 2, mask, cache, method=GPT.decode)):
        jax.eval_shape(call)  # traced afresh, nothing compiled or run
    assert calls == [(True, True)] * L + [(False, True)] * L + [(False, False)] * L  # decode: its mask alone
