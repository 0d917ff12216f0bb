"""Audit any transformer language model for the 11 classic mistakes, at random initialisation, in seconds.

A model is seen only through `AuditModel` (forward, generate, loss and params, a few counts), built by a
factory that takes keyword overrides (n_layers, vocab_size, d_model, seed, ...). Each detector measures
what its mistake does to the *function*, as one number relative to the model itself (how much its logits
depend on context, their rounding, its own gradients and parameter counts), and compares it with a threshold
set from measurements of correct and broken models (README, "Thresholds"). Every detector gives the same
record: {mistake, status, value, threshold, margin, why, thin_margin}; margin = value / threshold.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ablations import probes
from data import load_text, unk_rate
from model import names_of_all

STATUSES = ("detected", "clear", "not applicable", "error")


@dataclasses.dataclass(frozen=True)
class AuditModel:
    """What a factory returns: a model at random initialisation, seen from outside.

    forward: (tokens [B, T] int32, pad_mask [B, T] bool (True = real token) or None) -> logits [B, T, V] float32.
    vocab_size: V, the number of token ids the model accepts.
    n_params: number of trainable parameters.
    params, loss: the parameter pytree and the training objective loss(params, tokens [B, T]) -> scalar, the
        function you differentiate to train (None: the gradient probes are not applicable).
    generate: (prompts [B, P] int32, prompt_mask [B, P] bool, n_new, use_cache) -> (new tokens [B, n_new],
        the logits that chose them [B, n_new, V]): greedy decoding with the KV cache (use_cache=True) or by
        recomputing the whole prefix at every step, as ablations.probes.LanguageModel. The audit decodes with
        the cache and recomputes with forward (None: the cache probe is not applicable).
    blocks: params-shaped tree -> the per-block subtrees, input to output (None: post-norm probe not applicable).
    tokenizer: has encode(text) -> ids and unk_id (None: the vocabulary probe is not applicable).
    max_len: the training length; the size of the learned position table if there is one (None: the
        position-overflow probe is not applicable).
    """
    forward: Callable
    vocab_size: int
    n_params: int
    params: Any = None
    loss: Callable | None = None
    generate: Callable | None = None
    blocks: Callable | None = None
    tokenizer: Any = None
    max_len: int | None = None


class NotApplicable(Exception):
    """The model does not offer what the probe needs, or the probe cannot see; the message says which."""


@dataclasses.dataclass(frozen=True)
class Reading:
    value: float | None
    note: str
    status: str | None = None  # only where the reading decides by itself (an error raised past max_len: clear)


# ---------------------------------------------------------------- probe inputs and scales

PROBE_SEED = 0  # token draws are fixed: two audits of one model give identical numbers
BATCH, LENGTH = 4, 16  # [B, T] of the probe batches (T cut to max_len when the model's is shorter)
SHALLOW, DEEP = 1, 8  # depths whose logit scales mistake 6 compares
GRADIENT_DEPTH = 2  # mistake 1's depth: correct <= 1.33 at 2 blocks but up to 3.12 at 8 (pre-norm's first block
#   sees the small raw embeddings), post-norm >= 20 at both
POSITION_MAX_LEN = 4  # mistake 7 asks for this short a table (when the factory takes max_len): fewer keys, louder swaps
TEXT_SAMPLE = 20_000  # characters of the embedded Shakespeare text read by the <unk> probe (from its middle)
# Rounding of the precisions logits may be computed in: (dtype, unit roundoff, how many units of it an effect must
# exceed to count as seen). Logits rounded to bfloat16/float16 at the end carry that rounding, 1-3 units at most;
# float32 logits carry rounding accumulated through the network, up to 12 units measured (swaps that cannot matter).
ROUNDING = ((jnp.bfloat16, 2.0 ** -8, 8), (np.float16, 2.0 ** -11, 8))
FLOAT32_ROUNDING = (np.float32, 2.0 ** -24, 128)


def probe_tokens(model: AuditModel, length: int | None = None) -> np.ndarray:
    """[B, length] int32 ids in [1, V): id 0 is left out, being many tokenizers' <unk> or padding id."""
    length = length or min(LENGTH, model.max_len or LENGTH)
    return np.random.default_rng(PROBE_SEED).integers(1, model.vocab_size, (BATCH, length)).astype(np.int32)


