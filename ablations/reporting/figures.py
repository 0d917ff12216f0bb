"""A run's figures from its saved metrics (never retrains; `python -m ablations.figures <run_dir> ...` redraws them).

- `loss`: training and validation loss of every seed (seeds of the copy task split into those that learned it and
  those that did not, so no mean is drawn), the entropy floor and its "converged" band, diverged and unconverged
  seeds marked, both panels on one y range; variants that tokenize differently get a panel each (their nats per
  token do not compare); where every variant trains identically (a mistake of inference alone) the title says the
  curves coincide.
- `grad_norms`: gradient norm by layer over training, rows aligned across variants, an all-zero panel said so.
- `symptom`: every statistical claim as a paired plot: each seed's reference value joined to its broken value, in
  the claim's own unit, on the seeds the claim reads.
- `loss_by_position` (mistakes whose symptom is the per-position loss): loss along windows longer than training.
- `claims`: each statistical claim's paired effect and 95% interval on its own axis, in its own unit, with the
  decision boundaries of the catalogue rule that decided it (ablations.science.verdict.boundaries); a suite's in two
  columns.
- `lr_sensitivity` (a learning-rate grid): final loss of every variant against the learning rate (a row per variant,
  each in its own token's unit, where variants tokenize differently).
- `card`: one mistake on one line: its validation loss, its headline claim and its verdict.
Each as PNG and SVG under <run_dir>/figures/, in the lab's style (ablations/reporting/style.py)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

import data as data_lib
from ablations.reporting import style
from ablations.reporting.style import DOUBLE, OUTCOME_COLORS, SINGLE, color, plt, save, styled, wrap
from ablations.runner import layout
from ablations.runner.tracking import read_jsonl
from ablations.science.measures import FLOOR_TOLERANCE, converged
from ablations.science.verdict import boundaries, decided_by, entropy_unit, evidence, firmness_of

__all__ = ["save", "draw_figures", "write_figures", "claims_forest", "summary", "lr_sensitivity", "loss_curves",
           "grad_heatmaps", "paired", "loss_by_position", "card"]

METRIC_NAMES = {"val_loss": "final validation loss", "val_loss_auc": "mean validation loss over training",
                "grad_depth_ratio": "gradient depth ratio", "copy_accuracy": "copy accuracy",
                "bits_per_byte": "bits per byte", "length_degradation": "loss past minus within the training length",
                "loss_past_train_len": "loss past the training length", "unk_rate": "<unk> rate",
                "prefix_val_loss": "honest (prefix-only) loss", "padded_val_loss": "loss on left-padded batches",
                "grad_depth_ratio_median": "gradient depth ratio, median over training",
                "n_params": "parameters", "causal_leak": "largest logit change from a future token",
                "padding_gap": "largest logit change from padding", "cache_gap": "largest cached-minus-full logit gap",
                "zero_gradient": "share of steps with zero gradient"}
EXACT_UNITS = {"n_params": "count", "causal_leak": "logit", "padding_gap": "logit", "cache_gap": "logit",
               "zero_gradient": "share of steps", "unk_rate": "share of targets"}


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def by_seed(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> (steps [N], values [seeds, N]) for the rows that carry `key`."""
    rows = [r for r in rows if key in r]
    steps = sorted({r["step"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    table = {(r["seed"], r["step"]): r[key] for r in rows}
    return np.array(steps), np.array([[table.get((s, t), np.nan) for t in steps] for s in seeds], float)


def separate_data(spec) -> bool:
    """Whether the broken variant tokenizes its own way (mistake 10), so that nats per token differ in meaning
    between variants."""
    return any(key.startswith("data.") for key in spec.broken)


def in_units(config: dict, text: str) -> str:
    """A claim's unit as an axis shows it: nats per token in the data's own token, a share named as one."""
    return text.replace("nats/token", entropy_unit(config)).replace("of tokens", "share of tokens")


def line_width(variant: str, width: float) -> float:
    """A correct curve is drawn wider, so that it shows under a broken curve that coincides with it."""
    return 2 * width if variant == "correct" else width


def running_mean(steps: np.ndarray, values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's running mean over `width` consecutive points, at the mean step of each window."""
    if width <= 1:
        return steps, values
    kernel = np.ones(width) / width
    return (np.convolve(steps, kernel, mode="valid"),
            np.array([np.convolve(row, kernel, mode="valid") for row in values]))


def variant_handle(variant: str, variants, **kwargs):
    return plt.Line2D([], [], color=color(variant, variants), label=variant, **kwargs)


def coincide(metrics: dict, keys=("train_ce", "val_loss")) -> bool:
    """Whether every variant's training and validation losses are the same numbers, seed for seed and step for step
    (a mistake that changes only inference trains exactly as the correct model does)."""
    first, *others = metrics
    tables = {v: [by_seed(metrics[v], key) for key in keys] for v in metrics}
    return bool(others) and len(tables[first][0][0]) > 0 and all(
        np.array_equal(steps, first_steps) and np.array_equal(values, first_values, equal_nan=True)
        for v in others for (steps, values), (first_steps, first_values) in zip(tables[v], tables[first]))


UNCONVERGED = "not converged (correct or fix)"  # the cross on a correct variant's (or a fix's) last validation point


@styled
def loss_curves(metrics: dict, measured: dict, config: dict, title: str, own: bool = False):
    """Training and validation loss of every seed; one panel per variant where their tokenizations differ (`own`),
    else a training and a validation panel on one y range that shows every curve of both."""
    variants = list(measured)
    panels = ([(f"{v}: loss in its own tokens", [v]) for v in variants] if own else
              [("training loss", variants, "train_ce"), ("validation loss", variants, "val_loss")])
    fig, axes = style.figure(DOUBLE, 2.9, 1, len(panels), sharey=not own)
    smooth = 1
    handles = [variant_handle(v, variants, marker="o", ms=3) for v in variants]
    floor = measured["correct"][0].get("entropy_floor")
    ranges, peaks = [], []  # per panel: (lowest, highest) of what it must show; the highest loss it draws
    for ax, panel in zip(axes[0], panels):
        name, shown, keys = panel[0], panel[1], (panel[2:] or ("train_ce", "val_loss"))
        tops, bottoms, peak = [], [], -np.inf
        for variant in shown:
            for key in keys:
                steps, values = by_seed(metrics[variant], key)
                if not len(steps):
                    continue
                val = key == "val_loss"
                if not val:  # one batch per log is noisy: a running mean of `smooth` logs
                    steps, values = running_mean(steps, values, smooth := max(len(steps) // 40, 1))
                for seed_values in values:
                    ax.plot(steps, seed_values, "-o" if val else "-", color=color(variant, variants),
                            lw=line_width(variant, 1.0 if val else 0.7), ms=2.2, alpha=0.9 if val else 0.55)
                peak = max(peak, values[np.isfinite(values)].max(initial=-np.inf))
                late = values[:, steps >= 0.1 * steps[-1]]
                if np.isfinite(late).any():
                    tops.append(np.nanmax(late))
                    bottoms.append(np.nanmin(late))
        for variant in shown:
            for step in sorted({m["diverged_at"] for m in measured[variant] if m["diverged_at"] >= 0}):
                ax.axvline(step, color=color(variant, variants), ls="--", lw=0.8)
        if floor is not None and (not own or shown == ["correct"]):
            ax.axhline(floor, color=style.FLOOR_COLOR, lw=0.8, ls=":")
            ax.axhspan(floor, floor + FLOOR_TOLERANCE, color=style.FLOOR_COLOR, alpha=0.15, lw=0)
            bottoms.append(floor)
        if "val_loss" in keys:
            mark_unconverged(ax, metrics, {v: measured[v] for v in shown})
        ranges.append((min(bottoms), max(tops)) if tops else None)
        peaks.append(peak)
        what = "nats per token of its own tokenizer" if own else entropy_unit(config)
        ax.set(xlabel="training step (optimizer updates)", ylabel=wrap(f"cross-entropy ({what})", 32), title=name)
    if not own:  # panels that share a y axis: one range that covers both (each panel's alone would cut the other's)
        ranges = [(min(r[0] for r in ranges if r), max(r[1] for r in ranges if r))] * len(ranges) \
            if any(ranges) else ranges
    for ax, extent in zip(axes[0], ranges):
        if extent:  # the first tenth of training (the initial loss) is cut at the top, so the floor band shows
            low, high = extent
            ax.set_ylim(low - 0.05 * (high - low) - 0.01, high + 0.05 * (high - low) + 0.01)
    if hidden := [peak for ax, peak in zip(axes[0], peaks) if peak > ax.get_ylim()[1]]:
        # a reader must not take the top edge for the initial loss
        handles.append(plt.Line2D([], [], ls="", marker=r"$\uparrow$", color="0.3", ms=6,
                                  label=f"cut at the top: early losses up to {max(hidden):.3g}"))
    handles += [plt.Line2D([], [], color="0.3", marker="o", ms=2.2, lw=1.0, label="validation (per seed)"),
                plt.Line2D([], [], color="0.3", lw=0.7, alpha=0.55,
                           label="training (per seed)" + (f", running mean of {smooth} logs" if smooth > 1 else ""))]
    if floor is not None:
        handles += [plt.Line2D([], [], color=style.FLOOR_COLOR, ls=":", lw=0.8, label=f"entropy floor {floor:.3f}"),
                    plt.matplotlib.patches.Patch(color=style.FLOOR_COLOR, alpha=0.15,
                                                 label=f"converged: within {FLOOR_TOLERANCE} of the floor")]
    if any(m["diverged_at"] >= 0 for v in variants for m in measured[v]):
        handles.append(plt.Line2D([], [], color="0.3", ls="--", lw=0.8, label="a seed diverged"))
    if any(ax.get_legend_handles_labels()[0] for ax in axes[0]):
        handles.append(plt.Line2D([], [], ls="", marker="x", color="k", ms=6, mew=1.5, label=UNCONVERGED))
    note = (" (each panel in its own tokens: compare them in bits per byte, the claim)" if own else
            f" (the curves coincide: every variant trains exactly as {variants[0]} does, seed for seed; "
            f"{variants[0]}, drawn wider, shows under them)" if coincide(metrics) else "")
    fig.suptitle(wrap(f"{title}: loss of every seed{note}", 95))
    style.legend_below(fig, handles, ncol=4)
    return fig


def mark_unconverged(ax, metrics: dict, measured: dict) -> None:
    """A cross on the last validation point of each seed of a correct variant that had not converged:
    above floor + tolerance where the floor is known, else still falling over the last quarter."""
    for variant in measured:
        if variant == "broken":
            continue
        seeds = sorted({r["seed"] for r in metrics[variant]})
        late = [m for _, m in zip(seeds, measured[variant]) if not converged(m)]
        if late:
            steps, _ = by_seed(metrics[variant], "val_loss")
            ax.plot([steps[-1]] * len(late), [m["val_loss"] for m in late], "x", color="k", ms=6, mew=1.5,
                    label=UNCONVERGED)


LAYER_NAMES = {"embed": "token embedding", "pos_table": "position table", "norm_final": "final norm",
               "head": "output head"}


def layer_label(key: str, tied: bool) -> str:
    name = key.split("/", 1)[1]
    if name.startswith("block_"):
        return f"block {name.split('_', 1)[1]}"
    return LAYER_NAMES.get(name, name) + (" *" if name == "embed" and tied else "")


def gradient_grid(rows: list[dict], layers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, [layers, steps] geometric mean over seeds of each layer's gradient norm): 0 where every seed's
    gradient is exactly zero, NaN where the variant has no such layer."""
    steps = by_seed(rows, next(k for k in layers if any(k in r for r in rows)))[0]
    grid = np.full((len(layers), len(steps)), np.nan)
    for i, key in enumerate(layers):
        if not any(key in r for r in rows):
            continue
        values = by_seed(rows, key)[1]
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a step where every seed's gradient is zero
            mean = 10 ** np.nanmean(np.where(values > 0, np.log10(values), np.nan), axis=0)
        grid[i] = np.where(np.all(values == 0, axis=0), 0.0, mean)
    return steps, grid


@styled
def grad_heatmaps(metrics: dict, title: str):
    """Gradient norm by layer over training, one panel per variant, the same rows (input at the bottom) and one
    colour scale in all; an exactly-zero cell is grey, and a panel whose every gradient is zero says so."""
    variants = list(metrics)
    layers = []
    for variant in variants:
        layers += [k for k in metrics[variant][0] if k.startswith("grad_norm/") and k not in layers]
    order = (["grad_norm/embed", "grad_norm/pos_table"] + sorted((k for k in layers if "/block_" in k),
             key=lambda k: int(k.rsplit("_", 1)[1])) + ["grad_norm/norm_final", "grad_norm/head"])
    layers = [k for k in order if k in layers] + [k for k in layers if k not in order]
    grids = {v: gradient_grid(metrics[v], layers) for v in variants}
    positive = np.concatenate([g[np.isfinite(g) & (g > 0)] for _, g in grids.values()])
    low, high = (np.log10(positive.min()), np.log10(positive.max())) if positive.size else (-1.0, 1.0)
    tied = any("grad_norm/embed" in metrics[v][0] and "grad_norm/head" not in metrics[v][0] for v in variants)
    fig, axes = style.figure(DOUBLE, max(2.4, 1.3 + 0.17 * len(layers)), 1, len(variants), sharey=True)
    cmap = plt.get_cmap("viridis").with_extremes(bad=style.ZERO_COLOR)
    for ax, variant in zip(axes[0], variants):
        steps, grid = grids[variant]
        with np.errstate(divide="ignore"):
            shown = np.ma.masked_invalid(np.log10(grid))
        image = ax.imshow(shown, aspect="auto", origin="lower", vmin=low, vmax=high, cmap=cmap,
                          extent=(steps[0], steps[-1], -0.5, len(layers) - 0.5), interpolation="nearest")
        for i in np.flatnonzero(np.all(np.isnan(grid), axis=1)):
            ax.axhspan(i - 0.5, i + 0.5, color="white", lw=0)
            ax.text(0.5 * (steps[0] + steps[-1]), i, "(not in this variant)", ha="center", va="center", fontsize=6)
        if np.all(grid[np.isfinite(grid)] == 0):
            ax.text(0.5, 0.5, "every gradient is exactly 0", transform=ax.transAxes, ha="center", va="center",
                    fontsize=8, bbox={"facecolor": "white", "edgecolor": "0.5", "lw": 0.5})
        ax.set_yticks(range(len(layers)), [layer_label(k, tied) for k in layers])
        ax.grid(False)
        ax.set(xlabel="training step (optimizer updates)", title=variant)
    axes[0][0].set_ylabel("layer (input at the bottom)")
    bar = fig.colorbar(image, ax=axes[0], shrink=0.9)
    bar.set_label("log₁₀ gradient norm\n(geometric mean over seeds)")
    notes = (["grey: exactly 0"] if any(np.any(g == 0) for _, g in grids.values()) else []) + (
        ["* tied where a variant has no output-head row: the embedding's gradient includes the head's"] if tied else [])
    fig.suptitle(wrap(f"{title}: gradient norm by layer", 95) + "".join(f"\n{n}" for n in notes))
    return fig


def readable(claim: dict) -> bool:
    return claim["kind"] in ("statistical", "exact") and "values" in claim.get("broken", {}) and \
        len(claim["broken"]["values"]) > 0


def paired_claims(verdict: dict) -> list[dict]:
    """The claims a paired plot shows: every statistical claim, or where a run has none, its exact claims."""
    statistical = [c for c in verdict["claims"] if c["kind"] == "statistical" and readable(c)]
    return statistical or [c for c in verdict["claims"] if c["kind"] == "exact" and readable(c)]


def slope(ax, claim: dict, variants, config: dict, title_width: int = 46, label_width: int = 34,
          margins: tuple[float, ...] = ()) -> None:
    """One claim's paired values: each seed's reference value joined to its broken value (the seeds the claim
    reads), the means as bars; `margins` (in the claim's unit, where a statistical rule's boundaries put the broken
    mean) dashed across the broken column."""
    reference = claim["reference"]
    c = np.array(claim["correct"]["values"], float)
    b = np.array(claim["broken"]["values"], float)
    finite = np.concatenate([c[np.isfinite(c)], b[np.isfinite(b)]])
    for value in margins:
        ax.hlines(value, 0.7, 1.3, color="k", lw=0.7, ls="--", zorder=1)
    for cv, bv in zip(c, b):
        ax.plot([0, 1], [cv, bv], color="0.55", lw=0.7, zorder=1)
    for x, values, variant in ((0, c, reference), (1, b, "broken")):
        ok = np.isfinite(values)
        ax.scatter(np.full(ok.sum(), x), values[ok], color=color(variant, variants), s=14, zorder=3)
        if ok.any():
            ax.hlines(values[ok].mean(), x - 0.18, x + 0.18, color=color(variant, variants), lw=2, zorder=2)
        if (~ok).any():
            ax.scatter([x] * int((~ok).sum()), [1.0] * int((~ok).sum()), marker="x", color="k",
                       transform=ax.get_xaxis_transform(), clip_on=False, zorder=3)
    if finite.size and np.all(finite > 0) and finite.max() > 100 * finite.min():
        ax.set_yscale("log")
    ax.set_xticks([0, 1], [reference, "broken"])
    ax.set_xlim(-0.45, 1.45)
    ax.set_xlabel("variant (lines join a seed)")
    what = claim.get("unit") or EXACT_UNITS.get(claim["metric"], "value")
    ax.set_ylabel(wrap(f"{metric_name(claim['metric'])} ({in_units(config, what)})", label_width))
    head = f"{claim['outcome']}: "
    ax.set_title(wrap(head + claim["says"], title_width), color="k")


@styled
def paired(verdict: dict, variants, config: dict, title: str):
    """Every statistical claim (or, without one, every exact claim) as a paired plot per seed; None if none."""
    claims = paired_claims(verdict)
    if not claims:
        return None
    cols = min(len(claims), 3)
    rows = math.ceil(len(claims) / cols)
    width = SINGLE if cols == 1 else DOUBLE
    fig, axes = style.figure(width, 0.6 + 2.3 * rows, rows, cols)
    for ax in axes.flat[len(claims):]:
        ax.remove()
    for ax, claim in zip(axes.flat, claims):
        slope(ax, claim, variants, config, {1: 40, 2: 46, 3: 32}[cols])
    fig.suptitle(wrap(f"{title}: paired by seed, in each claim's unit", 44 if cols == 1 else 95))
    return fig


def smoothing_width(config: dict) -> tuple[int, str]:
    """Positions averaged per point of the per-position loss: on the copy task one block (its loss swings with the
    position inside a copied block, and a block's mean does not), else an eighth of the training length."""
    data = config["data"]
    if data["source"] == "synthetic" and data["tokenizer"] == "char":
        spec = data_lib.SyntheticSpec(data["alphabet_size"], data["span"], data["zipf_exponent"])
        return data_lib.block_len(spec), "one copy block"
    return max(config["train"]["seq_len"] // 8, 1), "an eighth of the training length"


@styled
def loss_by_position(measured: dict, config: dict, title: str):
    """Loss along windows longer than training, a running mean over `smoothing_width` positions, the mean over
    seeds as a line and the seed range as a band."""
    variants = list(measured)
    train_len = config["train"]["seq_len"]
    width, what = smoothing_width(config)
    fig, axes = style.figure(DOUBLE, 2.7)
    ax = axes[0][0]
    for variant in variants:
        curves = np.array([m["loss_by_position"] for m in measured[variant]], float)  # [seeds, positions]
        width = min(width, curves.shape[1])
        centres, running = running_mean(np.arange(1, curves.shape[1] + 1), curves, width)  # positions from 1
        ax.plot(centres, running.mean(0), color=color(variant, variants), lw=1.4, label=f"{variant} (mean)")
        ax.fill_between(centres, running.min(0), running.max(0), color=color(variant, variants), alpha=0.18, lw=0)
    ax.axvline(train_len, color="k", ls=":", lw=0.8, label=f"training length ({train_len})")
    ax.set(xlabel="position in the window (tokens)", ylabel=f"cross-entropy ({entropy_unit(config)})")
    ax.set_title(wrap(f"running mean over {width} positions ({what}); band: the range over seeds", 95))
    handles = ax.get_legend_handles_labels()[0]
    handles.append(plt.matplotlib.patches.Patch(color="0.5", alpha=0.18, label="seed range"))
    style.legend_below(fig, handles, ncol=len(handles))
    fig.suptitle(wrap(f"{title}: loss along windows longer than training", 95))
    return fig


def margin_text(bounds: tuple[float, ...] | None) -> str:
    """The margins a rule decides against, as a title names them: ±m where they are symmetric, each signed else."""
    if not bounds:
        return "rule not known: no margin drawn"
    if len(bounds) == 2 and bounds[0] == -bounds[1]:
        return f"margin ±{bounds[1]:g}"
    return "margin " + ", ".join(f"{b:+g}" for b in bounds)


def effect_row(ax, claim: dict, config: dict, label: str, bounds: tuple[float, ...] | None,
               title_width: int = 95, firm: dict | None = None) -> None:
    """One statistical claim: per-seed paired differences (dots), their mean and 95% interval (bar, outcome colour),
    zero and the decision boundaries of its rule (`bounds`, dashed: ablations.science.verdict.boundaries), in the
    claim's unit; the title says when the outcome is fragile (`firm`: verdict.firmness_of)."""
    shade = OUTCOME_COLORS[claim["outcome"]]
    diffs = np.array(claim.get("differences", []), float)
    lo, hi = claim["ci"]
    finite = diffs[np.isfinite(diffs)]
    ax.scatter(finite, np.full(finite.size, 0.55), s=9, color="0.25", zorder=3, label="a seed's difference")
    if np.isfinite(lo):
        ax.plot([lo, hi], [0, 0], color=shade, lw=5, alpha=0.8, solid_capstyle="butt", zorder=2)
    if np.isfinite(claim["mean"]):
        ax.plot([claim["mean"]], [0], "D", color=shade, mec="k", mew=0.5, ms=5, zorder=4)
    ax.axvline(0, color="k", lw=0.7)
    for m in bounds or ():
        ax.axvline(m, color="k", lw=0.7, ls="--")
    span = [v for v in (*finite, lo, hi, claim["mean"], *(bounds or ()), 0.0) if np.isfinite(v)]
    pad = 0.08 * (max(span) - min(span) or 1.0)
    ax.set_xlim(min(span) - pad, max(span) + pad)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.grid(axis="y", visible=False)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(f"effect ({in_units(config, claim['unit'])}; + = the claimed direction)", labelpad=1)
    note = "" if np.isfinite(lo) else " (no interval)"
    if firm and firm["fragile"]:
        note += f", fragile: {firm['distance_se']:.1f} SE from its boundary"
    ax.set_title(wrap(f"{label} — {claim['outcome']}{note} ({margin_text(bounds)})", title_width), color="k", pad=2)


@styled
def claims_forest(entries: list[tuple], title: str):
    """Each statistical claim of (catalogue entry, verdict, config) `entries` on its own axis in its own unit, with
    the decision boundaries of the rule that decided it; more than four in two columns (filled down the left
    first), so that a suite's figure stays within a page; the exact and share claims listed under them. None when
    there is no statistical claim."""
    rows = [(spec, v, cfg, c) for spec, v, cfg in entries for c in v["claims"] if c["kind"] == "statistical"]
    if not rows:
        return None
    others = [(v, c) for _, v, _ in entries for c in v["claims"] if c["kind"] in ("exact", "share")]
    cols = 2 if len(rows) > 4 else 1
    lines = math.ceil(len(rows) / cols)
    listed = "; ".join(f"{v['number']}. {metric_name(c['metric'])}: {c['outcome']}" for v, c in others)
    fig, axes = style.figure(DOUBLE, 1.0 + (0.95 if cols == 1 else 0.92) * lines + 0.14 * math.ceil(len(others) / 2),
                             lines, cols)
    order = [axes[i % lines, i // lines] for i in range(lines * cols)]  # down the left column, then the right
    for ax in order[len(rows):]:
        ax.remove()
    for ax, (spec, v, cfg, c) in zip(order, rows):
        effect_row(ax, c, cfg, f"{v['number']}. {v['mistake']} ({c['source']}): {metric_name(c['metric'])} "
                               f"vs {c['reference']}", boundaries(spec, c), 95 if cols == 1 else 50,
                   firmness_of(spec, c))
    handles = [plt.Line2D([], [], ls="", marker="o", color="0.25", ms=3, label="a seed's paired difference"),
               plt.Line2D([], [], ls="", marker="D", color="0.6", mec="k", mew=0.5, label="mean difference"),
               plt.Line2D([], [], color="0.6", lw=5, label="95% interval, coloured by outcome"),
               plt.Line2D([], [], color="k", lw=0.7, ls="--", label="the rule's margin")]
    handles += [plt.matplotlib.patches.Patch(color=OUTCOME_COLORS[o], label=o)
                for o in ("reproduced", "no effect", "opposite", "inconclusive")
                if any(c["outcome"] == o for *_, c in rows)]
    style.legend_below(fig, handles, ncol=4)
    fig.suptitle(wrap(f"{title}: paired effects (broken minus reference, signed so that + is what the claim says)", 95)
                 + (f"\n{wrap('exact and share claims: ' + listed, 110)}" if listed else ""))
    return fig


def setting(value, config: dict):
    """A catalogue setting's value in a run, an OmegaConf interpolation ("${data.tiny_vocab_size}") read from the
    run's config."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        for key in value[2:-1].split("."):
            config = config[key]
        return config
    return value


def own_unit(spec, config: dict, variant: str) -> str:
    """The cross-entropy unit of one variant where variants tokenize differently (separate_data): its data's unit,
    or, where it caps the vocabulary, a token of its own tokenizer of that many symbols."""
    settings = spec.broken if variant == "broken" else spec.fixes.get(variant, {})
    data = {**config["data"], **{key.split(".", 1)[1]: setting(value, config) for key, value in settings.items()
                                 if key.startswith("data.")}}
    if data.get("vocab_size") and data["vocab_size"] != config["data"].get("vocab_size"):
        return f"nats/token of its own {data['vocab_size']}-symbol tokenizer"
    return entropy_unit({**config, "data": data})


@styled
def lr_sensitivity(lr_choice: dict, config: dict, title: str, units: dict | None = None):
    """Final loss against the peak learning rate, every variant, on the selection split (where the rate is chosen)
    and the validation split (where claims are measured): each seed a dot, the mean a line, the chosen rate ringed,
    a diverged seed marked at the top of its panel. `units`: where variants tokenize differently, each variant's own
    cross-entropy unit (own_unit), and a row of panels per variant in it."""
    variants = list(lr_choice["variants"])
    rows = [[v] for v in variants] if units else [variants]
    fig, axes = style.figure(DOUBLE, 2.8 if not units else 0.8 + 2.0 * len(rows), len(rows), 2, sharey="row")
    diverged_any = False
    for i, (row, shown) in enumerate(zip(axes, rows)):
        for ax, key, split in zip(row, ("selection_loss", "val_loss"), ("selection split (chooses the rate)",
                                                                       "validation split (claims are read here)")):
            for variant in shown:
                choice, tint = lr_choice["variants"][variant], color(variant, variants)
                lrs = np.array([entry["lr"] for entry in choice["by_lr"]])
                values = np.array([entry[key] for entry in choice["by_lr"]], float)  # [lrs, seeds]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a rate where every seed diverged has no mean
                    ax.plot(lrs, np.nanmean(np.where(np.isfinite(values), values, np.nan), axis=1), color=tint,
                            lw=1.2)
                for lr, seeds in zip(lrs, values):
                    ax.scatter(np.full(seeds.size, lr), seeds, color=tint, s=8, alpha=0.6, zorder=3)
                best = list(lrs).index(choice["chosen"])
                ax.scatter([lrs[best]], [np.nanmean(values[best])], s=90, facecolors="none", edgecolors=tint, lw=1.2,
                           zorder=4)
                diverged = [lr for lr, entry in zip(lrs, choice["by_lr"]) if any(d >= 0 for d in entry["diverged"])]
                if diverged:
                    diverged_any = True
                    ax.scatter(diverged, [1.0] * len(diverged), transform=ax.get_xaxis_transform(), marker="x",
                               color=tint, clip_on=False)
            ax.set_xscale("log")
            ax.set(xlabel="peak learning rate (log)", title=split if i == 0 else "")
        what = units[shown[0]] if units else entropy_unit(config)
        row[0].set_ylabel(wrap(f"{shown[0]}: final cross-entropy ({what})" if units else
                               f"final cross-entropy ({what})", 40))
    handles = [variant_handle(v, variants) for v in variants]
    handles += [plt.Line2D([], [], ls="", marker="o", color="0.4", ms=3, label="a seed"),
                plt.Line2D([], [], ls="", marker="o", mfc="none", mec="0.3", ms=8, label="the rate compared at")]
    if diverged_any:
        handles.append(plt.Line2D([], [], ls="", marker="x", color="0.3", label="a seed diverged (top edge)"))
    style.legend_below(fig, handles, ncol=len(handles))
    note = " (a row per variant, each in its own tokens)" if units else ""
    fig.suptitle(wrap(f"{title}: final loss against the learning rate{note}", 95))
    return fig


def headline(verdict: dict) -> dict | None:
    """The claim a one-panel summary shows: the seed page's first statistical claim, else any statistical claim,
    else the first exact one with values."""
    claims = paired_claims(verdict)
    page = [c for c in claims if c.get("source") == "page"]
    return (page or claims or [None])[0]


@styled
def card(verdict: dict, metrics: dict, measured: dict, config: dict, title: str, own: bool = False):
    """One mistake, pasteable alone: the validation loss of every seed, its headline claim paired by seed, and its
    verdict."""
    variants = list(measured)
    fig, axes = style.figure(DOUBLE, 2.7, 1, 2, width_ratios=(1.6, 1))
    ax = axes[0][0]
    for variant in variants:
        steps, values = by_seed(metrics[variant], "val_loss")
        for seed_values in values:
            ax.plot(steps, seed_values, "-", color=color(variant, variants), lw=line_width(variant, 0.9), alpha=0.85)
    # the floor is the correct data's: where the variants tokenize differently, no one line is both variants' floor
    floor = None if own else measured["correct"][0].get("entropy_floor")
    if floor is not None:
        ax.axhline(floor, color=style.FLOOR_COLOR, ls=":", lw=0.8)
    what = "nats per token of each variant's own tokenizer" if own else entropy_unit(config)
    ax.set(xlabel="training step (optimizer updates)", ylabel=wrap(f"validation loss ({what})", 32),
           title="validation loss, every seed")
    if (claim := headline(verdict)) is not None:
        slope(axes[0][1], claim, variants, config, 36)
    else:
        axes[0][1].remove()
    handles = [variant_handle(v, variants) for v in variants]
    if floor is not None:
        handles.append(plt.Line2D([], [], color=style.FLOOR_COLOR, ls=":", lw=0.8, label="entropy floor"))
    style.legend_below(fig, handles, ncol=len(handles))
    fig.suptitle(wrap(f"{title} — {verdict['verdict']}", 95))
    return fig


def claim_variants(verdict: dict) -> list[str]:
    """The variants a verdict's claims compare, in the order a run lists them (correct, its fixes, broken)."""
    references = [c["reference"] for c in verdict["claims"] if "reference" in c]
    return ["correct", *dict.fromkeys(r for r in references if r != "correct"), "broken"]


def broken_margins(spec, claim: dict) -> tuple[float, ...]:
    """Where the decision boundaries of a statistical claim's rule (boundaries) put the broken variant's mean: the
    reference mean plus each boundary, turned back from the claimed-positive scale into the metric's own direction;
    none for a claim with no statistical rule or no finite reference value."""
    bounds = boundaries(spec, claim) if claim["kind"] == "statistical" else None
    reference = np.array(claim["correct"]["values"], float)
    if not bounds or not np.isfinite(reference).any():
        return ()
    sign = 1.0 if getattr(decided_by(spec, claim), "higher", True) else -1.0
    return tuple(float(np.mean(reference[np.isfinite(reference)]) + sign * bound) for bound in bounds)


@styled
def summary(entries: list[tuple], title: str):
    """Figure 1: one panel per mistake of (catalogue entry, verdict, config) `entries`, its headline claim paired by
    seed in its own unit, with the margins of the rule that decided it about the reference mean; None when no
    mistake has a claim to show."""
    shown = [(spec, v, cfg, claim) for spec, v, cfg in entries if (claim := headline(v)) is not None]
    if not shown:
        return None
    cols = 3 if len(shown) > 4 else len(shown)
    rows = math.ceil(len(shown) / cols)
    fig, axes = style.figure(DOUBLE, 0.9 + 2.0 * rows, rows, cols)
    for ax in axes.flat[len(shown):]:
        ax.remove()
    margins = False
    for ax, (spec, verdict, config, claim) in zip(axes.flat, shown):
        drawn = broken_margins(spec, claim)
        margins |= bool(drawn)
        slope(ax, claim, claim_variants(verdict), config, 30, 30, drawn)
        ax.set_title(f"{verdict['number']}. {verdict['mistake']}\n{claim['outcome']}")
        ax.set_xlabel("variant")
    missing = [f"{v['number']}. {v['mistake']}" for _, v, _ in entries if headline(v) is None]
    handles = [variant_handle("correct", ["correct"], marker="o", ls=""),
               variant_handle("broken", ["broken"], marker="o", ls=""),
               plt.Line2D([], [], color="0.55", lw=0.7, label="one seed: its reference joined to its broken value"),
               plt.Line2D([], [], color="0.3", lw=2, label="mean")]
    if margins:
        handles.append(plt.Line2D([], [], color="k", lw=0.7, ls="--",
                                  label="the rule's margins, from the reference mean"))
    style.legend_below(fig, handles, ncol=4 if len(handles) < 5 else 3)
    note = f" (no claim to show: {', '.join(missing)})" if missing else ""
    fig.suptitle(wrap(f"{title}: each mistake's headline claim, paired by seed, in its own unit{note}", 95))
    return fig


def symptom_curve(spec, measured: dict) -> bool:
    return spec.symptom_plot == "loss_by_position" and "loss_by_position" in measured["broken"][0]


def at_chosen_rate(rows: list[dict], peak_lr) -> list[dict]:
    """A grid variant's log rows at its chosen rate (every row without a grid)."""
    return rows if peak_lr is None else [r for r in rows if r.get("peak_lr") == peak_lr]


def draw_figures(spec, run_dir) -> dict:
    """Every figure of one run of `spec` (its catalogue entry), from the run's saved files: name -> Figure, or None
    where the run has nothing such a figure would show (no statistical claim, no per-position loss)."""
    run_dir = Path(run_dir)
    config, measured, verdict = (layout.read(run_dir, name) for name in (layout.CONFIG, layout.MEASUREMENTS,
                                                                          layout.VERDICT))
    title = f"Mistake {spec.number} ({spec.name}), {evidence(verdict)}"
    chosen = verdict.get("learning_rates", {}).get("chosen", {})  # on a grid: the rate each variant is compared at
    metrics = {v: at_chosen_rate(read_jsonl(layout.metrics_file(run_dir / v)), chosen.get(v)) for v in measured}
    variants, own = list(measured), separate_data(spec)
    return {
        "card": card(verdict, metrics, measured, config, title, own),
        "claims": claims_forest([(spec, verdict, config)], title),
        "loss": loss_curves(metrics, measured, config, title, own),
        "symptom": paired(verdict, variants, config, title),
        "loss_by_position": loss_by_position(measured, config, title) if symptom_curve(spec, measured) else None,
        "grad_norms": grad_heatmaps(metrics, title),
        "lr_sensitivity": lr_sensitivity(layout.read(run_dir, layout.LEARNING_RATES), config, title,
                                         {v: own_unit(spec, config, v) for v in variants} if own else None)
        if chosen else None,
    }


def write_figures(spec, run_dir) -> list[Path]:
    """Every figure of one run as PNG and SVG under <run_dir>/figures/; an older copy of a figure the run no longer
    has (an empty claims plot, say) is removed."""
    paths = []
    for name, fig in draw_figures(spec, run_dir).items():
        if fig is None:
            for ext in style.FORMATS:
                (layout.figures_dir(run_dir) / f"{name}.{ext}").unlink(missing_ok=True)
        else:
            paths += save(fig, run_dir, name)
    return paths
