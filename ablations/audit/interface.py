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
    """What a factory returns: a model at random initialisation, seen from outside.

    forward: (tokens [B, T] int32, pad_mask [B, T] bool (True = real token) or None) -> logits [B, T, V] float32.
    vocab_size: V, the number of token ids the model accepts.
    n_params: number of trainable parameters.
    params, loss: the parameter pytree and the training objective loss(params, tokens [B, T]) -> scalar, the
        function you differentiate to train (None: the gradient detectors are not applicable).
    generate: (prompts [B, P] int32, prompt_mask [B, P] bool, n_new, use_cache) -> (new tokens [B, n_new],
        the logits that chose them [B, n_new, V]): greedy decoding with the KV cache (use_cache=True) or by
        recomputing the whole prefix at every step, as ablations.science.probes.LanguageModel. The audit decodes with
        the cache and recomputes with forward (None: the cache detector is not applicable).
    hidden_states: (tokens [B, T] int32) -> sequence of [B, T, D] arrays: the residual stream after each block,
        input to output, before any final norm (all tokens real, as forward(tokens, None)). The post-norm
        detector reads whether every block leaves each token's stream at one scale (None: not applicable).
    tokenizer: has encode(text) -> ids and unk_id (None: the vocabulary detector is not applicable). Every token
        id it emits must be < vocab_size: a tokenizer that states more tokens (the largest of its `vocab_size`,
        `get_vocab_size()` and `len()`) than the model has is refused (`build`).
    max_len: the training length; the size of the learned position table if there is one (None: the
        position-overflow detector is not applicable).
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