def probe_inputs(model: AuditModel) -> probes.ProbeInputs:
    """The shared probes' inputs (ablations.probes) filled with random ids; pad id: the tokenizer's <unk>."""
    tokens = probe_tokens(model)
    pad_id = model.tokenizer.unk_id if model.tokenizer is not None else 0
    return probes.ProbeInputs(tokens, np.roll(tokens, -1, axis=1), tokens, tokens, pad_id, 1.0, 1, None)


def centered(logits) -> np.ndarray:
    """[B, T, V] -> float64 logits minus each row's mean: the part a softmax sees."""
    logits = np.asarray(logits, np.float64)
    return logits - logits.mean(axis=-1, keepdims=True)


def output_scale(logits) -> float:
    """RMS of the centred logits [B, T, V]: the scale a softmax sees."""
    return float(np.sqrt(np.mean(centered(logits) ** 2)))


def scale_without_own_token(logits, tokens) -> float:
    """output_scale with each row's own input token left out: a tied model's logit for the token it reads
    tracks how much of that token survives in the output, which changes with depth with or without a final
    norm (up to 12% between depth 1 and 8 on the lab's GPT, 5% without it)."""
    c = np.asarray(logits, np.float64).copy()
    np.put_along_axis(c, np.asarray(tokens)[..., None], np.nan, axis=-1)
    c = c - np.nanmean(c, axis=-1, keepdims=True)
    return float(np.sqrt(np.nanmean(c ** 2)))


def rounding_floor(logits) -> float:
    """The largest logit change rounding can explain: the unit roundoff of the precision the logits were computed
    in (read from the values: bfloat16 and float16 logits are exactly representable in them) times their RMS,
    times that precision's multiple (ROUNDING)."""
    logits = np.asarray(logits, np.float32)
    _, unit, multiple = next((r for r in ROUNDING if np.array_equal(logits, logits.astype(r[0]).astype(np.float32))),
                             FLOAT32_ROUNDING)
    return multiple * unit * float(np.sqrt(np.mean(np.square(logits, dtype=np.float64))))


def largest_change(before, after) -> float:
    return float(np.max(np.abs(np.asarray(before, np.float64) - np.asarray(after, np.float64))))


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# ---------------------------------------------------------------- the audit's view of a factory


def accepts(factory: Callable, name: str) -> bool:
    parameters = inspect.signature(factory).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def default_of(factory: Callable, name: str):
    parameter = inspect.signature(factory).parameters.get(name)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


class Context:
    """The factory, the user's overrides and the models built from them (each built once)."""

    def __init__(self, factory: Callable, overrides: dict, model: AuditModel):
        self.factory, self.overrides, self.model = factory, dict(overrides), model
        self._variants: dict = {}

    def variant(self, **changes) -> AuditModel:
        """The factory's model with `changes` on top of the user's overrides (the user's own model when they
        change nothing); NotApplicable if the factory takes no such override."""
        refused = [name for name in changes if not accepts(self.factory, name)]
        if refused:
            raise NotApplicable(f"the factory takes no {'/'.join(refused)} override")
        changes = {k: v for k, v in changes.items() if self.setting(k) != v}
        if not changes:
            return self.model
        key = tuple(sorted(changes.items()))
        if key not in self._variants:
            self._variants[key] = self.factory(**{**self.overrides, **changes})
        return self._variants[key]

    def setting(self, name: str):
        """The value of a factory argument in the user's model: their override, else the factory's default."""
        return self.overrides.get(name, default_of(self.factory, name))

    @functools.cached_property
    def inputs(self) -> probes.ProbeInputs:
        return probe_inputs(self.model)

    @functools.cached_property
    def logits(self) -> np.ndarray:
        return np.asarray(self.model.forward(self.inputs.inputs, None))  # [B, T, V]

    @functools.cached_property
    def context_effect(self) -> float:
        """How much the model's logits depend on context: the largest change of the last position's logits when
        every earlier token is replaced (by another row's), floored at the rounding (rounding_floor): the scale the
        consistency probes (causality, padding, cache) are measured against. A model that barely reads its
        context at init (post-norm) also barely shows a stale cache or a visible pad, in the same proportion."""
        tokens = self.inputs.inputs
        other = tokens.copy()
        other[:, :-1] = tokens[::-1, :-1]
        effect = max(largest_change(self.logits[:, -1], self.model.forward(other, None)[:, -1]),
                     rounding_floor(self.logits))
        if not effect > 0:
            raise NotApplicable("the logits are all zero: there is no scale to measure differences against")
        return effect

    def beyond_rounding(self, gap: float) -> float:
        """A logit difference between two computations of the same thing, less what rounding can explain
        (rounding_floor), relative to the context effect: 0 for agreement up to rounding."""
        return max(gap - rounding_floor(self.logits), 0.0) / self.context_effect

    def language_model(self) -> probes.LanguageModel:
        return probes.LanguageModel(forward=self.model.forward, generate=self.model.generate)


