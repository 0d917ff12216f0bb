"""The audit's interface: what a factory returns (`AuditModel`), what a measurement returns (`Reading`) or
raises (`NotApplicable`), and how a factory is called and checked (`build`). The full contract for writing a
factory is in docs/auditing-a-model.md."""
from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Callable
from typing import Any

from ablations.errors import UsageError

STATUSES = ("detected", "clear", "not applicable", "not calibrated", "error")


@dataclasses.dataclass(frozen=True)
class AuditModel:
    """What a factory returns: a model at random initialisation, seen from outside (docs/auditing-a-model.md,
    "The contract"; "A model that is not Flax" writes one in pure JAX, every field but optimizer filled).

    The audit hands every function numpy arrays (token ids int32, masks bool; batches of B = 4 rows of
    T = min(16, max_len or 16) tokens unless said below) and reads back whatever np.asarray takes. Its token draws
    are fixed (context.TOKEN_SEED): a factory that builds the same parameters from the same overrides gets the
    same numbers from every audit.

    The factory is called as factory(**overrides), the user's overrides (`key=value` on the command line, parsed
    by ast.literal_eval, else kept a string; `--mistakes a,b` adds mistakes=("a", "b"), checked against the
    catalogue's names), then by some detectors with these on top, each model built once and only where the value
    differs from the user's: n_layers=2 and dtype="float32" (post_norm, no_residual), n_layers=1 and 2
    (narrow_ffn), vocab_size=V and 2·V (untied_embeddings, which also reads the factory's d_model, override or
    default), n_layers=1 and max_len=4 (position_overflow, those of the two it takes), dtype="float32" (every
    detector and reported-bug check that compares logits, where the user's model is in another dtype: the
    mistakes are code, and bfloat16 rounding can hide what they change at init). A detector whose override the
    factory does not take (narrow_ffn: n_layers; untied_embeddings: vocab_size, d_model) is "not applicable"; a
    factory with **kwargs is taken to accept every override.

    forward: (tokens [B, T] int32, pad_mask [B, T] bool or None) -> logits [B, T, V], floating point (float32;
        logits computed in bfloat16/float16 are recognised from their values, and the rounding allowed follows).
        pad_mask True = real token (the 11 detectors pad on the left, with the pad id: tokenizer.unk_id, else 0);
        None = all real. A left-padded row's real tokens must get the logits of the row alone: pads are not
        attended to and absolute positions count from the row's first real token. Every detector but post_norm,
        no_residual, untied_embeddings, argmax_gradient and tiny_vocab calls it; position_overflow with
        max_len + 3 tokens, where raising is the fix (clear) and NaN the mistake (detected).
    vocab_size: V, the number of token ids the model accepts, at least 2 (the audit draws ids in [1, V)).
    n_params: the number of trainable parameters (untied_embeddings reads how it grows from vocab_size V to 2·V).
    params, loss: the parameter pytree (floating-point leaves) and the objective you train with, loss(params,
        tokens [B, T] int32) -> scalar, differentiated under jax.jit(jax.value_and_grad) (so JAX-traceable) on
        the audit's [4, T] tokens (argmax_gradient) and on [64, 2] tokens at params moved off their init
        (narrow_ffn, which takes a next-token objective: on two tokens it reads the first position alone).
        None: both not applicable.
    generate: called positionally, generate(prompts [B, P] int32, prompt_mask [B, P] bool, n_new, use_cache) ->
        (new tokens [B, n_new] int, logits [B, n_new, V]), where logits[:, i] are the logits that chose token i
        (greedy: token i is their argmax): decoding with the KV cache (use_cache=True) or by recomputing the
        whole prefix at every step (False), as ablations.science.probes.LanguageModel. The prompts are
        left-padded as forward's rows (pad id tokenizer.unk_id, else 0; prompt_mask True = real token).
        stale_kv_cache calls it with use_cache=True and P = n_new = T // 2, and compares logits[:, i] with
        forward(prompts + new tokens, prompt_mask + all True) at position P - 1 + i (None: not applicable).
    hidden_states: (tokens [B, T] int32) -> sequence of [B, T, D] arrays: the residual stream after each block,
        input to output, before any final norm (all tokens real, as forward(tokens, None)). post_norm reads
        whether block 2 leaves each token's stream at one scale whatever it changed, no_residual whether block 2's
        output carries its input (block 1's output), no_final_norm whether the logits are an
        affine function of the last entry, narrow_ffn takes D from it (else from the factory's d_model). None or
        empty: post_norm, no_residual and no_final_norm are not applicable (post_norm and no_residual also with
        fewer than two entries).
    tokenizer: has encode(text) -> ids and unk_id. tiny_vocab encodes 20,000 characters of the lab's embedded
        Shakespeare text (data.load_text; the factory gives no text) and reads the share of ids equal to unk_id,
        which is also the pad id (None: tiny_vocab not applicable, pad id 0). Every token id it emits must be
        < vocab_size: a tokenizer that states more tokens (the largest of its `vocab_size`,
        `get_vocab_size()` and `len()`) than the model has is refused (`build`).
    max_len: the training length; the size of the learned position table if there is one (None: the
        position-overflow detector is not applicable).
    optimizer: the optax GradientTransformation you train params with; the reported-bug check decayed_norms reads
        which leaves its weight decay moves (ablations/audit/reported.py; None: not applicable).
    """
    forward: Callable
    vocab_size: int
    n_params: int
    params: Any = None
    loss: Callable | None = None
    generate: Callable | None = None
    hidden_states: Callable | None = None
    tokenizer: Any = None
    max_len: int | None = None
    optimizer: Any = None


