"""A decoder-only GPT in Flax. The correct recipe is the default; each mistake is one tagged line.

Shapes: B batch, T query time, S key slots, D d_model, H heads, K head_dim, F d_ff, V vocab.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from model.config import GPTConfig

INIT_STD = 0.02  # every weight's initialisation std: embeddings, the learned position table, the dense kernels
INIT = nn.initializers.normal(stddev=INIT_STD)


def positions_from_mask(pad_mask: jax.Array) -> jax.Array:
    """[B, T] bool -> [B, T] int32: each sequence counts from its first real token (left padding)."""
    return jnp.maximum(jnp.cumsum(pad_mask, axis=-1) - 1, 0).astype(jnp.int32)


def _frequencies(dim: int) -> jax.Array:
    half = dim // 2
    return jnp.exp(-math.log(10000.0) * jnp.arange(half) / half)


def sinusoidal(positions: jax.Array, dim: int) -> jax.Array:
    """[B, T] -> [B, T, dim] fixed sin/cos position codes."""
    angles = positions[..., None] * _frequencies(dim)
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def rope(x: jax.Array, positions: jax.Array) -> jax.Array:
    """Rotate pairs of features of x [B, T, H, K] by angles set by positions [B, T]."""
    angles = positions[:, :, None, None] * _frequencies(x.shape[-1])  # [B, T, 1, K/2]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1).astype(x.dtype)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, allowed: jax.Array, kernel: str = "einsum",
              full_forward: bool = False, unpadded: bool = False) -> jax.Array:
    """q [B,T,H,K], k/v [B,S,H,K], allowed [B,T,S] -> [B,T,H,K]. A fully masked row gives zeros, not NaN.
    kernel "einsum": the lab's own two einsums (every committed result); "fused": jax.nn.dot_product_attention,
    told what the model knows of `allowed`: in a full forward (queries and keys the same positions) it lies
    within the causal mask, and without padding it is the causal mask (cuDNN then needs no mask of ours)."""
    if kernel == "fused":
        mask = None if full_forward and unpadded else allowed[:, None]
        implementation = fused_kernel(q.dtype, q.shape[-1], (q.shape[1], k.shape[1]), masked=mask is not None)
        out = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=full_forward, implementation=implementation)
    else:
        scores = jnp.einsum("bthk,bshk->bhts", q, k).astype(jnp.float32) / math.sqrt(q.shape[-1])
        scores = jnp.where(allowed[:, None], scores, -1e30)
        out = jnp.einsum("bhts,bshk->bthk", jax.nn.softmax(scores, axis=-1).astype(v.dtype), v)
    return out * allowed.any(axis=-1)[:, :, None, None].astype(out.dtype)  # zero the rows that see no key


def fused_kernel(dtype, head_dim: int, lengths: tuple[int, int], masked: bool) -> str | None:
    """cuDNN's fused (flash) attention where it runs: an NVIDIA (CUDA) GPU of compute capability 8.0 or later
    (Ampere on), bf16, a head size that is a multiple of 8 up to 128, and, with a mask (cuDNN's additive bias),
    even lengths T and S. Elsewhere None: XLA's implementation of the same call."""
    device = jax.devices()[0]
    cuda = device.platform == "gpu" and "rocm" not in device.client.platform_version.lower()
    cuda = cuda and tuple(int(n) for n in device.compute_capability.split(".")) >= (8, 0)
    shapes = head_dim % 8 == 0 and head_dim <= 128 and not (masked and any(n % 2 for n in lengths))
    return "cudnn" if cuda and jnp.dtype(dtype) == jnp.dtype(jnp.bfloat16) and shapes else None


def dense(features: int, name: str, dtype, x: jax.Array) -> jax.Array:
    """[B, T, D] -> [B, T, features] as one 2-D matmul over B·T rows (btd,df->btf): the CPU backend
    runs it ~8% faster per training step than the same contraction on 3-D operands."""
    out = nn.Dense(features, kernel_init=INIT, dtype=dtype, name=name)(x.reshape(-1, x.shape[-1]))
    return out.reshape(*x.shape[:-1], features)


def layer_norm(cfg: GPTConfig, name: str) -> nn.LayerNorm:
    axis = -2 if cfg.mistakes.norm_wrong_axis else -1  # Mistake 5: statistics over the sequence axis
    return nn.LayerNorm(reduction_axes=axis, feature_axes=-1, dtype=jnp.float32, name=name)


class SelfAttention(nn.Module):
    cfg: GPTConfig

    @nn.compact
    def __call__(self, x, positions, allowed, cache=None, slot=None, unpadded=False):
        """x [B,T,D] -> [B,T,D]; with a cache (decode), T=1 and the token sits at key slot `slot`."""
        cfg, dtype = self.cfg, jnp.dtype(self.cfg.dtype)
        qkv = dense(3 * cfg.d_model, "qkv", dtype, x)  # btd,de->bte, e = 3·H·K
        q, k, v = (a.reshape(*x.shape[:2], cfg.n_heads, cfg.head_dim) for a in jnp.split(qkv, 3, axis=-1))
        if cfg.position_kind == "rope":
            q, k = rope(q, positions), rope(k, positions)
        if cache is not None:
            cache = {name: jax.lax.dynamic_update_slice_in_dim(cache[name], new, slot, axis=1)
                     for name, new in (("k", k), ("v", v))}
            stale = cfg.mistakes.stale_kv_cache  # Mistake 11: current token's k/v only, the history dropped
            k, v, allowed = (k, v, jnp.ones_like(allowed[..., :1])) if stale else (cache["k"], cache["v"], allowed)
        out = attention(q, k, v, allowed, cfg.attention, full_forward=cache is None, unpadded=unpadded)
        return dense(cfg.d_model, "proj", dtype, out.reshape(*x.shape[:2], -1)), cache


class FeedForward(nn.Module):
    cfg: GPTConfig

    @nn.compact
    def __call__(self, x):
        dtype = jnp.dtype(self.cfg.dtype)
        h = dense(self.cfg.d_ff, "up", dtype, x)  # btd,df->btf
        return dense(self.cfg.d_model, "down", dtype, nn.gelu(h)), None


def sublayer(cfg: GPTConfig, x, branch, norm):
    """One residual sub-layer, x + f(norm(x)) in the modern recipe. Returns (x, branch's aux)."""
    m = cfg.mistakes
    y, aux = branch(x if m.post_norm else norm(x))
    x = y if m.no_residual else x + y  # Mistake 2: no residual connection
    return (norm(x) if m.post_norm else x), aux  # Mistake 1: post-norm normalises after the add


class Block(nn.Module):
    cfg: GPTConfig

    @nn.compact
    def __call__(self, x, positions, allowed, cache=None, slot=None, unpadded=False):
        attn = SelfAttention(self.cfg, name="attn")
        x, cache = sublayer(self.cfg, x, lambda h: attn(h, positions, allowed, cache, slot, unpadded),
                            layer_norm(self.cfg, "norm_attn"))
        x, _ = sublayer(self.cfg, x, FeedForward(self.cfg, name="ffn"), layer_norm(self.cfg, "norm_ffn"))
        return x.astype(jnp.dtype(self.cfg.dtype)), cache


class GPT(nn.Module):
    cfg: GPTConfig

    def setup(self):
        cfg = self.cfg
        self.embed = nn.Embed(cfg.vocab_size, cfg.d_model, embedding_init=INIT, dtype=jnp.dtype(cfg.dtype))
        if cfg.position_kind == "learned":
            self.pos_table = self.param("pos_table", INIT, (cfg.max_len, cfg.d_model))
        self.blocks = [Block(cfg, name=f"block_{i}") for i in range(cfg.n_layers)]
        self.norm_final = layer_norm(cfg, "norm_final")
        if cfg.mistakes.untied_embeddings:
            self.head = nn.Dense(cfg.vocab_size, use_bias=False, kernel_init=INIT, dtype=jnp.dtype(cfg.dtype))

    def __call__(self, tokens: jax.Array, pad_mask: jax.Array | None = None) -> jax.Array:
        """tokens [B, T] int, pad_mask [B, T] bool (True = real token) -> logits [B, T, V] float32."""
        self.cfg.check_length(tokens.shape[1])
        unpadded = pad_mask is None  # then `allowed` is the causal mask alone (a fused kernel applies its own)
        pad_mask = jnp.ones(tokens.shape, bool) if pad_mask is None else pad_mask.astype(bool)
        positions = positions_from_mask(pad_mask)
        causal = jnp.tril(jnp.ones((tokens.shape[1],) * 2, bool))  # [T, S]
        allowed = causal[None] & self.visible_keys(pad_mask)[:, None, :]  # [B, T, S]
        x = self.embed_tokens(tokens, positions)
        for block in self.blocks:
            x, _ = block(x, positions, allowed, unpadded=unpadded)
        return self.logits(x)

    def decode(self, token, position, slot, key_mask, cache):
        """One generation step. token, position [B]; slot: the key slot being written; key_mask [B, S];
        cache: per layer {"k", "v": [B, S, H, K]}. Returns logits [B, V] and the updated cache."""
        slots = jnp.arange(key_mask.shape[1])
        allowed = ((slots <= slot)[None] & self.visible_keys(key_mask.astype(bool)))[:, None, :]  # [B, 1, S]
        x = self.embed_tokens(token[:, None], position[:, None])
        new_cache = []
        for block, layer_cache in zip(self.blocks, cache):
            x, layer_cache = block(x, position[:, None], allowed, layer_cache, slot)
            new_cache.append(layer_cache)
        return self.logits(x)[:, 0], new_cache

    def visible_keys(self, pad_mask):
        # Mistake 8: one mask for the whole batch: padding is visible to every sequence (causal mask only)
        return jnp.ones_like(pad_mask) if self.cfg.mistakes.padding_mask else pad_mask

    def embed_tokens(self, tokens, positions):
        x = self.embed(tokens)  # bt -> btd
        if self.cfg.position_kind == "learned":
            # Mistake 7 runs this past the table: JAX raises no IndexError, mode="clip" makes the silent clamp explicit
            x = x + jnp.take(self.pos_table, positions, axis=0, mode="clip").astype(x.dtype)
        elif self.cfg.position_kind == "sinusoidal":
            # RMS INIT_STD (sin/cos alone: 1/sqrt(2)), the scale of the token embeddings and the learned table at init,
            # so the position scheme is compared, not its amplitude (Vaswani et al.'s sqrt(d_model) embedding scale
            # would, with the tied 0.02 init, still leave the codes ~4x larger than the tokens)
            x = x + (INIT_STD * math.sqrt(2) * sinusoidal(positions, self.cfg.d_model)).astype(x.dtype)
        return x

    def logits(self, x):
        if not self.cfg.mistakes.no_final_norm:  # Mistake 6: no final LayerNorm
            x = self.norm_final(x)
        x = x.astype(jnp.dtype(self.cfg.dtype))
        out = self.head(x) if self.cfg.mistakes.untied_embeddings else self.embed.attend(x)  # Mistake 4: untied
        return out.astype(jnp.float32)


def init_cache(cfg: GPTConfig, batch: int, length: int) -> list[dict[str, jax.Array]]:
    shape = (batch, length, cfg.n_heads, cfg.head_dim)
    return [{"k": jnp.zeros(shape, cfg.dtype), "v": jnp.zeros(shape, cfg.dtype)} for _ in range(cfg.n_layers)]


def n_params(params) -> int:
    """The number of parameters in a parameter tree (any model's)."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))