# An audit runs each compiled function a few times on tiny batches, so compiling dominates its time. XLA's
# backend optimisations, which make training fast, are switched off: compiles ~3x faster on CPU, results
# equal to float32 rounding (7e-8 on logits of 0.4 measured on the lab's GPT; bfloat16 identical).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def jit(function, **kwargs):
    """jax.jit with FAST_COMPILE: for functions an audit runs a handful of times."""
    return jax.jit(function, compiler_options=FAST_COMPILE, **kwargs)


@functools.cache
def value_and_gradient_of(loss: Callable) -> Callable:
    """jit(value_and_grad(loss)), once per loss function: adapters that reuse one loss per config compile once."""
    return jit(jax.value_and_grad(loss))


def loss_and_gradient(model: AuditModel, tokens: np.ndarray) -> tuple[float, Any]:
    """The training loss on tokens [B, T] and its gradient (a params-shaped tree)."""
    if model.loss is None or model.params is None:
        raise NotApplicable("the model gives no loss and params to differentiate (AuditModel.loss, .params)")
    loss, grads = value_and_gradient_of(model.loss)(model.params, tokens)
    return float(loss), grads


# ---------------------------------------------------------------- one measurement per mistake


def gradient_flatness(ctx: Context) -> Reading:
    """Mistake 1: a pre-norm stack's per-block gradients are about equal at initialisation; a post-norm one's
    are not (Xiong et al. 2020: they grow towards the output; with small embeddings the first block's, whose
    norm rescales them, are the large ones). Value: max(r, 1/r), r = |grad| of the last block / of the first,
    at depth GRADIENT_DEPTH (the user's model when the factory takes no n_layers)."""
    model = ctx.variant(n_layers=GRADIENT_DEPTH) if accepts(ctx.factory, "n_layers") else ctx.model
    if model.blocks is None:
        raise NotApplicable("the model names no per-block parameter groups (AuditModel.blocks)")
    _, grads = loss_and_gradient(model, probe_tokens(model))
    norms = [float(optax.tree.norm(block)) for block in model.blocks(grads)]
    if len(norms) < 2:
        raise NotApplicable(f"the model lists {len(norms)} block(s); the ratio needs two")
    if not (norms[0] > 0 and norms[-1] > 0):
        raise NotApplicable("a block's gradient is zero, so their ratio is undefined (see argmax_gradient)")
    ratio = norms[-1] / norms[0]
    return Reading(max(ratio, 1 / ratio), f"last/first block gradient norm {ratio:.3g} over {len(norms)} blocks")


def own_token_say(ctx: Context) -> Reading:
    """Mistake 2: the residual path carries each token to its own output; without it a position's own token
    has no more say than any other token of its context. Value: change of the last position's logits when its
    own token changes / when the first token changes."""
    tokens, vocab = ctx.inputs.inputs, ctx.model.vocab_size
    own, first = tokens.copy(), tokens.copy()
    own[:, -1] = 1 + tokens[:, -1] % (vocab - 1)  # another id in [1, V)
    first[:, 0] = 1 + tokens[:, 0] % (vocab - 1)
    last = ctx.logits[:, -1]
    by_own, by_first = (largest_change(last, ctx.model.forward(t, None)[:, -1]) for t in (own, first))
    floor = rounding_floor(ctx.logits)  # a change that rounding swallowed is at most this
    if not max(by_own, by_first) > floor:
        raise NotApplicable("the last logits move within rounding whether their own or the first token changes")
    return Reading(by_own / max(by_first, floor), "last logits' change: own token changed / first token changed")


