"""Measurements for bugs people report on issue trackers, beyond the catalogue's 11 mistakes (the group's catalogue:
ablations/catalogue/reported_bugs.py). Like ablations/audit/measurements.py, each takes the audit's Context and
returns a Reading (or raises NotApplicable); each compares two computations that must agree exactly, or reads a
property that must hold exactly, so that a correct model reads 0.

- right_padding_gap: a right-padded batch vs each sequence alone (the logits of real tokens).
- batch_gap: each row alone, as a batch of one, vs in the audit's batch.
- repeat_gap: forward twice on the same tokens (dropout left on in evaluation).
- label_shift: the model's loss vs the mean next-token cross-entropy of its own logits, labels shifted by 1.
- decayed_norms: the norm gains and biases the model's optimizer decays (AuditModel.optimizer)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ablations.audit.context import TOKEN_SEED, Context, loss_and_gradient
from ablations.audit.interface import NotApplicable, Reading
from ablations.audit.measurements import generic_point
from ablations.audit.numerics import FLOAT32_ROUNDING, jit, largest_change, rounding_floor
from ablations.science import probes

SHIFTS = (0, 1, 2)  # label shifts compared: 1 is the next token; 0 (labels not shifted) and 2 (shifted twice)
SEPARATION = 4  # label_shift: the shifts' cross-entropies must lie further apart than 4 roundings, so that a loss
#   within rounding of one shift is not within rounding of another (a wrong shift then reads >= 0.5)
DECAY_STEPS = 8  # decayed_norms: updates with zero gradients until a leaf moves (a warmup schedule's first rate is 0)


def right_padded(tokens: np.ndarray, lengths: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Row i keeps its first lengths[i] tokens where they are, pad_id after them; returns (tokens, mask)."""
    mask = np.arange(tokens.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return np.where(mask, tokens, pad_id), mask


def right_padding_gap(ctx: Context) -> Reading:
    """Right padding: in a right-padded batch (each row's first k tokens, then pads; the mask says which are real,
    the lengths those of the left-padding probe, ablations.science.probes.padding) the logits of the real tokens
    must equal those of the unpadded batch at the same positions, each sequence's logits alone wherever the model
    is causal (detector 5). Value: largest difference beyond rounding / the context effect
    (Context.beyond_rounding), the scale of detectors 5, 8 and 11."""
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype (as detectors 5, 8, 11)
    tokens = ctx.inputs.inputs
    n, width = tokens.shape
    lengths = probes.padding_lengths(n, width, ctx.inputs.padding_share)
    padded, mask = right_padded(tokens, lengths, ctx.inputs.unk_id)
    batched = np.asarray(ctx.model.forward(padded, mask))
    gap = float(np.max([largest_change(batched[i, :k], ctx.logits[i, :k]) for i, k in enumerate(lengths)]))
    return Reading(ctx.beyond_rounding(gap), "largest logit difference of real tokens, right-padded batch vs alone, "
                                             "beyond rounding, / context effect")


def batch_gap(ctx: Context) -> Reading:
    """Batch-size invariance: a row's logits must not depend on the other rows of its batch, nor on the batch's
    size. Each row of the audit's batch alone, as a batch of one, vs in the batch. Value: largest difference beyond
    rounding / the context effect (Context.beyond_rounding)."""
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype (as detectors 5, 8, 11)
    tokens = ctx.inputs.inputs
    alone = np.concatenate([np.asarray(ctx.model.forward(tokens[i:i + 1], None)) for i in range(len(tokens))])
    return Reading(ctx.beyond_rounding(largest_change(alone, ctx.logits)),
                   f"largest logit difference, each row alone vs in the batch of {len(tokens)}, beyond rounding, "
                   "/ context effect")


def repeat_gap(ctx: Context) -> Reading:
    """Evaluation is deterministic: forward twice on the same tokens must give the same logits (dropout left on at
    evaluation draws a new mask each call). Value: largest difference beyond rounding / the context effect
    (Context.beyond_rounding)."""
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype (as detectors 5, 8, 11)
    again = np.asarray(ctx.model.forward(ctx.inputs.inputs, None))
    return Reading(ctx.beyond_rounding(largest_change(again, ctx.logits)),
                   "largest logit difference, the same forward twice, beyond rounding, / context effect")


def shifted_cross_entropy(logits: np.ndarray, tokens: np.ndarray, shift: int) -> float:
    """Mean cross-entropy of logits[:, t] (float64) against tokens[:, t + shift], over every t that has one."""
    width = tokens.shape[1]
    z = np.asarray(logits, np.float64)[:, :width - shift]
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(log_probs, tokens[:, shift:, None], axis=-1).mean())


