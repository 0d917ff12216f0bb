"""`python -m ablations.report [--results results] [--wandb]`: the suite's REPORT.md (verdict table, studies and
every figure) from finished runs, and with --wandb a W&B Report built with the Reports API."""
from __future__ import annotations

import sys
from pathlib import Path

from ablations import catalogue, cli
from ablations.reporting import markdown
from ablations.errors import UsageError
from ablations.runner import layout
from ablations.runner.schema import WandbSection


def report(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.report", __doc__)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--wandb", action="store_true", help="also build (and, when logged in, save) a W&B Report")
    parser.add_argument("--project", default=WandbSection.project)
    parser.add_argument("--entity", default=WandbSection.entity)
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        raise UsageError(f"--results {args.results} is not a directory of results (e.g. results, or your runs/)")
    print(markdown.write_markdown(args.results, catalogue.MISTAKES, catalogue.STUDIES))
    if args.wandb:
        from ablations.reporting import wandb_report  # wandb_workspaces: imported only when asked for

        runs = markdown.latest_runs(args.results, catalogue.MISTAKES)
        entries = [(layout.read(run, layout.VERDICT), f"{name}-{run.name}") for name, run in runs.items()]
        url = wandb_report.publish(wandb_report.build_report(entries, args.project, args.entity))
        print(url or wandb_report.offline_instructions([str(run) for run in runs.values()]))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(report, argv)


if __name__ == "__main__":
    sys.exit(main())
