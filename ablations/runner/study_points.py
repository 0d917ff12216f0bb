"""The points of a study: its grid (the catalogue's axes, or the user's replacements), every point's config composed
and checked before any point runs, a point that trains exactly what an earlier one trained reusing it, each point
run as a paired run in `<results_dir>/studies/NAME/<mistake>/<hash>/`, and the study's summary (`study.json`)
rewritten after every point."""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path


from ablations import paths
from ablations.errors import UsageError
from ablations.runner import layout
from ablations.runner.config import (check_choices, check_overrides, check_value, composed, defaults, dotted_keys,
                                     groups, parsed, resolve, validate)
from ablations.runner.execution import longer_budget_run, quiet_library_noise, run_guarded
from ablations.runner.identity import run_directory, same_training
from ablations.runner.pair import check_data
from ablations.runner.tracking import usable_mode


def listing(studies) -> str:
    """One entry per study (a catalogue Study): its mistake, its grid and its question."""
    lines = []
    for study in studies:
        grid = " × ".join(f"{axis.key} ({', '.join(map(str, axis.values))})" for axis in study.axes)
        extra = f"; with {' '.join(study.overrides)}" if study.overrides else ""
        note = f"\n    exploratory: {study.exploratory}" if study.exploratory else ""
        lines.append(f"{study.name}: mistake={study.mistake}, {grid}{extra}\n    {study.question}{note}")
    return "\n".join(lines)


def check_axes(study, axes: tuple) -> None:
    known = dotted_keys(defaults())
    if not 1 <= len(axes) <= 2:
        raise UsageError(f"study {study.name} has {len(axes)} axes; a study has one or two")
    for axis in axes:
        if axis.key not in known and axis.key not in groups():
            raise UsageError(f"study {study.name}: unknown axis key {axis.key!r}; valid keys: "
                             f"{', '.join([*groups(), *known])}")
        if not axis.values:
            raise UsageError(f"study {study.name}: axis {axis.key} has an empty value list; give at least one value")
        for value in axis.values:
            check_value(axis.key, value, known[axis.key]) if axis.key in known else check_choices(
                axis.key, value, groups()[axis.key])


def split_arguments(study, argv: list[str]) -> tuple[tuple, list[str]]:
    """The study's axes with any `AXIS=[...]` replacement applied, and the other key=value overrides."""
    axes, rest = {axis.key: axis for axis in study.axes}, []
    for text, override in zip(argv, parsed(argv)):
        key = override.key_or_group
        if key in ("mistake", "run_name"):
            raise UsageError(f"{key} cannot be set for a study: study {study.name} is about mistake={study.mistake}, "
                             "and each point's run directory is named by its config")
        if key in axes:
            values = override.value()
            if not isinstance(values, list):
                raise UsageError(f"{key} is an axis of study {study.name}: give its values as a list, "
                                 f"e.g. {key}=[{', '.join(map(str, axes[key].values))}]")
            axes[key] = dataclasses.replace(axes[key], values=tuple(values))
        else:
            rest.append(text)
    check_overrides(rest)
    return tuple(axes.values()), rest


def composed_points(study, axes: tuple, extra: list[str]) -> list[tuple[dict, dict]]:
    """(axis values, resolved config) per point, each composed by Hydra: the mistake's catalogue settings, then the
    study's overrides, then the axis values, then what the user typed (later wins). Nothing is checked yet."""
    points = []
    for values in itertools.product(*(axis.values for axis in axes)):
        at = dict(zip((axis.key for axis in axes), values))
        resolved = resolve(composed([f"mistake={study.mistake}", *study.overrides,
                                     *(f"{k}={v}" for k, v in at.items()), *extra]))
        if study.broken:
            resolved["variants"] = {"broken": study.broken(at)}
        given = paths.writable_directory(resolved["results_dir"], "results_dir")  # what the user typed, checked
        resolved["results_dir"] = str(given / "studies" / study.name)
        points.append((at, resolved))
    return points


