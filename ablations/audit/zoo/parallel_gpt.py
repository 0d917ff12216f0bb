"""A GPT in Flax NNX with parallel attention and FFN (GPT-J / PaLM), written apart from the lab's model/gpt.py and
from ablations/audit/zoo/pure_jax_gpt.py, in other conventions on purpose, for auditing the audit:

    lab's GPT (model/gpt.py)        pure_jax_gpt                   this one
    Flax linen                      jax.numpy, no Flax             Flax NNX (objects; nnx.split / nnx.merge)
    sequential sublayers            sequential sublayers           parallel: x + attn(ln(x)) + ffn(ln(x)), one
                                                                     LayerNorm per block feeding both branches
    LayerNorm, biases               RMSNorm, no biases             LayerNorm (scale and bias), biases everywhere
    GELU FFN, 4d                    SwiGLU FFN, ~8d/3              exact (erf) GELU FFN, 4d
    multi-head attention            grouped-query (4 q, 2 kv)      multi-query (4 query heads, 1 key/value head)
    RoPE / sinusoidal / clamped     learned table, raises past     ALiBi: no position table at all; a bias
      learned table                   max_len                        -slope_h * (query slot - key slot)
    N(0, 0.02) everywhere           fan-in N(0, 1/fan_in)          GPT-NeoX: small_init N(0, 2/(5d)) for the
                                                                     embedding and input projections, wang_init
                                                                     std 2/(n_layers sqrt(d)) for output ones
    decode from the first slot      prefill, then a cache of       prefill, then a cache of the one key/value
                                      the kv heads                   head, its bias rebuilt for each slot

Tied embeddings by default. Each plantable mistake is one tagged line (`# Mistake N: name`) beside the correct
code, switched on by the factory's `mistakes`. "post_norm" in a parallel block is the norm after the residual add,
x = ln(x + attn(x) + ffn(x)). position_overflow cannot be planted: there is no position table to overflow or clamp
(ALiBi extrapolates past max_len by design; max_len is only the declared training length), so the factory refuses
it (NOT_PLANTABLE). `python -m ablations.check ablations.audit.zoo.parallel_gpt:factory` audits it;
`mistakes=post_norm` plants one.

Shapes: B batch, T time, S key slots, D d_model, H query heads, K head size, F FFN hidden, V vocab.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ablations.audit.adapters import tokenizer_for
from ablations.audit.interface import AuditModel
from ablations.audit.numerics import FAST_COMPILE
from ablations.runner.schema import DataSection

from .arguments import check_sizes, split_names

ALL_MISTAKES = ("post_norm", "no_residual", "narrow_ffn", "untied_embeddings", "norm_wrong_axis", "no_final_norm",
                "position_overflow", "padding_mask", "argmax_gradient", "tiny_vocab", "stale_kv_cache")
NOT_PLANTABLE = {"position_overflow": "ALiBi has no position table to overflow or clamp; past max_len the model "
                                      "extrapolates by design"}
MISTAKES = tuple(m for m in ALL_MISTAKES if m not in NOT_PLANTABLE)
# what the module itself holds (its graph): the other three live in the objective, the tokenizer and the decoder,
# so their mutants share the correct model's graph and compiled functions
MODULE_MISTAKES = frozenset({"post_norm", "no_residual", "narrow_ffn", "untied_embeddings", "norm_wrong_axis",
                             "no_final_norm", "padding_mask"})
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE, static_argnums=0)  # the graph is static
MASKED = -1e30  # a masked attention score: finite, so a query that sees no key gets a uniform row, not NaN


def small_init(d_model: int):
    return nnx.initializers.normal(math.sqrt(2 / (5 * d_model)))


def wang_init(d_model: int, n_layers: int):
    return nnx.initializers.normal(2 / (n_layers * math.sqrt(d_model)))


def alibi_slopes(n_heads: int) -> np.ndarray:
    """One slope per head, 2^(-8 h / H) for h = 1 .. H (Press et al.)."""
    return 2.0 ** (-8.0 * np.arange(1, n_heads + 1) / n_heads)


# ---------------------------------------------------------------- the network


class MultiQueryAttention(nnx.Module):
    """H query heads read one shared key/value head."""

    def __init__(self, d_model: int, n_heads: int, n_layers: int, rngs: nnx.Rngs):
        self.n_heads, self.head = n_heads, d_model // n_heads
        self.query = nnx.Linear(d_model, d_model, kernel_init=small_init(d_model), rngs=rngs)
        self.key_value = nnx.Linear(d_model, 2 * self.head, kernel_init=small_init(d_model), rngs=rngs)
        self.out = nnx.Linear(d_model, d_model, kernel_init=wang_init(d_model, n_layers), rngs=rngs)

    def __call__(self, h, bias, cache=None, slot=None, stale: bool = False):
        """h [B, T, D], bias [B, H, T, S] (ALiBi and the mask) -> (out [B, T, D], the keys and values [B, S, K]
        to keep). With a cache (decoding, T = 1) the token's key and value go into it at `slot` first."""
        b, t, _ = h.shape
        q = self.query(h).reshape(b, t, self.n_heads, self.head)
        k, v = jnp.split(self.key_value(h), 2, axis=-1)  # [B, T, K] each
        kept = (k, v)
        if cache is not None:
            k, v = cache[0].at[:, slot].set(k[:, 0]), cache[1].at[:, slot].set(v[:, 0])
            kept = cache if stale else (k, v)  # Mistake 11: stale_kv_cache, the cache is not updated
        scores = jnp.einsum("bthk,bsk->bhts", q, k) / math.sqrt(self.head) + bias
        weights = jax.nn.softmax(scores, axis=-1)
        return self.out(jnp.einsum("bhts,bsk->bthk", weights, v).reshape(b, t, -1)), kept


