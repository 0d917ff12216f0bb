"""Factories that turn a model into an `ablations.audit.interface.AuditModel`: the lab's GPT (every mistake can be
switched on), any Flax linen module with `__call__(tokens, mask)`, and Hugging Face's Flax GPT-2 (optional
extra `hf`). A factory takes keyword overrides (n_layers, vocab_size, d_model, seed, ...) and returns an
AuditModel; `python -m ablations.check module.path:factory key=value ...` calls it."""
from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import data as data_lib
from ablations.audit.context import BATCH, LENGTH
from ablations.audit.interface import AuditModel
from ablations.audit.numerics import jit
from ablations.errors import UsageError
from ablations.runner import memory
from ablations.runner.schema import DataSection
from model import GPT, GPTConfig, Mistakes, generate, n_params, next_token_loss

BLOCK_NAME = re.compile(r"^(?:block|blocks|layer|layers|h)_?(\d+)$")  # top-level names of the blocks


def all_real(tokens, pad_mask):
    """None means "no padding": an all-True [B, T] mask, so one compiled forward serves both cases."""
    return jnp.ones(jnp.shape(tokens), bool) if pad_mask is None else jnp.asarray(pad_mask, bool)


def next_token_cross_entropy(logits, tokens):
    """logits [B, T, V] of tokens [B, T] -> mean cross-entropy of predicting tokens[:, 1:] from the prefix."""
    return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], tokens[:, 1:]).mean()


def is_numbered_block(module: nn.Module, method: str) -> bool:
    """A capture_intermediates filter: the __call__ of a top-level submodule named like block_3, layers_3, h_3."""
    return method == "__call__" and len(module.path) == 1 and BLOCK_NAME.match(module.path[0]) is not None


def numbered_block_outputs(module: nn.Module) -> Callable:
    """(params, tokens [B, T], mask [B, T]) -> the output of each numbered block (is_numbered_block), input to
    output, through Flax's capture_intermediates; a block that returns a tuple (x, cache) gives its first element.
    A model whose blocks have other names, or sit in an nn.scan, gives none."""
    def outputs(params, tokens, mask):
        _, state = module.apply(params, tokens, mask, capture_intermediates=is_numbered_block,
                                mutable=["intermediates"])
        captured = state.get("intermediates", {})
        found = sorted((int(BLOCK_NAME.match(name).group(1)), name) for name in captured)
        return [jax.tree.leaves(call)[0] for _, name in found for call in captured[name]["__call__"]]
    return outputs


# ---------------------------------------------------------------- (a) the lab's GPT


@functools.cache
def lab_forward(cfg: GPTConfig):
    """(params, tokens [B, T], pad_mask [B, T]) -> logits [B, T, V]: model.make_forward, compiled for an audit."""
    return jit(GPT(cfg).apply)


@functools.cache
def lab_hidden_states(cfg: GPTConfig):
    """(params, tokens [B, T]) -> each block's output [B, T, D], input to output (numbered_block_outputs: the lab's
    blocks are block_0, block_1, ...), compiled for an audit."""
    outputs = numbered_block_outputs(GPT(cfg))
    return jit(lambda params, tokens: outputs(params, tokens, jnp.ones(tokens.shape, bool)))


# model.generate's own function (jax.jit keeps it as __wrapped__), compiled for an audit (audit.FAST_COMPILE)
lab_generate = jit(generate.__wrapped__, static_argnames=("cfg", "n_new", "use_cache", "temperature"))


@functools.cache
def lab_objective(cfg: GPTConfig, argmax_gradient: bool):
    """(params, tokens [B, T]) -> the lab's training objective; one function per config, so that the audit's
    jit(grad(loss)) compiles once per config, not once per seed."""
    def objective(params, tokens):
        logits = GPT(cfg).apply(params, tokens[:, :-1])  # [B, T-1, V]
        return next_token_loss(logits, tokens[:, 1:], argmax_gradient=argmax_gradient)[0]
    return objective


