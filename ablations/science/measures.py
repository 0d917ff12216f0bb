"""The standard measurements of one trained seed, read from its training log: the final validation
loss, learning-curve measures (a claim declares which one it uses), and the gradient measures (the depth ratio
at the first logged step, and its median over every logged step)."""
from __future__ import annotations

import numpy as np

CURVE_POINTS = (0.25, 0.5, 0.75)  # val_loss_at_25 ... : the first evaluation at or after this share of training
FLOOR_TOLERANCE = 0.05  # nats/token: "reached the floor" means within this of the exact entropy floor
STILL_IMPROVING = 0.01  # nats/token: a fall over the last quarter of training larger than this is not converged


def learning_curve(evals: list[dict], total_steps: int, floor: float | None) -> dict:
    """Validation-curve measures of one seed. evals: its rows carrying val_loss, in step order."""
    steps = np.array([r["step"] for r in evals], float)
    losses = np.array([r["val_loss"] for r in evals], float)
    out = {"val_loss": float(losses[-1])}
    for share in CURVE_POINTS:
        out[f"val_loss_at_{round(share * 100)}"] = float(losses[np.argmax(steps >= share * total_steps)])
    span = steps[-1] - steps[0]
    out["val_loss_auc"] = float(np.trapezoid(losses, steps) / span) if span > 0 else float(losses[-1])
    out["still_improving"] = float(out["val_loss_at_75"] - out["val_loss"] > STILL_IMPROVING)
    if floor is not None:
        reached = np.nonzero(losses <= floor + FLOOR_TOLERANCE)[0]
        out["steps_to_floor"] = float(steps[reached[0]]) if reached.size else None  # None: never within reach
    return out


def converged(measured: dict) -> bool:
    """At the floor (when it is known), else no longer improving."""
    if measured.get("entropy_floor") is not None:
        return measured["val_loss"] <= measured["entropy_floor"] + FLOOR_TOLERANCE
    return not measured.get("still_improving", 0.0)


def median_depth_ratio(rows: list[dict], blocks: list[str]) -> float:
    """Median over the logged rows of log10(first block's gradient norm / last block's). A row where either norm
    is zero, non-finite or missing is left out; none left (all-zero gradients, mistake 9) gives NaN."""
    first, last = (np.array([r.get(k, np.nan) for r in rows], np.float64) for k in (blocks[0], blocks[-1]))
    kept = np.isfinite(first) & np.isfinite(last) & (first > 0) & (last > 0)
    return float(np.median(np.log10(first[kept] / last[kept]))) if kept.any() else float("nan")


def standard(rows: list[dict], total_steps: int, floor: float | None) -> dict:
    """Every measurement the training log of one seed gives (rows: that seed's rows, in step order)."""
    first, evals = rows[0], [r for r in rows if "val_loss" in r]
    blocks = [k for k in first if k.startswith("grad_norm/block_")]
    with np.errstate(divide="ignore", invalid="ignore"):  # all-zero gradients (mistake 9) give NaN, not a crash
        first_ratio = np.log10(np.float64(first[blocks[0]]) / np.float64(first[blocks[-1]]))
    return {**learning_curve(evals, total_steps, floor), "train_ce": rows[-1]["train_ce"],
            "diverged_at": rows[-1]["diverged_at"], "grad_depth_ratio": float(first_ratio),
            "grad_depth_ratio_median": median_depth_ratio(rows, blocks),
            "zero_gradient": float(all(r["grad_norm"] == 0.0 for r in rows)),
            **({"entropy_floor": floor} if floor is not None else {})}