class ParallelBlock(nnx.Module):
    def __init__(self, d_model: int, n_heads: int, n_layers: int, planted: frozenset, rngs: nnx.Rngs):
        hidden = d_model if "narrow_ffn" in planted else 4 * d_model  # Mistake 3: narrow_ffn, hidden = d_model
        axis = -2 if "norm_wrong_axis" in planted else -1  # Mistake 5: norm_wrong_axis, statistics over the sequence
        self.norm = nnx.LayerNorm(d_model, reduction_axes=axis, epsilon=1e-5, rngs=rngs)
        self.attention = MultiQueryAttention(d_model, n_heads, n_layers, rngs)
        self.up = nnx.Linear(d_model, hidden, kernel_init=small_init(d_model), rngs=rngs)
        self.down = nnx.Linear(hidden, d_model, kernel_init=wang_init(d_model, n_layers), rngs=rngs)
        self.planted = planted

    def __call__(self, x, bias, cache=None, slot=None, stale: bool = False):
        """x [B, T, D] -> (x + attn(ln(x)) + ffn(ln(x)), the attention's keys and values)."""
        h = x if "post_norm" in self.planted else self.norm(x)
        attended, kept = self.attention(h, bias, cache, slot, stale)
        branches = attended + self.down(jax.nn.gelu(self.up(h), approximate=False))
        if "post_norm" in self.planted:
            return self.norm(x + branches), kept  # Mistake 1: post_norm, the norm after the residual add
        return (branches if "no_residual" in self.planted else x + branches), kept  # Mistake 2: no_residual


