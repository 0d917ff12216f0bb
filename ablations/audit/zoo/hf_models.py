"""Hugging Face's Flax causal LMs (transformers 4.x, the `hf` extra) at random initialisation from small configs
(nothing is downloaded), wrapped by ablations.audit.adapters.from_hf, with the catalogue's mistakes planted where
each library model allows it, for auditing the audit:

    family    block (as transformers writes it; N(0, 0.02) init)        positions            FFN
    gpt_neo   pre-LayerNorm, biases; global and local (window 8)        learned table        GELU, 4d
              attention alternating
    gptj      parallel attention + FFN from one LayerNorm, biases       partial RoPE         GELU, 4d
              (attention without)
    opt       pre-LayerNorm, biases (do_layer_norm_before: post)        learned table (+2)   ReLU, 4d
    llama     pre-RMSNorm, no biases, grouped-query attention (2 KV)    RoPE                 SwiGLU, 8d/3
    mistral   as llama, a sliding window (of max_len: no effect at the  RoPE                 SwiGLU, 8d/3
              audit's lengths); its attention projections take Flax's
              default lecun_normal init, not initializer_range
    bloom     pre-LayerNorm, biases, a LayerNorm on the embeddings      ALiBi (no table)     GELU, 4d
    gemma     pre-RMSNorm (1 + w), embeddings times sqrt(d), multi-     RoPE                 GeGLU, 8d
              query attention
    xglm      pre-LayerNorm, biases, embeddings times sqrt(d)           sinusoidal table     GELU, 4d

A mistake is planted (the factory's `mistakes`) by a config switch where the library has one (`# Mistake N` on the
config line of each family: narrow_ffn, untied_embeddings, and OPT's post_norm and no_final_norm), else by the
wrapper, one tagged line for every family in `wrap`: a Flax method interceptor on the model's own norm modules
(5: statistics over the sequence axis; 6: the final norm returns its input), what the model is told of the padding
(8), the objective (9), the tokenizer (10), a decoder that keeps handing the model the prefill's cache (11). What
cannot be planted without rewriting the library's block (post_norm but in OPT, no_residual, position_overflow,
narrow_ffn in BLOOM), or is built in (untied embeddings in GPT-J, Llama and Mistral), is refused with the reason
(NOT_PLANTABLE, NOT_PLANTABLE_IN). `how_planted(family, mistake)` gives the table docs/auditing-a-model.md shows.

`python -m ablations.check ablations.audit.zoo.hf_models:llama` audits one; `mistakes=...` plants.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from ablations.audit.adapters import from_hf, next_token_cross_entropy, tokenizer_for
from ablations.runner.schema import DataSection

from .arguments import check_sizes, split_names

MISTAKES = ("post_norm", "no_residual", "narrow_ffn", "untied_embeddings", "norm_wrong_axis", "no_final_norm",
            "position_overflow", "padding_mask", "argmax_gradient", "tiny_vocab", "stale_kv_cache")
FAMILIES = ("gpt_neo", "gptj", "opt", "llama", "mistral", "bloom", "gemma", "xglm")

# how each mistake is planted, for the table: by a config key of the family, or by the wrapper (every family)
CONFIG = {
    "narrow_ffn": {"gpt_neo": "intermediate_size=d", "gptj": "n_inner=d", "opt": "ffn_dim=d",
                   "llama": "intermediate_size=d", "mistral": "intermediate_size=d", "gemma": "intermediate_size=d",
                   "xglm": "ffn_dim=d"},
    "untied_embeddings": dict.fromkeys(("gpt_neo", "opt", "bloom", "gemma", "xglm"),
                                       "tie_word_embeddings=False"),
    "post_norm": {"opt": "do_layer_norm_before=False"},
    "no_final_norm": {"opt": "_remove_final_layer_norm=True"},
}
WRAPPER = {"norm_wrong_axis": "patch: the model's norm modules intercepted, statistics over the sequence axis",
           "no_final_norm": "patch: the final norm intercepted, returns its input",
           "padding_mask": "wrapper: attention_mask all ones (pads visible; positions count them)",
           "argmax_gradient": "wrapper: the objective is the token error rate",
           "tiny_vocab": f"wrapper: a {DataSection.tiny_vocab_size}-id character tokenizer",
           "stale_kv_cache": "patch: update_inputs_for_generation keeps the prefill's cache"}
NOT_PLANTABLE = {
    "post_norm": "the block's order is code, not config (OPT alone has the switch, do_layer_norm_before)",
    "no_residual": "the residual adds are code inside each block, with no switch and no module to intercept",
    "position_overflow": "past max_position_embeddings the causal mask (sliced from a table of that size) raises; "
                         "BLOOM has no table (ALiBi)",
}
BUILT_IN = {("gptj", "untied_embeddings"): "Flax GPT-J cannot tie: with tie_word_embeddings=True its init fails "
                                           "(its lm_head has a bias that the tied path does not supply)",
            ("llama", "untied_embeddings"): "Flax Llama has no tied head: its lm_head is always a separate Dense "
                                            "(tie_word_embeddings is ignored)",
            ("mistral", "untied_embeddings"): "Flax Mistral has no tied head: its lm_head is always a separate Dense "
                                              "(tie_word_embeddings is ignored)"}
NOT_PLANTABLE_IN = {("bloom", "narrow_ffn"): "BLOOM's FFN width is 4 * hidden_size in code, with no config key",
                    **{key: f"built in: {why}" for key, why in BUILT_IN.items()}}


def how_planted(family: str, mistake: str) -> str | None:
    """'config: key=value', 'patch: ...', 'wrapper: ...', or None (not plantable in that family)."""
    if (family, mistake) in NOT_PLANTABLE_IN:
        return None
    if family in CONFIG.get(mistake, {}):
        return f"config: {CONFIG[mistake][family]}"
    return WRAPPER.get(mistake)


def why_not(family: str, mistake: str) -> str:
    return NOT_PLANTABLE_IN.get((family, mistake)) or NOT_PLANTABLE[mistake]


def plantable(family: str) -> tuple[str, ...]:
    return tuple(m for m in MISTAKES if how_planted(family, m) is not None)


def names_of(family: str, mistakes) -> frozenset:
    names = split_names(mistakes)
    for name in names:
        if name not in MISTAKES:
            raise ValueError(f"unknown mistake {name!r}; valid choices: {', '.join(MISTAKES)}")
        if how_planted(family, name) is None:
            raise ValueError(f"{name} cannot be planted in {family}: {why_not(family, name)}")
    return frozenset(names)


# ---------------------------------------------------------------- what the wrapper plants


def token_error_rate(logits, tokens):
    """Mistake 9's objective: the share of next tokens the argmax gets wrong (piecewise constant: zero gradient)."""
    return (jnp.argmax(logits[:, :-1], axis=-1) != tokens[:, 1:]).astype(jnp.float32).mean()


