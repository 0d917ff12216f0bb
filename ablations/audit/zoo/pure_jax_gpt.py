"""A GPT in pure JAX (jax.numpy and jax.random, jit; no Flax; optax only for the optimizer it gives the audit),
written apart from the lab's model/gpt.py and in other conventions on purpose, for auditing the audit:

    lab's GPT (model/gpt.py)              this one
    biases in every dense layer           no biases anywhere
    LayerNorm (scale and bias)            RMSNorm (gain only)
    GELU FFN, d_ff = 4 d                  SwiGLU FFN, hidden ~ 8 d / 3 (a multiple of 8)
    multi-head attention                  grouped-query attention (4 query heads share 2 key/value heads)
    RoPE (or sinusoidal, or a clamped     a learned position table that raises past max_len
      learned table)
    N(0, 0.02) for every weight           fan-in init: N(0, 1/fan_in) for projections, N(0, 1/d) for the tables
    decode: one token at a time from      prefill the prompt in one forward, then decode one token at a time
      the first slot, in one scan           with a cache of the key/value heads

Each of the catalogue's 11 mistakes is one tagged line (`# Mistake N: name`) beside the correct code, switched on
by the factory's `mistakes`. `python -m ablations.check ablations.audit.zoo.pure_jax_gpt:factory` audits it;
`mistakes=post_norm` plants one. Apart from them, `bugs` plants the negative controls of the bugs
people report (ablations/catalogue/reported_bugs.py), each tagged `# Reported bug: ...` beside the correct code:
`bugs=dropout_in_eval` plants one.

Shapes: B batch, T time, S key slots, D d_model, H query heads, G key/value heads, K head size, F FFN hidden, V vocab.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import data as data_lib
from ablations.audit.interface import AuditModel
from ablations.audit.numerics import FAST_COMPILE
from ablations.runner.schema import DataSection

from .arguments import check_sizes, split_names

MISTAKES = ("post_norm", "no_residual", "narrow_ffn", "untied_embeddings", "norm_wrong_axis", "no_final_norm",
            "position_overflow", "padding_mask", "argmax_gradient", "tiny_vocab", "stale_kv_cache")
# what the compiled forward reads: a mutant outside it (argmax_gradient, tiny_vocab, stale_kv_cache) shares the
# correct model's compiled forward; the shape-changing ones (narrow_ffn, untied_embeddings) show in the params
FORWARD_MISTAKES = frozenset({"post_norm", "no_residual", "norm_wrong_axis", "no_final_norm", "position_overflow",
                              "padding_mask"})
# the reported bugs' negative controls (ablations/catalogue/reported_bugs.py), by where they sit: the compiled forward
# (which the loss and the decoder's prefill run too), the cached decoder, the objective; dropout_in_eval lives in the
# factory's forward and decay_everything in its optimizer
FORWARD_BUGS = frozenset({"bidirectional_mask", "causal_mask_off_by_one", "left_padding_positions",
                          "batch_statistics"})
DECODE_BUGS = frozenset({"shared_cache_position", "top_left_causal_decode"})
LOSS_BUGS = frozenset({"labels_unshifted", "labels_shifted_twice"})
BUGS = tuple(sorted(FORWARD_BUGS | DECODE_BUGS | LOSS_BUGS | {"dropout_in_eval", "decay_everything"}))
DROPOUT = 0.1  # the rate training would drop at; evaluation, all the audit calls, runs without dropout
LEARNING_RATE, WEIGHT_DECAY = 1e-3, 0.1  # the optimizer the factory gives: AdamW decaying the matrices and tables
# XLA's backend optimisations off, as the audit compiles (ablations.audit.numerics): each function here runs a handful
# of times on tiny batches, so compiling dominates; ~3x faster compiles on a CPU, equal results up to float32 rounding
jit = functools.partial(jax.jit, compiler_options=FAST_COMPILE, static_argnames="spec")
EPS = 1e-6
MASKED = -1e30  # a masked attention score: finite, so a query that sees no key gets a uniform row, not NaN


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the compiled functions read besides the params (a static argument of jit)."""
    n_heads: int
    n_kv_heads: int
    max_len: int
    mistakes: frozenset = frozenset()
    bugs: frozenset = frozenset()  # reported bugs' controls planted

    def has(self, name: str) -> bool:
        return name in self.mistakes

    def bug(self, name: str) -> bool:
        return name in self.bugs

    def only(self, names, bugs=()) -> "Spec":
        """The mistakes among `names` and the bugs among `bugs`: what one compiled function reads."""
        return dataclasses.replace(self, mistakes=self.mistakes & frozenset(names), bugs=self.bugs & frozenset(bugs))


