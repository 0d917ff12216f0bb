"""The next-token training objective (and mistake 9, which routes it through argmax)."""
from __future__ import annotations

import jax.numpy as jnp
import optax


def next_token_loss(logits, targets, weights=None, *, argmax_gradient: bool = False):
    """logits [B,T,V], targets [B,T], weights [B,T] (1 = counts) -> (objective, cross-entropy) in nats."""
    weights = jnp.ones(targets.shape, jnp.float32) if weights is None else weights.astype(jnp.float32)
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # [B, T]
    per_token = cross_entropy
    if argmax_gradient:  # Mistake 9: an objective through argmax (token error rate) has zero gradient
        per_token = (jnp.argmax(logits, axis=-1) != targets).astype(jnp.float32)
    total = jnp.maximum(weights.sum(), 1.0)
    return (per_token * weights).sum() / total, (cross_entropy * weights).sum() / total