class ParallelGPT(nnx.Module):
    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, planted: frozenset,
                 rngs: nnx.Rngs):
        self.n_heads, self.planted = n_heads, planted
        self.embed = nnx.Embed(vocab_size, d_model, embedding_init=small_init(d_model), rngs=rngs)
        self.blocks = nnx.List([ParallelBlock(d_model, n_heads, n_layers, planted, rngs) for _ in range(n_layers)])
        axis = -2 if "norm_wrong_axis" in planted else -1  # Mistake 5: norm_wrong_axis (the final norm too)
        self.final_norm = nnx.LayerNorm(d_model, reduction_axes=axis, epsilon=1e-5, rngs=rngs)
        self.unembed = nnx.Linear(d_model, vocab_size, use_bias=False, kernel_init=small_init(d_model), rngs=rngs) \
            if "untied_embeddings" in planted else None  # Mistake 4: untied_embeddings, a separate output matrix

    def bias(self, key_mask, query_slots):
        """key_mask [B, S] (True = real), query_slots [T] -> [B, H, T, S]: ALiBi's -slope * distance where a query
        may see a key (causal, real), MASKED elsewhere."""
        distance = query_slots[:, None] - jnp.arange(key_mask.shape[1])[None]  # [T, S]
        visible = jnp.ones_like(key_mask) if "padding_mask" in self.planted else key_mask  # Mistake 8: padding_mask
        allowed = (distance >= 0)[None] & visible[:, None, :]  # [B, T, S]
        alibi = -jnp.asarray(alibi_slopes(self.n_heads), jnp.float32)[:, None, None] * distance  # [H, T, S]
        return jnp.where(allowed[:, None], alibi[None], MASKED)

    def stream(self, tokens, mask):
        """tokens, mask [B, T] -> (the residual stream after each block [B, T, D], each block's keys and values)."""
        bias = self.bias(mask, jnp.arange(tokens.shape[1]))
        x, states, kept = self.embed(tokens), [], []
        for block in self.blocks:
            x, kv = block(x, bias, None)
            states.append(x)
            kept.append(kv)
        return states, kept

    def logits(self, x):
        if "no_final_norm" not in self.planted:  # Mistake 6: no_final_norm
            x = self.final_norm(x)
        return self.unembed(x) if self.unembed is not None else self.embed.attend(x)

    def __call__(self, tokens, mask):
        return self.logits(self.stream(tokens, mask)[0][-1])

    def decode(self, token, slot, key_mask, caches, stale: bool):
        """One token per row into cache slot `slot`: token [B], key_mask [B, S] -> (logits [B, V], the caches)."""
        bias = self.bias(key_mask, jnp.full((1,), slot))
        x, kept = self.embed(token[:, None]), []
        for block, cache in zip(self.blocks, caches):
            x, kv = block(x, bias, cache, slot, stale)
            kept.append(kv)
        return self.logits(x)[:, 0], kept


# ---------------------------------------------------------------- compiled, over (graph, state)


@jit
def forward(graph, state, tokens, mask):
    return nnx.merge(graph, state)(tokens, mask)


@jit
def hidden_states(graph, state, tokens):
    return nnx.merge(graph, state).stream(tokens, jnp.ones(tokens.shape, bool))[0]


@jit
def prefill(graph, state, tokens, mask):
    model = nnx.merge(graph, state)
    states, kept = model.stream(tokens, mask)
    return model.logits(states[-1][:, -1:])[:, 0], kept


@functools.partial(jax.jit, compiler_options=FAST_COMPILE, static_argnums=(0, 6))
def decode_step(graph, state, token, slot, key_mask, caches, stale: bool):
    return nnx.merge(graph, state).decode(token, slot, key_mask, caches, stale)


