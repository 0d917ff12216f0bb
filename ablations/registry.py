"""The one registry of the 11 mistakes: what the seed claims, how the lab probes it, the rule that
decides, and the settings that make it visible on a 2-core CPU. Runner, report and tests read this."""
from __future__ import annotations

import dataclasses

from ablations.rules import Exactly, Invariant, NotBetter, Worse
from model import names_of_all

# Settings chosen so that the *correct* variant reliably trains near the entropy floor (never by
# looking at the broken variant): 8 layers need a lower learning rate than the default 2.
DEEP = {"model.n_layers": 8, "train.lr": 3e-3}
LOGIT_TOL = 1e-3  # float32 reorderings move logits by ~1e-6; a real leak or mismatch moves them by > 1e-2


@dataclasses.dataclass(frozen=True)
class MistakeSpec:
    name: str  # the `mistake=` value and the model.Mistakes switch
    number: int  # the seed page's mistake number
    title: str
    claim: str  # the seed's symptom, taken as a hypothesis
    checks: tuple  # decision rules, all must pass for "reproduced"
    probes: tuple[str, ...] = ()  # symptom probes beyond the standard measurements (ablations.probes)
    settings: dict = dataclasses.field(default_factory=dict)  # dotted config keys -> value
    symptom_plot: str = "val_loss"  # the measurement the symptom figure shows


def ffn_params_removed(cfg) -> int:
    return -cfg.n_layers * 3 * cfg.d_model * (2 * cfg.d_model + 1)  # up+down kernels and the up bias


MISTAKES = (
    MistakeSpec("post_norm", 1, "Pre-norm vs post-norm confusion",
                "post-norm is the wrong placement for a modern GPT: a deep stack without warmup trains worse",
                (Worse("val_loss"),), settings={"model.n_layers": 8, "train.lr": 3e-3, "train.warmup": 0}),
    MistakeSpec("no_residual", 2, "Missing residual connections",
                "a deep transformer without residuals does not train (vanishing gradients)",
                (Worse("val_loss"), Worse("grad_depth_ratio", higher=False)),
                settings=DEEP, symptom_plot="grad_depth_ratio"),
    MistakeSpec("narrow_ffn", 3, "Wrong FFN dimension",
                "d_ff = d_model instead of 4 d_model: fewer parameters and a worse model",
                (Exactly("n_params", ffn_params_removed, "-n_layers*3*d_model*(2*d_model+1)"), Worse("val_loss"))),
    MistakeSpec("untied_embeddings", 4, "Not tying embeddings",
                "a separate output projection wastes vocab_size*d_model parameters",
                (Exactly("n_params", lambda cfg: cfg.vocab_size * cfg.d_model, "vocab_size*d_model"),
                 NotBetter("val_loss"))),
    MistakeSpec("norm_wrong_axis", 5, "LayerNorm over the wrong axis",
                "statistics over the sequence axis mix future tokens into every position: the model is no "
                "longer causal and its loss can fall below the entropy floor",
                (Invariant("causal_leak", LOGIT_TOL),), probes=("causality", "cache"), symptom_plot="causal_leak"),
    MistakeSpec("no_final_norm", 6, "Forgetting the final LayerNorm",
                "unnormalised activations reach the output projection and the model trains worse",
                (Worse("val_loss"),), settings=DEEP),
    MistakeSpec("position_overflow", 7, "Position embedding length",
                "a learned table sized to the training length fails on longer sequences (seed: IndexError; "
                "JAX clamps silently); the claimed fix is rotary or sinusoidal positions",
                (Worse("loss_past_train_len"),), probes=("length",), symptom_plot="loss_by_position"),
    MistakeSpec("padding_mask", 8, "Attention mask broadcasting",
                "without a per-sequence padding mask, batched inference on left-padded sequences attends to "
                "padding and gives wrong outputs",
                (Invariant("padding_gap", LOGIT_TOL), Worse("padded_val_loss")), probes=("padding",),
                symptom_plot="padding_gap"),
    MistakeSpec("argmax_gradient", 9, "Gradient through argmax",
                "an objective that goes through argmax has zero gradient: no learning",
                (Invariant("zero_gradient", 0.5), Worse("val_loss"))),
    MistakeSpec("tiny_vocab", 10, "Vocabulary too small for the tokenizer",
                "many <unk> tokens and poor performance (measured per byte, with <unk> charged honestly)",
                (Invariant("unk_rate", 0.0), Worse("bits_per_byte")), probes=("vocab",),
                settings={"data.tiny_vocab_size": 16}, symptom_plot="unk_rate"),
    MistakeSpec("stale_kv_cache", 11, "KV cache not updated",
                "generation with a cache that keeps only the current token ignores previous tokens",
                (Invariant("cache_gap", LOGIT_TOL), Worse("copy_accuracy", higher=False)), probes=("cache", "copy"),
                symptom_plot="copy_accuracy"),
)

BY_NAME = {spec.name: spec for spec in MISTAKES}
assert tuple(BY_NAME) == names_of_all(), "the registry and model.Mistakes must name the same 11 mistakes"


def lookup(name: str) -> MistakeSpec:
    if name not in BY_NAME:
        raise ValueError(f"unknown mistake {name!r}; valid choices: {', '.join(BY_NAME)}, all")
    return BY_NAME[name]
