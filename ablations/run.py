"""`python -m ablations.run mistake=<name>|all [key=value ...]`: paired runs, symptom, verdict, figures.

Hydra conventions: `key=value` overrides, groups `mistake=`, `model=`, `data=`, `--cfg job` prints exactly what
runs, `-m mistake=a,b seeds=3,5` sweeps (a failing job is reported and the others go on). The same command
resumes the same run (its directory is named by a hash of the resolved config); results are never overwritten,
each finished run is compared with the committed reference results, and an exploratory one ends with the committed
confirmatory verdict for its mistake on its data (or the command that would make it)."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import sys
from pathlib import Path

import hydra
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ablations import catalogue
from ablations.errors import UsageError
from ablations.reporting import write_figures
from ablations.runner import hosts
from ablations.runner.config import check_overrides, groups, resolve, validate
from ablations.runner.execution import quiet_library_noise, run_guarded
from ablations.runner.identity import run_directory
from ablations.runner.pair import check_data
from ablations.runner.tracking import usable_mode

FAILED_JOBS: list[str] = []  # multirun: the jobs that failed, reported when the sweep ends


def resolved_runs(cfg: DictConfig) -> list[dict]:
    """One resolved config per mistake: `mistake=all` composes each mistake with the same overrides."""
    if cfg.mistake != "all":
        return [resolve(cfg)]
    task = [o for o in HydraConfig.get().overrides.task if o.partition("=")[0] != "mistake"]
    return [resolve(compose("config", overrides=[*task, f"mistake={spec.name}"])) for spec in catalogue.MISTAKES]


def run(cfg: DictConfig) -> None:
    if not cfg.debug:
        quiet_library_noise()
    try:
        if cfg.distributed.enabled:  # before JAX starts its backend (the checks below ask for the devices)
            hosts.initialize(cfg.distributed)
        resolved = resolved_runs(cfg)
        for r in resolved:
            spec = catalogue.lookup(r["mistake"])
            validate(spec, r)
            check_data(spec, r)
    except ValueError as error:  # UsageError, DataError and the configs' own checks: one line, no traceback
        cli.fail(error)
    if cfg.dry_run:
        if hosts.writes():  # printed once, by process 0
            for r in resolved:
                print(f"dry run: mistake={r['mistake']} seeds={r['seeds']} steps={r['steps']} -> {run_directory(r)}")
                if r["longer_budget"] > 1 and r["train"]["lr_grid"]:
                    print(f"   then each variant at its chosen rate for {r['longer_budget'] * r['steps']} steps on "
                          f"seeds from {r['seed'] + r['seeds']}, beside it (its directory depends on the rates chosen)")
        return
    mode = usable_mode(cfg.wandb.mode) if hosts.writes() else "disabled"  # once per process, not per run
    for r in resolved:
        r["wandb"]["usable_mode"] = mode
    failed = []
    for r in resolved:
        if not run_guarded(catalogue.lookup(r["mistake"]), r, len(resolved) > 1, write_figures):
            failed.append(r["mistake"])
        elif hosts.writes():  # an exploratory run ends with the committed confirmatory verdict on its data
            from ablations import protocol  # matplotlib (the report's module): only once a run has finished

            for line in protocol.committed_lines(r, catalogue.PROTOCOLS_BY_NAME, catalogue.PROTOCOL_HASHES):
                print(f"   {line}")
    if cfg.mistake == "all" and hosts.writes():
        from ablations.reporting import markdown  # matplotlib, for the claims figure: only once there is a report

        report = markdown.write_markdown(Path(cfg.results_dir), catalogue.MISTAKES, catalogue.STUDIES,
                                         catalogue.PROTOCOLS_BY_NAME, catalogue.PROTOCOL_HASHES)
        print(f"report: {report}")
    if failed:
        cli.fail(f"{', '.join(failed)} failed (see above); the other results are complete", cli.EXIT_FAILED)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    """A multirun's job that fails is reported in its one line and the sweep goes on (Hydra stops at SystemExit);
    a stop (Ctrl-C, SIGTERM) stops the sweep."""
    try:
        try:
            run(cfg)
        except cli.usage_errors() as error:
            cli.fail(error)
    except SystemExit as stop:
        if HydraConfig.get().mode != RunMode.MULTIRUN or stop.code in (0, None, cli.EXIT_INTERRUPTED):
            raise
        if isinstance(stop.code, str):  # an int: its line is printed already
            print(stop.code, file=sys.stderr)
        FAILED_JOBS.append(f"#{HydraConfig.get().job.num} ({' '.join(HydraConfig.get().overrides.task)})")


def main() -> None:
    """Exit status as every command's (ablations/cli.py): 2 bad input, 1 a run failed, 130 stopped."""
    with cli.guarded():
        catalogue.register_config()
        check_overrides(sys.argv[1:])
        named = any(a.partition("=")[0] == "mistake" for a in sys.argv[1:])
        if not named and not {"--help", "-h", "--hydra-help"} & set(sys.argv[1:]):
            raise UsageError(f"mistake=<name> is required; valid choices: {', '.join(groups()['mistake'])}")
        hydra_main()
    if FAILED_JOBS:
        cli.fail(f"{len(FAILED_JOBS)} job(s) of the sweep failed: {'; '.join(FAILED_JOBS)}; the others finished",
                 cli.EXIT_FAILED)


if __name__ == "__main__":
    main()