def generate(graph, state, prompts, prompt_mask, n_new: int, use_cache: bool, stale: bool):
    """Greedy decoding from left-padded prompts [B, P] -> (new tokens [B, n_new], the logits that chose them
    [B, n_new, V]): prefill and a cache of the key/value head, or (use_cache False) a full forward each step."""
    prompts, mask = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_mask, bool)
    batch, width = prompts.shape
    tokens = jnp.concatenate([prompts, jnp.zeros((batch, n_new), jnp.int32)], axis=1)
    full_mask = jnp.concatenate([mask, jnp.ones((batch, n_new), bool)], axis=1)
    if use_cache:
        step_logits, kept = prefill(graph, state, prompts, mask)
        caches = [tuple(jnp.pad(a, ((0, 0), (0, n_new), (0, 0))) for a in kv) for kv in kept]  # [B, P + n_new, K]
    chosen, steps = [], []
    for i in range(n_new):
        if not use_cache:
            step_logits = forward(graph, state, tokens, full_mask)[:, width - 1 + i]
        elif i:
            step_logits, caches = decode_step(graph, state, chosen[-1], width + i - 1, full_mask, caches, stale)
        steps.append(step_logits)
        chosen.append(jnp.argmax(step_logits, axis=-1).astype(jnp.int32))
        tokens = tokens.at[:, width + i].set(chosen[-1])
    return jnp.stack(chosen, axis=1), jnp.stack(steps, axis=1)


@functools.cache
def objective(graph, argmax_gradient: bool):
    """(state, tokens [B, T]) -> mean next-token cross-entropy (Mistake 9: the token error rate)."""
    def loss(state, tokens):
        logits = nnx.merge(graph, state)(tokens[:, :-1], jnp.ones(tokens[:, :-1].shape, bool))
        if argmax_gradient:  # Mistake 9: argmax_gradient, the token error rate as the objective
            return (jnp.argmax(logits, axis=-1) != tokens[:, 1:]).astype(jnp.float32).mean()
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    return loss


# ---------------------------------------------------------------- the factory


def names_of(mistakes) -> frozenset:
    names = split_names(mistakes)
    for name in names:
        if name in NOT_PLANTABLE:
            raise ValueError(f"{name} cannot be planted in parallel_gpt: {NOT_PLANTABLE[name]}")
        if name not in MISTAKES:
            raise ValueError(f"unknown mistake {name!r}; valid choices: {', '.join(MISTAKES)}")
    return frozenset(names)


def factory(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_layers: int = 2, max_len: int = 32,
            seed: int = 0, mistakes=(), dtype: str = "float32") -> AuditModel:
    """The parallel NNX GPT at random initialisation, as the audit sees it; `mistakes`: names to plant (a sequence
    or set, or one comma-separated string). max_len: the declared training length (ALiBi has no table)."""
    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len)
    planted = names_of(mistakes)
    model = ParallelGPT(vocab_size, d_model, n_heads, n_layers, planted & MODULE_MISTAKES, nnx.Rngs(seed))
    graph, state = nnx.split(model)
    state = jax.tree.map(lambda leaf: leaf.astype(jnp.dtype(dtype)), state)  # parameters in dtype (ALiBi's in float32)
    known = DataSection.tiny_vocab_size if "tiny_vocab" in planted else vocab_size  # Mistake 10: tiny_vocab
    stale = "stale_kv_cache" in planted

    def model_forward(tokens, pad_mask):
        tokens = jnp.asarray(tokens, jnp.int32)
        mask = jnp.ones(tokens.shape, bool) if pad_mask is None else jnp.asarray(pad_mask, bool)
        return forward(graph, state, tokens, mask)

    return AuditModel(
        forward=model_forward, vocab_size=vocab_size,
        n_params=int(sum(np.size(leaf) for leaf in jax.tree.leaves(state))), params=state,
        loss=objective(graph, "argmax_gradient" in planted),
        generate=lambda prompts, mask, n_new, use_cache: generate(graph, state, prompts, mask, n_new, use_cache,
                                                                  stale),
        hidden_states=lambda tokens: hidden_states(graph, state, jnp.asarray(tokens, jnp.int32)),
        tokenizer=tokenizer_for(known), max_len=max_len,
        optimizer=optax.adamw(1e-3, weight_decay=0.1, mask=matrices))  # decays the kernels and the embedding


def matrices(tree):
    """AdamW's decay mask: the weight matrices (and the embedding table), not the LayerNorms' scales and biases nor
    the dense layers' biases."""
    return jax.tree.map(lambda leaf: leaf.ndim >= 2, tree)