# ---------------------------------------------------------------- parameters


def ffn_hidden(d_model: int) -> int:
    """SwiGLU's hidden width: 8 d / 3 (three matrices hold what two of 4 d would), rounded up to a multiple of 8."""
    return 8 * math.ceil(d_model / 3)


def init_params(key, vocab_size: int, d_model: int, n_heads: int, n_kv_heads: int, n_layers: int, max_len: int,
                mistakes: frozenset) -> dict:
    head = d_model // n_heads
    hidden = d_model if "narrow_ffn" in mistakes else ffn_hidden(d_model)  # Mistake 3: narrow_ffn, hidden = d_model
    keys = iter(jax.random.split(key, 3 + 7 * n_layers))

    def dense(fan_in: int, fan_out: int):  # no bias: a [fan_in, fan_out] matrix, N(0, 1/fan_in)
        return jax.random.normal(next(keys), (fan_in, fan_out)) / math.sqrt(fan_in)

    def table(rows: int):
        return jax.random.normal(next(keys), (rows, d_model)) / math.sqrt(d_model)

    params = {"embed": table(vocab_size), "positions": table(max_len), "final_gain": jnp.ones(d_model), "blocks": [
        {"attn_gain": jnp.ones(d_model), "q": dense(d_model, n_heads * head), "k": dense(d_model, n_kv_heads * head),
         "v": dense(d_model, n_kv_heads * head), "out": dense(n_heads * head, d_model),
         "ffn_gain": jnp.ones(d_model), "gate": dense(d_model, hidden), "up": dense(d_model, hidden),
         "down": dense(hidden, d_model)} for _ in range(n_layers)]}
    if "untied_embeddings" in mistakes:
        params["unembed"] = dense(d_model, vocab_size)  # Mistake 4: untied_embeddings, a separate output matrix
    return params


# ---------------------------------------------------------------- the network


def rms_norm(x, gain, spec: Spec):
    axis = -2 if spec.has("norm_wrong_axis") else -1  # Mistake 5: norm_wrong_axis, statistics over the sequence
    axis = (0, axis) if spec.bug("batch_statistics") else axis  # Reported bug: statistics over the batch too
    return x / jnp.sqrt(jnp.mean(x * x, axis=axis, keepdims=True) + EPS) * gain


def softmax(scores, axis=-1):
    e = jnp.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def residual(x, gain, branch, spec: Spec):
    """One pre-norm residual sublayer, x + f(rms_norm(x)). branch: h -> (f(h), what it keeps, e.g. its keys)."""
    if spec.has("post_norm"):
        y, kept = branch(x)
        return rms_norm(x + y, gain, spec), kept  # Mistake 1: post_norm, the norm after the residual add
    y, kept = branch(rms_norm(x, gain, spec))
    return (y if spec.has("no_residual") else x + y), kept  # Mistake 2: no_residual, the block replaces x


