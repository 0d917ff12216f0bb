"""The catalogue: one module per mistake (`mNN_<name>.py`, found by name), each declaring one `Mistake` with
everything the lab knows about it. The tables the commands use are collected here and nowhere else written:
the mistakes in the seed page's order, their studies, and the audit's detectors. docs/adding-a-mistake.md
tells a contributor how to add one. Apart from the 11, reported_bugs.py declares the bugs people report, a group
of checks of its own (REPORTED_BUGS, REPORTED_DETECTORS; `full_audit` runs both groups on one model)."""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import pkgutil
import re

from ablations.audit import detectors
from ablations.catalogue.protocols import PROTOCOLS
from ablations.catalogue.reported_bugs import REPORTED_BUGS, ReportedBug
from ablations.catalogue.schema import Axis, Claim, Mistake, Protocol, Study
from ablations.errors import UsageError
from model import names_of_all

MODULE_NAME = re.compile(r"^m\d{2}_\w+$")


def _collect() -> tuple[Mistake, ...]:
    """Every catalogue module's MISTAKE, in the order of its number; each must name a switch of model.Mistakes."""
    found = [importlib.import_module(f"{__name__}.{info.name}").MISTAKE
             for info in pkgutil.iter_modules(__path__) if MODULE_NAME.match(info.name)]
    switches = names_of_all()
    for spec in found:
        if spec.name not in switches:
            raise ValueError(f"catalogue entry {spec.name!r} names no switch of model.Mistakes "
                             f"(model/mistakes.py); switches: {', '.join(switches)}")
    for what, values in (("name", [s.name for s in found]), ("number", [s.number for s in found]),
                         ("study", [t.name for s in found for t in s.studies])):
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"the catalogue declares the {what} {', '.join(twice)} more than once")
    return tuple(sorted(found, key=lambda spec: spec.number))


MISTAKES = _collect()
BY_NAME = {spec.name: spec for spec in MISTAKES}
STUDIES = tuple(dataclasses.replace(study, mistake=spec.name) for spec in MISTAKES for study in spec.studies)
STUDIES_BY_NAME = {study.name: study for study in STUDIES}
DETECTORS = {spec.name: spec.detector for spec in MISTAKES}  # the audit's, in the catalogue's order


def _reported() -> dict[str, ReportedBug]:
    """The reported bugs (beyond the 11: reported_bugs.py) by name; each `caught_by` names a mistake's number whose
    detector exists, and no name is a mistake's."""
    by_number = {spec.number: spec for spec in MISTAKES}
    for bug in REPORTED_BUGS:
        if bug.caught_by is not None and getattr(by_number.get(bug.caught_by), "detector", None) is None:
            raise ValueError(f"reported bug {bug.name}: caught_by={bug.caught_by} names no mistake with a detector")
    names = [bug.name for bug in REPORTED_BUGS]
    clashes = sorted({n for n in names if names.count(n) > 1 or n in BY_NAME})
    if clashes:
        raise ValueError(f"reported bug names declared twice or shared with a mistake: {', '.join(clashes)}")
    return {bug.name: bug for bug in REPORTED_BUGS}


REPORTED_BY_NAME = _reported()
# the group's own checks, in the catalogue's order (the rest are caught by one of the 11, or cannot be probed)
REPORTED_DETECTORS = {bug.name: bug.detector for bug in REPORTED_BUGS if bug.detector is not None}


PROTOCOLS_BY_NAME = {protocol.name: protocol for protocol in PROTOCOLS}
EXPLORATORY = "exploratory"  # the protocol of every run made while the lab was designed: none declared before it


def canonical(value):
    """A declaration as plain JSON data (dataclasses by their fields; callables, which have no stable text, left
    out: a formula is kept by its `formula_text`)."""
    if dataclasses.is_dataclass(value):
        return {type(value).__name__: {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                                       if not callable(getattr(value, f.name))}}
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


