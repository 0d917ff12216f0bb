"""One measurement per mistake: what the mistake does to the model's *function*, as one number relative to the
model itself (how much its logits depend on context, their rounding, its own gradients and parameter counts, the
residual stream its output layer reads).
Each takes the audit's Context and returns a Reading (or raises NotApplicable); the catalogue pairs each with its
mistake and a calibrated threshold (its `Detector`)."""
from __future__ import annotations

import math

import jax
import numpy as np
import optax

from ablations.audit.context import TOKEN_SEED, Context, loss_and_gradient, random_tokens
from ablations.audit.interface import AuditModel, NotApplicable, Reading, accepts, first_line
from ablations.audit.numerics import largest_change, rounding_floor, rounding_of, value_and_gradient_of
from ablations.science import probes
from data import load_text, unk_rate

STREAM_DEPTH = 2  # mistakes 1 and 2 read block 2 of a 2-block model: its input is seen, it compiles fast, and the two
#   detectors share one model
POSITION_MAX_LEN = 4  # mistake 7 asks for this short a table (when the factory takes max_len): fewer keys, louder swaps
TEXT_SAMPLE = 20_000  # characters of the embedded Shakespeare text read by the <unk> measurement (from its middle)
ONE_TOKEN_BATCH, GENERIC_POINTS = 64, 4  # mistake 3: one-token contexts per gradient, and gradients (each at other
#   parameters and tokens) in which a query or key parameter must read exactly zero
FIT_TOKENS_PER_COEFFICIENT = 4  # mistake 6 fits d + 1 coefficients per logit on at least 4·(d + 1) tokens
FIT_COLUMNS = 256  # logits fitted by mistake 6: a fixed random subset of a larger vocabulary
ONE_SCALE = 0.01  # mistake 6: a per-token scale spread (x sqrt(2d), rms_spread's) below this is a stream already
#   normalised (post-norm: rounding, <= 0.005 in bfloat16); a pre-norm stream reads ~1, one whose embeddings are
#   normalised (BLOOM's LayerNorm) 0.03 and more
NEITHER = 0.1  # mistake 6: both fits miss by more than this share of the per-token scale spread: the fits cannot tell
#   the stream from the normalised stream (good fits miss by <= 0.023 of it, a norm over the sequence axis >= 0.46)


def block_outputs(ctx: Context) -> tuple[list[np.ndarray], float]:
    """(Each block's output (AuditModel.hidden_states) on the audit's tokens, float64; the relative change their
    rounding can explain, numerics.rounding_of), from the factory's model at depth STREAM_DEPTH in float32, where it
    takes n_layers and dtype (else the user's own depth and dtype, Context.in_float32): whether a block ends with a
    norm, or adds its input back, is architecture, and bfloat16 rounding of a normalised stream (~1 unit, 2^-8)
    comes near the scale spread of a pre-norm model that normalises its embeddings (BLOOM: ~10 units at
    d_model 16)."""
    ctx = ctx.in_float32
    model = ctx.variant(n_layers=STREAM_DEPTH) if accepts(ctx.factory, "n_layers") else ctx.model
    if model.hidden_states is None:
        raise NotApplicable("the model gives no residual stream (AuditModel.hidden_states)")
    raw = list(model.hidden_states(random_tokens(model)))
    states = [np.asarray(state, np.float64) for state in raw]
    if len(states) < 2:
        raise NotApplicable(f"the model gives {len(states)} block output(s) (AuditModel.hidden_states): no block "
                            "whose input is seen")
    if any(state.shape != states[0].shape for state in states):
        raise NotApplicable("the block outputs differ in shape: not one residual stream")
    return states, max(rounding_of(state) for state in raw)


def rms_spread(state: np.ndarray) -> float:
    """std/mean of the per-token RMS of a [B, T, D] stream, times sqrt(2·D): a vector of D independent Gaussian
    features has an RMS whose std/mean is about 1/sqrt(2·D), so ~1 reads "spread as random vectors" at any width."""
    rms = np.sqrt(np.mean(np.square(state), axis=-1)).ravel()  # one per token
    if not rms.mean() > 0:
        raise NotApplicable("a block's output is zero for every token: no scale to compare")
    return float(rms.std() / rms.mean() * math.sqrt(2 * state.shape[-1]))