def grouped_attention(q, k, v, allowed):
    """q [B, T, H, K], k/v [B, S, G, K], allowed [B, T, S] -> [B, T, H·K]; query head h reads key head h // (H/G)."""
    b, t, h, size = q.shape
    q = q.reshape(b, t, k.shape[2], h // k.shape[2], size)  # [B, T, G, H/G, K]
    scores = jnp.einsum("btgqk,bsgk->bgqts", q, k) / math.sqrt(size)
    weights = softmax(jnp.where(allowed[:, None, None], scores, MASKED))
    return jnp.einsum("bgqts,bsgk->btgqk", weights, v).reshape(b, t, h * size)


def block(p, x, allowed, spec: Spec, cache=None, slot=None):
    """x [B, T, D] -> (x, its keys and values [B, S, G, K] each). With a cache (decoding, T = 1) the new token's
    keys and values are written into it at `slot` and the token attends to the whole cache."""
    b, t, _ = x.shape
    head = p["q"].shape[1] // spec.n_heads

    def attention(h):
        q = (h @ p["q"]).reshape(b, t, spec.n_heads, head)
        k, v = ((h @ p[name]).reshape(b, t, spec.n_kv_heads, head) for name in ("k", "v"))
        if cache is None:
            return grouped_attention(q, k, v, allowed) @ p["out"], (k, v)
        k_all, v_all = cache[0].at[:, slot].set(k[:, 0]), cache[1].at[:, slot].set(v[:, 0])
        kept = cache if spec.has("stale_kv_cache") else (k_all, v_all)  # Mistake 11: stale_kv_cache, not updated
        return grouped_attention(q, k_all, v_all, allowed) @ p["out"], kept

    def swiglu(h):
        gate = h @ p["gate"]
        return (gate / (1 + jnp.exp(-gate)) * (h @ p["up"])) @ p["down"], None

    x, kept = residual(x, p["attn_gain"], attention, spec)
    x, _ = residual(x, p["ffn_gain"], swiglu, spec)
    return x, kept


def check_length(length: int, spec: Spec) -> None:
    if length > spec.max_len and not spec.has("position_overflow"):  # Mistake 7: position_overflow, no check
        raise ValueError(f"{length} tokens is more than max_len={spec.max_len}, the learned position table's size")
    # (without the check, params["positions"][positions] clamps: JAX's gather clips out-of-range indices)


def embed(params, tokens, positions):
    return params["embed"][tokens] + params["positions"][positions]


def dropout(x, key):
    """Dropout at DROPOUT with a key (training), the identity without one (evaluation)."""
    if key is None:
        return x
    return jnp.where(jax.random.bernoulli(key, 1 - DROPOUT, x.shape), x / (1 - DROPOUT), 0.0)


def assuming_left_padding(mask):
    """Position ids counted as if every pad were on the left: index minus the row's number of pads."""
    return jnp.maximum(jnp.arange(mask.shape[1]) - jnp.sum(~mask, axis=1, keepdims=True), 0)


def visible_keys(mask, spec: Spec):
    return jnp.ones_like(mask) if spec.has("padding_mask") else mask  # Mistake 8: padding_mask, pads visible


def logits_of(params, x, spec: Spec):
    if not spec.has("no_final_norm"):  # Mistake 6: no_final_norm
        x = rms_norm(x, params["final_gain"], spec)
    unembed = params["unembed"] if spec.has("untied_embeddings") else params["embed"].T  # Mistake 4: untied_embeddings
    return x @ unembed


def stream(params, tokens, mask, spec: Spec, key=None):
    """tokens [B, T] int32, mask [B, T] bool (True = real token; left padding) -> (the residual stream after each
    block [B, T, D], per block (keys, values) [B, T, G, K]). key: dropout's (training; None in evaluation)."""
    check_length(tokens.shape[1], spec)
    positions = jnp.maximum(jnp.cumsum(mask, axis=1) - 1, 0)  # each row counts from its first real token
    if spec.bug("left_padding_positions"):  # Reported bug: position ids that assume padding on the left
        positions = assuming_left_padding(mask)
    causal = jnp.tril(jnp.ones((tokens.shape[1],) * 2, bool))
    causal = jnp.ones_like(causal) if spec.bug("bidirectional_mask") else causal  # Reported bug: bidirectional mask
    if spec.bug("causal_mask_off_by_one"):  # Reported bug: the causal mask one diagonal off (sees the next token)
        causal = jnp.tril(jnp.ones_like(causal), k=1)
    allowed = causal[None] & visible_keys(mask, spec)[:, None, :]  # [B, T, S]
    x, states, kept = dropout(embed(params, tokens, positions), key), [], []
    for p in params["blocks"]:
        x, kv = block(p, x, allowed, spec)
        states.append(x)
        kept.append(kv)
    return states, kept


def run(params, tokens, mask, spec: Spec, key=None):
    """-> (logits [B, T, V], per block (keys, values)): see stream."""
    states, kept = stream(params, tokens, mask, spec, key)
    return logits_of(params, states[-1], spec), kept


@jit
def forward(params, tokens, mask, spec: Spec, key=None):
    return run(params, tokens, mask, spec, key)[0]


@jit
def hidden_states(params, tokens, spec: Spec):
    """tokens [B, T] -> the residual stream after each block [B, T, D], before the final norm."""
    return stream(params, tokens, jnp.ones(tokens.shape, bool), spec)[0]


@jit
def prefill(params, tokens, mask, spec: Spec):
    return run(params, tokens, mask, spec)


@jit
def decode_step(params, cache, token, position, slot, key_mask, spec: Spec):
    """One token per row: token, position [B]; slot: the cache slot it takes; key_mask [B, S] -> (logits [B, V],
    the cache)."""
    causal = jnp.arange(key_mask.shape[1]) <= slot  # the one query sits at `slot`: it sees every key up to it
    if spec.bug("top_left_causal_decode"):  # Reported bug: is_causal's mask aligned top-left: query 0 sees key 0
        causal = jnp.tril(jnp.ones((1, key_mask.shape[1]), bool))[0]
    allowed = (causal[None] & visible_keys(key_mask, spec))[:, None, :]  # [B, 1, S]
    x, new_cache = embed(params, token[:, None], position[:, None]), []
    for p, layer_cache in zip(params["blocks"], cache):
        x, kept = block(p, x, allowed, spec, layer_cache, slot)
        new_cache.append(kept)
    return logits_of(params, x, spec)[:, 0], new_cache


def generate(params, spec: Spec, prompts, prompt_mask, n_new: int, use_cache: bool):
    """Greedy decoding from left-padded prompts [B, P] -> (new tokens [B, n_new], the logits that chose them
    [B, n_new, V]): prefill and a KV cache, or (use_cache False) a full forward of the whole prefix each step."""
    prompts, mask = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_mask, bool)
    batch, width = prompts.shape
    check_length(width + n_new, spec)
    tokens = jnp.concatenate([prompts, jnp.zeros((batch, n_new), jnp.int32)], axis=1)
    full_mask = jnp.concatenate([mask, jnp.ones((batch, n_new), bool)], axis=1)
    if use_cache:
        logits, kept = prefill(params, prompts, mask, spec)
        step_logits = logits[:, -1]
        pad = ((0, 0), (0, n_new), (0, 0), (0, 0))
        cache = [(jnp.pad(k, pad), jnp.pad(v, pad)) for k, v in kept]  # [B, P + n_new, G, K]
        first_new = mask.sum(axis=1).astype(jnp.int32)  # the position of the first new token
    chosen, steps, recompute = [], [], spec.only(FORWARD_MISTAKES, FORWARD_BUGS)
    for i in range(n_new):
        if not use_cache:
            step_logits = forward(params, tokens, full_mask, recompute)[:, width - 1 + i]
        elif i:
            position = first_new + i - 1  # each row's own: its real tokens so far
            if spec.bug("shared_cache_position"):  # Reported bug: the shared cache position as every row's position
                position = jnp.full(batch, width + i - 1)
            step_logits, cache = decode_step(params, cache, chosen[-1], position, width + i - 1, full_mask, spec)
        steps.append(step_logits)
        chosen.append(jnp.argmax(step_logits, axis=-1).astype(jnp.int32))
        tokens = tokens.at[:, width + i].set(chosen[-1])
    return jnp.stack(chosen, axis=1), jnp.stack(steps, axis=1)