def point_summary(at: dict, resolved: dict, ok: bool) -> dict:
    run = run_directory(resolved)
    point = {"at": at, "run": str(run.relative_to(Path(resolved["results_dir"]))), "config": resolved}
    if not layout.is_complete(run):
        return {**point, "error": "the run failed (see its output)" if not ok else "the run did not finish"}
    verdict = layout.read(run, layout.VERDICT)
    timing = layout.read(run, layout.TIMING) if (run / layout.TIMING).exists() else {}
    keep = ("says", "source", "reference", "metric", "kind", "outcome", "rule", "why", "n", "mean", "ci", "p", "margin",
            "unit", "seeds_needed", "firmness", "correct", "broken")
    point = {**point, "verdict": verdict["verdict"], "diverged": verdict["diverged"], "seconds": timing.get("seconds"),
             # the catalogue's claims, the same at every point (a share claim appears only where seeds split)
             "claims": [{k: c[k] for k in keep if k in c} for c in verdict["claims"] if not c.get("derived")],
             **{"converged_share": {k: c[k] for k in keep if k in c}
                for c in verdict["claims"] if c.get("derived")}}
    longer = longer_budget_run(resolved)
    if longer is not None and layout.is_complete(run_directory(longer)):
        longer_verdict = layout.read(run_directory(longer), layout.VERDICT)
        point["longer_budget"] = {"run": str(run_directory(longer).relative_to(Path(resolved["results_dir"]))),
                                  "verdict": longer_verdict["verdict"], "budgets": longer_verdict["budgets"]}
    return point


def label(at: dict) -> str:
    return " ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in at.items())


def finding(points: list[dict]) -> str:
    """One line: each claim's outcome at every point, in axis order."""
    done = [p for p in points if "claims" in p]
    if not done:
        return "no point has finished"
    return " | ".join(f"{claim['metric']} (vs {claim['reference']}): "
                      + ", ".join(f"{label(p['at'])}: {p['claims'][i]['outcome']}" for p in done)
                      for i, claim in enumerate(done[0]["claims"]))


def write_summary(spec, study, axes, points: list[dict], directory: Path, write_study_figure) -> Path:
    summary = {"study": study.name, "mistake": study.mistake, "question": study.question,
               "axes": [{"key": a.key, "values": list(a.values)} for a in axes], "overrides": list(study.overrides),
               "finding": finding(points), "seconds": sum(p.get("seconds") or 0 for p in points), "points": points}
    path = directory / "study.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(summary, indent=1))
    os.replace(partial, path)  # a kill mid-write leaves the previous study.json whole
    if any("claims" in p for p in points):
        write_study_figure(spec, directory)
    return path


def prepare(spec, study, argv: list[str]) -> tuple[tuple, list[tuple[dict, dict]]]:
    """The axes and every point's resolved config, all checked before anything is written or trained."""
    axes, extra = split_arguments(study, argv)
    check_axes(study, axes)
    points = composed_points(study, axes, extra)
    if points[0][1]["distributed"]["enabled"]:
        raise UsageError("distributed.enabled=true: a study runs in one process; run its points across hosts "
                         "with python -m ablations.run (Hydra's -m sweeps a grid)")
    for _, resolved in points:  # every point's config and data
        validate(spec, resolved)
        check_data(spec, resolved)
    return axes, points


def reuse_training(earlier: list[tuple[dict, dict]], resolved: dict) -> None:
    """A point that trains exactly what an earlier point trained (they differ only in what is measured, e.g.
    probe.length_factor) starts from that point's trained pair and only measures: bit-identical to training it
    again (resume is), at the cost of its probes alone. A copy that cannot be made leaves the point to train."""
    for _, before in earlier:
        if not (same_training(before, resolved) and layout.is_complete(run_directory(before))):
            continue
        try:
            if layout.copy_training(run_directory(before), run_directory(resolved), resolved["steps"]):
                print(f"   the same training as {run_directory(before)}: reused, only measuring")
                return
        except OSError as error:
            print(f"   could not reuse {run_directory(before)} ({error}); training this point")
            return


def run_study(spec, study, axes: tuple, configs: list[tuple[dict, dict]], write_figures,
              write_study_figure) -> Path | None:
    """Every point in turn (a finished point is reused), then its summary and figure; None for a dry run.
    write_figures (catalogue entry, run directory) and write_study_figure (catalogue entry, study directory) draw the
    figures."""
    if configs[0][1]["dry_run"]:
        for at, resolved in configs:
            print(f"dry run: {study.name} ({label(at)}) seeds={resolved['seeds']} steps={resolved['steps']} -> "
                  f"{run_directory(resolved)}")
        return None
    directory = Path(configs[0][1]["results_dir"])
    directory.mkdir(parents=True, exist_ok=True)
    if not configs[0][1]["debug"]:
        quiet_library_noise()
    mode = usable_mode(configs[0][1]["wandb"]["mode"])
    points = []
    for i, (at, resolved) in enumerate(configs):
        print(f"== study {study.name}: point {i + 1}/{len(configs)} ({label(at)})")
        resolved["wandb"]["usable_mode"] = mode
        reuse_training(configs[:i], resolved)
        points.append(point_summary(at, resolved, run_guarded(spec, resolved, True, write_figures)))
        write_summary(spec, study, axes, points, directory, write_study_figure)
    print(f"study {study.name}: {finding(points)}\n   {directory / 'study.json'}")
    return directory / "study.json"
