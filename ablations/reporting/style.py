"""The colours every figure of the lab shares: one per outcome, one per variant."""
from __future__ import annotations

from ablations.science.rules import NOT_MEASURED

# The colour says whether the claim holds: an exact claim that holds shares "reproduced"'s colour, one that fails
# shares "no effect"'s.
OUTCOME_COLORS = {"reproduced": "#d95f02", "holds": "#d95f02", "opposite": "#7570b3", "no effect": "#1b9e77",
                  "fails": "#1b9e77", "inconclusive": "#969696", NOT_MEASURED: "#d9d9d9"}
VARIANT_COLORS = {"correct": "tab:blue", "broken": "tab:red"}
FIX_COLORS = ("tab:cyan", "tab:olive", "tab:brown")  # a mistake's other correct variants ("fixes")
LINE_COLORS = ("0.25", "tab:brown", "tab:olive", "tab:pink")  # a study's lines, one per value of its second axis


def color(variant: str, variants) -> str:
    if variant in ("correct", "broken"):
        return VARIANT_COLORS[variant]
    return FIX_COLORS[[v for v in variants if v not in ("correct", "broken")].index(variant) % len(FIX_COLORS)]
