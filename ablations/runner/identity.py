"""A run's identity: what makes two runs the same experiment, the directory that a hash of it names, and the refusal
to resume a directory under a changed config. Keys added to the config after runs were committed are left out of
the hash at the value that reproduces the code before them, so every committed run directory keeps its name."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ablations.errors import UsageError
from ablations.runner.config import dotted_keys

# Keys that do not change what a run trains or measures:
RUN_ONLY_KEYS = (
    "wandb", "results_dir", "run_name", "dry_run", "distributed", "debug",  # where results go, how they are shown
    "declared",  # the catalogue's declarations: a run uses them only through the keys they set (train.lr_grid)
    "longer_budget",  # what runs after this run (the longer run's own steps and rates are in its identity)
)

# Keys added to the config after runs were committed, each with the value that does what the code did before it
# (a key without a section is a top-level one).
ADDED_LATER = {"model.attention": "einsum", "train.lr_grid": [], "data.selection_share": 0.0, "follows": None,
               "protocol": "exploratory", "protocol_hash": None}


def identity(resolved: dict) -> dict:
    """What makes two runs the same experiment (where results go and how they are logged or shown do not); a key
    added later that a saved config predates is filled in at the value that did what the code did then."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in resolved.items() if k not in RUN_ONLY_KEYS}
    for section, key, before in added_later():
        if not section:
            out.setdefault(key, before)
        elif isinstance(out.get(section), dict):
            out[section].setdefault(key, before)
    return out


def added_later() -> list[tuple[str, str, object]]:
    """ADDED_LATER as (section, key, earlier value); the section of a top-level key is ""."""
    return [(*dotted.rpartition(".")[::2], before) for dotted, before in ADDED_LATER.items()]


MEASURE_ONLY_KEYS = ("probe",)  # settings of what is measured after training, not of the training


def same_training(a: dict, b: dict) -> bool:
    """Whether two runs train exactly the same pair (same program, data, seeds and steps): they differ at most
    in what is measured afterwards."""
    strip = lambda resolved: {k: v for k, v in identity(resolved).items() if k not in MEASURE_ONLY_KEYS}
    return strip(a) == strip(b)


def run_directory(resolved: dict) -> Path:
    """Named by a hash of the run's identity; a key added later is left out at the value that did what the code
    did before it, so the run directories made before it keep their names."""
    named = identity(resolved)
    for section, key, before in added_later():
        node = named if not section else named.get(section)
        if isinstance(node, dict) and key in node and node[key] == before:
            del node[key]
    digest = hashlib.sha256(json.dumps(named, sort_keys=True).encode()).hexdigest()[:10]
    name = digest if resolved["run_name"] is None else str(resolved["run_name"])  # run_name=0 is a name
    return Path(resolved["results_dir"]) / resolved["mistake"] / name


def refuse_changed_config(saved: Path, resolved: dict) -> None:
    """Resuming under a changed config would mix two experiments in one directory."""
    if not saved.exists():
        return
    before, now = dotted_keys(identity(json.loads(saved.read_text()))), dotted_keys(identity(resolved))
    differing = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if differing:
        raise UsageError(f"{saved.parent} holds a run whose config differs in {', '.join(differing)}; "
                         "resume with the same config, or pass run_name=<new> for a fresh run")