def is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


def norm_over_sequence(next_fun, args, kwargs, context):
    """Mistake 5's interceptor: every norm module of the model computes its statistics over the sequence axis
    (-2) instead of the features, with its own parameters and epsilon (LayerNorm: scale, bias; Llama's and
    Mistral's RMSNorm: weight; Gemma's: 1 + weight)."""
    module = context.module
    if context.method_name != "__call__" or not is_norm(module):
        return next_fun(*args, **kwargs)
    x, p = args[0], module.variables["params"]
    if isinstance(module, nn.LayerNorm):
        x = x - x.mean(axis=-2, keepdims=True)
        return x / jnp.sqrt((x * x).mean(axis=-2, keepdims=True) + module.epsilon) * p["scale"] + p["bias"]
    gain = 1 + p["weight"] if type(module).__name__ == "FlaxGemmaRMSNorm" else p["weight"]
    return x / jnp.sqrt((x * x).mean(axis=-2, keepdims=True) + module.config.rms_norm_eps) * gain


def skipping(path: tuple[str, ...]):
    """Mistake 6's interceptor: the module at `path` (the model's final norm) returns its input."""
    def interceptor(next_fun, args, kwargs, context):
        if context.method_name == "__call__" and context.module.path == path:
            return args[0]
        return next_fun(*args, **kwargs)
    return interceptor


def chained(*interceptors):
    """One interceptor applying each of `interceptors` (the first outermost); None for none."""
    def chain(next_fun, args, kwargs, context):
        call = next_fun
        for interceptor in reversed(interceptors):
            call = (lambda inner, i: lambda *a, **k: i(inner, a, k, context))(call, interceptor)
        return call(*args, **kwargs)
    return chain if interceptors else None


