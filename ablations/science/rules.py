"""Decision rules, fixed in the catalogue before any run: each turns the paired per-seed measurements
of one claim into an outcome with the numbers behind it.

Statistical rules work on the per-seed differences (same seed, same initialisation, same batches),
signed so that a positive difference points the way the claim says. With d̄ their mean and
[lo, hi] the t-based 95% confidence interval of the mean difference (`scipy.stats.ttest_rel`),
and m > 0 the claim's practical margin, fixed in the catalogue:

- `Effect` (the mistake moves the metric the claimed way):
  reproduced  lo > +m   (the whole interval beyond the margin on the claimed side)
  opposite    hi < -m   (the whole interval beyond the margin on the other side)
  no effect   -m < lo and hi < +m   (equivalence: two one-sided tests at 2.5% each)
  inconclusive otherwise, or fewer than 2 seeds, or a non-finite measurement.
- `NoGain` (the mistake buys nothing: the broken variant is not better by more than m):
  reproduced  lo > -m,  opposite  hi < -m,  inconclusive otherwise.

Exact rules (`Invariant`, `Exactly`) hold or fail on every seed; they need no statistics.

Where the seeds of a variant split into those that learned the task and those that did not (the synthetic copy
task, whose exact floor says which: `measures.converged`), the sample is a mixture and a t interval over it means
nothing. Then (ablations.science.verdict) every statistical claim is read on the seeds where the reference variant
converged (its failures are not the mistake's doing; the broken variant's are part of the effect), and the share of
seeds that converge is a claim of its own, `ConvergedShare`: an exact McNemar test (the design is paired: seed i of
both variants shares its initialisation and batches), i.e. a two-sided binomial test of the discordant pairs, each
share shown with its exact (Clopper-Pearson) 95% interval:
  reproduced  p < 0.05 and more pairs where only the correct variant converged
  opposite    p < 0.05 and more pairs where only the broken variant converged
  inconclusive otherwise (an exact test cannot show two shares equal).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable

import numpy as np
from scipy import stats

from ablations.science import firmness
from ablations.science.firmness import Region

CONFIDENCE = 0.95  # the interval shown everywhere, and the level of every statistical decision
POWER = 0.8  # "seeds needed": the number of seeds that decides with this probability, from the measured spread
MAX_SEEDS = 1000  # beyond this, "more than 1000": the effect sits on the margin

STATISTICAL = ("reproduced", "opposite", "no effect", "inconclusive")
EXACT = ("holds", "fails")
NOT_MEASURED = "not measured"  # the data gives no such measurement (copy accuracy needs the synthetic copy task)
HOLDS = ("reproduced", "holds")  # outcomes that say the claim is true at this scale


def summary(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
            "n": int(values.size), "values": [float(v) for v in values]}


def paired(correct, broken, sign: float = 1.0) -> dict:
    """Per-seed differences sign·(broken - correct): mean, spread, t-based interval and two-sided p-value
    of a paired t-test (scipy.stats.ttest_rel). Fewer than two seeds give no interval (NaN)."""
    c, b = np.asarray(correct, np.float64), np.asarray(broken, np.float64)
    diffs = sign * (b - c)
    out = {"correct": summary(c), "broken": summary(b), "differences": [float(d) for d in diffs],
           "n": int(diffs.size), "mean": float(np.mean(diffs)) if diffs.size else math.nan,
           "std": float(np.std(diffs, ddof=1)) if diffs.size > 1 else math.nan,
           "ci": [math.nan, math.nan], "p": math.nan}
    if diffs.size < 2 or not np.all(np.isfinite(diffs)):
        return out
    if np.all(diffs == diffs[0]):  # no spread: the interval is the point; scipy's t statistic is 0/0 or x/0
        return {**out, "ci": [float(diffs[0])] * 2, "p": 1.0 if diffs[0] == 0 else 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about nearly constant differences
        test = stats.ttest_rel(sign * b, sign * c)
    interval = test.confidence_interval(CONFIDENCE)
    return {**out, "ci": [float(interval.low), float(interval.high)], "p": float(test.pvalue)}


SEED_COUNTS = np.arange(2, MAX_SEEDS + 1)  # the n seeds_needed tries, with their quantile sums, computed once
NEEDED_QUANTILES = stats.t.ppf(1 - (1 - CONFIDENCE) / 2, SEED_COUNTS - 1) + stats.t.ppf(POWER, SEED_COUNTS - 1)


def seeds_needed(mean: float, std: float, distance: float) -> int | None:
    """Smallest n whose interval would likely (with probability POWER) clear `distance` on the side the
    measured mean points to, if mean and spread stay as measured: (t_{1-a/2} + t_{power})·std/sqrt(n) < distance.
    None: more than MAX_SEEDS (or the mean sits on a decision boundary)."""
    if not (np.isfinite(mean) and np.isfinite(std)) or distance <= 0:
        return None
    cleared = np.flatnonzero(NEEDED_QUANTILES * std / np.sqrt(SEED_COUNTS) < distance)
    return int(SEED_COUNTS[cleared[0]]) if cleared.size else None


def _statistical(result: dict, regions: tuple[Region, ...], straddles: str, distance: float) -> dict:
    """The outcome whose region holds the interval (inconclusive: none does, or no interval exists), with the seeds
    that would likely decide an interval that straddles a boundary (`distance`: from its mean to the nearest), and
    how firmly it is decided (ablations.science.firmness)."""
    if reason := _unusable(result):
        outcome, why, distance = "inconclusive", reason, math.nan
    else:
        region = next((r for r in regions if r.contains(*result["ci"])), None)
        outcome, why = (region.outcome, region.why) if region else ("inconclusive", straddles)
    needed = seeds_needed(result["mean"], result["std"], distance) if outcome == "inconclusive" else None
    result = {**result, "kind": "statistical", "outcome": outcome, "why": why, "seeds_needed": needed}
    return {**result, "firmness": firmness.statistical(result, regions, CONFIDENCE)}


def _unusable(result: dict) -> str | None:
    if result["n"] < 2:
        return f"{result['n']} seed: a paired interval needs at least 2"
    if not np.all(np.isfinite(result["differences"])):
        return "a measurement is not finite (NaN or inf) on some seed"
    return None


@dataclasses.dataclass(frozen=True)
class Effect:
    """The mistake moves `metric` the claimed way: up (higher=True) or down, beyond `margin` `unit`."""
    metric: str
    margin: float
    unit: str
    higher: bool = True

    def describe(self) -> str:
        way = "higher" if self.higher else "lower"
        return f"{self.metric}: broken {way} than correct by more than {self.margin:g} {self.unit} (95% interval)"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        result = {**paired(correct, broken, 1.0 if self.higher else -1.0), "margin": self.margin,
                  "unit": self.unit, "metric": self.metric, "rule": self.describe()}
        m = self.margin
        return _statistical(result, self.regions(), f"the interval straddles ±{m:g}", abs(abs(result["mean"]) - m))

    def regions(self) -> tuple[Region, ...]:
        m = self.margin
        return (Region("reproduced", f"the interval lies beyond +{m:g}", above=m),
                Region("opposite", f"the interval lies beyond -{m:g}", below=-m),
                Region("no effect", f"the interval lies within ±{m:g}", above=-m, below=m))


@dataclasses.dataclass(frozen=True)
class NoGain:
    """The mistake buys nothing: the broken variant's `metric` (lower is better) is not lower by more than `margin`."""
    metric: str
    margin: float
    unit: str

    def describe(self) -> str:
        return f"{self.metric}: broken not lower than correct by more than {self.margin:g} {self.unit} (95% interval)"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        result = {**paired(correct, broken), "margin": self.margin, "unit": self.unit, "metric": self.metric,
                  "rule": self.describe()}
        m = self.margin
        return _statistical(result, self.regions(), f"the interval straddles a gain of {m:g}", abs(result["mean"] + m))

    def regions(self) -> tuple[Region, ...]:
        m = self.margin
        return (Region("reproduced", f"the interval excludes a gain beyond {m:g}", above=-m),
                Region("opposite", f"the interval lies beyond a gain of {m:g}", below=-m))