class NotApplicable(Exception):
    """The model does not offer what the measurement needs, or it cannot see; the message says which."""


@dataclasses.dataclass(frozen=True)
class Reading:
    value: float | None
    note: str
    status: str | None = None  # only where the reading decides by itself (an error raised past max_len: clear)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def accepts(factory: Callable, name: str) -> bool:
    parameters = inspect.signature(factory).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def default_of(factory: Callable, name: str):
    parameter = inspect.signature(factory).parameters.get(name)
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


class FactoryError(ValueError):
    """The factory cannot give a model to audit; the message says why in one line."""


def tokenizer_size(tokenizer) -> int | None:
    """The number of tokens a tokenizer states: the largest of its `vocab_size` attribute, `get_vocab_size()`
    (Hugging Face `tokenizers`) and `len()` that it has (a `transformers` tokenizer's `vocab_size` leaves out
    added tokens, its `len()` counts them); None when it states none."""
    stated = [getattr(tokenizer, "vocab_size", None)]
    if callable(getattr(tokenizer, "get_vocab_size", None)):
        stated.append(tokenizer.get_vocab_size())
    if hasattr(tokenizer, "__len__"):
        stated.append(len(tokenizer))
    sizes = [int(n) for n in stated if isinstance(n, numbers.Integral) and not isinstance(n, bool)]
    return max(sizes) if sizes else None


def build(factory: Callable, overrides: dict, name: str) -> AuditModel:
    """factory(**overrides), checked: every override is an argument of it, it returns an AuditModel, and its
    tokenizer (if any) states no more tokens than the model's vocab_size."""
    unknown = [key for key in overrides if not accepts(factory, key)]
    if unknown:
        taken = ", ".join(inspect.signature(factory).parameters) or "nothing"
        raise FactoryError(f"factory {name} takes no {', '.join(unknown)}; it takes: {taken}")
    try:
        model = factory(**overrides)
    except UsageError:  # the factory's own one line (the lab's GPT: a model too large for the machine)
        raise
    except Exception as error:
        raise FactoryError(f"factory {name} failed with {overrides}: {type(error).__name__}: {first_line(error)}")
    if not isinstance(model, AuditModel):
        raise FactoryError(f"factory {name} returned {type(model).__name__}, expected an "
                           "ablations.audit.interface.AuditModel")
    if not (isinstance(model.vocab_size, int) and model.vocab_size >= 2):
        given = ", ".join(f"{k}={v}" for k, v in overrides.items() if "vocab" in k) or f"factory {name}"
        raise FactoryError(f"{given}: a vocabulary of {model.vocab_size} tokens; the audit needs at least 2 (its token "
                           "batches draw ids 1 to vocab_size-1)")
    stated = tokenizer_size(model.tokenizer) if model.tokenizer is not None else None
    if stated is not None and stated > model.vocab_size:
        raise FactoryError(f"factory {name}: its tokenizer states {stated} tokens but the model's vocab_size is "
                           f"{model.vocab_size}; every token id the tokenizer emits must be < vocab_size")
    return model
