"""The catalogue: one module per mistake (`mNN_<name>.py`, found by name), each declaring one `Mistake` with
everything the lab knows about it. The tables the commands use are collected here and nowhere else written:
the mistakes in the seed page's order, their studies, and the audit's detectors. docs/adding-a-mistake.md
tells a contributor how to add one."""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re

from ablations.audit import detectors
from ablations.catalogue.schema import Axis, Claim, Mistake, Study
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


def lookup(name: str) -> Mistake:
    if name not in BY_NAME:
        raise UsageError(f"unknown mistake {name!r}; valid choices: {', '.join(BY_NAME)}, all")
    return BY_NAME[name]


def audit(factory, overrides: dict | None = None, only=None, name: str | None = None) -> list[dict]:
    """Audit a model factory with every mistake's detector: ablations.audit.detectors.audit with DETECTORS."""
    return detectors.audit(factory, DETECTORS, overrides, only, name)


def study(name: str) -> Study:
    if name not in STUDIES_BY_NAME:
        raise UsageError(f"unknown study {name!r}; valid choices: {', '.join(STUDIES_BY_NAME)}")
    return STUDIES_BY_NAME[name]


__all__ = ["Axis", "BY_NAME", "Claim", "DETECTORS", "MISTAKES", "Mistake", "STUDIES", "Study", "audit", "lookup",
           "study"]
