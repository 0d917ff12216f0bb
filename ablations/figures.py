"""Figures from saved metrics (never retrains): `python -m ablations.figures <run_dir> [<run_dir> ...]`.

Per run: paired loss curves with a seed band, gradient norm by layer over training, and the
mistake's own symptom plot; each as PNG and SVG under <run_dir>/figures/."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ablations.registry import lookup  # noqa: E402
from ablations.tracking import read_jsonl  # noqa: E402

COLORS = {"correct": "tab:blue", "broken": "tab:red"}
WIDTH = {"correct": 2.5, "broken": 1.2}  # the correct curve stays visible where the two coincide
VARIANTS = tuple(COLORS)


def by_seed(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> (steps [N], values [seeds, N]) for the rows that carry `key`."""
    rows = [r for r in rows if key in r]
    steps = sorted({r["step"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    table = {(r["seed"], r["step"]): r[key] for r in rows}
    return np.array(steps), np.array([[table.get((s, t), np.nan) for t in steps] for s in seeds], float)


def save(fig, run_dir: Path, name: str) -> list[Path]:
    out = run_dir / "figures"
    out.mkdir(exist_ok=True)
    paths = [out / f"{name}.{ext}" for ext in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def loss_curves(run_dir: Path, metrics: dict, measured: dict, title: str):
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for variant in VARIANTS:
        for key, style in (("train_ce", "-"), ("val_loss", "o--")):
            steps, values = by_seed(metrics[variant], key)
            if not len(steps):
                continue
            mean = np.nanmean(values, axis=0)
            ax.plot(steps, mean, style, color=COLORS[variant], ms=3, lw=WIDTH[variant],
                    label=f"{variant} ({key.replace('_', ' ')})")
            ax.fill_between(steps, np.nanmin(values, 0), np.nanmax(values, 0), color=COLORS[variant], alpha=0.2)
    for variant in VARIANTS:
        for step in sorted({m["diverged_at"] for m in measured[variant] if m["diverged_at"] >= 0}):
            ax.axvline(step, color=COLORS[variant], ls="--", lw=1, label=f"{variant}: a seed diverged at step {step}")
    floor = measured["correct"][0].get("entropy_floor")
    if floor is not None:
        ax.axhline(floor, color="k", lw=1, ls=":", label=f"entropy floor ({floor:.3f})")
    ax.set(xlabel="training step", ylabel="cross-entropy (nats/token)", title=f"{title}: loss, mean and seed range")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def grad_heatmaps(run_dir: Path, metrics: dict, title: str):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    grids = {}
    for variant in VARIANTS:
        layers = [k for k in metrics[variant][0] if k.startswith("grad_norm/")]
        steps = by_seed(metrics[variant], layers[0])[0]
        grids[variant] = (layers, steps, np.array([np.nanmean(by_seed(metrics[variant], k)[1], 0) for k in layers]))
    finite = np.concatenate([g[2][np.isfinite(g[2]) & (g[2] > 0)] for g in grids.values()])
    low, high = (np.log10(finite.min()), np.log10(finite.max())) if finite.size else (-1, 1)
    for ax, variant in zip(axes, VARIANTS):
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
    if metric == "loss_by_position":
        for variant in VARIANTS:
            curves = np.array([m[metric] for m in measured[variant]])
            ax.plot(np.arange(1, curves.shape[1] + 1), curves.mean(0), color=COLORS[variant], label=variant)
            ax.fill_between(np.arange(1, curves.shape[1] + 1), curves.min(0), curves.max(0), color=COLORS[variant],
                            alpha=0.2)
        ax.axvline(train_len, color="k", ls=":", label=f"training length ({train_len})")
        ax.set(xlabel="position in the window", ylabel="cross-entropy (nats/token)")
    else:
        values = {v: np.array([m[metric] for m in measured[v]], float) for v in VARIANTS}
        positive = np.concatenate(list(values.values()))
        log = np.all(positive >= 0) and np.nanmax(positive) > 100 * max(np.nanmin(positive[positive > 0]), 1e-30) \
            if np.any(positive > 0) else False
        for i, variant in enumerate(VARIANTS):
            shown = np.maximum(values[variant], 1e-12) if log else values[variant]
            ax.scatter(np.full(shown.size, i), shown, color=COLORS[variant], zorder=3, label=f"{variant} (seeds)")
            ax.hlines(np.nanmean(shown), i - 0.25, i + 0.25, color=COLORS[variant])
        ax.set_xticks([0, 1], VARIANTS)
        ax.set_xlim(-0.6, 1.6)
        ax.set(ylabel=metric.replace("_", " ") + (" (log; 0 drawn at 1e-12)" if log else ""))
        if log:
            ax.set_yscale("log")
    ax.set_title(f"{title}: symptom")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def write_figures(run_dir: Path) -> list[Path]:
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    measured = json.loads((run_dir / "measurements.json").read_text())
    verdict = json.loads((run_dir / "verdict.json").read_text())
    spec = lookup(config["mistake"])
    metrics = {v: read_jsonl(run_dir / v / "metrics.jsonl") for v in VARIANTS}
    title = f"Mistake {spec.number} ({spec.name}) — {verdict['verdict']}"
    return (save(loss_curves(run_dir, metrics, measured, title), run_dir, "loss")
            + save(grad_heatmaps(run_dir, metrics, title), run_dir, "grad_norms")
            + save(symptom(run_dir, measured, spec.symptom_plot, title, config["train"]["seq_len"]), run_dir,
                   "symptom"))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m ablations.figures <run_dir> [<run_dir> ...]")
    for directory in sys.argv[1:]:
        for path in write_figures(Path(directory)):
            print(path)