@functools.cache
def tokenizer_for(vocab_size: int):
    """The lab's character tokenizer fitted on the embedded Shakespeare text with `vocab_size` ids."""
    return data_lib.make_tokenizer("char", data_lib.load_text("shakespeare"), vocab_size)


def lab_gpt(vocab_size: int = 96, d_model: int = 32, n_heads: int = 2, n_layers: int = 2, max_len: int = 32,
            position: str = "rope", dtype: str = "float32", seed: int = 0, mistakes=()) -> AuditModel:
    """The lab's GPT (`model.GPT`) at random initialisation; `mistakes`: names of model.Mistakes to switch on
    (a tuple, or one comma-separated string). Mistake 9 is read by the loss, mistake 10 by the tokenizer."""
    if isinstance(vocab_size, int) and vocab_size < 2:  # before the tokenizer and the parameters are built
        raise UsageError(f"vocab_size={vocab_size}: the audit needs at least 2 tokens (its token batches draw ids 1 "
                         "to vocab_size-1)")
    names = tuple(n for n in mistakes.split(",") if n) if isinstance(mistakes, str) else tuple(mistakes)
    switches = Mistakes.of(*names)
    cfg = GPTConfig(vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, n_layers=n_layers, max_len=max_len,
                    position=position, dtype=dtype, mistakes=switches)
    memory.check_audit(cfg, BATCH, min(LENGTH, max_len))  # before the parameters exist
    # Parameters are float32 whatever the compute dtype (GPTConfig.dtype), so one float32 init serves both and
    # its eager ops compile once per shape, not once per dtype.
    params = GPT(dataclasses.replace(cfg, dtype="float32")).init(jax.random.key(seed), jnp.zeros((1, 1), jnp.int32))
    forward = lab_forward(cfg)
    return AuditModel(
        forward=lambda tokens, pad_mask: forward(params, jnp.asarray(tokens), all_real(tokens, pad_mask)),
        vocab_size=vocab_size, n_params=n_params(params), params=params,
        loss=lab_objective(cfg, switches.argmax_gradient),
        generate=lambda prompts, mask, n_new, use_cache: lab_generate(
            cfg, params, jnp.asarray(prompts), jnp.asarray(mask), n_new, use_cache=use_cache),
        hidden_states=functools.partial(lab_hidden_states(cfg), params),
        tokenizer=tokenizer_for(DataSection.tiny_vocab_size if switches.tiny_vocab else vocab_size),  # Mistake 10
        max_len=max_len)


# ---------------------------------------------------------------- (b) any Flax linen module


def from_linen(module: nn.Module, vocab_size: int, *, seed: int = 0, loss=next_token_cross_entropy,
               hidden_states=None, tokenizer=None, max_len: int | None = None, generate=None) -> AuditModel:
    """Wrap a linen module whose `__call__(tokens [B, T] int32, mask [B, T] bool) -> logits [B, T, V]`.

    loss: (logits [B, T, V], tokens [B, T]) -> scalar, the objective you train with (default: next-token
    cross-entropy). hidden_states: (params, tokens [B, T], mask [B, T]) -> the residual stream after each block
    (default: the outputs of the top-level submodules named block_0, layers_0, h_0, ..., numbered_block_outputs;
    none found: the post-norm detector is not applicable). max_len: the training length (the size of a learned
    position table). generate: see AuditModel (a module has no standard cache interface, so the cache detector
    is "not applicable" without one)."""
    tokens = jnp.zeros((1, 2), jnp.int32)
    params = module.init(jax.random.key(seed), tokens, jnp.ones(tokens.shape, bool))
    apply, states = jit(module.apply), jit(hidden_states or numbered_block_outputs(module))
    return AuditModel(
        forward=lambda t, mask: apply(params, jnp.asarray(t), all_real(t, mask)).astype(jnp.float32),
        vocab_size=vocab_size, n_params=n_params(params), params=params,
        loss=lambda p, t: loss(module.apply(p, t, jnp.ones(t.shape, bool)).astype(jnp.float32), t),
        generate=generate, hidden_states=lambda t: states(params, jnp.asarray(t), all_real(t, None)),
        tokenizer=tokenizer, max_len=max_len)


