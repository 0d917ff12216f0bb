"""One measurement per mistake: what the mistake does to the model's *function*, as one number relative to the
model itself (how much its logits depend on context, their rounding, its own gradients and parameter counts).
Each takes the audit's Context and returns a Reading (or raises NotApplicable); the catalogue pairs each with its
mistake and a calibrated threshold (its `Detector`)."""
from __future__ import annotations

import math

import numpy as np
import optax

from ablations.audit.context import LENGTH, Context, loss_and_gradient, random_tokens
from ablations.audit.interface import AuditModel, NotApplicable, Reading, accepts, first_line
from ablations.audit.numerics import largest_change, rounding_floor, scale_without_own_token
from ablations.science import probes
from data import load_text, unk_rate

SHALLOW, DEEP = 1, 8  # depths whose logit scales mistake 6 compares
STREAM_DEPTH = 2  # mistake 1's depth (post-norm reads ~0 at any depth; 2 blocks compile fast and share the model
#   that mistake 3 builds)
POSITION_MAX_LEN = 4  # mistake 7 asks for this short a table (when the factory takes max_len): fewer keys, louder swaps
TEXT_SAMPLE = 20_000  # characters of the embedded Shakespeare text read by the <unk> measurement (from its middle)


def stream_scale_spread(ctx: Context) -> Reading:
    """Mistake 1: a post-norm block ends with a norm, so at initialisation (gain 1, or any gain shared by the
    features) every token leaves every block at the same RMS: their spread is zero up to rounding. A pre-norm
    stream, the embedding plus the block outputs, is never normalised: each token's RMS is its own, spread as the
    length of a random vector. Value: the largest over blocks of std/mean of the per-token RMS of the block's
    output (AuditModel.hidden_states, B·T tokens), times sqrt(2·D): a vector of D independent Gaussian features
    has an RMS whose std/mean is about 1/sqrt(2·D), so ~1 reads "spread as random vectors" at any width. At depth
    STREAM_DEPTH (the user's model when the factory takes no n_layers)."""
    model = ctx.variant(n_layers=STREAM_DEPTH) if accepts(ctx.factory, "n_layers") else ctx.model
    if model.hidden_states is None:
        raise NotApplicable("the model gives no residual stream (AuditModel.hidden_states)")
    states = [np.asarray(state, np.float64) for state in model.hidden_states(random_tokens(model))]
    if not states:
        raise NotApplicable("the model gives no block's output (AuditModel.hidden_states is empty)")
    spreads = []
    for state in states:  # [B, T, D]
        rms = np.sqrt(np.mean(np.square(state), axis=-1)).ravel()  # one per token
        if not rms.mean() > 0:
            raise NotApplicable("a block's output is zero for every token: no scale to compare")
        spreads.append(float(rms.std() / rms.mean() * math.sqrt(2 * state.shape[-1])))
    return Reading(max(spreads), f"largest spread of the per-token RMS over {len(states)} block output(s) "
                                 "(std/mean x sqrt(2d); random vectors read ~1)")


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
    tokens = random_tokens(shallow, min(LENGTH, shallow.max_len or LENGTH, deep.max_len or LENGTH))
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
    (ablations.science.probes.causality). Value: largest change beyond rounding / the context effect
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
    n, tokens = model.max_len, random_tokens(model, model.max_len + 3)
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
    """Mistake 8: a left-padded batch vs each sequence alone (ablations.science.probes.padding): the logits of real
    tokens must agree. Value: largest difference beyond rounding / the context effect (Context.beyond_rounding)."""
    gap = probes.padding(ctx.language_model(), ctx.inputs)["padding_gap"]
    return Reading(ctx.beyond_rounding(gap), "largest logit difference, left-padded batch vs alone, beyond rounding, "
                                             "/ context effect")


def gradient_size(ctx: Context) -> Reading:
    """Mistake 9: an objective through argmax is piecewise constant, its gradient exactly zero. Value:
    |grad| · |params| / |loss|, the loss's relative change per relative change of the parameters."""
    model = ctx.model
    loss, grads = loss_and_gradient(model, random_tokens(model))
    loss = abs(loss)
    if not loss > 0:
        raise NotApplicable("the training loss is exactly zero on the audit's token batch")
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
    (The recompute is the forward the other measurements already compiled; recomputing the very tokens the cache
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