def stream_scale_spread(ctx: Context) -> Reading:
    """Mistake 1: a post-norm block ends with a norm, so at initialisation (gain 1, or any gain shared by the
    features) every token leaves every block at the same RMS, whatever the block changed: their spread is zero up to
    rounding and the norm's epsilon. A pre-norm block adds its branch to the stream and normalises nothing, so its
    change shows in the tokens' scales: out = x + f(x) spreads them about as much as f changes x (or keeps the
    spread x already had). Value: the per-token RMS spread of a block's output (rms_spread) beyond rounding / the
    block's relative change RMS(out - x) / RMS(x), largest over blocks 2 .. n (block 1's input is not seen;
    block_outputs). Relative to the change, a model that normalises its embeddings and barely changes them at init
    (BLOOM) reads as pre-norm (~2 and more), not as a normalised stream. Rounding (block_outputs): a spread within
    it counts as none; a block whose change is within it cannot tell (not applicable: in bfloat16 without a float32
    model, a post-norm block that changes a normalised stream by < 3%, or BLOOM's first blocks)."""
    (states, rounding), ratios = block_outputs(ctx), []
    for before, after in zip(states[:-1], states[1:]):
        change = math.sqrt(np.mean(np.square(after - before)) / np.mean(np.square(before)))
        if not change > rounding:
            raise NotApplicable(f"a block changes its input by {change:.2g} of its RMS, within the rounding of the "
                                f"stream ({rounding:.2g}): whether it renormalises cannot be told")
        ratios.append(max(rms_spread(after) - rounding, 0.0) / change)
    return Reading(max(ratios), f"largest per-token RMS spread of a block's output (std/mean x sqrt(2d)) beyond "
                                f"rounding / its relative change, over {len(ratios)} block(s) (a pre-norm add reads "
                                "~1 and more)")


def stream_carry(ctx: Context) -> Reading:
    """Mistake 2: a residual block adds a branch to its input, out = x + f(x), and at initialisation f(x) is
    uncorrelated with x, so regressed on its input, a block's output has slope ~1 (post-norm's too: it rescales
    x + f(x), whose scale the norm before it set); without the residual add the output is f(x) alone, slope ~0,
    whether the block runs its branches in sequence or in parallel. Value: the least-squares slope of a block's
    output on its input over the B·T tokens, both centred over the tokens (a direction every token shares, from a
    bias or a norm's offset, carries nothing of the token), smallest over blocks 2 .. n (block_outputs)."""
    (states, _), slopes = block_outputs(ctx), []
    for before, after in zip(states[:-1], states[1:]):
        x, y = (s.reshape(-1, s.shape[-1]) for s in (before, after))
        x, y = x - x.mean(axis=0), y - y.mean(axis=0)
        if not np.sum(x * x) > 0:
            raise NotApplicable("a block's input is the same for every token: nothing for its output to carry")
        slopes.append(float(np.sum(x * y) / np.sum(x * x)))
    return Reading(min(slopes), f"smallest slope of a block's output on its input over {len(slopes)} block(s) "
                                "(centred over tokens; a residual add reads ~1)")