def binomial_share(flags) -> dict:
    """k of n with the exact (Clopper-Pearson) interval of the share (scipy.stats.binomtest)."""
    k, n = int(np.sum(flags)), len(flags)
    if n == 0:
        return {"k": 0, "n": 0, "share": math.nan, "ci": [math.nan, math.nan]}
    interval = stats.binomtest(k, n).proportion_ci(CONFIDENCE, method="exact")
    return {"k": k, "n": n, "share": k / n, "ci": [float(interval.low), float(interval.high)]}


@dataclasses.dataclass(frozen=True)
class ConvergedShare:
    """The broken variant converges in fewer seeds than the correct one: an exact McNemar test on the pairs."""
    metric: str = "converged"

    def describe(self) -> str:
        return (f"share of seeds that converge: broken lower than correct, exact McNemar test (pairs) at p < "
                f"{1 - CONFIDENCE:g}")

    def decide(self, correct, broken, model_cfg=None) -> dict:
        c, b = binomial_share(correct), binomial_share(broken)
        only_correct = sum(bool(x) and not bool(y) for x, y in zip(correct, broken))
        only_broken = sum(bool(y) and not bool(x) for x, y in zip(correct, broken))
        decided = firmness.share((only_correct, only_broken), 1 - CONFIDENCE)
        p = decided["p"]
        result = {"correct": c, "broken": b, "n": min(c["n"], b["n"]), "mean": c["share"] - b["share"], "p": p,
                  "discordant": [only_correct, only_broken], "metric": self.metric, "rule": self.describe(),
                  "kind": "share", "firmness": decided}
        pairs = f"{only_correct} pairs where only the correct variant converged, {only_broken} only the broken"
        if p < 1 - CONFIDENCE:
            outcome = "reproduced" if only_correct > only_broken else "opposite"
            return {**result, "outcome": outcome, "why": f"{pairs}: p = {p:.3g} < {1 - CONFIDENCE:g}"}
        return {**result, "outcome": "inconclusive", "why": f"{pairs}: p = {p:.3g}, the shares are not told apart"}


