"""Factories that turn a model into an `ablations.audit.interface.AuditModel`: the lab's GPT (every mistake can be
switched on), any Flax linen module with `__call__(tokens, mask)`, and Hugging Face's Flax causal LMs (optional
extra `hf`: `from_hf`, and GPT-2 as `hf_gpt2`). A factory takes keyword overrides (n_layers, vocab_size, d_model,
seed, ...) and returns an AuditModel; `python -m ablations.check module.path:factory key=value ...` calls it."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import re
import types
from collections.abc import Callable

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import optax

import data as data_lib
from ablations.audit.context import BATCH, LENGTH
from ablations.audit.interface import AuditModel
from ablations.audit.numerics import jit
from ablations.errors import UsageError
from ablations.runner import memory, training
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
        found = sorted((int(match.group(1)), name) for name in captured  # not what a module sows there itself
                       if (match := BLOCK_NAME.match(name)) and "__call__" in captured[name])
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
    (a tuple, or one comma-separated string). Mistake 9 is read by the loss, mistake 10 by the tokenizer. Its
    optimizer is the one the runner trains with (ablations.runner.training.optimizer at the default settings)."""
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
        max_len=max_len, optimizer=training.optimizer(training.TrainSettings()))  # the lab's: decays matrices only


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


# ---------------------------------------------------------------- (c) Hugging Face Flax causal LMs (extra: hf)


def positions_of(mask):
    """[B, T] bool -> each token's position, counted from its row's first real token (left padding)."""
    return jnp.maximum(jnp.cumsum(mask, axis=-1) - 1, 0)


def is_numbered_submodule(module: nn.Module, method: str) -> bool:
    """A capture_intermediates filter: the __call__ of a submodule named by its index, "0", "1", ... (Hugging Face's
    Flax models name their blocks so: transformer/h/0, model/layers/0, model/decoder/layers/0)."""
    return method == "__call__" and module.name is not None and module.name.isdigit()


def numbered_outputs(captured: dict) -> list:
    """Intermediates captured with is_numbered_submodule -> the output of each module of the largest numbered
    collection (the blocks), in order of their numbers; a block that returns a tuple gives its first element."""
    flat = traverse_util.flatten_dict(captured)
    collections: dict = {}
    for key in flat:
        if key[-1] == "__call__":
            collections.setdefault(key[:-2], []).append(key)
    blocks = sorted(max(collections.values(), key=len), key=lambda key: int(key[-2])) if collections else []
    return [jax.tree.leaves(flat[key])[0] for key in blocks]


def from_hf(hf, vocab_size: int, *, max_len: int | None = None, tokenizer=None, loss=next_token_cross_entropy,
            attention_mask: Callable | None = None, patch: Callable | None = None,
            hidden_states: str = "blocks") -> AuditModel:
    """Wrap a `transformers` Flax causal LM (`FlaxGPT2LMHeadModel`, `FlaxLlamaForCausalLM`, ...; transformers 4.x)
    built from a config at random initialisation: forward through its module with the mask and, where the module
    takes them, positions counted from each row's first real token; greedy decoding through Hugging Face's own
    cache (hf_generate).

    loss: (logits [B, T, V], tokens [B, T]) -> scalar (default: next-token cross-entropy). attention_mask: what
    the model is told of the padding, mask [B, T] bool -> [B, T] bool (default: the mask itself); positions and
    the decoder's cache follow it. patch: a Flax method interceptor (`flax.linen.intercept_methods`) active in
    every call of the model, to change what one of its submodules computes. hidden_states: "blocks", the output of
    every block (the submodules named "0", "1", ..., captured with Flax's capture_intermediates: the last one before
    the final norm), or "hf", Hugging Face's `output_hidden_states` less the first (the embeddings) and the last
    (the last block's output after the final norm), i.e. the outputs of blocks 1 to n-1, which leaves the final-norm
    detector nothing to read (not applicable)."""
    params = {"params": hf.params}
    told = attention_mask or (lambda mask: mask)
    takes_positions = "position_ids" in inspect.signature(hf.module.__call__).parameters

    def patched():
        return nn.intercept_methods(patch) if patch is not None else contextlib.nullcontext()

    def outputs_of(p, tokens, mask, **kwargs):  # tokens, mask [B, T] -> the module's outputs
        mask = told(mask)
        positions = {"position_ids": positions_of(mask)} if takes_positions else {}
        with patched():
            return hf.module.apply(p, input_ids=tokens, attention_mask=mask.astype(jnp.int32), deterministic=True,
                                   **positions, **kwargs)

    def logits_of(p, tokens, mask):  # [B, T] -> [B, T, V]
        return outputs_of(p, tokens, mask).logits

    def states_of(p, tokens, mask):  # -> each block's output [B, T, D], input to output
        if hidden_states == "hf":  # the stream after blocks 1 .. n-1: HF's last hidden state has the final norm
            return outputs_of(p, tokens, mask, output_hidden_states=True).hidden_states[1:-1]
        _, state = outputs_of(p, tokens, mask, capture_intermediates=is_numbered_submodule, mutable=["intermediates"])
        return numbered_outputs(state["intermediates"])

    def call(p, tokens, kwargs):  # Hugging Face's own call, as its generate makes it -> (logits, the cache)
        with patched():
            out = hf(tokens, params=p, **kwargs)
        return out.logits, out.past_key_values

    def generate(prompts, prompt_mask, n_new, use_cache):
        with patched():  # (prepare/update_inputs_for_generation may run the model too)
            return hf_generate(hf, compiled, params, prompts, told(jnp.asarray(prompt_mask, bool)), n_new, use_cache,
                               call=compiled_call)

    compiled, compiled_states, compiled_call = jit(logits_of), jit(states_of), jit(call)
    return AuditModel(
        forward=lambda t, mask: compiled(params, jnp.asarray(t), all_real(t, mask)).astype(jnp.float32),
        vocab_size=vocab_size, n_params=n_params(params), params=params,
        loss=lambda p, t: loss(logits_of(p, t, jnp.ones(t.shape, bool)).astype(jnp.float32), t),
        generate=generate, hidden_states=lambda t: compiled_states(params, jnp.asarray(t), all_real(t, None)),
        tokenizer=tokenizer, max_len=max_len)