# ---------------------------------------------------------------- the training objective


@functools.cache
def objective(spec: Spec):
    """(params, tokens [B, T]) -> mean next-token cross-entropy: one function per spec, so that the audit's
    jit(grad(loss)) compiles once per spec, not once per seed."""
    def loss(params, tokens):
        shift = 1  # position t predicts token t + 1
        shift = 0 if spec.bug("labels_unshifted") else shift  # Reported bug: labels not shifted
        shift = 2 if spec.bug("labels_shifted_twice") else shift  # Reported bug: labels shifted twice
        targets = tokens[:, shift:]
        logits = run(params, tokens[:, :tokens.shape[1] - shift], jnp.ones(targets.shape, bool), spec)[0]  # [B, T-s, V]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - jnp.log(jnp.exp(shifted).sum(axis=-1, keepdims=True))
        per_token = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
        if spec.has("argmax_gradient"):  # Mistake 9: argmax_gradient, the token error rate as the objective
            per_token = (jnp.argmax(logits, axis=-1) != targets).astype(jnp.float32)
        return per_token.mean()
    return loss


# ---------------------------------------------------------------- the tokenizer and the factory


@functools.cache
def tokenizer(size: int):
    """A character tokenizer of `size` ids (<unk> = 0) fitted on the lab's embedded Shakespeare text."""
    return data_lib.make_tokenizer("char", data_lib.load_text("shakespeare"), size)