MISTAKE_DECLARATION = ("name", "number", "claims", "probes", "settings", "fixes", "broken", "refuses", "lr_grid")


def protocol_hash(protocol: Protocol, spec: Mistake) -> str:
    """A hash of the protocol's declaration and of what the mistake's catalogue entry declares about its runs and
    verdicts (claims with their rules and margins, settings, variants, grid): either changing makes another
    experiment."""
    entry = {name: canonical(getattr(spec, name)) for name in MISTAKE_DECLARATION}
    declared = canonical(dataclasses.replace(protocol, seeds={}))  # another mistake's seeds are not this one's
    text = json.dumps({"protocol": declared, "seeds": protocol.seeds.get(spec.name), "mistake": entry},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


PROTOCOL_HASHES = {(p.name, spec.name): protocol_hash(p, spec) for p in PROTOCOLS for spec in MISTAKES}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS_BY_NAME:
        raise UsageError(f"unknown protocol {name!r}; declared protocols: {', '.join(PROTOCOLS_BY_NAME)}")
    return PROTOCOLS_BY_NAME[name]


def declared_protocols(spec: Mistake) -> dict:
    """What each protocol declares for this mistake's runs (the `mistake` group sets it as declared.protocols):
    its seeds (None: not planned yet), its learning-rate grid and its hash."""
    return {p.name: {"seeds": p.seeds.get(spec.name), "lr_grid": list(p.lr_grid(spec.lr_grid)),
                     "hash": protocol_hash(p, spec)} for p in PROTOCOLS}


def register_config() -> None:
    """Hydra's config store, from the catalogue: the schema, a `mistake` option per entry, a `protocol` option per
    declared protocol (ablations.runner.config.register). Every command calls it before composing."""
    from ablations.runner import config

    config.register(MISTAKES, PROTOCOLS, declared_protocols)


def lookup(name: str) -> Mistake:
    if name not in BY_NAME:
        raise UsageError(f"unknown mistake {name!r}; valid choices: {', '.join(BY_NAME)}, all")
    return BY_NAME[name]


def audit(factory, overrides: dict | None = None, only=None, name: str | None = None) -> list[dict]:
    """Audit a model factory with every mistake's detector: ablations.audit.detectors.audit with DETECTORS."""
    return detectors.audit(factory, DETECTORS, overrides, only, name)


def audit_reported(factory, overrides: dict | None = None, only=None, name: str | None = None, ctx=None) -> list[dict]:
    """Audit a model factory with the reported bugs' own checks (REPORTED_DETECTORS): one record per check, keyed
    "check" (ctx: the Context of an audit of the same model, reused)."""
    return detectors.audit(factory, REPORTED_DETECTORS, overrides, only, name, key="check", ctx=ctx)


def full_audit(factory, overrides: dict | None = None, name: str | None = None) -> tuple[list[dict], list[dict]]:
    """The check command's audit: (the 11 mistakes' records, the reported bugs' records), one model built once."""
    ctx = detectors.context(factory, overrides, name)
    return (detectors.audit(factory, DETECTORS, overrides, ctx=ctx),
            audit_reported(factory, overrides, name=name, ctx=ctx))


def study(name: str) -> Study:
    if name not in STUDIES_BY_NAME:
        raise UsageError(f"unknown study {name!r}; valid choices: {', '.join(STUDIES_BY_NAME)}")
    return STUDIES_BY_NAME[name]


__all__ = ["Axis", "BY_NAME", "Claim", "DETECTORS", "EXPLORATORY", "MISTAKES", "Mistake", "PROTOCOLS",
           "PROTOCOL_HASHES", "Protocol", "REPORTED_BUGS", "REPORTED_BY_NAME", "REPORTED_DETECTORS", "ReportedBug",
           "STUDIES", "Study", "audit", "audit_reported", "declared_protocols", "full_audit", "lookup", "protocol",
           "protocol_hash", "register_config", "study"]
