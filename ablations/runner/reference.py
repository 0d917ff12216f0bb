"""The comparison of a finished run with the committed reference results of the same experiment (`results/`), in
one printed line and in the run's reference.json."""
from __future__ import annotations

from pathlib import Path

from ablations.runner import layout
from ablations.runner.config import dotted_keys
from ablations.runner.identity import identity

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "results"  # the committed reference results (results/README.md)


def reference_run(run_dir: Path, resolved: dict) -> tuple[Path, list[str]] | None:
    """The committed run of the same experiment, and the config keys it predates: the same directory name under
    REFERENCE_DIR, else a run of the same mistake whose config agrees on every key it has (a key added to the
    lab after it was recorded is listed, unless ADDED_LATER gives the value it had then: it is compared at that
    value). None when there is none, or when this run is that reference."""
    now = dotted_keys(identity(resolved))
    for reference in layout.all_finished_runs(REFERENCE_DIR, resolved["mistake"]):
        if reference.resolve() == run_dir.resolve():
            return None
        before = dotted_keys(identity(layout.read(reference, layout.CONFIG)))
        if all(now.get(key, object()) == value for key, value in before.items()):
            return reference, sorted(now.keys() - before.keys())
    return None


def compare_measurements(mine: dict, reference: dict) -> dict:
    """Every number (or None: never reached the floor) of measurements.json ({variant: [per-seed {name: value}]})
    against the reference's; a measurement the lab added after the reference was made is counted apart (`newer`),
    not as a difference."""
    numbers = [(variant, i, name, value) for variant, seeds in mine.items() if variant in reference
               for i, values in enumerate(seeds) if i < len(reference[variant])
               for name, value in values.items() if value is None or isinstance(value, (int, float))]
    pairs = [(f"{variant} seed #{i} {name}", value, reference[variant][i][name])
             for variant, i, name, value in numbers if name in reference[variant][i]]
    newer = sorted({name for variant, i, name, _ in numbers if name not in reference[variant][i]})
    differing = [(where, a, b) for where, a, b in pairs if a != b]
    gaps = [(abs(a - b), where, a, b) for where, a, b in differing
            if isinstance(a, (int, float)) and isinstance(b, (int, float))]
    return {"compared": len(pairs), "differing": len(differing), "largest": max(gaps, default=None), "newer": newer}


def print_reference_comparison(run_dir: Path, resolved: dict) -> None:
    """One line: this run's measurements against the committed reference (written once to reference.json)."""
    found = reference_run(run_dir, resolved)
    if found is None:
        return
    reference, newer_keys = found
    result = compare_measurements(*(layout.read(d, layout.MEASUREMENTS) for d in (run_dir, reference)))
    verdicts = [layout.read(d, layout.VERDICT)["verdict"] for d in (run_dir, reference)]
    where = reference.relative_to(REFERENCE_DIR.parent)
    if result["differing"] == 0:
        line = f"identical to the reference {where} ({result['compared']} measurements, bit for bit)"
    else:
        gap = result["largest"]
        largest = f"; largest |difference| {gap[0]:.3g} ({gap[1]}: {gap[2]:.6g} vs {gap[3]:.6g})" if gap else ""
        line = (f"differs from the reference {where}: {result['differing']} of {result['compared']} measurements"
                f"{largest}; verdict {'the same' if verdicts[0] == verdicts[1] else 'differs: ' + verdicts[1]}")
    if result["differing"] == 0 and verdicts[0] != verdicts[1]:
        line += f"; verdict differs: {verdicts[1]}"
    if newer_keys:
        line += f" (the reference predates {', '.join(newer_keys)})"
    if result["newer"]:
        line += f" (measured here, not in the reference: {', '.join(result['newer'])})"
    print(f"   reference: {line}")
    if not (run_dir / layout.REFERENCE).exists():
        layout.write(run_dir, layout.REFERENCE, {"reference": str(where), "predates": newer_keys, **result,
                                                 "same_verdict": verdicts[0] == verdicts[1], "line": line})