def names_of(mistakes, valid=MISTAKES, what: str = "mistake") -> frozenset:
    names = split_names(mistakes)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; valid choices: {', '.join(valid)}")
    return frozenset(names)


def factory(vocab_size: int = 96, d_model: int = 32, n_heads: int = 4, n_kv_heads: int = 2, n_layers: int = 2,
            max_len: int = 32, seed: int = 0, mistakes=(), bugs=(), dtype: str = "float32") -> AuditModel:
    """The pure-JAX GPT at random initialisation, as the audit sees it; `mistakes`: names to plant (a sequence or
    set, or one comma-separated string); `bugs`: the reported bugs' negative controls to plant (BUGS), likewise."""
    check_sizes(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_kv_heads=n_kv_heads, n_layers=n_layers,
                max_len=max_len)
    if n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must divide n_heads={n_heads}")
    planted, planted_bugs = names_of(mistakes), names_of(bugs, BUGS, "bug")
    spec = Spec(n_heads, n_kv_heads, max_len, planted, planted_bugs)
    params = init_params(jax.random.key(seed), vocab_size, d_model, n_heads, n_kv_heads, n_layers, max_len, planted)
    params = jax.tree.map(lambda leaf: leaf.astype(jnp.dtype(dtype)), params)  # all in dtype, the computation too
    forward_spec = spec.only(FORWARD_MISTAKES, FORWARD_BUGS)
    known = DataSection.tiny_vocab_size if "tiny_vocab" in planted else vocab_size  # Mistake 10: tiny_vocab
    calls = itertools.count()  # forward calls (the dropout_in_eval control's keys)
    decayed = lambda tree: jax.tree.map(lambda leaf: leaf.ndim >= 2, tree)  # the matrices and tables, no norm gain
    decayed = None if "decay_everything" in planted_bugs else decayed  # Reported bug: weight decay on every leaf

    def model_forward(tokens, pad_mask):
        tokens = jnp.asarray(tokens, jnp.int32)
        mask = jnp.ones(tokens.shape, bool) if pad_mask is None else jnp.asarray(pad_mask, bool)
        key = None  # evaluation: no dropout
        if "dropout_in_eval" in planted_bugs:  # Reported bug: dropout active in evaluation, a new key each call
            key = jax.random.key(next(calls))
        return forward(params, tokens, mask, forward_spec, key)

    return AuditModel(
        forward=model_forward, vocab_size=vocab_size,
        n_params=int(sum(np.size(leaf) for leaf in jax.tree.leaves(params))), params=params,
        loss=objective(spec.only(FORWARD_MISTAKES | {"argmax_gradient"}, FORWARD_BUGS | LOSS_BUGS)),
        generate=lambda prompts, mask, n_new, use_cache: generate(
            params, spec.only(FORWARD_MISTAKES | {"stale_kv_cache"}, FORWARD_BUGS | DECODE_BUGS), prompts, mask, n_new,
            use_cache),
        hidden_states=lambda tokens: hidden_states(params, jnp.asarray(tokens, jnp.int32), forward_spec),
        tokenizer=tokenizer(known),
        max_len=max_len, optimizer=optax.adamw(LEARNING_RATE, weight_decay=WEIGHT_DECAY, mask=decayed))