def affine_residual(x: np.ndarray, y: np.ndarray) -> float:
    """x [N, D], y [N, C] -> the RMS residual of the least-squares fit y ≈ x·A + b, relative to the RMS of y about
    its column means (0: y is an affine function of x; 1: x explains nothing of y)."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    spread = np.sqrt(np.mean(np.square(y - y.mean(axis=0))))
    if not spread > 0:
        raise NotApplicable("the logits are the same for every token: nothing to fit")
    return float(np.sqrt(np.mean(np.square(y - design @ coefficients))) / spread)


def output_fit(ctx: Context) -> Reading:
    """Mistake 6: an output layer is affine (an unembedding, perhaps a bias) in what it reads. Without a final norm
    it reads the residual stream itself, so the logits are an affine function of the last block's output
    (AuditModel.hidden_states[-1]); with one, an affine function of that stream divided by each token's RMS (RMSNorm)
    or standard deviation (LayerNorm), and not of the stream itself, whose tokens' scales differ (as random vectors'
    do: std/mean ~1/sqrt(2d)). Value: the misfit of the best affine fit of the logits on the stream / on the
    normalised stream (the better of RMS and std; least squares over >= 4·(d+1) tokens, affine_residual): rounding
    over a misfit without a final norm (1e-7 .. 1e-2), a misfit over rounding with one (10 .. 1e6). Depth plays no
    part, so a stream whose scale changes with depth for another reason (no residual) moves nothing.
    Undecided: a stream whose tokens already share one scale (post-norm: each block ends with a norm) reaches the
    output layer normalised with or without a final norm: clear. Two fits that both miss by more than NEITHER of
    the tokens' scale spread (hidden_states' last entry is not what the output layer reads, a norm over another
    axis, or rounding that hides the difference): not applicable."""
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype
    model, vocab = ctx.model, ctx.model.vocab_size
    last, logits, tokens = ctx.states[-1], ctx.logits, ctx.inputs.inputs
    d = last.shape[-1]
    width = np.asarray(logits).shape[-1]  # the logits' own width (a padded vocabulary is wider than vocab)
    columns = (np.sort(np.random.default_rng(TOKEN_SEED).choice(width, FIT_COLUMNS, replace=False))
               if width > FIT_COLUMNS else slice(None))  # cut per batch: [tokens, V] float64 can be gigabytes
    rows = lambda out: np.asarray(out, np.float64).reshape(-1, width)[:, columns]  # noqa: E731
    xs, ys = [last.reshape(-1, d)], [rows(logits)]
    draw = 1
    while sum(len(x) for x in xs) < FIT_TOKENS_PER_COEFFICIENT * (d + 1):  # more batches of the compiled shape
        more = np.random.default_rng((TOKEN_SEED, draw)).integers(1, vocab, tokens.shape).astype(np.int32)
        xs.append(np.asarray(model.hidden_states(more)[-1], np.float64).reshape(-1, d))
        ys.append(rows(model.forward(more, None)))
        draw += 1
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) != len(y):
        raise NotApplicable(f"hidden_states' last entry gives {len(x)} token vectors for {len(y)} rows of logits")
    scales = {"RMS": np.sqrt(np.mean(np.square(x), axis=-1)), "std": np.std(x, axis=-1)}
    if not all(np.all(scale > 0) for scale in scales.values()):
        raise NotApplicable("a token's last hidden state is constant across its features: no scale to normalise")
    spread = {kind: float(scale.std() / scale.mean()) for kind, scale in scales.items()}
    one = min(spread, key=spread.get)
    if spread[one] * math.sqrt(2 * d) < ONE_SCALE:
        return Reading(None, f"every token reaches the output layer at one {one} (spread x sqrt(2d) "
                             f"{spread[one] * math.sqrt(2 * d):.2g}): a normalised stream, with or without a final "
                             "norm", "clear")
    raw = affine_residual(x, y)
    normed = {kind: affine_residual(x / scale[:, None], y) for kind, scale in scales.items()}
    kind = min(normed, key=normed.get)
    if min(raw, normed[kind]) > NEITHER * spread[kind]:
        raise NotApplicable(f"the logits are an affine function neither of the last hidden state (misfit {raw:.2g}) "
                            f"nor of it normalised ({normed[kind]:.2g}) against a spread of {spread[kind]:.2g} in the "
                            f"tokens' {kind}: hidden_states' last entry is not what the output layer reads, its norm "
                            "works over another axis, or rounding hides the difference")
    return Reading(raw / max(normed[kind], np.finfo(np.float64).tiny),
                   f"logits' misfit as an affine function of the last hidden state / of it over each token's {kind} "
                   f"({len(x)} tokens)")


def generic_point(params, rng: np.random.Generator):
    """params moved off their initialisation: each floating-point leaf plus Gaussian noise of half its RMS (0.01 where
    it is all zeros), so that no gradient is zero by an accident of the init (a zero-initialised output projection
    silences the gradient of the matrix before it; a zero LayerNorm bias, whatever follows a norm over one token)."""
    def move(leaf):
        array = np.asarray(leaf)
        if not jax.numpy.issubdtype(array.dtype, jax.numpy.floating):  # (bfloat16 included)
            return leaf
        wide = array.astype(np.float64)
        rms = float(np.sqrt(np.mean(np.square(wide)))) if array.size else 0.0
        return (wide + rng.standard_normal(array.shape) * (0.5 * rms if rms > 0 else 0.01)).astype(array.dtype)
    return jax.tree.map(move, params)


def one_token_gradient(model: AuditModel, d: int, stacked: frozenset = frozenset()) -> tuple[int, int]:
    """(weight parameters, how many of them have an exactly zero gradient at each of GENERIC_POINTS) of the training
    loss on ONE_TOKEN_BATCH two-token sequences: a next-token objective reads the first position alone, which sees
    only itself. At generic_point(params), drawn anew each time with new tokens (a ReLU unit can be silent on every
    token at one point, not at all of them; the tokens are drawn first, so models of any size get the same ones).
    Weights: leaves with at least two axes longer than 1, one of them d, the stream's width (the matrices that read
    from or write to the stream; norm gains and biases are left out, also a bias shaped per head, [H, K]); a leaf
    whose path is in `stacked` holds every block's along its first axis, which the filter does not count."""
    if model.loss is None or model.params is None:
        raise NotApplicable("the model gives no loss and params to differentiate (AuditModel.loss, .params)")
    zero = None
    for point in range(GENERIC_POINTS):
        rng = np.random.default_rng((TOKEN_SEED, point))
        tokens = rng.integers(1, model.vocab_size, (ONE_TOKEN_BATCH, 2)).astype(np.int32)
        _, grads = value_and_gradient_of(model.loss)(generic_point(model.params, rng), tokens)
        here = []
        for path, g in jax.tree_util.tree_leaves_with_path(grads):
            shape = np.shape(g)[1:] if path in stacked else np.shape(g)
            if sum(n > 1 for n in shape) >= 2 and d in shape:
                here.append(np.asarray(g) == 0)
        zero = here if zero is None else [a & b for a, b in zip(zero, here)]
    return sum(z.size for z in zero), sum(int(np.count_nonzero(z)) for z in zero)


