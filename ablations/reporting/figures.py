"""Figures from saved metrics (never retrains; `python -m ablations.figures <run_dir> ...` redraws them).

Per run: paired loss curves with a seed band (seeds of a correct variant that had not converged marked),
gradient norm by layer over training, the mistake's own symptom plot, and its claims (effect and 95%
interval in units of the margin, coloured by outcome); on a learning-rate grid, the final loss of every variant
against the learning rate, and the other figures at each variant's chosen rate. Each as PNG and SVG under
<run_dir>/figures/."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ablations.reporting.style import LINE_COLORS, OUTCOME_COLORS, color  # noqa: E402
from ablations.runner import layout  # noqa: E402
from ablations.runner.tracking import read_jsonl  # noqa: E402
from ablations.science.measures import FLOOR_TOLERANCE, converged  # noqa: E402
from ablations.science.verdict import evidence  # noqa: E402

def width(variant: str) -> float:
    return 1.2 if variant == "broken" else 2.5  # a correct curve stays visible where the curves coincide


def by_seed(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> (steps [N], values [seeds, N]) for the rows that carry `key`."""
    rows = [r for r in rows if key in r]
    steps = sorted({r["step"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    table = {(r["seed"], r["step"]): r[key] for r in rows}
    return np.array(steps), np.array([[table.get((s, t), np.nan) for t in steps] for s in seeds], float)


def save(fig, run_dir: Path, name: str) -> list[Path]:
    """PNG and SVG under <run_dir>/figures/, the same bytes each time they are regenerated: the SVG carries no
    date and its element ids come from a fixed salt instead of a random one."""
    out = layout.figures_dir(run_dir)
    out.mkdir(exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in ("png", "svg")]
    with plt.rc_context({"svg.hashsalt": "transformer-mistakes-lab"}):
        for path in paths:
            fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return paths


def loss_curves(run_dir: Path, metrics: dict, measured: dict, title: str):
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for variant in measured:
        for key, style in (("train_ce", "-"), ("val_loss", "o--")):
            steps, values = by_seed(metrics[variant], key)
            if not len(steps):
                continue
            ax.plot(steps, np.nanmean(values, axis=0), style, color=color(variant, measured), ms=3, lw=width(variant),
                    label=f"{variant} ({key.replace('_', ' ')})")
            ax.fill_between(steps, np.nanmin(values, 0), np.nanmax(values, 0), color=color(variant, measured),
                            alpha=0.2)
    for variant in measured:
        for step in sorted({m["diverged_at"] for m in measured[variant] if m["diverged_at"] >= 0}):
            ax.axvline(step, color=color(variant, measured), ls="--", lw=1,
                       label=f"{variant}: a seed diverged at step {step}")
    mark_unconverged(ax, metrics, measured)
    floor = measured["correct"][0].get("entropy_floor")
    if floor is not None:
        ax.axhline(floor, color="k", lw=1, ls=":", label=f"entropy floor ({floor:.3f})")
        ax.axhspan(floor, floor + FLOOR_TOLERANCE, color="k", alpha=0.06,
                   label=f"floor + {FLOOR_TOLERANCE} (converged)")
    ax.set(xlabel="training step", ylabel="cross-entropy (nats/token)", title=f"{title}: loss, mean and seed range")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def mark_unconverged(ax, metrics: dict, measured: dict) -> None:
    """A cross on the last validation point of each seed of a correct variant that had not converged:
    above floor + tolerance where the floor is known, else still falling over the last quarter."""
    for variant in measured:
        if variant == "broken":
            continue
        seeds = sorted({r["seed"] for r in metrics[variant]})
        late = [(seed, m) for seed, m in zip(seeds, measured[variant]) if not converged(m)]
        if not late:
            continue
        steps, _ = by_seed(metrics[variant], "val_loss")
        ax.plot([steps[-1]] * len(late), [m["val_loss"] for _, m in late], "x", color="k", ms=9, mew=2,
                label=f"{variant} not converged: seed " + ", ".join(f"{s} ({m['val_loss']:.3f})" for s, m in late))


def grad_heatmaps(run_dir: Path, metrics: dict, title: str):
    variants = list(metrics)
    fig, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4), constrained_layout=True)
    grids = {}
    for variant in variants:
        layers = [k for k in metrics[variant][0] if k.startswith("grad_norm/")]
        steps = by_seed(metrics[variant], layers[0])[0]
        grids[variant] = (layers, steps, np.array([np.nanmean(by_seed(metrics[variant], k)[1], 0) for k in layers]))
    finite = np.concatenate([g[2][np.isfinite(g[2]) & (g[2] > 0)] for g in grids.values()])
    low, high = (np.log10(finite.min()), np.log10(finite.max())) if finite.size else (-1, 1)
    for ax, variant in zip(axes, variants):
        layers, steps, grid = grids[variant]
        image = ax.imshow(np.log10(np.where(grid > 0, grid, np.nan)), aspect="auto", origin="lower", vmin=low,
                          vmax=high, cmap="viridis", extent=(steps[0], steps[-1], -0.5, len(layers) - 0.5),
                          interpolation="nearest")
        ax.set_yticks(range(len(layers)), [k.split("/", 1)[1] for k in layers], fontsize=7)
        ax.set(xlabel="training step", title=f"{variant}")
    fig.colorbar(image, ax=axes, label="log10 gradient norm (mean over seeds)")
    fig.suptitle(f"{title}: gradient norm by layer (input at bottom); blank = exactly zero")
    return fig


def symptom(run_dir: Path, measured: dict, metric: str, title: str, train_len: int):
    fig, ax = plt.subplots(figsize=(6.4, 4))
    variants = list(measured)
    if metric == "loss_by_position":
        for variant in variants:
            curves = np.array([m[metric] for m in measured[variant]])
            positions = np.arange(1, curves.shape[1] + 1)
            ax.plot(positions, curves.mean(0), color=color(variant, variants), label=variant)
            ax.fill_between(positions, curves.min(0), curves.max(0), color=color(variant, variants), alpha=0.2)
        ax.axvline(train_len, color="k", ls=":", label=f"training length ({train_len})")
        ax.set(xlabel="position in the window", ylabel="cross-entropy (nats/token)")
    else:
        values = {v: np.array([m[metric] for m in measured[v]], float) for v in variants}
        positive = np.concatenate(list(values.values()))
        log = np.all(positive >= 0) and np.nanmax(positive) > 100 * max(np.nanmin(positive[positive > 0]), 1e-30) \
            if np.any(positive > 0) else False
        for i, variant in enumerate(variants):
            shown = np.maximum(values[variant], 1e-12) if log else values[variant]
            ax.scatter(np.full(shown.size, i), shown, color=color(variant, variants), zorder=3,
                       label=f"{variant} (seeds)")
            ax.hlines(np.nanmean(shown), i - 0.25, i + 0.25, color=color(variant, variants))
        ax.set_xticks(range(len(variants)), variants)
        ax.set_xlim(-0.6, len(variants) - 0.4)
        ax.set(ylabel=metric.replace("_", " ") + (" (log; 0 drawn at 1e-12)" if log else ""))
        if log:
            ax.set_yscale("log")
    ax.set_title(f"{title}: symptom")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def claims_forest(verdicts: list[dict], title: str):
    """Each statistical claim: the paired effect and its 95% interval in units of the claim's margin
    (positive = the claimed direction), coloured by outcome. Exact claims are listed beside it."""
    rows = [(v, c) for v in verdicts for c in v["claims"] if c["kind"] == "statistical"]
    exact = [(v, c) for v in verdicts for c in v["claims"] if c["kind"] in ("exact", "share")]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(len(rows), 1)))
    for y, (v, c) in enumerate(reversed(rows)):
        mean, lo, hi = np.array([c["mean"], *c["ci"]], float) / c["margin"]
        shade = OUTCOME_COLORS[c["outcome"]]
        if np.isfinite(lo):
            ax.plot([lo, hi], [y, y], color=shade, lw=3, solid_capstyle="butt")
        ax.plot(mean, y, "o", color=shade, ms=7, label=c["outcome"])
    labels = [f"{v['number']}. {v['mistake']} ({c['source']}): {c['metric']} vs {c['reference']}"
              for v, c in reversed(rows)]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    for x, style in ((0, "-"), (-1, "--"), (1, "--")):
        ax.axvline(x, color="k", lw=0.8, ls=style)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_ylim(-0.7, max(len(rows), 1) - 0.3)
    ax.set_xlabel("effect / margin (positive: the claimed direction; dashed: ±1 margin; symlog)")
    handles = {h.get_label(): h for h in ax.get_lines() if h.get_label() in OUTCOME_COLORS}
    ax.legend(handles.values(), handles.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    note = "; ".join(f"{v['number']}. {c['metric']}: {c['outcome']}" for v, c in exact)
    ax.set_title(f"{title}: paired effects, 95% intervals" + (f"\nexact claims: {note}" if note else ""), fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    return fig


def axis_positions(values: list):
    """Numeric axis values at their value (log2 scale when they span a factor of 4 or more), others in order."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        log = min(values) > 0 and max(values) / min(values) >= 4
        return (lambda v: v), log, None
    return (lambda v: values.index(v)), False, values


def study_claim_row(axes_pair, summary: dict, index: int) -> None:
    """One claim of a study: its paired effect and 95% band against the first axis (one line per value of
    the second), points coloured by outcome; beside it the reference and broken values."""
    effect_ax, values_ax = axes_pair
    first, second = summary["axes"][0], (summary["axes"][1] if len(summary["axes"]) > 1 else None)
    position, log, categories = axis_positions(first["values"])
    points = [p for p in summary["points"] if "claims" in p]
    claim = points[0]["claims"][index]
    for j, line in enumerate(second["values"] if second else [None]):
        mine = sorted((p for p in points if second is None or p["at"][second["key"]] == line),
                      key=lambda p: first["values"].index(p["at"][first["key"]]))
        x = np.array([position(p["at"][first["key"]]) for p in mine], float)
        c = [p["claims"][index] for p in mine]
        style, name = ("-", "--", ":", "-.")[j % 4], (f"{second['key']}={line}" if second else "")
        shade = LINE_COLORS[j % len(LINE_COLORS)]
        effect_ax.fill_between(x, [e["ci"][0] for e in c], [e["ci"][1] for e in c], color=shade, alpha=0.2)
        effect_ax.plot(x, [e["mean"] for e in c], style, color=shade, lw=1.2, label=name or None)
        effect_ax.scatter(x, [e["mean"] for e in c], c=[OUTCOME_COLORS[e["outcome"]] for e in c], s=50, zorder=3,
                          edgecolors="k", linewidths=0.5)
        for variant, key in ((claim["reference"], "correct"), ("broken", "broken")):
            mean, std = np.array([e[key]["mean"] for e in c]), np.array([e[key]["std"] for e in c])
            shade = color(variant, [claim["reference"], "broken"])
            values_ax.plot(x, mean, style, color=shade, marker="o", ms=4, label=f"{variant} {name}".strip())
            values_ax.fill_between(x, mean - std, mean + std, color=shade, alpha=0.15)
    margin = claim["margin"]
    for y, ls in ((0, "-"), (margin, "--"), (-margin, "--")):
        effect_ax.axhline(y, color="k", lw=0.8, ls=ls)
    effect_ax.set_yscale("symlog", linthresh=margin)
    effect_ax.set(ylabel=f"effect ({claim['unit']}; + = claimed)", xlabel=first["key"])
    effect_ax.set_title(textwrap.fill(f"{claim['says']}: effect and 95% interval", 70), fontsize=9)
    values_ax.set(ylabel=claim["metric"], xlabel=first["key"], title=f"{claim['reference']} vs broken, mean ± std")
    for ax in axes_pair:
        if log:
            ax.set_xscale("log", base=2)
        if not categories:
            ax.set_xticks(first["values"], [str(v) for v in first["values"]])
            ax.minorticks_off()
        if categories:
            ax.set_xticks(range(len(categories)), categories)
        ax.grid(alpha=0.3)
    outcomes = sorted({p["claims"][index]["outcome"] for p in points})
    handles = [plt.Line2D([], [], ls="", marker="o", color=OUTCOME_COLORS[o], label=o) for o in outcomes]
    effect_ax.legend(handles=handles + effect_ax.get_legend_handles_labels()[0], fontsize=7)
    values_ax.legend(fontsize=7)


def study_figure(summary: dict):
    points = [p for p in summary["points"] if "claims" in p]
    rows = [i for i, c in enumerate(points[0]["claims"]) if c["kind"] == "statistical"]
    fig, grid = plt.subplots(max(len(rows), 1), 2, figsize=(12, 3.6 * max(len(rows), 1)), squeeze=False,
                             constrained_layout=True)
    for axes_pair, index in zip(grid, rows):
        study_claim_row(axes_pair, summary, index)
    exact = [f"{c['metric']}: " + ", ".join(sorted({p['claims'][i]['outcome'] for p in points}))
             for i, c in enumerate(points[0]["claims"]) if c["kind"] == "exact"]
    note = f"\nexact claims over all points: {'; '.join(exact)}" if exact else ""
    fig.suptitle(f"Study {summary['study']} (mistake {summary['mistake']}): {summary['question']}{note}", fontsize=10)
    return fig


def write_study_figure(directory: Path) -> list[Path]:
    directory = Path(directory)
    return save(study_figure(json.loads((directory / "study.json").read_text())), directory, "study")


def symptom_metric(spec, measured: dict) -> str:
    """The catalogue's symptom measurement, or, where this data gives none (copy accuracy needs the synthetic
    copy task), the first of the mistake's claims that it does measure."""
    present = measured["broken"][0]
    return next((m for m in (spec.symptom_plot, *(c.rule.metric for c in spec.claims)) if m in present), "val_loss")


def lr_sensitivity(lr_choice: dict, title: str):
    """Final loss against the peak learning rate, every variant, on the selection split (where the rate is chosen)
    and the validation split (where claims are measured): each seed a dot, the mean a line, the chosen rate ringed,
    a diverged seed marked at the top of its panel."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8), sharey=True, layout="constrained")
    variants = list(lr_choice["variants"])
    for ax, key, split in zip(axes, ("selection_loss", "val_loss"), ("selection split (chooses)",
                                                                      "validation split (claims)")):
        for variant in variants:
            choice, tint = lr_choice["variants"][variant], color(variant, variants)
            lrs = np.array([entry["lr"] for entry in choice["by_lr"]])
            values = np.array([entry[key] for entry in choice["by_lr"]], float)  # [lrs, seeds]
            with np.errstate(invalid="ignore"):
                ax.plot(lrs, np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=1), color=tint,
                        lw=width(variant), label=variant)
            for lr, seeds in zip(lrs, values):
                ax.scatter(np.full(seeds.size, lr), seeds, color=tint, s=10, alpha=0.6, zorder=3)
            best = list(lrs).index(choice["chosen"])
            ax.scatter([lrs[best]], [np.nanmean(values[best])], s=120, facecolors="none", edgecolors=tint, lw=1.5,
                       zorder=4)
            diverged = [lr for lr, entry in zip(lrs, choice["by_lr"]) if any(d >= 0 for d in entry["diverged"])]
            if diverged:
                ax.scatter(diverged, [1.0] * len(diverged), transform=ax.get_xaxis_transform(), marker="x",
                           color=tint, clip_on=False, label=f"{variant}: a seed diverged")
        ax.set_xscale("log")
        ax.set(xlabel="peak learning rate", title=split)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("final cross-entropy (nats/token)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"{title}: final loss against learning rate (ringed: the rate each variant is compared at)",
                 fontsize=10)
    return fig


def at_chosen_rate(rows: list[dict], peak_lr) -> list[dict]:
    """A grid variant's log rows at its chosen rate (every row without a grid)."""
    return rows if peak_lr is None else [r for r in rows if r.get("peak_lr") == peak_lr]


def write_figures(spec, run_dir: Path) -> list[Path]:
    """Every figure of one run of `spec` (its catalogue entry), from the run's saved files."""
    run_dir = Path(run_dir)
    config, measured, verdict = (layout.read(run_dir, name) for name in (layout.CONFIG, layout.MEASUREMENTS,
                                                                          layout.VERDICT))
    title = f"Mistake {spec.number} ({spec.name}), {evidence(verdict)}"
    chosen = verdict.get("learning_rates", {}).get("chosen", {})  # on a grid: the rate each variant is compared at
    metrics = {v: at_chosen_rate(read_jsonl(layout.metrics_file(run_dir / v)), chosen.get(v)) for v in measured}
    sensitivity = ([] if not chosen else
                   save(lr_sensitivity(layout.read(run_dir, layout.LEARNING_RATES), title), run_dir, "lr_sensitivity"))
    return sensitivity + (save(loss_curves(run_dir, metrics, measured, title), run_dir, "loss")
            + save(grad_heatmaps(run_dir, metrics, title), run_dir, "grad_norms")
            + save(symptom(run_dir, measured, symptom_metric(spec, measured), title, config["train"]["seq_len"]),
                   run_dir, "symptom")
            + save(claims_forest([verdict], title), run_dir, "claims"))

