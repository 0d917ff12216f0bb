"""Slower or worse: every claim of a best-learning-rate comparison is decided again after a longer budget (each
variant retrained at its chosen rate for `longer_budget` times the steps, same seeds, same measurement split), and
the two outcomes are read together by a rule fixed here:

  holds at both budgets                 -> "holds at both budgets"
  holds at the short budget alone       -> "slower to train": the mistake costs training time, not the end result
  holds at the longer budget alone      -> "shows with longer training"
  holds at neither                      -> "holds at neither budget"
"""
from __future__ import annotations

from ablations.science.rules import HOLDS

READINGS = {(True, True): "holds at both budgets", (True, False): "slower to train",
            (False, True): "shows with longer training", (False, False): "holds at neither budget"}


def compare(short: dict, longer: dict, short_steps: int, longer_steps: int) -> dict:
    """Each claim's outcome at both budgets (short, longer: the two runs' verdicts, claims in the same order) and its
    reading."""
    claims = []
    for before, after in zip(short["claims"], longer["claims"]):
        if before["says"] != after["says"]:
            raise ValueError(f"the two budgets decide different claims: {before['says']!r} / {after['says']!r}")
        reading = READINGS[(before["outcome"] in HOLDS, after["outcome"] in HOLDS)]
        claims.append({"says": after["says"], "short": before["outcome"], "longer": after["outcome"],
                       "reading": reading})
    return {"steps": [short_steps, longer_steps], "claims": claims}


def describe(budgets: dict) -> list[str]:
    """One line per claim: its outcome at each budget and the reading."""
    short, longer = budgets["steps"]
    return [f"{c['reading']}: {c['short']} at {short} steps, {c['longer']} at {longer} ({c['says']})"
            for c in budgets["claims"]]
