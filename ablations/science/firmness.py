"""How firmly a statistical outcome is decided, and how a family of claims is decided together.

A statistical rule (ablations.science.rules) decides by where the 95% interval of the mean paired difference
lies against its margins: each outcome is a `Region`, "lo > a" and/or "hi < b". Two numbers say how firm
a decision is, both from the same t interval:

- `p`: the smallest 1 - confidence at which the two-sided interval would still decide as it does (for an
  inconclusive outcome: at which it would decide anything). An outcome is decided at 95% exactly when p < 0.05.
  It is twice the one-sided p of the outcome's own test (against a margin, or the larger of the two one-sided
  tests of equivalence). A claim has at most two wrong outcomes for any true effect, each reached with chance at
  most u/2 when p <= u, so a claim's p is valid in Holm's step-down correction (`holm`).
- `distance_se`: how far the interval's deciding end lies from the boundary, in standard errors of the mean
  difference (std/sqrt(n)); for an inconclusive outcome, how far it falls short of the nearest outcome. An outcome
  within one standard error is *fragile*: float rounding or one seed could move it.
- `room`: how far the mean itself lies inside that outcome's region, in the claim's unit (what more seeds can
  use: ablations.science.planning).

A share claim (exact McNemar test) has no standard error: it is fragile when one pair of seeds decides it.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

FRAGILE_SE = 1.0  # an outcome within this many standard errors of a decision boundary is fragile
FAMILY_LEVEL = 0.05  # the family-wise error rate of Holm's step-down correction


@dataclasses.dataclass(frozen=True)
class Region:
    """An outcome and where the interval [lo, hi] must lie for it: lo > above and hi < below (None: no bound)."""
    outcome: str
    why: str
    above: float | None = None
    below: float | None = None

    def contains(self, lo: float, hi: float) -> bool:
        return (self.above is None or lo > self.above) and (self.below is None or hi < self.below)

    def margin_se(self, mean: float, se: float) -> float:
        """The smallest of (mean - above)/se and (below - mean)/se: the region holds at confidence c exactly when
        this exceeds the two-sided t quantile of c."""
        room = self.room(mean)
        if se == 0:  # no spread: the interval is the mean itself, on the boundary or off it by any distance
            return 0.0 if room == 0 else math.copysign(math.inf, room)
        return room / se

    def room(self, mean: float) -> float:
        """How far the mean lies inside the region (negative: outside), in the claim's unit."""
        ends = ([mean - self.above] if self.above is not None else []) + \
               ([self.below - mean] if self.below is not None else [])
        return min(ends)


def statistical(result: dict, regions: tuple[Region, ...], confidence: float) -> dict | None:
    """p, distance_se and fragile of a statistical outcome (result: rules.paired's dict with its outcome); None
    where no interval exists (fewer than 2 seeds, or a measurement that is not finite)."""
    n, mean, std = result["n"], result["mean"], result["std"]
    if n < 2 or not (np.isfinite(mean) and np.isfinite(std)):
        return None
    se, df = std / math.sqrt(n), n - 1
    quantile = float(stats.t.ppf(1 - (1 - confidence) / 2, df))
    reach = {r.outcome: r.margin_se(mean, se) for r in regions}
    p = {outcome: min(1.0, 2 * float(stats.t.sf(z, df))) for outcome, z in reach.items()}
    if result["outcome"] in reach:
        chosen = result["outcome"]
        distance = reach[chosen] - quantile
    else:
        chosen = max(reach, key=reach.get)
        distance = quantile - reach[chosen]
    if se == 0:  # no spread: an interval of zero width is on its boundary (fragile) or infinitely far from it
        distance = 0.0 if reach[chosen] == 0 else math.inf
    room = next(r for r in regions if r.outcome == chosen).room(mean)
    return {"p": p[chosen], "distance_se": distance, "fragile": bool(distance < FRAGILE_SE), "nearest": chosen,
            "room": room}


def share(discordant: tuple[int, int], level: float) -> dict:
    """p and fragile of an exact McNemar decision: fragile when one pair of seeds, moved, changes it (one fewer
    pair on the winning side for a decided share; one more on the leading side for an undecided one)."""
    only_correct, only_broken = discordant
    p = mcnemar(only_correct, only_broken)
    lead, other = max(discordant), min(discordant)
    moved = mcnemar(lead - 1, other) if p < level else mcnemar(lead + 1, other)
    return {"p": p, "distance_se": None, "fragile": bool((p < level) != (moved < level))}


def mcnemar(only_correct: int, only_broken: int) -> float:
    """Two-sided exact McNemar p: the binomial test of the discordant pairs against 1/2."""
    discordant = only_correct + only_broken
    return float(stats.binomtest(only_correct, discordant, 0.5).pvalue) if discordant > 0 else 1.0


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: with m tests sorted by p, the i-th smallest becomes
    max over j <= i of min(1, (m - j + 1)·p_(j)). A family decided at `FAMILY_LEVEL` keeps the outcomes whose
    adjusted p is below it, with a family-wise error rate of at most that level."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adjusted, running = [math.nan] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def family(claims: list[dict], level: float = FAMILY_LEVEL) -> list[dict]:
    """A family of decided claims: every statistical and share claim, each with `holm_p` and `family_outcome`, the
    outcome that stands after Holm's correction (a decided outcome whose adjusted p reaches the level becomes
    inconclusive). A claim without firmness (no interval, a diverged reference) counts with p = 1, so that it still
    counts in the family's size; exact claims are not tested and are left out."""
    tested = [c for c in claims if c.get("kind") in ("statistical", "share")]
    adjusted = holm([c["firmness"]["p"] if c.get("firmness") else 1.0 for c in tested])
    return [{**c, "holm_p": p, "family_outcome": c["outcome"] if c["outcome"] != "inconclusive" and p < level
             else "inconclusive"} for c, p in zip(tested, adjusted)]