def _exact(correct, broken, metric: str, rule: str, holds: bool, **extra) -> dict:
    return {"correct": summary(correct), "broken": summary(broken), "n": len(broken), "metric": metric,
            "rule": rule, "kind": "exact", "outcome": "holds" if holds else "fails", **extra}


@dataclasses.dataclass(frozen=True)
class Invariant:
    """An exact property: `metric` is at most `tol` for every correct seed and above it for every broken seed."""
    metric: str
    tol: float

    def describe(self) -> str:
        return f"{self.metric}: correct <= {self.tol:g} on every seed, broken > {self.tol:g} on every seed"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        c, b = np.asarray(correct, float), np.asarray(broken, float)
        holds = bool(c.size and b.size and np.all(c <= self.tol) and np.all(~(b <= self.tol)))  # NaN: violated
        return _exact(c, b, self.metric, self.describe(), holds, tol=self.tol)


@dataclasses.dataclass(frozen=True)
class Exactly:
    """A counted difference: broken minus correct equals `formula(model config)` on every seed."""
    metric: str
    formula: Callable[[Any], float]
    formula_text: str

    def describe(self) -> str:
        return f"{self.metric}: broken - correct == {self.formula_text} exactly"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        expected = float(self.formula(model_cfg))
        diffs = np.asarray(broken, float) - np.asarray(correct, float)
        return _exact(correct, broken, self.metric, self.describe(), bool(diffs.size and np.all(diffs == expected)),
                      expected=expected)