def label_shift(ctx: Context) -> Reading:
    """Labels shifted by one too few or too many: the model's training loss on the audit's tokens must be the mean
    cross-entropy of its own logits (forward on the same tokens) against the next token, shift 1; a loss that does
    not shift predicts each token from itself (shift 0), one that shifts twice the token after next (shift 2).
    Causality makes the loss's logits (of tokens[:, :T - s]) those of forward(tokens) at the same positions.
    Rounding: a logit moved by r moves a cross-entropy by at most 2r, so two computations of one cross-entropy
    agree within 2·rounding_floor(logits), plus float32 rounding of the loss (ablations/audit/numerics.py).
    Value: how far the loss sits from shift 1, beyond rounding, / how far the nearest other shift sits from it (0:
    shift 1; >= 0.5 for a loss that is shift 0 or 2). Not applicable: at initialisation every shift reads ~log V,
    and where the shifts lie within SEPARATION roundings of each other rounding hides which the loss is; a loss
    that is none of the three (label smoothing, an auxiliary term, another reduction) says nothing of its shift."""
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype (as detectors 5, 8, 11)
    tokens = ctx.inputs.inputs
    loss, _ = loss_and_gradient(ctx.model, tokens)
    entropy = {s: shifted_cross_entropy(ctx.logits, tokens, s) for s in SHIFTS}
    _, unit, multiple = FLOAT32_ROUNDING
    floor = 2 * rounding_floor(ctx.logits) + multiple * unit * abs(loss)
    separation = min(abs(entropy[s] - entropy[1]) for s in SHIFTS if s != 1)
    shown = ", ".join(f"shift {s} {entropy[s]:.6g}" for s in SHIFTS)
    if not separation > SEPARATION * floor:
        raise NotApplicable(f"the label shifts' cross-entropies ({shown}) lie within {SEPARATION} roundings "
                            f"({floor:.2g}) of each other: rounding hides which one the loss is")
    distance = {s: abs(loss - entropy[s]) for s in SHIFTS}
    if min(distance.values()) > floor:
        raise NotApplicable(f"the loss {loss:.6g} is the mean cross-entropy of no label shift ({shown}; rounding "
                            f"{floor:.2g}): an objective that is not a plain next-token cross-entropy")
    nearest = min(distance, key=distance.get)
    return Reading(max(distance[1] - floor, 0.0) / separation,
                   f"loss {loss:.6g} is shift {nearest}'s cross-entropy ({shown}): its distance from shift 1 beyond "
                   "rounding / the nearest other shift's")


def is_matrix(leaf) -> bool:
    """A leaf with at least two axes longer than 1 (a weight matrix or table); the rest are norm gains and biases."""
    return sum(n > 1 for n in np.shape(leaf)) >= 2


def decayed_norms(ctx: Context) -> Reading:
    """Weight decay on norm gains and biases: the model's optimizer (AuditModel.optimizer, optax) must decay the
    weight matrices only. With all-zero gradients an optimizer's update is zero but for weight decay, so the
    leaves whose update is not zero are the decayed ones: init, then update with zero gradients and
    optax.apply_updates, step after step until a leaf moves (a warmup schedule's first learning rate is 0), at most
    DECAY_STEPS. From the params moved off their initialisation (measurements.generic_point): decay leaves a
    zero-initialised bias where it is. Value: the number of norm gains and biases (leaves with fewer than two axes
    longer than 1) decayed; any at all is the bug."""
    model = ctx.model
    if model.optimizer is None:
        raise NotApplicable("the model gives no optimizer (AuditModel.optimizer)")
    if model.params is None:
        raise NotApplicable("the model gives no params (AuditModel.params)")
    params = generic_point(model.params, np.random.default_rng(TOKEN_SEED))
    floating = lambda leaf: jnp.issubdtype(jnp.result_type(leaf), jnp.floating)  # noqa: E731
    zeros = jax.tree.map(lambda leaf: jnp.zeros_like(leaf) if floating(leaf) else leaf, params)

    @jit
    def step(params, state):
        updates, state = model.optimizer.update(zeros, state, params)
        return optax.apply_updates(params, updates), state, updates

    state = model.optimizer.init(params)
    for steps in range(1, DECAY_STEPS + 1):
        params, state, updates = step(params, state)
        moved = [(is_matrix(u), bool(np.any(np.asarray(u) != 0))) for u in jax.tree.leaves(updates) if floating(u)]
        if any(m for _, m in moved):
            break
    else:
        raise NotApplicable(f"no parameter moved under zero gradients in {DECAY_STEPS} updates: the optimizer decays "
                            "nothing (or its learning rate stays 0)")
    gains = [m for matrix, m in moved if not matrix]
    matrices = [m for matrix, m in moved if matrix]
    return Reading(float(sum(gains)), f"{sum(gains)} of {len(gains)} norm gains and biases decayed ({sum(matrices)} "
                                      f"of {len(matrices)} matrices), update {steps} with zero gradients")
