"""Audit any transformer language model for the catalogue's mistakes, at random initialisation, in seconds.

A model is seen only through `AuditModel` (forward, generate, loss and params, a few counts), built by a
factory that takes keyword overrides (n_layers, vocab_size, d_model, seed, ...). A detector pairs one
measurement (ablations.audit.measurements) with the threshold calibrated for it on correct and broken models
(docs/auditing-a-model.md, "Thresholds"); the catalogue gives each mistake its detector. Every detector gives
the same record: {mistake (a reported bug's check: check), status, value, threshold, margin, why, thin_margin};
margin = value / threshold (None for a threshold of 0).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from ablations.audit.context import Context
from ablations.audit.interface import NotApplicable, Reading, build, first_line

THIN_FACTOR = 3.0  # thin margin: within 3x of the threshold, and closer to it than any calibrated model came


@dataclasses.dataclass(frozen=True)
class Detector:
    """One mistake's measurement and its rule: detected when the value is above the threshold (fires_above) or
    below. threshold None: not calibrated yet (the value is reported, no decision). calibrated: the calibration's
    value nearest the threshold on each side (the worst correct model, the mildest broken one); the threshold sits
    between them, near their geometric mean."""
    measure: Callable[[Context], Reading]
    threshold: float | None
    fires_above: bool
    calibrated: tuple[float, float] | None = None  # (nearest correct value, nearest broken value)

    @property
    def rule(self) -> str:
        return "not calibrated" if self.threshold is None else f"{'>' if self.fires_above else '<'} {self.threshold:g}"

    def fires(self, value: float) -> bool:
        return value > self.threshold if self.fires_above else value < self.threshold

    def thin(self, value: float) -> bool:
        """Within THIN_FACTOR of the threshold and inside the calibration's gap: no calibrated model came this close."""
        if self.threshold is None or self.calibrated is None:
            return False
        near = 1 / THIN_FACTOR < value / self.threshold < THIN_FACTOR
        return near and min(self.calibrated) < value < max(self.calibrated)


def rule_of(detector: Detector | None) -> str:
    """A mistake's rule as the audit prints it: its detector's, or "not calibrated" where it has none."""
    return detector.rule if detector is not None else "not calibrated"


def record(mistake: str, detector: Detector | None, status: str, value: float | None, why: str,
           key: str = "mistake") -> dict:
    """The one record every detector returns. margin = value / threshold (None for a threshold of 0: a rule
    "> 0", any at all); thin_margin: Detector.thin. key: what the record names (a mistake; a reported bug's check:
    "check")."""
    value = value if value is not None and math.isfinite(value) else None  # JSON has no NaN
    threshold = detector.threshold if detector is not None else None
    margin = None if value is None or not threshold else value / threshold
    thin = status in ("detected", "clear") and value is not None and detector.thin(value)
    return {key: mistake, "status": status, "value": value, "threshold": threshold,
            "margin": margin, "why": why, "thin_margin": bool(thin)}


def run_detector(mistake: str, detector: Detector | None, ctx: Context, key: str = "mistake") -> dict:
    """Measure and decide; a measurement that cannot run is "not applicable", one that breaks is "error" (with the
    exception in `why`): neither stops the other detectors. A mistake without a detector, or a detector without a
    threshold, is "not calibrated"."""
    def result(*args):
        return record(mistake, *args, key=key)

    if detector is None:
        return result(None, "not calibrated", None, "the catalogue gives this mistake no detector")
    try:
        reading = detector.measure(ctx)
    except NotApplicable as reason:
        return result(detector, "not applicable", None, str(reason))
    except Exception as error:  # the audited model is arbitrary code: report its failure, audit the rest
        return result(detector, "error", None, f"{type(error).__name__}: {first_line(error)}")
    value, why = reading.value, f"{reading.note}; detected when {detector.rule}"
    if detector.threshold is None:
        shown = value if value is not None and math.isfinite(value) else None
        return result(detector, "not calibrated", shown, f"{reading.note}; no threshold yet")
    if reading.status is not None:
        return result(detector, reading.status, value, reading.note)
    if value is None or not math.isfinite(value):
        return result(detector, "error", None, f"{reading.note}: not finite ({value})")
    return result(detector, "detected" if detector.fires(value) else "clear", float(value), why)


def context(factory: Callable, overrides: dict | None = None, name: str | None = None) -> Context:
    """factory(**overrides), built and checked (interface.build), in the Context the detectors share."""
    overrides = dict(overrides or {})
    return Context(factory, overrides, build(factory, overrides, name or getattr(factory, "__name__", "factory")))


def audit(factory: Callable, detectors: dict[str, Detector | None], overrides: dict | None = None, only=None,
          name: str | None = None, key: str = "mistake", ctx: Context | None = None) -> list[dict]:
    """Audit factory(**overrides) with `detectors` (mistake -> its Detector, in the catalogue's order): one record
    per mistake (only: these mistakes). ctx: a Context already built (another group's audit of the same model),
    whose model and measurements are reused; it must be of this factory and these overrides."""
    if ctx is not None and (ctx.factory is not factory or dict(overrides or {}) != ctx.overrides):
        raise ValueError("audit(ctx=...) reuses that context's model: give the factory and overrides it was built "
                         "with, or no context")
    ctx = ctx or context(factory, overrides, name)
    return [run_detector(mistake, detector, ctx, key) for mistake, detector in detectors.items()
            if only is None or mistake in only]
