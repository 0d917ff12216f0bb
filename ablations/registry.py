"""The one registry of the 11 mistakes: each claim of the seed page (and each the lab adds) with the
measurement, the rule and the practical margin that decide it, the probes that measure it, and the
settings that make it visible on a 2-core CPU. Runner, report, figures and tests read this; all of
it was fixed before the runs whose results are committed."""
from __future__ import annotations

import dataclasses

from ablations.rules import Effect, Exactly, Invariant, NoGain
from model import names_of_all

# Settings chosen so that the *correct* variant reliably trains near the entropy floor (never by
# looking at the broken variant): 8 layers need a lower learning rate than the default 2.
DEEP = {"model.n_layers": 8, "train.lr": 3e-3}
LOGIT_TOL = 1e-3  # float32 reorderings move logits by ~1e-6; a real leak or mismatch moves them by > 1e-2
# Practical margins, one per unit: an effect smaller than this is not worth a reader's attention.
NATS = 0.01  # nats/token, for every cross-entropy (final, at a point of training, area, past the training length)
BITS = 0.01  # bits/byte
DECADE = 1.0  # log10 units: "vanishing" gradients are at least 10x smaller, relative to the output end
SHARE = 0.01  # a share of tokens (copy accuracy): one percentage point


@dataclasses.dataclass(frozen=True)
class Claim:
    """One testable sentence: what it says, who says it ("page": the seed page, "lab": added by the lab),
    the rule that decides it, and which correct variant it compares the broken one against."""
    says: str
    rule: object  # an ablations.rules rule: Effect, NoGain, Invariant or Exactly
    source: str = "page"
    reference: str = "correct"  # "correct", or the name of one of the mistake's `fixes`


@dataclasses.dataclass(frozen=True)
class MistakeSpec:
    name: str  # the `mistake=` value and the model.Mistakes switch
    number: int  # the seed page's mistake number
    title: str
    claims: tuple[Claim, ...]
    probes: tuple[str, ...] = ()  # symptom probes beyond the standard measurements (ablations.probes)
    settings: dict = dataclasses.field(default_factory=dict)  # dotted config keys -> value, for every variant
    fixes: dict = dataclasses.field(default_factory=dict)  # more correct variants: name -> dotted settings
    symptom_plot: str = "val_loss"  # the measurement the symptom figure shows
    refuses: dict = dataclasses.field(default_factory=dict)  # dotted key -> (value this mistake cannot run with, why)
    broken: dict = dataclasses.field(default_factory=dict)  # dotted settings of the broken variant alone (may
    # interpolate the run's config, OmegaConf's way: "${data.tiny_vocab_size}")

    @property
    def variants(self) -> tuple[str, ...]:
        return ("correct", *self.fixes, "broken")

    @property
    def claim(self) -> str:
        """The page's claims in one sentence (the lab's own when the page names no symptom)."""
        page = [c.says for c in self.claims if c.source == "page"]
        return "; ".join(page) if page else "the page names no symptom; lab: " + "; ".join(c.says for c in self.claims)


def ffn_params_removed(cfg) -> int:
    return -cfg.n_layers * (cfg.ffn_mult - 1) * cfg.d_model * (2 * cfg.d_model + 1)  # up+down kernels, up bias


