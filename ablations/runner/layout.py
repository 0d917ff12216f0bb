"""The results layout, in one place: the files of a run directory and how to find finished runs. Every module
that reads or writes results (the runner, the reporting, the study points) names files through here.

    <results_dir>/<mistake>/<hash or run_name>/    one run (runner.identity.run_directory names it)
        config.json  environment.json  timing.json  measurements.json  verdict.json  reference.json
        learning_rates.json (on a learning-rate grid)
        ckpt/<step>/<variant>/  <variant>/metrics.jsonl  <variant>/wandb/  figures/<name>.png|svg
    <results_dir>/studies/<study>/study.json, figures/   and each point's run under <mistake>/<hash>/

A suite's runs on the default `data` preset sit at its root, on any other preset in a subdirectory named by it
(results/ and results/shakespeare/); a declared protocol's committed runs in the suite named by it
(results/confirmatory/ and results/confirmatory/shakespeare/: `protocol_dir`).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ablations.errors import UsageError

CONFIG, ENVIRONMENT, TIMING = "config.json", "environment.json", "timing.json"
MEASUREMENTS, VERDICT, REFERENCE = "measurements.json", "verdict.json", "reference.json"
LEARNING_RATES = "learning_rates.json"  # a grid's choice: every variant's losses at every rate, and the rate chosen
DEFAULT_DATA = "synthetic"  # the config's default `data` preset (ablations/conf/config.yaml): a suite's root


def read(run_dir: Path, name: str) -> dict:
    """One of a run's JSON files (CONFIG, MEASUREMENTS, VERDICT, ...)."""
    return json.loads((Path(run_dir) / name).read_text())


def write(run_dir: Path, name: str, value: dict) -> None:
    """Whole or not at all (written beside, then renamed): a stop mid-write never leaves half a verdict."""
    path = Path(run_dir) / name
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(value, indent=1))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def is_complete(run_dir: Path) -> bool:
    """A run is complete once its verdict is written (the last file a pair writes)."""
    return (Path(run_dir) / VERDICT).exists()


def metrics_file(variant_dir: Path) -> Path:
    return Path(variant_dir) / "metrics.jsonl"


def checkpoint_dir(run_dir: Path) -> Path:
    """The run's orbax checkpoints: one directory per saved step, holding every variant's state."""
    return Path(run_dir) / "ckpt"


def refuse_old_checkpoints(run_dir: Path) -> None:
    """A run stopped under the previous layout (one checkpoint directory per variant) cannot resume under this
    one; say so rather than retrain it from step 0 over its metrics."""
    old = sorted(str(p) for p in Path(run_dir).glob("*/ckpt") if p.is_dir())
    if old:
        raise UsageError(f"{run_dir} holds checkpoints of the previous layout ({', '.join(old)}); finish it with "
                         "the lab version that started it, or pass run_name=<new> for a fresh run")


def copy_training(trained: Path, run_dir: Path, steps: int) -> bool:
    """Start `run_dir` from the finished training of `trained` (an identical pair measured differently): its
    variants' metrics and its checkpoint at the last step, so that the run resumes there and only measures.
    False, copying nothing, if run_dir has started already or `trained` lacks that checkpoint or a variant's
    metrics. Built under a temporary name and renamed into place: a copy cut short is never a run."""
    final, run_dir = checkpoint_dir(trained) / str(steps), Path(run_dir)
    variants = [d.name for d in final.iterdir() if d.is_dir()] if final.is_dir() else []
    if run_dir.exists() or not variants or not all(metrics_file(Path(trained) / v).is_file() for v in variants):
        return False
    partial = run_dir.with_name(run_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for variant in variants:
        (partial / variant).mkdir(parents=True)
        shutil.copy2(metrics_file(Path(trained) / variant), metrics_file(partial / variant))
    shutil.copytree(final, checkpoint_dir(partial) / str(steps))
    partial.rename(run_dir)
    return True


def figures_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "figures"


def finished_runs(results_dir: Path, mistake: str) -> list[Path]:
    """The complete runs of a mistake directly under results_dir, oldest first."""
    done = sorted((Path(results_dir) / mistake).glob(f"*/{VERDICT}"), key=lambda p: p.stat().st_mtime)
    return [p.parent for p in done]


def all_finished_runs(root: Path, mistake: str) -> list[Path]:
    """The complete runs of a mistake anywhere under root (suites, studies), by path."""
    return [p.parent for p in sorted(Path(root).glob(f"**/{mistake}/*/{VERDICT}"))]


def suite_dir(root: Path, data: str) -> Path:
    """Where a suite's runs on one `data` preset sit: the default preset's at its root, any other's in a
    subdirectory named by the preset (results/ and results/shakespeare/)."""
    return Path(root) if data == DEFAULT_DATA else Path(root) / data


def data_suites(root: Path, presets) -> list[Path]:
    """The suites under root, one per `data` preset (suite_dir), that exist: results/, results/shakespeare/."""
    return [suite_dir(root, data) for data in sorted(presets, key=lambda d: d != DEFAULT_DATA)
            if suite_dir(root, data).is_dir()]


def protocol_dir(root: Path, protocol, data: str) -> Path:
    """Where the committed runs of a declared protocol (a catalogue Protocol) on one of its `data` presets sit under
    the committed results `root`: results/confirmatory/ (synthetic), results/confirmatory/shakespeare/."""
    if data not in protocol.data:
        raise ValueError(f"protocol {protocol.name} runs on data={' and data='.join(protocol.data)}, not {data}")
    return suite_dir(Path(root) / protocol.name, data)