class StaleCache:
    """Mistake 11's decoder: the model, whose update_inputs_for_generation hands every step the cache the prompt
    left (the prefill's) instead of the one the last step returned: each new token is written to the same slot,
    and forgotten by the next."""

    def __init__(self, hf):
        self.hf = hf

    def __getattr__(self, name):
        return getattr(self.hf, name)

    def __call__(self, *args, **kwargs):
        return self.hf(*args, **kwargs)

    def update_inputs_for_generation(self, outputs, kwargs):
        given = kwargs["past_key_values"]  # (Hugging Face's own update writes into kwargs)
        updated = self.hf.update_inputs_for_generation(outputs, kwargs)
        empty = not any(int(index) for index in jax.tree.leaves(given) if jnp.ndim(index) == 0)  # cache_index 0
        kept = outputs.past_key_values if empty else given  # after the prefill, its cache
        return {**updated, "past_key_values": kept}  # Mistake 11: stale_kv_cache, the new keys are dropped


def wrap(hf, vocab_size: int, max_len: int | None, planted: frozenset, final_norm: tuple[str, ...]):
    """The family's model as the audit sees it (from_hf), with the wrapper's mistakes planted."""
    patches = [norm_over_sequence] if "norm_wrong_axis" in planted else []  # Mistake 5: norm_wrong_axis
    if "no_final_norm" in planted and final_norm:
        patches.append(skipping(final_norm))  # Mistake 6: no_final_norm, the final norm returns its input
    known = DataSection.tiny_vocab_size if "tiny_vocab" in planted else vocab_size  # Mistake 10: tiny_vocab
    return from_hf(
        StaleCache(hf) if "stale_kv_cache" in planted else hf,  # Mistake 11: stale_kv_cache (StaleCache)
        vocab_size, max_len=max_len, tokenizer=tokenizer_for(known), patch=chained(*patches),
        loss=token_error_rate if "argmax_gradient" in planted else next_token_cross_entropy,  # Mistake 9
        attention_mask=(lambda mask: jnp.ones_like(mask)) if "padding_mask" in planted else None)  # Mistake 8


def swiglu_width(d_model: int) -> int:
    return 8 * math.ceil(d_model / 3)  # 8d/3 rounded up to a multiple of 8, as Llama sizes its gated FFN


NO_DROPOUT = {"attention_dropout": 0.0}


def rope_table(max_len: int, head_dim: int) -> int:
    """max_position_embeddings for transformers' Flax RoPE models: their sin/cos table keeps only the first
    max_position_embeddings of its 2·head_dim columns (create_sinusoidal_positions: out[:, :, :num_pos]), so a table
    shorter than 2·head_dim breaks the model. RoPE has no learned table: a longer one changes nothing within
    max_len, and max_len stays the declared training length."""
    return max(max_len, 2 * head_dim)


# ---------------------------------------------------------------- the families


