"""Symptom probes. They see a model only through `LanguageModel` (forward and generate), so they
can audit any model, not just the lab's GPT. Each returns {measurement name: float}."""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import numpy as np
import optax

from data import bits_per_byte, unk_rate


@dataclasses.dataclass(frozen=True)
class LanguageModel:
    forward: Callable  # (tokens [B,T], pad_mask [B,T] | None) -> logits [B,T,V]
    generate: Callable  # (prompts [B,P], prompt_mask [B,P], n_new, use_cache) -> (tokens [B,n], logits [B,n,V])


@dataclasses.dataclass(frozen=True)
class ProbeInputs:
    inputs: np.ndarray  # [N, T] validation windows at the training length, aligned to the source's blocks
    targets: np.ndarray  # [N, T]
    long_inputs: np.ndarray  # [N, factor*T] longer windows for the length probe
    long_targets: np.ndarray
    unk_id: int
    bytes_per_token: float  # UTF-8 bytes of the validation text per token
    oov_alphabet: int  # distinct characters the tokenizer maps to <unk>
    copy_span: int | None  # synthetic source: length of the span to copy after the delimiter; else None
    padding_share: float = 0.5  # left padding of the padding probe's rows cycles over [0, share · T)


def token_losses(logits, targets) -> np.ndarray:
    return np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(targets)))


def causality(lm: LanguageModel, data: ProbeInputs) -> dict:
    """Largest change of logits at positions <= t when only the tokens after t change (0 if causal)."""
    t = data.inputs.shape[1] // 2
    perturbed = data.inputs.copy()
    perturbed[:, t + 1:] = data.inputs[::-1, t + 1:]  # another window's future
    before, after = lm.forward(data.inputs, None), lm.forward(perturbed, None)
    return {"causal_leak": float(jnp.max(jnp.abs(before[:, : t + 1] - after[:, : t + 1])))}


PREFIX_POSITIONS = 64  # the prefix probe scores at most this many positions, evenly spaced (every one up to T=64)


def prefix_loss(lm: LanguageModel, data: ProbeInputs) -> dict:
    """The honest loss: position t scored from a forward of its prefix alone, inputs[:, :t+1], so a model that
    reads the future within the window (mistake 5) cannot profit from it. Equals the ordinary loss if causal.
    One forward per scored position (each length compiles once a process): every position of windows up to
    PREFIX_POSITIONS long, that many evenly spaced ones (the last included) in longer windows."""
    width = data.inputs.shape[1]
    scored = np.unique(np.linspace(0, width - 1, min(width, PREFIX_POSITIONS)).round().astype(int))
    losses = np.stack([token_losses(lm.forward(data.inputs[:, : t + 1], None)[:, t], data.targets[:, t])
                       for t in scored], axis=1)  # [N, scored positions]
    return {"prefix_val_loss": float(losses.mean())}


def left_padded(tokens: np.ndarray, lengths: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Row i keeps its first lengths[i] tokens, moved to the right end behind pad_id; returns (tokens, mask)."""
    width = tokens.shape[1]
    mask = np.arange(width)[None, :] >= (width - lengths)[:, None]
    shifted = np.stack([np.roll(row, width - n) for row, n in zip(tokens, lengths)])
    return np.where(mask, shifted, pad_id), mask


def padding_lengths(n: int, width: int, padding_share: float) -> np.ndarray:
    """The real lengths of n padded rows of `width` tokens: up to `padding_share` of a row is padding, varied row
    by row (the padding probe's, and the audit's right-padding check's)."""
    return width - (np.arange(n) * 7) % max(1, round(width * padding_share))


def padding(lm: LanguageModel, data: ProbeInputs) -> dict:
    """Left-padded batch vs each sequence unpadded: logits at real tokens must agree, and so must the loss."""
    n, width = data.inputs.shape
    lengths = padding_lengths(n, width, data.padding_share)
    padded, mask = left_padded(data.inputs, lengths, data.unk_id)
    padded_targets, _ = left_padded(data.targets, lengths, data.unk_id)
    batched, alone = np.asarray(lm.forward(padded, mask)), np.asarray(lm.forward(data.inputs, None))
    gaps = [np.abs(batched[i, width - k:] - alone[i, :k]).max() for i, k in enumerate(lengths)]
    gap = np.max(gaps)  # (a NaN gap stays NaN: Python's max would skip it)
    losses = token_losses(batched, padded_targets)
    return {"padding_gap": float(gap), "padded_val_loss": float(losses[mask].mean())}


def cache(lm: LanguageModel, data: ProbeInputs) -> dict:
    """Greedy generation from left-padded prompts, cached vs full recompute: largest logit difference."""
    n, width = data.inputs.shape
    prompts, mask = left_padded(data.inputs[:, : width // 2], width // 2 - np.arange(n) % 4, data.unk_id)
    _, cached = lm.generate(prompts, mask, width // 2, True)
    _, recomputed = lm.generate(prompts, mask, width // 2, False)
    return {"cache_gap": float(jnp.max(jnp.abs(cached - recomputed)))}


def copy(lm: LanguageModel, data: ProbeInputs) -> dict:
    """Synthetic source: prompt a block's fresh span and delimiter, generate with the cache, score the copy."""
    if data.copy_span is None:
        return {}
    span = data.copy_span
    prompts = data.inputs[:, : span + 1]
    generated, _ = lm.generate(prompts, np.ones_like(prompts, bool), span, True)
    return {"copy_accuracy": float(np.mean(np.asarray(generated) == data.inputs[:, :span]))}


def length(lm: LanguageModel, data: ProbeInputs) -> dict:
    """Per-position loss on windows longer than training: within vs past the training length, and how much
    worse past it (the degradation, which the position scheme's level within the length does not enter)."""
    train_len = data.inputs.shape[1]
    per_position = token_losses(lm.forward(data.long_inputs, None), data.long_targets).mean(axis=0)
    within, past = float(per_position[:train_len].mean()), float(per_position[train_len:].mean())
    return {"loss_within_train_len": within, "loss_past_train_len": past, "length_degradation": past - within,
            "loss_by_position": [float(v) for v in per_position]}


def vocab(lm: LanguageModel, data: ProbeInputs) -> dict:
    """<unk> rate of the targets and bits per byte, charging each <unk> ln(oov_alphabet) nats."""
    losses = token_losses(lm.forward(data.inputs, None), data.targets)
    n_unk = int(np.sum(data.targets == data.unk_id))
    bpb = bits_per_byte(float(losses.sum()), data.targets.size * data.bytes_per_token, n_unk, data.oov_alphabet)
    return {"unk_rate": unk_rate(data.targets, data.unk_id), "bits_per_byte": bpb}


PROBES = {"causality": causality, "prefix": prefix_loss, "padding": padding, "cache": cache, "copy": copy,
          "length": length, "vocab": vocab}
