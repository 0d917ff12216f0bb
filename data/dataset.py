"""Token arrays, the train/val split, and batches as a pure function of (seed, step)."""

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class TokenData:
    """Tokenized corpus; windows start at multiples of `align`.

    `align` is block_len for the synthetic source (windows start at block
    boundaries, where `loss_floor` holds) and 1 otherwise.
    """

    train: np.ndarray  # [n_train] int32
    val: np.ndarray  # [n_val] int32
    vocab_size: int
    unk_id: int
    align: int


def split_tokens(ids: np.ndarray, val_fraction: float, align: int):
    """Contiguous (train, val) split: val is the tail, cut at a multiple of `align`."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction} must be in (0, 1)")
    boundary = int(len(ids) * (1.0 - val_fraction)) // align * align
    return ids[:boundary], ids[boundary:]


def _n_aligned_starts(n_tokens: int, seq_len: int, align: int) -> int:
    """How many starts s = k * align leave room for seq_len + 1 tokens."""
    n_starts = (n_tokens - seq_len - 1) // align + 1
    if n_starts < 1:
        raise ValueError(
            f"{n_tokens} tokens cannot hold a window of seq_len={seq_len} + 1"
        )
    return n_starts


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len", "align"))
def sample_batch(
    tokens: jax.Array, key: jax.Array, batch_size: int, seq_len: int, align: int
):
    """Uniformly drawn aligned windows: (inputs [B, T], targets [B, T]) int32.

    targets are inputs shifted one token ahead.
    """
    n_starts = _n_aligned_starts(tokens.shape[0], seq_len, align)
    starts = jax.random.randint(key, (batch_size,), 0, n_starts) * align  # [B]

    def take_window(start):
        return jax.lax.dynamic_slice(tokens, (start,), (seq_len + 1,))  # [T + 1]

    windows = jax.vmap(take_window)(starts).astype(jnp.int32)  # [B, T + 1]
    return windows[:, :-1], windows[:, 1:]


def batch_key(seed: int, step) -> jax.Array:
    """Key of the batch at `step` (int or traced int): same (seed, step), same batch."""
    return jax.random.fold_in(jax.random.key(seed), step)


def eval_windows(tokens: np.ndarray, n_windows: int, seq_len: int, align: int):
    """Evenly spaced aligned windows: (inputs [N, T], targets [N, T]), deterministic."""
    n_starts = _n_aligned_starts(len(tokens), seq_len, align)
    if n_windows > n_starts:
        raise ValueError(
            f"n_windows={n_windows} exceeds the {n_starts} aligned windows"
        )
    starts = np.arange(n_windows) * n_starts // n_windows * align  # [N]
    windows = tokens[starts[:, None] + np.arange(seq_len + 1)]  # [N, T + 1]
    return windows[:, :-1], windows[:, 1:]
