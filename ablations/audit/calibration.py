"""The measurements behind the thresholds of `python -m ablations.check` (docs/auditing-a-model.md, "Thresholds"):

every detector's value on every architecture of the calibration set, correct and with each mistake it can carry
planted alone, at each of its seeds × d_model 16 and 32 × float32 and bfloat16. The set is the lab's GPT (correct
with RoPE and with sinusoidal positions, every mistake, every model audited on all detectors) and the zoo, models
written apart from it in other conventions (ablations/audit/zoo: a pure-JAX GPT, a parallel Flax NNX GPT, Hugging Face's
Flax causal LMs where the `hf` extra is installed): each correct model audited on all detectors, each mutant on its
own detector.

Two tables: per detector, the range on correct models, on its own broken models and on every other model, the
threshold and the margin (the smaller factor between the threshold and the nearest value on either side), then
every cross-detection and error; and per detector and architecture, the worst correct and mildest broken value
and leave-one-architecture-out: a threshold fitted (fit_threshold) without architecture X must classify X's correct
and broken models."""
from __future__ import annotations

import dataclasses
import gc
import inspect
import json
import math

import jax

from tqdm import tqdm

from ablations.audit.adapters import lab_gpt
from ablations.audit.detectors import Detector, audit, rule_of
from ablations.audit.interface import STATUSES
from ablations.audit.numerics import value_and_gradient_of

SIZES, DTYPES = (16, 32), ("float32", "bfloat16")
LAB_SEEDS, ZOO_SEEDS = (0, 1, 2), (0, 1)
DECIDED = ("clear", "detected")
RELEASE_EVERY = 64  # models audited between two release_compiled


@dataclasses.dataclass(frozen=True)
class Member:
    """One architecture of the calibration set. models: label -> the factory's overrides (labels starting
    "correct" are correct models; any other label is the mistake planted); every_detector: mutants are audited on
    all detectors (else on their own); built_in: mistakes the library builds into the correct model (its reading
    counts as broken)."""
    name: str
    factory: object
    models: dict
    seeds: tuple
    every_detector: bool = False
    built_in: frozenset = frozenset()


def calibration_models(mistakes) -> dict[str, dict]:
    """The lab's GPT correct (RoPE and sinusoidal positions) and with each of `mistakes` switched on alone: label ->
    the factory's overrides."""
    return {"correct": {}, "correct sinusoidal": {"position": "sinusoidal"},
            **{name: {"mistakes": (name,)} for name in mistakes}}


def zoo_members(zoo: dict) -> list[Member]:
    """The zoo's architectures, from {name: (factory, the mistakes it can carry, those its library builds in)}."""
    return [Member(name, factory, {"correct": {}, **{m: {"mistakes": (m,)} for m in plantable}}, ZOO_SEEDS,
                   built_in=frozenset(built_in))
            for name, (factory, plantable, built_in) in zoo.items()]


def members(mistakes, zoo: dict) -> list[Member]:
    """The calibration set: the lab's GPT (every mistake of `mistakes`) and the zoo's architectures (zoo_members)."""
    return [Member("lab_gpt", lab_gpt, calibration_models(mistakes), LAB_SEEDS, every_detector=True),
            *zoo_members(zoo)]


def only_in(factory, dtype: str):
    """The factory with `dtype` fixed and hidden from the audit: a model offered in that precision alone, as by a
    factory without a dtype argument, which the audit reads in its own precision (Context.in_float32 has no
    float32 model to turn to)."""
    def made(**overrides):
        return factory(**overrides, dtype=dtype)
    signature = inspect.signature(factory)
    made.__signature__ = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "dtype"])
    made.__name__ = f"{getattr(factory, '__name__', 'factory')}_{dtype}"
    return made


def measure(detectors: dict[str, Detector | None], out, zoo: dict) -> list[dict]:
    """One row per (architecture, model, d_model, dtype, seed, detector audited): the audit's record with the
    model's coordinates; each also written as a JSON line to `out` when one is given. Float32 rows audit the
    factory itself; the other precisions the factory fixed in that precision (only_in), as a user whose factory
    offers no float32 model is audited. zoo: as zoo_members takes it."""
    grid = [(member, label, d, dtype, seed) for member in members(detectors, zoo)
            for label in member.models for d in SIZES for dtype in DTYPES for seed in member.seeds]
    rows = []
    for number, (member, label, d, dtype, seed) in enumerate(tqdm(grid, desc="calibration", unit="model"), 1):
        factory, overrides = member.factory, {"d_model": d, "seed": seed, **member.models[label]}
        if dtype == "float32":
            overrides["dtype"] = dtype
        else:
            factory = only_in(factory, dtype)
        own = None if member.every_detector or label.startswith("correct") else [label]
        for record in audit(factory, detectors, overrides, only=own, name=member.name):
            row = {"architecture": member.name, "model": label, "d_model": d, "dtype": dtype, "seed": seed,
                   "built_in": record["mistake"] in member.built_in and label.startswith("correct"), **record}
            rows.append(row)
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
        if number % RELEASE_EVERY == 0:
            release_compiled()
    return rows


