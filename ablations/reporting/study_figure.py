"""A study's figure from its study.json: one row per statistical claim (and per tokenization, where the study's
second axis changes what a nat per token is). Left, the paired effect and its 95% interval at each point; right,
the reference and broken values at each point, their mean and 95% interval too (the same statistic on both
sides). Points are discrete, so they get error bars, never bands; the second axis's values are offset and drawn
with their own marker and line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from ablations.reporting import style
from ablations.reporting.figures import in_units, margin_text, metric_name
from ablations.reporting.style import DOUBLE, LINE_COLORS, LINE_STYLES, MARKERS, OUTCOME_COLORS, color, plt, wrap
from ablations.runner import layout
from ablations.science.rules import CONFIDENCE
from ablations.science.verdict import boundaries

AXIS_LABELS = {"model.n_layers": "depth (layers)", "train.warmup": "warmup (steps)",
               "model.ffn_mult": "FFN width (× d_model)", "model.d_model": "model width d_model (dimensions)",
               "probe.length_factor": "evaluation length (× the training length)",
               "probe.padding_share": "padding (share of each window)",
               "data.tiny_vocab_size": "vocabulary of the broken tokenizer (symbols)",
               "steps": "training budget (optimizer updates)", "data.tokenizer": "tokenizer", "data": "data"}
CHANGES_UNITS = ("data", "data.tokenizer")  # a second axis over these changes what a nat per token is


def axis_label(key: str) -> str:
    return AXIS_LABELS.get(key, f"{key} (value)")


def mean_interval(summary: dict) -> tuple[float, float]:
    """A variant's mean and the half-width of its t-based 95% interval (0 with one seed)."""
    n = summary["n"]
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * summary["std"] / np.sqrt(n) if n > 1 else 0.0
    return summary["mean"], half