def gpt_neo(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
            seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxGPTNeoForCausalLM, GPTNeoConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("gpt_neo", mistakes)
    layers = [[["global", "local"], n_layers // 2]] + ([[["global"], 1]] if n_layers % 2 else [])
    config = GPTNeoConfig(
        vocab_size=vocab_size, max_position_embeddings=max_len, hidden_size=d_model, num_layers=n_layers,
        num_heads=n_heads, attention_types=[t for t in layers if t[1]], window_size=8, embed_dropout=0.0,
        resid_dropout=0.0, attention_dropout=0.0,
        intermediate_size=d_model if "narrow_ffn" in planted else 4 * d_model,  # Mistake 3: narrow_ffn
        tie_word_embeddings="untied_embeddings" not in planted)  # Mistake 4: untied_embeddings
    return wrap(FlaxGPTNeoForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("transformer", "ln_f"))


def gptj(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
         seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxGPTJForCausalLM, GPTJConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("gptj", mistakes)
    config = GPTJConfig(
        vocab_size=vocab_size, n_positions=max_len, n_embd=d_model, n_layer=n_layers, n_head=n_heads,
        rotary_dim=d_model // n_heads // 2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        n_inner=d_model if "narrow_ffn" in planted else 4 * d_model,  # Mistake 3: narrow_ffn
        tie_word_embeddings=False)  # (BUILT_IN: True fails)
    return wrap(FlaxGPTJForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("transformer", "ln_f"))


def opt(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
        seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxOPTForCausalLM, OPTConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("opt", mistakes)
    config = OPTConfig(
        vocab_size=vocab_size, max_position_embeddings=max_len, hidden_size=d_model, word_embed_proj_dim=d_model,
        num_hidden_layers=n_layers, num_attention_heads=n_heads, dropout=0.0, attention_dropout=0.0,
        ffn_dim=d_model if "narrow_ffn" in planted else 4 * d_model,  # Mistake 3: narrow_ffn
        tie_word_embeddings="untied_embeddings" not in planted,  # Mistake 4: untied_embeddings
        do_layer_norm_before="post_norm" not in planted,  # Mistake 1: post_norm (which also drops the final norm)
        _remove_final_layer_norm="no_final_norm" in planted)  # Mistake 6: no_final_norm
    return wrap(FlaxOPTForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted - {"no_final_norm"}, ())


def llama(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
          seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxLlamaForCausalLM, LlamaConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("llama", mistakes)
    config = LlamaConfig(
        vocab_size=vocab_size, max_position_embeddings=rope_table(max_len, d_model // n_heads), hidden_size=d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads, num_key_value_heads=max(1, n_heads // 2), **NO_DROPOUT,
        intermediate_size=d_model if "narrow_ffn" in planted else swiglu_width(d_model))  # Mistake 3: narrow_ffn
    return wrap(FlaxLlamaForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("model", "norm"))


def mistral(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
            seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxMistralForCausalLM, MistralConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("mistral", mistakes)
    config = MistralConfig(
        vocab_size=vocab_size, max_position_embeddings=rope_table(max_len, d_model // n_heads), hidden_size=d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads, num_key_value_heads=max(1, n_heads // 2), sliding_window=max_len, **NO_DROPOUT,
        intermediate_size=d_model if "narrow_ffn" in planted else swiglu_width(d_model))  # Mistake 3: narrow_ffn
    return wrap(FlaxMistralForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("model", "norm"))


def bloom(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
          seed: int = 0, mistakes=(), dtype: str = "float32"):
    """max_len: the declared training length only; ALiBi has no position table and BLOOM no length limit."""
    from transformers import BloomConfig, FlaxBloomForCausalLM

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("bloom", mistakes)
    config = BloomConfig(
        vocab_size=vocab_size, hidden_size=d_model, n_layer=n_layers, n_head=n_heads, hidden_dropout=0.0,
        attention_dropout=0.0,
        tie_word_embeddings="untied_embeddings" not in planted)  # Mistake 4: untied_embeddings
    return wrap(FlaxBloomForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("transformer", "ln_f"))


def gemma(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
          seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxGemmaForCausalLM, GemmaConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("gemma", mistakes)
    config = GemmaConfig(
        vocab_size=vocab_size, max_position_embeddings=rope_table(max_len, d_model // n_heads), hidden_size=d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads, num_key_value_heads=1, head_dim=d_model // n_heads, **NO_DROPOUT,
        hidden_activation="gelu_pytorch_tanh",
        intermediate_size=d_model if "narrow_ffn" in planted else 8 * d_model,  # Mistake 3: narrow_ffn
        tie_word_embeddings="untied_embeddings" not in planted)  # Mistake 4: untied_embeddings
    return wrap(FlaxGemmaForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("model", "norm"))


def xglm(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
         seed: int = 0, mistakes=(), dtype: str = "float32"):
    from transformers import FlaxXGLMForCausalLM, XGLMConfig

    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of("xglm", mistakes)
    config = XGLMConfig(
        vocab_size=vocab_size, max_position_embeddings=max_len, d_model=d_model, num_layers=n_layers,
        attention_heads=n_heads, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        ffn_dim=d_model if "narrow_ffn" in planted else 4 * d_model,  # Mistake 3: narrow_ffn
        tie_word_embeddings="untied_embeddings" not in planted)  # Mistake 4: untied_embeddings
    return wrap(FlaxXGLMForCausalLM(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len,
                planted, ("model", "layer_norm"))