def release_compiled() -> None:
    """Drop every compiled function of the models audited so far: each holds memory maps of machine code, and the
    hundreds of models of a calibration would exhaust the process's maps (LLVM: "Cannot allocate memory" after
    ~350 models). Every RELEASE_EVERY models: models of one shape share compiled functions until then."""
    value_and_gradient_of.cache_clear()
    jax.clear_caches()
    gc.collect()


def correct_and_broken(rows: list[dict], mistake: str) -> tuple[list[dict], list[dict]]:
    """A detector's readings on correct models and on its own broken ones (a correct model whose library builds
    the mistake in counts as broken)."""
    mine = [r for r in rows if r["mistake"] == mistake]
    correct = [r for r in mine if r["model"].startswith("correct") and not r["built_in"]]
    broken = [r for r in mine if r["model"] == mistake or (r["model"].startswith("correct") and r["built_in"])]
    return correct, broken


def decided(group: list[dict]) -> list[float]:
    return [r["value"] for r in group if r["value"] is not None and r["status"] in DECIDED]


def span(values) -> str:
    values = [v for v in values if v is not None]
    return f"{min(values):.3g} .. {max(values):.3g}" if values else "—"


def statuses(rows: list[dict]) -> str:
    return ", ".join(f"{s} {sum(r['status'] == s for r in rows)}" for s in STATUSES
                     if any(r["status"] == s for r in rows))


def nearest(values: list[float], clean: bool, fires_above: bool) -> float | None:
    """The value nearest the threshold: the highest correct one when the detector fires above, else the lowest;
    the other way round for broken ones."""
    if not values:
        return None
    return max(values) if clean == fires_above else min(values)


def factor(value: float, threshold: float) -> float:
    """How many times the threshold a value sits from it (a value of the other sign, or zero: infinitely far)."""
    return math.inf if value * threshold <= 0 else max(value / threshold, threshold / value)


def margin(detector: Detector | None, correct: list[dict], broken: list[dict]) -> str:
    """The smaller factor between the threshold and the nearest decided value on each side."""
    if detector is None or detector.threshold is None:
        return "—"
    factors = [factor(near, detector.threshold) for group, clean in ((correct, True), (broken, False))
               if (near := nearest(decided(group), clean, detector.fires_above)) is not None]
    return f"x{min(factors):.3g}" if factors else "—"


def fit_threshold(correct: list[float], broken: list[float], fires_above: bool) -> float | None:
    """A threshold between the worst correct value and the mildest broken one, their geometric mean; None when
    they do not separate, a side is empty, or either is zero or negative (an exact rule: the correct value is zero
    by construction, as a leak beyond rounding, or the broken one, as an argmax's gradient; its threshold is a
    rounding allowance fixed in the catalogue, not fitted)."""
    if not correct or not broken:
        return None
    worst, mildest = nearest(correct, True, fires_above), nearest(broken, False, fires_above)
    if worst <= 0 or mildest <= 0 or ((worst >= mildest) if fires_above else (worst <= mildest)):
        return None
    return math.sqrt(worst * mildest)


