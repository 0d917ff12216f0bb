"""What every measurement of an audit shares: the factory with the user's overrides and the models built from
it (each built once), the random token batches, the logits and their context effect, and the training loss's
gradient."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from ablations.audit.interface import AuditModel, NotApplicable, accepts, default_of
from ablations.audit.numerics import largest_change, rounding_floor, value_and_gradient_of
from ablations.science import probes

TOKEN_SEED = 0  # token draws are fixed: two audits of one model give identical numbers
BATCH, LENGTH = 4, 16  # [B, T] of the audit's token batches (T cut to max_len when the model's is shorter)


def is_float32(dtype) -> bool:
    """dtype (a name, a numpy or JAX dtype) is float32; a value that names no dtype is not."""
    try:
        return jnp.dtype(dtype) == jnp.float32
    except TypeError:
        return False


def random_tokens(model: AuditModel, length: int | None = None) -> np.ndarray:
    """[B, length] int32 ids in [1, V): id 0 is left out, being many tokenizers' <unk> or padding id."""
    length = length or min(LENGTH, model.max_len or LENGTH)
    return np.random.default_rng(TOKEN_SEED).integers(1, model.vocab_size, (BATCH, length)).astype(np.int32)


def audit_inputs(model: AuditModel) -> probes.ProbeInputs:
    """The symptom probes' inputs (ablations.science.probes, shared with trained pairs) filled with random ids; pad
    id: the tokenizer's <unk>."""
    tokens = random_tokens(model)
    pad_id = model.tokenizer.unk_id if model.tokenizer is not None else 0
    return probes.ProbeInputs(tokens, np.roll(tokens, -1, axis=1), tokens, tokens, pad_id, 1.0, 1, None)


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

    @functools.cached_property
    def in_float32(self) -> "Context":
        """This audit on the factory's model in float32, where the factory takes dtype (else this very audit): the
        mistakes are code, not precision, and at initialisation what a mistake changes in the logits can be within
        bfloat16's rounding of them (BLOOM at d_model 16: a visible pad or a stale cache reads 0 beyond rounding).
        The measurements that compare logits read this one."""
        dtype = self.setting("dtype")
        if not accepts(self.factory, "dtype") or dtype is None or is_float32(dtype):
            return self
        return Context(self.factory, {**self.overrides, "dtype": "float32"}, self.variant(dtype="float32"))

    def setting(self, name: str):
        """The value of a factory argument in the user's model: their override, else the factory's default."""
        return self.overrides.get(name, default_of(self.factory, name))

    @functools.cached_property
    def inputs(self) -> probes.ProbeInputs:
        return audit_inputs(self.model)

    @functools.cached_property
    def logits(self) -> np.ndarray:
        return np.asarray(self.model.forward(self.inputs.inputs, None))  # [B, T, V]

    @functools.cached_property
    def states(self) -> list[np.ndarray]:
        """The user's model's residual stream after each block (AuditModel.hidden_states) on the audit's tokens:
        float64 [B, T, D] each, input to output; NotApplicable without the hook or with an empty one."""
        if self.model.hidden_states is None:
            raise NotApplicable("the model gives no residual stream (AuditModel.hidden_states)")
        states = [np.asarray(state, np.float64) for state in self.model.hidden_states(self.inputs.inputs)]
        if not states:
            raise NotApplicable("the model gives no block's output (AuditModel.hidden_states is empty)")
        return states

    @functools.cached_property
    def context_effect(self) -> float:
        """How much the model's logits depend on context: the largest change of the last position's logits when
        every earlier token is replaced (by another row's): the scale the consistency detectors (causality, padding,
        cache) are measured against; not applicable where it is within rounding (rounding_floor: a bfloat16 model
        that barely reads its context at init, whose factory offers no float32, Context.in_float32). A model that
        barely reads its context at init (post-norm) also barely shows a stale cache or a visible pad, in the same
        proportion."""
        tokens = self.inputs.inputs
        other = tokens.copy()
        other[:, :-1] = tokens[::-1, :-1]
        effect, floor = largest_change(self.logits[:, -1], self.model.forward(other, None)[:, -1]), \
            rounding_floor(self.logits)
        if not effect > floor:  # (all-zero logits too)
            raise NotApplicable(f"the logits move with their context by {effect:.2g}, within their rounding "
                                f"({floor:.2g}): no difference between two computations can be told from rounding")
        return effect

    def beyond_rounding(self, gap: float) -> float:
        """A logit difference between two computations of the same thing, less what rounding can explain
        (rounding_floor), relative to the context effect: 0 for agreement up to rounding."""
        return max(gap - rounding_floor(self.logits), 0.0) / self.context_effect

    def language_model(self) -> probes.LanguageModel:
        return probes.LanguageModel(forward=self.model.forward, generate=self.model.generate)


def loss_and_gradient(model: AuditModel, tokens: np.ndarray) -> tuple[float, Any]:
    """The training loss on tokens [B, T] and its gradient (a params-shaped tree)."""
    if model.loss is None or model.params is None:
        raise NotApplicable("the model gives no loss and params to differentiate (AuditModel.loss, .params)")
    loss, grads = value_and_gradient_of(model.loss)(model.params, tokens)
    return float(loss), grads
