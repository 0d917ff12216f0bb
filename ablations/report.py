"""The suite's report: `results/REPORT.md` (verdict table and every figure) and, with --wandb, a W&B
Report built with the Reports API. `python -m ablations.report [--results results] [--wandb]`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ablations import rules
from ablations.registry import MISTAKES


def latest_runs(results_dir: Path) -> dict[str, Path]:
    """Per mistake, the newest run directory that finished (holds verdict.json)."""
    latest = {}
    for spec in MISTAKES:
        done = sorted((results_dir / spec.name).glob("*/verdict.json"), key=lambda p: p.stat().st_mtime)
        if done:
            latest[spec.name] = done[-1].parent
    return latest


def number(check: dict, variant: str) -> str:
    s = check[variant]
    return f"{s['mean']:.4g} ± {s['std']:.2g}"


def measurement_table(measured: dict) -> list[str]:
    """Every scalar measurement of both variants, mean ± std over seeds."""
    lines = ["| measurement | correct | broken |", "|---|---|---|"]
    for key, value in measured["correct"][0].items():
        if isinstance(value, (int, float)):
            cells = [rules.summary([m.get(key, np.nan) for m in measured[v]]) for v in ("correct", "broken")]
            lines.append(f"| {key} | " + " | ".join(f"{c['mean']:.4g} ± {c['std']:.2g}" for c in cells) + " |")
    return lines + [""]


def write_markdown(results_dir: Path) -> Path:
    runs = latest_runs(results_dir)
    lines = ["# Transformer mistakes: paired ablation report", "",
             "Each row: the seed page's claim, the decision rule fixed in `ablations/registry.py` before the run, "
             "and the measurement (mean ± std over seeds) of the correct and the broken variant.", "",
             "| # | mistake | verdict | check | correct | broken | effect (se) |", "|---|---|---|---|---|---|---|"]
    sections = []
    for spec in MISTAKES:
        if spec.name not in runs:
            lines.append(f"| {spec.number} | {spec.name} | not run | | | | |")
            continue
        run = runs[spec.name]
        verdict = json.loads((run / "verdict.json").read_text())
        for i, check in enumerate(verdict["checks"]):
            head = f"| {spec.number} | {spec.name} | **{verdict['verdict']}** " if i == 0 else "| | | "
            mark = "pass" if check["passed"] else "fail"
            lines.append(f"{head}| {check['rule']} ({mark}) | {number(check, 'correct')} | {number(check, 'broken')} "
                         f"| {check['effect']:.4g} ({check['se']:.2g}) |")
        relative = run.relative_to(results_dir)
        sections += [f"## Mistake {spec.number}: {spec.title} — {verdict['verdict']}", "",
                     f"Claim tested: {spec.claim}. Run: `{relative}`.", ""]
        sections += measurement_table(json.loads((run / "measurements.json").read_text()))
        sections += [f"![{name}]({relative}/figures/{name}.png)" for name in ("loss", "grad_norms", "symptom")]
        sections.append("")
    path = results_dir / "REPORT.md"
    path.write_text("\n".join(lines + [""] + sections))
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--wandb", action="store_true", help="also build (and, when logged in, save) a W&B Report")
    parser.add_argument("--project", default="transformer-mistakes-lab")
    parser.add_argument("--entity", default=None)
    args = parser.parse_args(argv)
    print(write_markdown(args.results))
    if args.wandb:
        from ablations import wandb_report

        runs = latest_runs(args.results)
        entries = [(json.loads((run / "verdict.json").read_text()), f"{name}-{run.name}") for name, run in runs.items()]
        url = wandb_report.publish(wandb_report.build_report(entries, args.project, args.entity))
        print(url or wandb_report.offline_instructions([str(run) for run in runs.values()]))


if __name__ == "__main__":
    main()
