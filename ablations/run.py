"""`python -m ablations.run mistake=<name>|all [key=value ...]`: paired runs, symptom, verdict, figures.

Hydra conventions: `key=value` overrides, `-m mistake=a,b seeds=3,5` for sweeps. The same command
resumes the same run (its directory is named by a hash of the resolved config); results are never
overwritten."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ablations.config import check_overrides, resolve, validate
from ablations.registry import BY_NAME, lookup
from ablations.runs import quiet_library_noise, run_directory, run_guarded
from ablations.tracking import usable_mode


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    from ablations import report

    user_keys = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    names = list(BY_NAME) if cfg.mistake == "all" else [cfg.mistake]
    try:
        resolved = [resolve(cfg, lookup(name), user_keys) for name in names]
        for r in resolved:
            validate(r)
    except ValueError as error:  # UsageError, DataError and the configs' own checks: one line, no traceback
        sys.exit(f"error: {error}")
    if cfg.dry_run:
        for r in resolved:
            print(f"dry run: mistake={r['mistake']} seeds={r['seeds']} steps={r['steps']} -> {run_directory(r)}")
        return
    if not cfg.debug:
        quiet_library_noise()
    mode = usable_mode(cfg.wandb.mode)  # once per process, not per run
    for r in resolved:
        r["wandb"]["usable_mode"] = mode
    if cfg.distributed:
        import jax

        jax.distributed.initialize()
    failed = [name for name, r in zip(names, resolved) if not run_guarded(BY_NAME[name], r, suite=len(names) > 1)]
    if cfg.mistake == "all":
        print(f"report: {report.write_markdown(Path(cfg.results_dir))}")
    if failed:
        sys.exit(f"error: {', '.join(failed)} failed (see above); the other results are complete")


def main() -> None:
    try:
        check_overrides(sys.argv[1:])
    except ValueError as error:
        sys.exit(f"error: {error}")
    hydra_main()


if __name__ == "__main__":
    main()
