"""The switches of the mistakes, one per entry of the seed's "Common Mistakes" page.

Only the switches live here; what each one is said to cause, and how the lab measures it, lives in its
catalogue file (`ablations/catalogue/mNN_<name>.py`). The model reads mistakes 1-8 and 11, the training
objective reads mistake 9; mistake 10 is in the data (its catalogue entry gives the broken variant too small a
vocabulary), and its switch marks such a model for the audit (`ablations/audit/adapters.py`).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Mistakes:
    post_norm: bool = False  # 1: norm after the residual add (original transformer)
    no_residual: bool = False  # 2: blocks without residual additions
    narrow_ffn: bool = False  # 3: d_ff = d_model
    untied_embeddings: bool = False  # 4: separate output projection
    norm_wrong_axis: bool = False  # 5: LayerNorm statistics over the sequence axis
    no_final_norm: bool = False  # 6: no LayerNorm before the output projection
    position_overflow: bool = False  # 7: learned table of training length, used on longer inputs
    padding_mask: bool = False  # 8: no per-sequence padding mask (only causal)
    argmax_gradient: bool = False  # 9: training objective through argmax
    tiny_vocab: bool = False  # 10: vocabulary too small for the text
    stale_kv_cache: bool = False  # 11: decode attends to the current token's k/v only

    @classmethod
    def of(cls, *names: str) -> "Mistakes":
        """Switch on the named mistakes; an unknown name raises one clear line."""
        valid = names_of_all()
        for name in names:
            if name not in valid:
                raise ValueError(f"unknown mistake {name!r}; valid choices: {', '.join(valid)}")
        return cls(**{name: True for name in names})

    def active(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name))


def names_of_all() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(Mistakes))
