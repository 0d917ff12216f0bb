"""What a run or an audit needs in memory, estimated before anything is compiled, against what the machine has:
a program that cannot fit is refused in one line naming its sizes, not by XLA's out-of-memory error after minutes
of compiling (or by the machine going down). Parameters are counted exactly (`jax.eval_shape` of the model's
init: shapes only, nothing allocated); activations are estimated from the model's shapes."""
from __future__ import annotations

import dataclasses
import functools
import math
import os

import jax
import jax.numpy as jnp

from ablations.errors import UsageError
from model import GPT, GPTConfig

FLOAT32 = 4  # bytes: parameters and optimizer state are float32 whatever model.dtype computes in
STATE_COPIES = 4  # parameters, their gradients, and AdamW's two moments
EVAL_GROUP_BYTES = 2**30  # an evaluation's activations held at once, whatever the number of members


def machine_memory() -> int:
    """The first device's memory where it reports one (a GPU, a TPU), else the machine's physical RAM."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@functools.cache
def traced_parameter_bytes(cfg: GPTConfig) -> int:
    shapes = jax.eval_shape(lambda: GPT(cfg).init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32)))
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes))


def parameter_bytes(cfg: GPTConfig) -> int:
    """Exact: the blocks are alike, so the model of one and of two blocks give every depth's count (tracing a
    million blocks ran past a minute without finishing)."""
    one, two = (traced_parameter_bytes(dataclasses.replace(cfg, n_layers=n)) for n in (1, 2))
    return one + (cfg.n_layers - 1) * (two - one)


def activation_bytes(cfg: GPTConfig, batch: int, seq_len: int, every_layer: bool) -> int:
    """One forward pass over [batch, seq_len]: per layer the residual stream, its norm, q, k, v, the attention output
    and the feed-forward's hidden layer (before and after its activation), the attention scores and weights, and
    the logits with their softmax, in the compute dtype. every_layer: all layers' at once, as the backward pass
    keeps them; else one layer's (an evaluation frees each layer's when the next one starts). A lower bound of the
    compiled program's: XLA adds temporaries. The scores are counted for the einsum kernel alone (a fused kernel
    may never hold them)."""
    tokens = batch * seq_len
    scores = 2 * batch * cfg.n_heads * seq_len ** 2 if cfg.attention == "einsum" else 0
    layer = tokens * (6 * cfg.d_model + 2 * cfg.d_ff) + scores
    itemsize = jnp.dtype(cfg.dtype).itemsize
    return itemsize * ((cfg.n_layers if every_layer else 1) * layer + 2 * tokens * cfg.vocab_size)


def eval_group(cfg: GPTConfig, windows: int, seq_len: int, members: int) -> int:
    """How many members (seeds x learning rates) an evaluation over `windows` runs at once: all of them while their
    activations stay within EVAL_GROUP_BYTES, else the fewest equal groups that do (all 96 members of a 16-seed grid
    at once would hold over 12 GiB on the copy task's validation windows)."""
    cap = max(1, EVAL_GROUP_BYTES // activation_bytes(cfg, windows, seq_len, every_layer=False))
    return math.ceil(members / math.ceil(members / cap))


def describe(cfg: GPTConfig) -> str:
    return (f"model.d_model={cfg.d_model}, model.n_layers={cfg.n_layers}, model.n_heads={cfg.n_heads}, "
            f"vocabulary {cfg.vocab_size:,}")


def refuse_beyond_machine(needed: int, parts: str, sizes: str) -> None:
    available = machine_memory()
    if needed > available:
        raise UsageError(f"{sizes} needs at least {needed / 2**30:,.1f} GiB ({parts}); this machine has "
                         f"{available / 2**30:,.1f} GiB: make it smaller")


def check_training(models: dict[str, GPTConfig], batch_size: int, seq_len: int, eval_windows: int,
                   seeds: int) -> None:
    """A pair trains its variants at once, each with all its seeds (`seeds`: its members, seeds x learning rates):
    parameters and optimizer state for every seed of every variant, and per variant the larger of a training step's
    activations (every seed) and an evaluation's (one group of seeds at a time, `eval_group`)."""
    state = seeds * sum(STATE_COPIES * parameter_bytes(cfg) for cfg in models.values())
    activations = sum(max(seeds * activation_bytes(cfg, batch_size, seq_len, every_layer=True),
                          eval_group(cfg, eval_windows, seq_len, seeds) *
                          activation_bytes(cfg, eval_windows, seq_len, every_layer=False))
                      for cfg in models.values())
    first = next(iter(models.values()))
    refuse_beyond_machine(
        state + activations,
        f"{seeds} seeds x {len(models)} variants: parameters and AdamW state {state / 2**30:,.1f} GiB, "
        f"activations {activations / 2**30:,.1f} GiB",
        f"training at {describe(first)}, seeds={seeds}, train.batch_size={batch_size}, train.seq_len={seq_len}")


def check_audit(cfg: GPTConfig, batch: int, seq_len: int) -> None:
    """An audit holds the parameters, a gradient of them and a few models' activations on small batches."""
    weights = 2 * parameter_bytes(cfg)
    activations = activation_bytes(cfg, batch, seq_len, every_layer=True)
    refuse_beyond_machine(weights + activations,
                          f"parameters and a gradient {weights / 2**30:,.1f} GiB, "
                          f"activations {activations / 2**30:,.1f} GiB",
                          f"the audit at {describe(cfg).replace('model.', '')}")
