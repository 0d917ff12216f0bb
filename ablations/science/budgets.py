"""Slower or worse: every claim of a best-learning-rate comparison is decided again after a longer budget (each
variant retrained at its chosen rate for `longer_budget` times the steps, on fresh seeds, measured on the same
split), and the two outcomes are read together by a rule fixed here:

  holds at both budgets        the claim holds at the short budget and at the longer one
  slower to train              it holds at the short budget, and the longer one shows no effect: the mistake costs
                               training time, not the end result
  shows with longer training   it holds at the longer budget alone
  not measured at either budget  the data gives no such measurement (copy accuracy on real text)
  otherwise                    both outcomes, as they are ("holds at the short budget; longer: inconclusive")
"""
from __future__ import annotations

from ablations.science.rules import HOLDS, NOT_MEASURED

NO_EFFECT = ("no effect", "fails")  # a statistical claim shown absent, an exact one that does not hold


def reading(short: str, longer: str) -> str:
    if short == longer == NOT_MEASURED:
        return "not measured at either budget"
    if short in HOLDS and longer in HOLDS:
        return "holds at both budgets"
    if short in HOLDS and longer in NO_EFFECT:
        return "slower to train"
    if longer in HOLDS:
        return "shows with longer training"
    if short in HOLDS:
        return f"holds at the short budget; longer: {longer}"
    return f"holds at neither budget ({short}, then {longer})"


def compare(short: dict, longer: dict, short_steps: int, longer_steps: int) -> dict:
    """Each claim's outcome at both budgets (short, longer: the two runs' verdicts), claims matched by what they say
    (a claim one verdict lacks: "not compared"), and its reading."""
    before = {c["says"]: c["outcome"] for c in short["claims"]}
    claims = []
    for after in longer["claims"]:
        if after["says"] not in before:
            claims.append({"says": after["says"], "short": None, "longer": after["outcome"],
                           "reading": "not compared: the short budget has no such claim"})
            continue
        claims.append({"says": after["says"], "short": before[after["says"]], "longer": after["outcome"],
                       "reading": reading(before[after["says"]], after["outcome"])})
    return {"steps": [short_steps, longer_steps], "claims": claims}


def describe(budgets: dict) -> list[str]:
    """One line per claim: its outcome at each budget and the reading."""
    short, longer = budgets["steps"]
    return [f"{c['reading']}: {c['short'] or '—'} at {short} steps, {c['longer']} at {longer} ({c['says']})"
            for c in budgets["claims"]]