def scale_drift(ctx: Context) -> Reading:
    """Mistake 6: a final norm fixes the logits' scale whatever the depth; without one the logits follow the
    residual stream, which grows with depth. Value: |log(scale at depth DEEP / scale at depth SHALLOW)|, the
    scale of each row's logits without its own input token (scale_without_own_token)."""
    shallow, deep = ctx.variant(n_layers=SHALLOW), ctx.variant(n_layers=DEEP)
    if shallow.n_params == deep.n_params:
        raise NotApplicable("the factory ignores n_layers (same parameter count at both depths)")
    tokens = probe_tokens(shallow, min(LENGTH, shallow.max_len or LENGTH, deep.max_len or LENGTH))
    deep_scale, shallow_scale = (scale_without_own_token(m.forward(tokens, None), tokens) for m in (deep, shallow))
    ratio = deep_scale / shallow_scale
    return Reading(abs(math.log(ratio)), f"logit scale at depth {DEEP} / depth {SHALLOW} = {ratio:.3g}")


def parameters_per_block(ctx: Context) -> Reading:
    """Mistake 3: parameters added by a second block (n_layers 2 minus 1) give the FFN's width. A block of the
    GPT-2 layout holds 4d²+9d in attention and norms and d_ff·(2d+1) in the FFN (a gated FFN, 3·d·d_ff, reads
    as its equivalent width). Value: estimated d_ff / d_model."""
    d = ctx.setting("d_model")
    if not isinstance(d, int):
        raise NotApplicable("the factory has no d_model argument with a default (or override) to count against")
    per_block = ctx.variant(n_layers=2).n_params - ctx.variant(n_layers=1).n_params
    if per_block <= 0:
        raise NotApplicable("the factory ignores n_layers (no parameters added by a second block)")
    d_ff = (per_block - 4 * d * d - 9 * d) / (2 * d + 1)
    return Reading(d_ff / d, f"{per_block} parameters per block at d_model={d}")


def parameters_per_token(ctx: Context) -> Reading:
    """Mistake 4: each vocabulary entry adds d parameters to a tied model (its embedding row), 2·d to an
    untied one (and its output row). Value: parameters added per entry (vocab_size V and 2V) / d_model."""
    d, vocab = ctx.setting("d_model"), ctx.model.vocab_size
    if not isinstance(d, int):
        raise NotApplicable("the factory has no d_model argument with a default (or override) to count against")
    added = ctx.variant(vocab_size=2 * vocab).n_params - ctx.variant(vocab_size=vocab).n_params
    if added <= 0:
        raise NotApplicable("the factory ignores vocab_size (no parameters added by a larger vocabulary)")
    return Reading(added / (d * vocab), f"{added} parameters for {vocab} more entries at d_model={d}")


def future_leak(ctx: Context) -> Reading:
    """Mistake 5 (and any causal leak): logits at positions <= t change when only tokens after t change
    (ablations.probes.causality). Value: largest change beyond rounding / the context effect
    (Context.beyond_rounding)."""
    leak = probes.causality(ctx.language_model(), ctx.inputs)["causal_leak"]
    return Reading(ctx.beyond_rounding(leak), "largest change of past logits when the future changes, beyond rounding, "
                                              "/ context effect")


def swap_effect(model: AuditModel, tokens: np.ndarray, logits: np.ndarray, first: int) -> float:
    """Largest change of the logits at position first + 2 when the tokens at first and first + 1 trade places.
    tokens [B, T], logits [B, T, V] of the unswapped tokens."""
    swapped = tokens.copy()
    swapped[:, [first, first + 1]] = tokens[:, [first + 1, first]]
    return largest_change(logits[:, first + 2], model.forward(swapped, None)[:, first + 2])


