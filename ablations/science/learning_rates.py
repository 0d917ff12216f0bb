"""Each variant at its own best learning rate. A variant trains every seed at every learning rate of the grid its
mistake declares; the rate it is compared at is chosen on the selection split, which no claim is measured on, by a
rule fixed here: the lowest mean over seeds of the final selection loss, a diverged member counting as +inf. The
whole curve is kept (final loss against learning rate for every variant: the sensitivity plot of Wortsman et al.
2023), and a choice at either end of the grid is flagged: the best may lie outside it."""
from __future__ import annotations

import math

import numpy as np

RULE = "lowest mean over seeds of the final selection-split loss (a diverged seed counts as +inf)"


def final_values(rows: list[dict], key: str) -> dict:
    """{member key (seed, peak_lr): the last value of `key` in its rows}."""
    out = {}
    for row in rows:
        if key in row:
            out[(row["seed"], row["peak_lr"])] = row[key]
    return out


def choose(rows: list[dict], grid, seeds) -> dict:
    """One variant's choice from its log (rows of every member, in step order): the chosen rate and, per rate, the
    final selection and validation losses of each seed."""
    selection, validation = final_values(rows, "selection_loss"), final_values(rows, "val_loss")
    diverged = final_values(rows, "diverged_at")
    by_lr = []
    for lr in grid:
        losses = [selection.get((seed, lr), math.nan) for seed in seeds]
        failed = [diverged.get((seed, lr), -1) >= 0 or not math.isfinite(loss) for seed, loss in zip(seeds, losses)]
        score = math.inf if any(failed) else float(np.mean(losses))
        by_lr.append({"lr": lr, "selection_loss": losses, "score": score,
                      "val_loss": [validation.get((seed, lr), math.nan) for seed in seeds],
                      "diverged": [diverged.get((seed, lr), -1) for seed in seeds]})
    best = min(range(len(grid)), key=lambda i: (by_lr[i]["score"], i))
    return {"chosen": grid[best], "at_edge": len(grid) > 1 and best in (0, len(grid) - 1),
            "all_diverged": all(math.isinf(entry["score"]) for entry in by_lr), "by_lr": by_lr}


def summary(lr_choice: dict) -> dict:
    """What a verdict keeps of the choice: the rule, the grid, each variant's rate, the variants chosen at an end of
    the grid and those whose every rate diverged."""
    variants = lr_choice["variants"]
    return {"rule": lr_choice["rule"], "grid": lr_choice["grid"],
            "chosen": {name: choice["chosen"] for name, choice in variants.items()},
            "at_edge": [name for name, choice in variants.items() if choice["at_edge"]],
            "all_diverged": [name for name, choice in variants.items() if choice["all_diverged"]]}


def describe(kept: dict) -> str:
    """One line from a verdict's `learning_rates` (`summary`): the rate each variant is compared at, of which grid,
    with a choice at an end of the grid flagged."""
    grid = ", ".join(f"{lr:g}" for lr in kept["grid"])
    flag = lambda name: (" (every rate diverged)" if name in kept.get("all_diverged", ()) else  # noqa: E731
                         " (an end of the grid)" if name in kept["at_edge"] else "")
    chosen = ", ".join(f"{name} {lr:g}{flag(name)}" for name, lr in kept["chosen"].items())
    return f"learning rates, each variant's best of [{grid}] on the selection split: {chosen}"