def positions(values: list) -> tuple[dict, bool]:
    """Where each first-axis value sits: numeric values at their value (log2 where they span a factor of 4),
    others in order."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {v: float(v) for v in values}, min(values) > 0 and max(values) / min(values) >= 4
    return {v: float(i) for i, v in enumerate(values)}, False


def offset(x: np.ndarray, j: int, lines: int, log: bool) -> np.ndarray:
    """Points of the j-th line nudged sideways so that lines at the same value do not hide each other."""
    shift = (j - (lines - 1) / 2) * 0.06
    return x * 2 ** shift if log else x + shift


def broken_settings(summary: dict, first: dict) -> tuple[list[str], str]:
    """First-axis tick labels, each with what the broken variant sets differently at that point (its own width, say,
    in a study at equal parameters) on a second line, and the name of that setting for the axis label."""
    labels, names = [], []
    for value in first["values"]:
        point = next((p for p in summary["points"] if p["at"][first["key"]] == value), {})
        own = {k: v for k, v in point.get("config", {}).get("variants", {}).get("broken", {}).items()
               if k != first["key"] and not k.startswith("data.")}
        names += [k.split(".")[-1] for k in own if k.split(".")[-1] not in names]
        labels.append(f"{value}" + ("\n" + ", ".join(str(v) for v in own.values()) if own else ""))
    return labels, (f"; under it, the broken model's {', '.join(names)}" if names else "")


def claim_row(axes_pair, summary: dict, spec, index: int, group) -> list:
    """One claim (over the points of one tokenization group, or all): effect panel, with the decision boundaries of
    the rule that decided it (ablations.science.verdict.boundaries), and values panel."""
    effect_ax, values_ax = axes_pair
    first, second = summary["axes"][0], (summary["axes"][1] if len(summary["axes"]) > 1 else None)
    where, log = positions(first["values"])
    points = [p for p in summary["points"] if "claims" in p]
    lines = [group] if group is not None else (second["values"] if second else [None])
    claim = points[0]["claims"][index]
    config = next(p["config"] for p in points if group is None or p["at"][second["key"]] == group)
    handles = []
    for j, line in enumerate(lines):
        mine = sorted((p for p in points if second is None or p["at"][second["key"]] == line),
                      key=lambda p: first["values"].index(p["at"][first["key"]]))
        if not mine:
            continue
        x = offset(np.array([where[p["at"][first["key"]]] for p in mine]), j, len(lines), log)
        c = [p["claims"][index] for p in mine]
        name = f"{second['key'].split('.')[-1]} {line}" if second else "effect"
        tint, ls, marker = LINE_COLORS[j % 4], LINE_STYLES[j % 4], MARKERS[j % 4]
        mean = np.array([e["mean"] for e in c], float)
        lo, hi = np.array([e["ci"][0] for e in c], float), np.array([e["ci"][1] for e in c], float)
        effect_ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], fmt="none", ecolor=tint, elinewidth=1, capsize=2)
        effect_ax.plot(x, mean, ls=ls, color=tint, lw=0.8)
        effect_ax.scatter(x, mean, c=[OUTCOME_COLORS[e["outcome"]] for e in c], marker=marker, s=26, zorder=3,
                          edgecolors="k", linewidths=0.5)
        handles.append(plt.Line2D([], [], color=tint, ls=ls, marker=marker, mfc="white", mec="k", label=name))
        for variant, key in ((claim["reference"], "correct"), ("broken", "broken")):
            centre, half = np.array([mean_interval(e[key]) for e in c]).T
            values_ax.errorbar(offset(x, 2 * j + (key == "broken"), 2 * len(lines), log), centre, yerr=half,
                               fmt=marker, ls=ls, ms=3.5, lw=0.8, capsize=2, color=color(variant, spec.variants))
    margin = claim["margin"]
    bounds = boundaries(spec, claim)
    effect_ax.axhline(0, color="k", lw=0.7)
    for m in bounds or ():
        effect_ax.axhline(m, color="k", lw=0.7, ls="--")
    extent = np.nanmax([abs(v) for p in points for v in (*p["claims"][index]["ci"], p["claims"][index]["mean"])
                        if np.isfinite(v)] + [margin])
    if extent > 50 * margin:  # effects many margins apart: linear within one margin of zero, logarithmic beyond
        effect_ax.set_yscale("symlog", linthresh=margin)
    what = in_units(config, claim["unit"])
    tag = f" [{second['key'].split('.')[-1]} {group}]" if group is not None else ""
    effect_ax.set_ylabel(wrap(f"effect ({what}; + = claimed)", 30))
    unknown = f" ({margin_text(bounds)})" if not bounds else ""
    effect_ax.set_title(wrap(f"{claim['says']}{tag}: effect, {CONFIDENCE:.0%} interval{unknown}", 44))
    values_ax.set_ylabel(wrap(f"{metric_name(claim['metric'])} ({what})", 30))
    values_ax.set_title(wrap(f"{claim['reference']} and broken{tag}: mean, {CONFIDENCE:.0%} interval", 40))
    labels, under = broken_settings(summary, first)
    for ax in axes_pair:
        if log:
            ax.set_xscale("log", base=2)
        ax.set_xticks([where[v] for v in first["values"]], labels)
        ax.minorticks_off()
        ax.set_xlabel(wrap(axis_label(first["key"]) + under, 45))
    return handles


def unit_groups(summary: dict):
    """One group per value of a second axis that changes the tokenization, else one group of everything."""
    if len(summary["axes"]) > 1 and summary["axes"][1]["key"] in CHANGES_UNITS:
        return list(summary["axes"][1]["values"])
    return [None]


def exact_note(summary: dict, points: list, index: int) -> str:
    """An exact claim over the points: at which first-axis values it holds and at which it fails."""
    first = summary["axes"][0]
    claim = points[0]["claims"][index]
    by = {}
    for p in points:
        by.setdefault(p["claims"][index]["outcome"], []).append(str(p["at"][first["key"]]))
    parts = "; ".join(f"{outcome} at {first['key'].split('.')[-1]} {', '.join(sorted(set(at), key=at.index))}"
                      for outcome, at in by.items())
    return f"{claim['says']}: {parts}"


@style.styled
def study_figure(summary: dict, spec):
    """A study's figure from its summary (read_summary) and its mistake's catalogue entry `spec` (the rules that
    decided its claims, and the variants they compare)."""
    points = [p for p in summary["points"] if "claims" in p]
    claims = [i for i, c in enumerate(points[0]["claims"]) if c["kind"] == "statistical"]
    rows = [(i, g) for i in claims for g in unit_groups(summary)]
    fig, grid = style.figure(DOUBLE, 1.0 + 2.7 * max(len(rows), 1), max(len(rows), 1), 2)
    handles = {}
    for axes_pair, (index, group) in zip(grid, rows):
        for h in claim_row(axes_pair, summary, spec, index, group):
            handles.setdefault(h.get_label(), h)
    if not rows:
        for ax in grid.flat:
            ax.remove()
    grouped = unit_groups(summary) != [None]  # each row is one value of the second axis: its lines need no key
    legend = [h for h in handles.values() if h.get_label() != "effect" and not grouped]
    references = dict.fromkeys(points[0]["claims"][i]["reference"] for i in claims) or {"correct": None}
    legend += [plt.Line2D([], [], color=color(v, spec.variants), marker="o", ls="", label=v)
               for v in (*references, "broken")]
    outcomes = sorted({p["claims"][i]["outcome"] for p in points for i in claims})
    legend += [plt.Line2D([], [], ls="", marker="o", color=OUTCOME_COLORS[o], mec="k", mew=0.5, label=o)
               for o in outcomes]
    style.legend_below(fig, legend, ncol=min(len(legend), 5))
    exact = [exact_note(summary, points, i) for i, c in enumerate(points[0]["claims"]) if c["kind"] == "exact"]
    note = "\n" + "\n".join(wrap(e, 95) for e in exact) if exact else ""
    fig.suptitle(wrap(f"Study {summary['study']} (mistake {summary['mistake']}, exploratory): {summary['question']}",
                      95) + note)
    return fig


def read_summary(directory) -> dict:
    """A study's study.json, each claim with the description of the rule that decided it: a summary written before
    the rule was kept with its claims gets it from its point's own run (its verdict.json), where that is there."""
    directory = Path(directory)
    summary = json.loads((directory / "study.json").read_text())
    for point in summary["points"]:
        run = directory / point.get("run", "")
        if "claims" not in point or all("rule" in c for c in point["claims"]) or not (run / layout.VERDICT).exists():
            continue
        recorded = {(c["says"], c.get("reference")): c.get("rule") for c in layout.read(run, layout.VERDICT)["claims"]}
        for claim in point["claims"]:
            if "rule" not in claim and recorded.get((claim["says"], claim.get("reference"))):
                claim["rule"] = recorded[(claim["says"], claim.get("reference"))]
    return summary


def write_study_figure(spec, directory) -> list[Path]:
    """The figure of a study of `spec` (its mistake's catalogue entry) from its directory's study.json."""
    directory = Path(directory)
    return style.save(study_figure(read_summary(directory), spec), directory, "study")