def stacked_leaves(one_block, two_blocks) -> frozenset:
    """The paths of the parameters that hold every block's along a first axis (a scan over layers): the leaves whose
    first axis is 1 with one block and 2 with two, the rest of their shape alike."""
    one = dict(jax.tree_util.tree_leaves_with_path(one_block))
    return frozenset(path for path, leaf in jax.tree_util.tree_leaves_with_path(two_blocks)
                     if path in one and np.ndim(leaf) >= 1 and np.shape(one[path])[:1] == (1,)
                     and np.shape(leaf)[:1] == (2,) and np.shape(one[path])[1:] == np.shape(leaf)[1:])


def ffn_width(ctx: Context) -> Reading:
    """Mistake 3: the FFN's width, from the weights a block adds (n_layers 2 minus 1; blocks stacked in one array
    are read per block, stacked_leaves) less its attention's. Attention is told apart by what it does in a
    one-token context: a softmax over one key weighs it 1 whatever the score, so the loss's gradient with respect to
    every query and key parameter is exactly zero (one_token_gradient); the values mirror the keys and the output
    projection the queries in size (multi-head, grouped-query and multi-query attention alike), so attention
    holds twice the parameters that read zero. The FFN holds the rest: 2·d·d_ff ungated, 3·d·h gated. Value: the
    FFN's parameters / (2·d²), d the residual stream's width (AuditModel.hidden_states, else the factory's
    d_model): d_ff/d ungated; 1.5·h/d gated, its equivalent width (a gated FFN of hidden 8d/3 holds the
    parameters of the 4d MLP it replaces: 4).
    Not applicable where no one-token context can be read: the first position's logits move with later tokens (a
    leak, detector 5), or the loss is flat (argmax, detector 9)."""
    try:
        d = ctx.states[-1].shape[-1]
    except NotApplicable:  # no hook, or a hook that found no block: the factory's d_model, if it has one
        d = None
    if d is None and isinstance(ctx.setting("d_model"), int):
        d = ctx.setting("d_model")
    elif d is None:
        raise NotApplicable("the model gives no residual stream (AuditModel.hidden_states) and the factory no d_model "
                            "argument with a default (or override): no width to measure the FFN against")
    tokens, vocab = ctx.inputs.inputs, ctx.model.vocab_size
    later = tokens.copy()
    later[:, 1:] = 1 + tokens[:, 1:] % (vocab - 1)  # every token after the first another id in [1, V)
    if largest_change(ctx.logits[:, 0], ctx.model.forward(later, None)[:, 0]) > rounding_floor(ctx.logits):
        raise NotApplicable("the first position's logits change with the tokens after it (a leak of the future, "
                            "detector 5): no context in which a token sees only itself")
    one, two = ctx.variant(n_layers=1), ctx.variant(n_layers=2)
    stacked = stacked_leaves(one.params, two.params) if one.params is not None and two.params is not None \
        else frozenset()
    (matrices_1, zeros_1), (matrices_2, zeros_2) = (one_token_gradient(model, d, stacked) for model in (one, two))
    block, query_key = matrices_2 - matrices_1, zeros_2 - zeros_1
    if block <= 0:
        raise NotApplicable("the factory ignores n_layers (no matrix parameters added by a second block)")
    if query_key <= 0:
        raise NotApplicable("no parameter a block adds has zero gradient when each token sees only itself, as "
                            "attention's queries and keys do: a block without attention, or an objective that reads "
                            "more than the first of two tokens")
    if query_key >= block:
        raise NotApplicable("the loss has zero gradient for every parameter a block adds (an objective through "
                            "argmax, detector 9, is flat everywhere): nothing tells attention's queries and keys apart")
    if 2 * query_key >= block:
        raise NotApplicable(f"{query_key} of the {block} matrix parameters a block adds have zero gradient when each "
                            "token sees only itself, more than attention's queries and keys can be")
    ffn = block - 2 * query_key
    return Reading(ffn / (2 * d * d), f"{ffn} FFN parameters per block ({block} in its matrices less twice the "
                                      f"{query_key} of attention's queries and keys) at d_model={d}")


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
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype
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
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype
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
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype
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
    ctx = ctx.in_float32  # compared in float32 where the factory takes dtype
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