# ---------------------------------------------------------------- (c) Hugging Face Flax GPT-2 (extra: hf)


def hf_gpt2(vocab_size: int = 96, d_model: int = 32, n_heads: int = 2, n_layers: int = 2, max_len: int = 32,
            dtype: str = "float32", seed: int = 0) -> AuditModel:
    """`transformers.FlaxGPT2LMHeadModel` from a randomly initialised `GPT2Config` (nothing is downloaded).
    Needs `pip install -e ".[hf]"` (transformers 4.x: 5.0 dropped Flax)."""
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    config = GPT2Config(vocab_size=vocab_size, n_positions=max_len, n_embd=d_model, n_layer=n_layers,
                        n_head=n_heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = FlaxGPT2LMHeadModel(config, seed=seed, dtype=jnp.dtype(dtype))
    params = {"params": hf.params}

    def positions_of(mask):  # left padding: count from the first real token
        return jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0)

    def logits_of(p, tokens, mask):  # tokens, mask [B, T] -> [B, T, V]
        return hf.module.apply(p, tokens, mask.astype(jnp.int32), positions_of(mask), deterministic=True).logits

    def states_of(p, tokens, mask):  # the stream after blocks 1 .. n-1: HF's last hidden state has ln_f applied
        return hf.module.apply(p, tokens, mask.astype(jnp.int32), positions_of(mask), deterministic=True,
                               output_hidden_states=True).hidden_states[1:-1]

    compiled, compiled_states = jit(logits_of), jit(states_of)
    return AuditModel(
        forward=lambda t, mask: compiled(params, jnp.asarray(t), all_real(t, mask)).astype(jnp.float32),
        vocab_size=vocab_size, n_params=n_params(params), params=params,
        loss=lambda p, t: next_token_cross_entropy(logits_of(p, t, jnp.ones(t.shape, bool)).astype(jnp.float32), t),
        generate=functools.partial(hf_generate, hf, compiled, params),
        hidden_states=lambda t: compiled_states(params, jnp.asarray(t), all_real(t, None)),
        max_len=max_len)


def hf_generate(hf, logits_of, params, prompts, prompt_mask, n_new: int, use_cache: bool):
    """Greedy decoding from left-padded prompts [B, P]: with Hugging Face's own KV cache
    (prepare/update_inputs_for_generation), or recomputing the whole prefix at every step (one compiled
    [B, P + n_new] forward, read at the step's slot: later slots cannot reach it through a causal mask)."""
    prompts, mask = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_mask, bool)
    batch, width = prompts.shape
    tokens = jnp.concatenate([prompts, jnp.zeros((batch, n_new), jnp.int32)], axis=1)  # [B, P + n_new]
    full_mask = jnp.concatenate([mask, jnp.ones((batch, n_new), bool)], axis=1)
    if use_cache:
        kwargs = hf.prepare_inputs_for_generation(prompts, width + n_new, mask.astype(jnp.int32))
        out = hf(prompts, params=params["params"], **kwargs)
    steps = []
    for i in range(n_new):
        step = out.logits[:, -1] if use_cache else logits_of(params, tokens, full_mask)[:, width - 1 + i]  # [B, V]
        steps.append(step)
        chosen = jnp.argmax(step, axis=-1).astype(jnp.int32)
        tokens = tokens.at[:, width + i].set(chosen)
        if use_cache and i + 1 < n_new:
            kwargs = hf.update_inputs_for_generation(out, kwargs)
            out = hf(chosen[:, None], params=params["params"], **kwargs)
    return tokens[:, width:], jnp.stack(steps, axis=1).astype(jnp.float32)
