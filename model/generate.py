"""Generation from a left-padded batch of prompts: with the KV cache, or by full recompute."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from model.config import GPTConfig
from model.gpt import GPT, init_cache, positions_from_mask


@functools.lru_cache(maxsize=None)
def make_forward(cfg: GPTConfig):
    """A jit-compiled (params, tokens [B,T], pad_mask [B,T] | None) -> logits [B,T,V]."""
    return jax.jit(GPT(cfg).apply)


@functools.partial(jax.jit, static_argnames=("cfg", "n_new", "use_cache", "temperature"))
def generate(cfg: GPTConfig, params, prompts, prompt_mask, n_new: int, *, use_cache: bool = True,
             temperature: float = 0.0, key=None):
    """prompts, prompt_mask [B, P] (left-padded; mask True = real token) ->
    (new tokens [B, n_new], the logits that chose them [B, n_new, V]).

    temperature 0 is greedy. use_cache=False recomputes the whole prefix at every step, the
    reference a cached decoder must match."""
    batch, prompt_len = prompts.shape
    length = prompt_len + n_new
    cfg.check_length(length)
    model = GPT(cfg)
    tokens = jnp.concatenate([prompts, jnp.zeros((batch, n_new), prompts.dtype)], axis=1)  # [B, S]
    mask = jnp.concatenate([prompt_mask.astype(bool), jnp.ones((batch, n_new), bool)], axis=1)
    positions = positions_from_mask(mask)
    key = jax.random.key(0) if key is None else key

    def step(carry, slot):
        tokens, cache = carry
        if use_cache:
            logits, cache = model.apply(params, tokens[:, slot], positions[:, slot], slot, mask, cache,
                                        method=GPT.decode)
        else:
            logits = model.apply(params, tokens, mask)[:, slot]
        if temperature > 0:
            chosen = jax.random.categorical(jax.random.fold_in(key, slot), logits / temperature)
        else:
            chosen = jnp.argmax(logits, axis=-1)
        is_new = slot + 1 >= prompt_len
        column = jnp.where(is_new, chosen.astype(tokens.dtype), tokens[:, slot + 1])
        return (tokens.at[:, slot + 1].set(column), cache), logits

    cache = init_cache(cfg, batch, length) if use_cache else None
    (tokens, _), logits = jax.lax.scan(step, (tokens, cache), jnp.arange(length - 1))  # logits [S-1, B, V]
    return tokens[:, prompt_len:], jnp.moveaxis(logits[prompt_len - 1:], 0, 1)
