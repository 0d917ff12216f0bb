"""An audit's records as the check command prints them (one row per mistake) and writes them (stable JSON)."""
from __future__ import annotations

import json
import math

DIGITS = 4  # significant digits in the JSON: enough to compare, few enough that two commits diff cleanly


def number(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def table(results: list[dict], rules: dict[str, str], key: str = "mistake", prefix: str = "") -> str:
    """One row per mistake: status (and a thin margin), value, rule (rules: mistake -> its rule), margin = value /
    threshold, why. key: what each record names ("check" for the reported bugs' group, numbered with `prefix`)."""
    rows = [("#", key, "status", "value", "threshold", "margin", "why")]
    for i, r in enumerate(results, 1):
        status = r["status"] + (" (thin margin)" if r["thin_margin"] else "")
        margin = "—" if r["margin"] is None else f"x{number(r['margin'])}"
        why = r["why"].partition("; detected when ")[0]
        rows.append((f"{prefix}{i}", r[key], status, number(r["value"]), rules[r[key]], margin, why))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def summary(results: list[dict], key: str = "mistake") -> str:
    found = [r[key] for r in results if r["status"] == "detected"]
    counts = {s: sum(r["status"] == s for r in results) for s in ("clear", "not applicable", "error")}
    uncalibrated = sum(r["status"] == "not calibrated" for r in results)
    counts.update({"not calibrated": uncalibrated} if uncalibrated else {})  # only once a mistake has no threshold
    return (f"{len(found)} of {len(results)} detected{': ' + ', '.join(found) if found else ''}; "
            + ", ".join(f"{n} {s}" for s, n in counts.items()))


def rounded(value):
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else None
    return value


def as_json(path: str, overrides: dict, results: list[dict], reported: list[dict] | None = None) -> str:
    """The audit as stable JSON: {factory, overrides, results (the 11), reported_bugs (the reported bugs' checks,
    when given)}."""
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(overrides.items())}
    body = {"factory": path, "overrides": overrides,
            "results": [{k: rounded(v) for k, v in r.items()} for r in results]}
    if reported is not None:
        body["reported_bugs"] = [{k: rounded(v) for k, v in r.items()} for r in reported]
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