def position_sight(ctx: Context) -> Reading:
    """Mistake 7: past max_len a model may raise (clear), give NaN (detected) or silently clamp a learned table,
    making positions past its end indistinguishable. In one block, a position sees its context as a set of
    (token, position) pairs: swapping two tokens past the end changes nothing there if positions are clamped;
    under RoPE or sinusoidal codes it changes the logits as a swap inside the table does.
    Value: effect of swapping tokens n, n+1 on position n+2 / of swapping tokens 0, 1 on position 2 (n = max_len).
    Where even the inside swap is under the rounding floor, positions cannot be seen at init: not applicable."""
    _ = ctx.logits  # the model runs within its length: an error past it is about the length
    one_block = accepts(ctx.factory, "n_layers")
    model = ctx.variant(**{k: v for k, v in (("n_layers", 1), ("max_len", POSITION_MAX_LEN))
                           if accepts(ctx.factory, k)})
    if model.max_len is None:
        raise NotApplicable("the model declares no training length (AuditModel.max_len)")
    n, tokens = model.max_len, probe_tokens(model, model.max_len + 3)
    tokens[:, 1] = 1 + tokens[:, 0] % (model.vocab_size - 1)  # the swapped tokens always differ
    tokens[:, n + 1] = 1 + tokens[:, n] % (model.vocab_size - 1)
    try:
        logits = np.asarray(model.forward(tokens, None))  # [B, n + 3, V]
    except Exception as error:  # refusing a length it cannot serve is the fix, whatever the exception type
        return Reading(None, f"raises past max_len={n}: {type(error).__name__}: {first_line(error)}", "clear")
    if not np.all(np.isfinite(logits)):
        return Reading(math.nan, f"NaN/inf logits past max_len={n}", "detected")
    inside, past, floor = (swap_effect(model, tokens, logits, 0), swap_effect(model, tokens, logits, n),
                           rounding_floor(logits))
    if not inside > floor:
        raise NotApplicable(f"swapping two tokens inside max_len moves the logits by {inside:.2g}, within rounding "
                            f"({floor:.2g}): positions cannot be seen at init")
    blocks = "one block" if one_block else "all blocks (the factory takes no n_layers): a clamp reads above 0"
    return Reading(past / inside, f"swap past max_len={n} / swap inside, {blocks}")


def padding_gap(ctx: Context) -> Reading:
    """Mistake 8: a left-padded batch vs each sequence alone (ablations.probes.padding): the logits of real
    tokens must agree. Value: largest difference beyond rounding / the context effect (Context.beyond_rounding)."""
    gap = probes.padding(ctx.language_model(), ctx.inputs)["padding_gap"]
    return Reading(ctx.beyond_rounding(gap), "largest logit difference, left-padded batch vs alone, beyond rounding, "
                                             "/ context effect")


def gradient_size(ctx: Context) -> Reading:
    """Mistake 9: an objective through argmax is piecewise constant, its gradient exactly zero. Value:
    |grad| · |params| / |loss|, the loss's relative change per relative change of the parameters."""
    model = ctx.model
    loss, grads = loss_and_gradient(model, probe_tokens(model))
    loss = abs(loss)
    if not loss > 0:
        raise NotApplicable("the training loss is exactly zero on the probe batch")
    return Reading(float(optax.tree.norm(grads)) * float(optax.tree.norm(model.params)) / loss,
                   "|grad|·|params|/|loss| of the training objective")


