"""Decision rules, fixed in the registry before any run: each turns paired per-seed measurements
into a pass/fail with the numbers behind it. A rule given two identical variants must not pass."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

Z = 3.0  # an effect counts when it exceeds three standard errors of the paired difference...
MIN_RELATIVE = 0.01  # ...and 1% of the correct variant's mean, so float-level noise never passes


def summary(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if values.size > 1 else 0.0,
            "n": int(values.size), "values": [float(v) for v in values]}


def effect(correct, broken) -> dict:
    """Broken minus correct, with the standard error of that difference over seeds."""
    c, b = summary(correct), summary(broken)
    se = math.sqrt(c["std"] ** 2 / c["n"] + b["std"] ** 2 / b["n"])
    return {"correct": c, "broken": b, "effect": b["mean"] - c["mean"], "se": se}


@dataclasses.dataclass(frozen=True)
class Worse:
    """The broken variant's `metric` is larger (or, with higher=False, smaller) beyond seed noise."""
    metric: str
    higher: bool = True

    def describe(self) -> str:
        sign = ">" if self.higher else "<"
        return (f"{self.metric}: broken {sign} correct by more than {Z:g} standard errors over seeds "
                f"and {MIN_RELATIVE:.0%} of the correct mean")

    def decide(self, correct, broken, model_cfg=None) -> dict:
        e = effect(correct, broken)
        signed = e["effect"] if self.higher else -e["effect"]
        floor = MIN_RELATIVE * abs(e["correct"]["mean"])
        passed = bool(np.isfinite(signed) and signed > Z * e["se"] and signed > floor)
        return {**e, "rule": self.describe(), "passed": passed}


@dataclasses.dataclass(frozen=True)
class NotBetter:
    """The broken variant's `metric` (lower is better) is not better beyond seed noise."""
    metric: str

    def describe(self) -> str:
        return f"{self.metric}: broken not lower than correct by {Z:g} standard errors (no gain from the change)"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        gain = Worse(self.metric, higher=False).decide(correct, broken)
        return {**gain, "rule": self.describe(), "passed": not gain["passed"]}


@dataclasses.dataclass(frozen=True)
class Invariant:
    """An exact property: `metric` is at most `tol` for every correct seed and above it for every broken seed."""
    metric: str
    tol: float

    def describe(self) -> str:
        return f"{self.metric}: correct <= {self.tol:g} on every seed, broken > {self.tol:g} on every seed"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        e = effect(correct, broken)
        c, b = np.asarray(correct, float), np.asarray(broken, float)
        passed = bool(np.all(c <= self.tol) and np.all(~(b <= self.tol)))  # NaN in broken counts as violated
        return {**e, "rule": self.describe(), "passed": passed}


@dataclasses.dataclass(frozen=True)
class Exactly:
    """A counted difference: broken minus correct equals `formula(model config)` on every seed."""
    metric: str
    formula: Callable[[Any], float]
    formula_text: str

    def describe(self) -> str:
        return f"{self.metric}: broken - correct == {self.formula_text} exactly"

    def decide(self, correct, broken, model_cfg=None) -> dict:
        e = effect(correct, broken)
        expected = float(self.formula(model_cfg))
        diffs = np.asarray(broken, float) - np.asarray(correct, float)
        return {**e, "rule": self.describe(), "expected": expected, "passed": bool(np.all(diffs == expected))}
