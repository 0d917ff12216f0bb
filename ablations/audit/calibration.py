"""The measurements behind the thresholds of `python -m ablations.check` (docs/auditing-a-model.md, "Thresholds"):

every detector's value on the lab's GPT, correct (RoPE and sinusoidal positions) and with each mistake switched on
alone, at 3 seeds × d_model 16 and 32 × float32 and bfloat16. The table has one row per detector: the range on
correct models, on its own broken model and on every other model, the threshold and the margin (the smaller
factor between the threshold and the nearest value on either side), then every cross-detection and error.
The models come from the catalogue: `calibration_models(names)` names them."""
from __future__ import annotations

import json
import math

from tqdm import tqdm

from ablations.audit.adapters import lab_gpt
from ablations.audit.detectors import Detector, audit, rule_of
from ablations.audit.interface import STATUSES

SEEDS, SIZES, DTYPES = (0, 1, 2), (16, 32), ("float32", "bfloat16")


def calibration_models(mistakes) -> dict[str, dict]:
    """The lab's GPT correct (RoPE and sinusoidal positions) and with each of `mistakes` switched on alone: label ->
    the factory's overrides."""
    return {"correct": {}, "correct sinusoidal": {"position": "sinusoidal"},
            **{name: {"mistakes": (name,)} for name in mistakes}}


def measure(detectors: dict[str, Detector | None], out) -> list[dict]:
    """One row per (model, d_model, dtype, seed, detector): the audit's record with the model's coordinates; each
    also written as a JSON line to `out` when one is given."""
    models = calibration_models(detectors)
    grid = [(label, d, dtype, seed) for label in models for d in SIZES for dtype in DTYPES for seed in SEEDS]
    rows = []
    for label, d, dtype, seed in tqdm(grid, desc="calibration", unit="model"):
        overrides = {"d_model": d, "dtype": dtype, "seed": seed, **models[label]}
        for record in audit(lab_gpt, detectors, overrides):
            row = {"model": label, "d_model": d, "dtype": dtype, "seed": seed, **record}
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
    return rows


def span(values) -> str:
    values = [v for v in values if v is not None]
    return f"{min(values):.3g} .. {max(values):.3g}" if values else "—"


def statuses(rows: list[dict]) -> str:
    return ", ".join(f"{s} {sum(r['status'] == s for r in rows)}" for s in STATUSES
                     if any(r["status"] == s for r in rows))


def margin(detector: Detector | None, correct: list[dict], broken: list[dict]) -> str:
    """The smaller factor between the threshold and the nearest decided value on each side."""
    if detector is None or detector.threshold is None:
        return "—"
    factors = []
    for group, clean in ((correct, True), (broken, False)):
        values = [r["value"] for r in group if r["value"] is not None and r["status"] in ("clear", "detected")]
        if values:
            nearest = max(values) if clean == detector.fires_above else min(values)
            factors.append(math.inf if nearest == 0 else max(nearest / detector.threshold,
                                                             detector.threshold / nearest))
    return f"x{min(factors):.3g}" if factors else "—"


def table(rows: list[dict], detectors: dict[str, Detector | None]) -> str:
    """The calibration's markdown table, one row per detector, then cross-detections and errors."""
    lines = ["| # | detector | correct (min .. max) | broken (min .. max) | threshold | margin "
             "| statuses: correct / broken | other mistakes (min .. max) |", "|---|---|---|---|---|---|---|---|"]
    for number, (mistake, detector) in enumerate(detectors.items(), 1):
        mine = [r for r in rows if r["mistake"] == mistake]
        correct = [r for r in mine if r["model"].startswith("correct")]
        broken = [r for r in mine if r["model"] == mistake]
        others = [r for r in mine if r not in correct and r not in broken]
        lines.append(f"| {number} | {mistake} | {span(r['value'] for r in correct)} "
                     f"| {span(r['value'] for r in broken)} | {rule_of(detector)} "
                     f"| {margin(detector, correct, broken)} "
                     f"| {statuses(correct)} / {statuses(broken)} | {span(r['value'] for r in others)} |")
    cross = sorted({(r["model"], r["mistake"]) for r in rows
                    if r["status"] == "detected" and r["model"] != r["mistake"]})
    lines.append("\ncross-detections (model -> detector that fired): "
                 + ("; ".join(f"{m} -> {p}" for m, p in cross) or "none"))
    errors = [r for r in rows if r["status"] == "error"]
    lines.append("errors: " + ("; ".join(f"{r['model']} d{r['d_model']} {r['dtype']} seed {r['seed']} {r['mistake']}: "
                                         f"{r['why']}" for r in errors) or "none"))
    return "\n".join(lines)