def unknown_tokens(ctx: Context) -> Reading:
    """Mistake 10: the tokenizer maps too much of a real text to <unk>. Value: the <unk> share of
    TEXT_SAMPLE characters from the middle of the embedded Shakespeare text."""
    tokenizer = ctx.model.tokenizer
    if tokenizer is None:
        raise NotApplicable("the model gives no tokenizer (AuditModel.tokenizer)")
    text = load_text("shakespeare")
    sample = text[len(text) // 2: len(text) // 2 + TEXT_SAMPLE]
    return Reading(unk_rate(tokenizer.encode(sample), tokenizer.unk_id), f"<unk> share of {TEXT_SAMPLE} characters")


def cache_gap(ctx: Context) -> Reading:
    """Mistake 11: greedy decoding from left-padded prompts with the KV cache vs a full recompute of the same
    tokens: the model's forward on prompt + generated tokens must give the logits the decoder chose them by.
    (The recompute is the forward the other probes already compiled; recomputing the very tokens the cache
    chose also keeps a bfloat16 rounding tie between two greedy paths from reading as a cache bug.)
    Value: largest logit difference beyond rounding / the context effect (Context.beyond_rounding)."""
    if ctx.model.generate is None:
        raise NotApplicable("the model gives no generate function (AuditModel.generate)")
    tokens = ctx.inputs.inputs  # [B, T]
    width = tokens.shape[1] // 2
    prompts, mask = probes.left_padded(tokens[:, :width], width - np.arange(len(tokens)) % 4, ctx.inputs.unk_id)
    generated, cached = ctx.model.generate(prompts, mask, width, True)  # [B, n], [B, n, V]
    full = np.concatenate([prompts, np.asarray(generated, np.int32)], axis=1)  # [B, T]
    recomputed = ctx.model.forward(full, np.concatenate([mask, np.ones_like(mask)], axis=1))[:, width - 1:-1]
    gap = largest_change(cached, recomputed)
    return Reading(ctx.beyond_rounding(gap), f"largest logit difference over {width} steps, cached decoding vs "
                                             "recomputed, beyond rounding, / context effect")


# ---------------------------------------------------------------- detectors: value vs threshold

THIN_FACTOR = 3.0  # thin margin: within 3x of the threshold, and closer to it than any calibrated model came


@dataclasses.dataclass(frozen=True)
class Detector:
    """One mistake's probe and its rule: detected when the value is above the threshold (fires_above) or below.
    calibrated: the calibration's value nearest the threshold on each side (the worst correct model, the mildest
    broken one); the threshold sits between them, near their geometric mean."""
    mistake: str
    measure: Callable[[Context], Reading]
    threshold: float
    fires_above: bool
    calibrated: tuple[float, float]  # (nearest correct value, nearest broken value)

    @property
    def rule(self) -> str:
        return f"{'>' if self.fires_above else '<'} {self.threshold:g}"

    def fires(self, value: float) -> bool:
        return value > self.threshold if self.fires_above else value < self.threshold

    def thin(self, value: float) -> bool:
        """Within THIN_FACTOR of the threshold and inside the calibration's gap: no calibrated model came this close."""
        near = 1 / THIN_FACTOR < value / self.threshold < THIN_FACTOR
        return near and min(self.calibrated) < value < max(self.calibrated)


# Thresholds, one per probe, set between the values measured on the lab's GPT, correct (RoPE and sinusoidal)
# and with each mistake switched on: 3 seeds, d_model 16 and 32, float32 and bfloat16 (python -m ablations.calibrate;
# README "Thresholds" has the table, results/check/calibration.jsonl the readings). Each sits near the geometric mean
# of the worst correct and the mildest broken value (Detector.calibrated), or at a round value with a wider margin on
# both sides.
FLATNESS = 5.0  # mistake 1: correct 1.0..1.33, post-norm 19.9..25.2 (block gradient ratio at GRADIENT_DEPTH)
OWN_TOKEN = 1.0  # mistake 2: correct >= 4.16, no residual <= 0.105; below 1 the own token has no privileged path
FFN_WIDTH = 2.0  # mistake 3: exact counts, d_ff/d_model = 4 (correct) or 1 (d_ff = d_model)
TIED = 1.5  # mistake 4: exact counts, 1 (tied) or 2 (untied) parameters per vocabulary entry per d_model
LEAK = 0.1  # mistakes 5, 8, 11 (beyond rounding, / context effect): correct 0, broken >= 0.645; a tenth of the
#   context's own effect, 6x under the mildest broken model
SCALE_DRIFT = 0.11  # mistake 6: |log scale ratio| correct <= 0.048, no final norm >= 0.243
POSITION_BLIND = 1e-3  # mistake 7: swap past / swap inside, RoPE and sinusoidal >= 0.119, clamped <= 8.1e-6
GRADIENT = 1e-6  # mistake 9: relative gradient correct >= 1.04 (>= 0.045 with other mistakes), through argmax 0
UNK_RATE = 1e-3  # mistake 10: full character vocabulary 0, 16 characters 0.219; one <unk> in 1000 is already lossy

DETECTORS = (
    Detector("post_norm", gradient_flatness, FLATNESS, fires_above=True, calibrated=(1.33, 19.9)),
    Detector("no_residual", own_token_say, OWN_TOKEN, fires_above=False, calibrated=(4.16, 0.105)),
    Detector("narrow_ffn", parameters_per_block, FFN_WIDTH, fires_above=False, calibrated=(4.0, 1.0)),
    Detector("untied_embeddings", parameters_per_token, TIED, fires_above=True, calibrated=(1.0, 2.0)),
    Detector("norm_wrong_axis", future_leak, LEAK, fires_above=True, calibrated=(0.0, 0.645)),
    Detector("no_final_norm", scale_drift, SCALE_DRIFT, fires_above=True, calibrated=(0.048, 0.243)),
    Detector("position_overflow", position_sight, POSITION_BLIND, fires_above=False, calibrated=(0.119, 8.1e-6)),
    Detector("padding_mask", padding_gap, LEAK, fires_above=True, calibrated=(0.0, 2.38)),
    Detector("argmax_gradient", gradient_size, GRADIENT, fires_above=False, calibrated=(1.04, 0.0)),
    Detector("tiny_vocab", unknown_tokens, UNK_RATE, fires_above=True, calibrated=(0.0, 0.219)),
    Detector("stale_kv_cache", cache_gap, LEAK, fires_above=True, calibrated=(0.0, 1.71)),
)
assert tuple(d.mistake for d in DETECTORS) == names_of_all(), "one detector per mistake, in the catalogue's order"


def record(detector: Detector, status: str, value: float | None, why: str) -> dict:
    """The one record every detector returns. margin = value / threshold; thin_margin: Detector.thin."""
    value = value if value is not None and math.isfinite(value) else None  # JSON has no NaN
    margin = None if value is None else value / detector.threshold
    thin = status in ("detected", "clear") and value is not None and detector.thin(value)
    return {"mistake": detector.mistake, "status": status, "value": value, "threshold": detector.threshold,
            "margin": margin, "why": why, "thin_margin": bool(thin)}


def run_detector(detector: Detector, ctx: Context) -> dict:
    """Measure and decide; a probe that cannot run is "not applicable", one that breaks is "error" (with the
    exception in `why`): neither stops the other probes."""
    try:
        reading = detector.measure(ctx)
    except NotApplicable as reason:
        return record(detector, "not applicable", None, str(reason))
    except Exception as error:  # the audited model is arbitrary code: report its failure, audit the rest
        return record(detector, "error", None, f"{type(error).__name__}: {first_line(error)}")
    value, why = reading.value, f"{reading.note}; detected when {detector.rule}"
    if reading.status is not None:
        return record(detector, reading.status, value, reading.note)
    if value is None or not math.isfinite(value):
        return record(detector, "error", None, f"{reading.note}: not finite ({value})")
    return record(detector, "detected" if detector.fires(value) else "clear", float(value), why)


class FactoryError(ValueError):
    """The factory cannot give a model to audit; the message says why in one line."""


def build(factory: Callable, overrides: dict, name: str) -> AuditModel:
    """factory(**overrides), checked: every override is an argument of it, and it returns an AuditModel."""
    unknown = [key for key in overrides if not accepts(factory, key)]
    if unknown:
        taken = ", ".join(inspect.signature(factory).parameters) or "nothing"
        raise FactoryError(f"factory {name} takes no {', '.join(unknown)}; it takes: {taken}")
    try:
        model = factory(**overrides)
    except Exception as error:
        raise FactoryError(f"factory {name} failed with {overrides}: {type(error).__name__}: {first_line(error)}")
    if not isinstance(model, AuditModel):
        raise FactoryError(f"factory {name} returned {type(model).__name__}, expected an ablations.audit.AuditModel")
    return model


def audit(factory: Callable, overrides: dict | None = None, only=None, name: str | None = None) -> list[dict]:
    """Audit factory(**overrides): one record per mistake, in the catalogue's order (only: these mistakes)."""
    overrides = dict(overrides or {})
    ctx = Context(factory, overrides, build(factory, overrides, name or getattr(factory, "__name__", "factory")))
    return [run_detector(d, ctx) for d in DETECTORS if only is None or d.mistake in only]