def table(rows: list[dict], detectors: dict[str, Detector | None]) -> str:
    """The calibration's markdown table, one row per detector, then cross-detections and errors."""
    lines = ["| # | detector | correct (min .. max) | broken (min .. max) | threshold | margin "
             "| statuses: correct / broken | other mistakes (min .. max) |", "|---|---|---|---|---|---|---|---|"]
    for number, (mistake, detector) in enumerate(detectors.items(), 1):
        correct, broken = correct_and_broken(rows, mistake)
        others = [r for r in rows if r["mistake"] == mistake and r not in correct and r not in broken]
        lines.append(f"| {number} | {mistake} | {span(r['value'] for r in correct)} "
                     f"| {span(r['value'] for r in broken)} | {rule_of(detector)} "
                     f"| {margin(detector, correct, broken)} "
                     f"| {statuses(correct)} / {statuses(broken)} | {span(r['value'] for r in others)} |")
    cross = sorted({(r["architecture"], r["model"], r["mistake"]) for r in rows
                    if r["status"] == "detected" and r["model"] != r["mistake"] and not r["built_in"]})
    lines.append("\ncross-detections (architecture: model -> detector that fired): "
                 + ("; ".join(f"{a}: {m} -> {p}" for a, m, p in cross) or "none"))
    errors = [r for r in rows if r["status"] == "error"]
    lines.append("errors: " + ("; ".join(f"{r['architecture']} {r['model']} d{r['d_model']} "
                                         f"{r['dtype']} seed {r['seed']} {r['mistake']}: {r['why']}"
                                         for r in errors) or "none"))
    return "\n".join(lines)


def architectures(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["architecture"] for r in rows))


def of(rows: list[dict], architecture: str, keep: bool = True) -> list[dict]:
    return [r for r in rows if (r["architecture"] == architecture) == keep]


def leave_one_out(rows: list[dict], detector: Detector, mistake: str, architecture: str) -> str:
    """Fit the threshold on every other architecture (fit_threshold; the catalogue's where its rule is exact, or
    where the others offer no side to fit), then classify this one's correct and broken models: 'holds', or the
    false alarms and misses; then how many of its broken models no detector reading decided (not applicable)."""
    correct, broken = (decided(group) for group in correct_and_broken(of(rows, architecture, keep=False), mistake))
    if not correct or not broken:
        threshold, how = detector.threshold, "nothing to fit without it"
    elif min(nearest(correct, True, detector.fires_above), nearest(broken, False, detector.fires_above)) <= 0:
        threshold, how = detector.threshold, "exact rule"
    else:
        threshold, how = fit_threshold(correct, broken, detector.fires_above), "fitted without it"
        if threshold is None:
            return (f"no threshold separates the others (worst correct "
                    f"{nearest(correct, True, detector.fires_above):.3g}, mildest broken "
                    f"{nearest(broken, False, detector.fires_above):.3g})")
    fires = dataclasses.replace(detector, threshold=threshold).fires
    mine_correct, mine_broken = correct_and_broken(of(rows, architecture), mistake)
    alarms = [v for v in decided(mine_correct) if fires(v)]
    misses = [v for v in decided(mine_broken) if not fires(v)]
    wrong = ([f"{len(alarms)} false alarm(s) ({span(alarms)})"] if alarms else []) + \
            ([f"{len(misses)} miss(es) ({span(misses)})"] if misses else [])
    undecided = [r["dtype"] for r in mine_broken if r["status"] not in DECIDED]
    note = (f"; {len(undecided)} broken not decided ({', '.join(sorted(set(undecided)))})" if undecided else "")
    return f"{'; '.join(wrong) or 'holds'} ({how}: {'>' if detector.fires_above else '<'} {threshold:.3g}){note}"


def architecture_table(rows: list[dict], detectors: dict[str, Detector | None]) -> str:
    """Per detector and architecture: worst correct, mildest broken, the margin to the shipped threshold, and the
    leave-one-architecture-out classification."""
    lines = ["| # | detector | architecture | correct: worst (n) | broken: mildest (n) | margin "
             "| left out: threshold fitted on the others |", "|---|---|---|---|---|---|---|"]
    def shown(value, group):
        return "—" if value is None else f"{value:.3g} ({len(decided(group))}/{len(group)})"

    for number, (mistake, detector) in enumerate(detectors.items(), 1):
        if detector is None or detector.threshold is None:
            continue
        for architecture in architectures(rows):
            correct, broken = correct_and_broken(of(rows, architecture), mistake)
            if not correct and not broken:
                continue
            worst = nearest(decided(correct), True, detector.fires_above)
            mildest = nearest(decided(broken), False, detector.fires_above)
            lines.append(f"| {number} | {mistake} | {architecture} | {shown(worst, correct)} "
                         f"| {shown(mildest, broken)} | {margin(detector, correct, broken)} "
                         f"| {leave_one_out(rows, detector, mistake, architecture)} |")
    return "\n".join(lines)


def report(rows: list[dict], detectors: dict[str, Detector | None]) -> str:
    """The calibration's two tables (the second with leave-one-architecture-out), as the docs show them."""
    names = ", ".join(architectures(rows))
    return (f"architectures: {names}\n\n{table(rows, detectors)}\n\n"
            f"{architecture_table(rows, detectors)}")
