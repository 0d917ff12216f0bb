"""`python -m ablations.calibrate [--out FILE.jsonl | --table FILE.jsonl]`: the measurements behind the
thresholds of `python -m ablations.check` (README, "Thresholds").

Every probe's value on the lab's GPT, correct (RoPE and sinusoidal positions) and with each mistake switched on
alone, at 3 seeds × d_model 16 and 32 × float32 and bfloat16. Prints one markdown table: per probe, the range on
correct models, on its own broken model and on every other model, the threshold and the margin (the smaller
factor between the threshold and the nearest value on either side), then every cross-detection and error.
--out also writes each reading as one JSON line; --table re-prints the table from such a file."""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys

from tqdm import tqdm

from ablations import audit
from ablations.adapters import lab_gpt
from model import names_of_all

SEEDS, SIZES, DTYPES = (0, 1, 2), (16, 32), ("float32", "bfloat16")
MODELS = {"correct": {}, "correct sinusoidal": {"position": "sinusoidal"},
          **{name: {"mistakes": (name,)} for name in names_of_all()}}


def measure(out) -> list[dict]:
    """One row per (model, d_model, dtype, seed, probe): the audit's record with the model's coordinates; each
    also written as a JSON line to `out` when one is given."""
    grid = [(label, d, dtype, seed) for label in MODELS for d in SIZES for dtype in DTYPES for seed in SEEDS]
    rows = []
    for label, d, dtype, seed in tqdm(grid, desc="calibration", unit="model"):
        overrides = {"d_model": d, "dtype": dtype, "seed": seed, **MODELS[label]}
        for record in audit.audit(lab_gpt, overrides):
            row = {"model": label, "d_model": d, "dtype": dtype, "seed": seed, **record}
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
    return rows


def span(values) -> str:
    values = [v for v in values if v is not None]
    return f"{min(values):.3g} .. {max(values):.3g}" if values else "—"


def statuses(rows: list[dict]) -> str:
    return ", ".join(f"{s} {sum(r['status'] == s for r in rows)}" for s in audit.STATUSES
                     if any(r["status"] == s for r in rows))


def margin(detector: audit.Detector, correct: list[dict], broken: list[dict]) -> str:
    """The smaller factor between the threshold and the nearest decided value on each side."""
    factors = []
    for group, clean in ((correct, True), (broken, False)):
        values = [r["value"] for r in group if r["value"] is not None and r["status"] in ("clear", "detected")]
        if values:
            nearest = max(values) if clean == detector.fires_above else min(values)
            factors.append(math.inf if nearest == 0 else max(nearest / detector.threshold,
                                                             detector.threshold / nearest))
    return f"x{min(factors):.3g}" if factors else "—"


def table(rows: list[dict]) -> str:
    lines = ["| # | probe | correct (min .. max) | broken (min .. max) | threshold | margin "
             "| statuses: correct / broken | other mistakes (min .. max) |", "|---|---|---|---|---|---|---|---|"]
    for number, detector in enumerate(audit.DETECTORS, 1):
        mine = [r for r in rows if r["mistake"] == detector.mistake]
        correct = [r for r in mine if r["model"].startswith("correct")]
        broken = [r for r in mine if r["model"] == detector.mistake]
        others = [r for r in mine if r not in correct and r not in broken]
        lines.append(f"| {number} | {detector.mistake} | {span(r['value'] for r in correct)} "
                     f"| {span(r['value'] for r in broken)} | {detector.rule} | {margin(detector, correct, broken)} "
                     f"| {statuses(correct)} / {statuses(broken)} | {span(r['value'] for r in others)} |")
    cross = sorted({(r["model"], r["mistake"]) for r in rows
                    if r["status"] == "detected" and r["model"] != r["mistake"]})
    lines.append("\ncross-detections (model -> probe that fired): "
                 + ("; ".join(f"{m} -> {p}" for m, p in cross) or "none"))
    errors = [r for r in rows if r["status"] == "error"]
    lines.append("errors: " + ("; ".join(f"{r['model']} d{r['d_model']} {r['dtype']} seed {r['seed']} {r['mistake']}: "
                                         f"{r['why']}" for r in errors) or "none"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ablations.calibrate", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", metavar="FILE.jsonl", help="also write every reading (refuses an existing file)")
    group.add_argument("--table", metavar="FILE.jsonl", help="re-print the table from an earlier --out")
    args = parser.parse_args(argv)
    try:
        if args.table:
            with open(args.table, encoding="utf-8") as file:
                print(table([json.loads(line) for line in file]))
            return
        # "x": an earlier calibration is never overwritten; opened before the hours of measuring, not after
        with open(args.out, "x", encoding="utf-8") if args.out else contextlib.nullcontext() as out:
            rows = measure(out)
    except FileExistsError:
        sys.exit(f"error: --out {args.out} exists; calibrations are never overwritten, name a new file")
    except OSError as error:
        sys.exit(f"error: cannot use {args.table or args.out} ({error.strerror or error})")
    print(table(rows))

if __name__ == "__main__":
    main()