def hf_gpt2(vocab_size: int = 96, d_model: int = 32, n_heads: int = 2, n_layers: int = 2, max_len: int = 32,
            dtype: str = "float32", seed: int = 0, n_inner: int | None = None) -> AuditModel:
    """`transformers.FlaxGPT2LMHeadModel` from a randomly initialised `GPT2Config` (nothing is downloaded); n_inner:
    the FFN's width (None: 4·d_model, GPT-2's). Needs `pip install -e ".[hf]"` (transformers 4.x: 5.0 dropped
    Flax). More Hugging Face models, with mistakes planted: ablations/audit/zoo/hf_models.py."""
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    config = GPT2Config(vocab_size=vocab_size, n_positions=max_len, n_embd=d_model, n_layer=n_layers,
                        n_head=n_heads, n_inner=n_inner, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return from_hf(FlaxGPT2LMHeadModel(config, seed=seed, dtype=jnp.dtype(dtype)), vocab_size, max_len=max_len)


def hf_generate(hf, logits_of, params, prompts, prompt_mask, n_new: int, use_cache: bool, call: Callable | None = None):
    """Greedy decoding from left-padded prompts [B, P]: with Hugging Face's own KV cache
    (prepare/update_inputs_for_generation), or recomputing the whole prefix at every step (one compiled
    [B, P + n_new] forward, read at the step's slot: later slots cannot reach it through a causal mask).
    call: (params, tokens, kwargs) -> (logits, cache) of hf(tokens, params=params, **kwargs), compiled (default:
    hf's own call, run op by op)."""
    call = call or (lambda p, t, kwargs: (lambda out: (out.logits, out.past_key_values))(hf(t, params=p, **kwargs)))
    prompts, mask = jnp.asarray(prompts, jnp.int32), jnp.asarray(prompt_mask, bool)
    batch, width = prompts.shape
    tokens = jnp.concatenate([prompts, jnp.zeros((batch, n_new), jnp.int32)], axis=1)  # [B, P + n_new]
    full_mask = jnp.concatenate([mask, jnp.ones((batch, n_new), bool)], axis=1)
    if use_cache:
        # compiled: Hugging Face builds the empty cache by initialising the whole model, which only its shapes need
        kwargs = jit(hf.prepare_inputs_for_generation, static_argnums=1)(prompts, width + n_new, mask.astype(jnp.int32))
        logits, cache = call(params["params"], prompts, kwargs)
    steps = []
    for i in range(n_new):
        step = logits[:, -1] if use_cache else logits_of(params, tokens, full_mask)[:, width - 1 + i]  # [B, V]
        steps.append(step)
        chosen = jnp.argmax(step, axis=-1).astype(jnp.int32)
        tokens = tokens.at[:, width + i].set(chosen)
        if use_cache and i + 1 < n_new:
            kwargs = hf.update_inputs_for_generation(types.SimpleNamespace(past_key_values=cache), kwargs)
            logits, cache = call(params["params"], chosen[:, None], kwargs)
    return tokens[:, width:], jnp.stack(steps, axis=1).astype(jnp.float32)
