"""How many seeds a confirmatory run needs: from the exploratory runs' measured spread, per claim the seeds that
would likely (80% power) decide its interval the way its mean points (rules.seeds_needed, with the room its mean
leaves to the boundary, firmness.statistical), and per mistake the most any of its statistical claims needs,
within the protocol's bounds. A claim with no interval, or whose mean sits on a boundary, asks for the most."""
from __future__ import annotations

import numpy as np

from ablations.science.rules import seeds_needed


def claim_seeds(claim: dict) -> int | None:
    """Seeds that would likely decide this statistical claim as its mean points; None: more than rules.MAX_SEEDS,
    or no interval to plan from."""
    firm = claim.get("firmness")
    if not firm or not np.isfinite(claim["std"]) or firm.get("room") is None or not firm["room"] > 0:
        return None
    return seeds_needed(claim["mean"], claim["std"], firm["room"])


def mistake_seeds(claims: list[dict], lowest: int, highest: int) -> tuple[int, dict[str, int | None]]:
    """(the seeds per variant for a mistake, each statistical claim's own need): the largest need, within
    [lowest, highest]."""
    needs: dict[str, int | None] = {}
    for c in claims:  # a claim read in several runs (two datasets, two budgets) needs what its worst run needs
        if c["kind"] == "statistical":
            need, before = claim_seeds(c), needs.get(c["says"], 0)
            needs[c["says"]] = None if need is None or before is None else max(need, before)
    largest = max((highest if n is None else n for n in needs.values()), default=lowest)
    return int(min(highest, max(lowest, largest))), needs
