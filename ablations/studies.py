"""The one registry of studies: each asks where a mistake's claims hold, as a grid over one or two
config keys (any key of `ablations/conf`, or a preset group such as `data`), on top of the mistake's
own settings and the study's fixed overrides. Every point is a full paired run with its seeds. The
study runner (`python -m ablations.study`), the report and the tests read this; grids were fixed
before any point ran."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Axis:
    key: str  # a dotted config key ("model.n_layers") or a preset group ("data")
    values: tuple


@dataclasses.dataclass(frozen=True)
class StudySpec:
    name: str
    mistake: str
    question: str
    axes: tuple[Axis, ...]  # one or two; the first is the x axis of the figure, the second draws one line per value
    overrides: tuple[str, ...] = ()  # Hydra overrides for every point ("data=shakespeare", "train.lr=3e-3")
    broken: Callable[[dict], dict] | None = None  # point (axis key -> value) -> the broken variant's own settings


DEPTHS = (2, 4, 8, 16)


def equal_parameter_width(at: dict, d_model: int = 64, multiple: int = 8) -> dict:
    """The narrow-FFN model's d_model whose blocks hold as many parameters as the correct model's at
    ffn_mult m: (4 + 2)·d'² = (4 + 2m)·d², rounded to a multiple of 8 (heads and rotary pairs divide it)."""
    width = d_model * math.sqrt((4 + 2 * at["model.ffn_mult"]) / 6)
    return {"model.d_model": multiple * round(width / multiple)}


STUDIES = (
    StudySpec("no_residual_depth", "no_residual", "At what depth does a missing residual stop training?",
              (Axis("model.n_layers", (1, 2, 4, 8, 16)),)),
    StudySpec("post_norm_depth_warmup", "post_norm",
              "Does post-norm need warmup, and from what depth (Xiong et al. 2020 say it does)?",
              (Axis("model.n_layers", DEPTHS), Axis("train.warmup", (0, 300)))),
    StudySpec("no_final_norm_depth", "no_final_norm", "Does a missing final norm start to hurt with depth?",
              (Axis("model.n_layers", DEPTHS),)),
    StudySpec("narrow_ffn_width", "narrow_ffn",
              "On real text, how much does the FFN width matter at a fixed d_model "
              "(d_ff = d_model against ffn_mult·d_model)?",
              (Axis("model.ffn_mult", (1, 2, 4, 8)),), overrides=("data=shakespeare",)),
    StudySpec("narrow_ffn_equal_params", "narrow_ffn",
              "On real text, at an equal parameter count, is a narrow FFN with a wider d_model worse than 4x "
              "(Kaplan et al. 2020: shape matters little at fixed parameters)?",
              (Axis("model.ffn_mult", (1, 2, 4, 8)),), overrides=("data=shakespeare",), broken=equal_parameter_width),
    StudySpec("untied_embeddings_size", "untied_embeddings",
              "On real text, where do separate output embeddings start to help or hurt, with characters and with BPE?",
              (Axis("model.d_model", (32, 64, 128)), Axis("data.tokenizer", ("char", "bpe"))),
              overrides=("data=shakespeare", "data.vocab_size=512")),
    StudySpec("position_overflow_length", "position_overflow",
              "How far past the training length does each position scheme "
              "(clamped learned table, sinusoidal, RoPE) hold?",
              (Axis("probe.length_factor", (1.5, 2.0, 3.0, 4.0)),)),
    StudySpec("tiny_vocab_size", "tiny_vocab", "How small can the vocabulary get before <unk> costs bits per byte?",
              (Axis("data.tiny_vocab_size", (8, 16, 32, 48, 64)),)),
    StudySpec("padding_mask_share", "padding_mask",
              "Does the damage of a missing padding mask grow with the share of padding?",
              (Axis("probe.padding_share", (0.125, 0.25, 0.5, 0.75)),)),
    # Added after the suite's run on this CPU, where a seed of the 2-layer correct model had not formed the copy
    # by step 1,500 (exploratory: it asks whether the 2-layer loss claims decide once every model has converged).
    StudySpec("narrow_ffn_steps", "narrow_ffn", "Worse, or only slower? The 2-layer FFN claim with longer training",
              (Axis("steps", (1500, 3000, 6000)),)),
)

BY_NAME = {study.name: study for study in STUDIES}


def lookup(name: str) -> StudySpec:
    if name not in BY_NAME:
        raise ValueError(f"unknown study {name!r}; valid choices: {', '.join(BY_NAME)}")
    return BY_NAME[name]