MISTAKES = (
    MistakeSpec("post_norm", 1, "Pre-norm vs post-norm confusion", (
        Claim("post-norm trains worse than pre-norm (deep stack, no warmup; mean validation loss over training)",
              Effect("val_loss_auc", NATS, "nats/token")),
    ), settings={"model.n_layers": 8, "train.lr": 3e-3, "train.warmup": 0}),
    MistakeSpec("no_residual", 2, "Missing residual connections", (
        Claim("a deep transformer without residuals does not train (final validation loss)",
              Effect("val_loss", NATS, "nats/token")),
        Claim("its gradients vanish towards the input (log10 first/last block gradient norm, first logged step)",
              Effect("grad_depth_ratio", DECADE, "decades", higher=False)),
    ), settings=DEEP, symptom_plot="grad_depth_ratio"),
    MistakeSpec("narrow_ffn", 3, "Wrong FFN dimension", (
        Claim("d_ff = d_model removes n_layers·(ffn_mult−1)·d·(2d+1) parameters",
              Exactly("n_params", ffn_params_removed, "-n_layers*(ffn_mult-1)*d_model*(2*d_model+1)"), source="lab"),
        Claim("d_ff = d_model gives a worse model than the standard 4·d_model (final validation loss)",
              Effect("val_loss", NATS, "nats/token")),
    )),
    MistakeSpec("untied_embeddings", 4, "Not tying embeddings", (
        Claim("a separate output projection adds vocab_size·d_model parameters",
              Exactly("n_params", lambda cfg: cfg.vocab_size * cfg.d_model, "vocab_size*d_model")),
        Claim("those parameters are wasted: no gain from them (final validation loss)",
              NoGain("val_loss", NATS, "nats/token")),
    )),
    MistakeSpec("norm_wrong_axis", 5, "LayerNorm over the wrong axis", (
        Claim("statistics over the sequence axis leak the future: logits at t change when tokens after t change",
              Invariant("causal_leak", LOGIT_TOL), source="lab"),
        Claim("the leak lets the model cheat: its validation loss falls below the correct model's",
              Effect("val_loss", NATS, "nats/token", higher=False), source="lab"),
    ), probes=("causality", "cache"), symptom_plot="causal_leak"),
    MistakeSpec("no_final_norm", 6, "Forgetting the final LayerNorm", (
        Claim("unnormalised activations reach the output projection: the model trains worse (final validation loss)",
              Effect("val_loss", NATS, "nats/token")),
    ), settings=DEEP),
    MistakeSpec("position_overflow", 7, "Position embedding length", (
        Claim("a learned table sized to the training length degrades past it more than the correct model's "
              "positions (RoPE by default): loss past the training length minus loss within it",
              Effect("length_degradation", NATS, "nats/token")),
        Claim("... and more than sinusoidal positions, the page's other fix",
              Effect("length_degradation", NATS, "nats/token"), reference="sinusoidal"),
    ), probes=("length",), fixes={"sinusoidal": {"model.position": "sinusoidal"}}, symptom_plot="loss_by_position",
        refuses={"model.position": ("learned", "the correct variant's learned table would overflow too; "
                                               "valid choices: rope, sinusoidal")}),
    MistakeSpec("padding_mask", 8, "Attention mask broadcasting", (
        Claim("batched inference on left-padded sequences gives wrong outputs (logits differ from each sequence alone)",
              Invariant("padding_gap", LOGIT_TOL)),
        Claim("the loss on left-padded batches is worse", Effect("padded_val_loss", NATS, "nats/token"),
              source="lab"),
    ), probes=("padding",), symptom_plot="padding_gap"),
    MistakeSpec("argmax_gradient", 9, "Gradient through argmax", (
        Claim("an objective through argmax has zero gradient", Invariant("zero_gradient", 0.5)),
        Claim("so nothing is learned (final validation loss)", Effect("val_loss", NATS, "nats/token")),
    )),
    MistakeSpec("tiny_vocab", 10, "Vocabulary too small for the tokenizer", (
        Claim("many <unk> tokens", Invariant("unk_rate", 0.0)),
        Claim("poor performance (bits per byte, each <unk> charged the cost of naming its character)",
              Effect("bits_per_byte", BITS, "bits/byte")),
    ), probes=("vocab",), settings={"data.tiny_vocab_size": 16}, symptom_plot="unk_rate",
        broken={"data.vocab_size": "${data.tiny_vocab_size}"}),  # its corpus, tokenized with too few symbols
    MistakeSpec("stale_kv_cache", 11, "KV cache not updated", (
        Claim("cached generation differs from a full recompute", Invariant("cache_gap", LOGIT_TOL), source="lab"),
        Claim("generation ignores previous tokens: it cannot copy a span from its context (copy accuracy)",
              Effect("copy_accuracy", SHARE, "of tokens", higher=False)),
    ), probes=("cache", "copy"), symptom_plot="copy_accuracy"),
)

BY_NAME = {spec.name: spec for spec in MISTAKES}
assert tuple(BY_NAME) == names_of_all(), "the registry and model.Mistakes must name the same 11 mistakes"


def lookup(name: str) -> MistakeSpec:
    if name not in BY_NAME:
        raise ValueError(f"unknown mistake {name!r}; valid choices: {', '.join(BY_NAME)}, all")
    return BY_NAME[name]
