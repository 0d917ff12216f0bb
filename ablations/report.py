"""`python -m ablations.report [--results results] [--wandb] [--redecide | --table]`: the suite's REPORT.md (verdict
table, studies and every figure) from finished runs, with --wandb a W&B Report built with the Reports API; with
--redecide (instead) each claim's recorded outcome beside the one today's rules give on the same measurements, with
--table (instead) every claim's outcome on each data preset of the suite, the table the README quotes."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import sys

from ablations import catalogue, paths
from ablations.reporting import markdown, setup
from ablations.errors import UsageError
from ablations.runner import config, layout
from ablations.runner.schema import WandbSection


def report(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.report", __doc__)
    parser.add_argument("--results", default="results", help="a results directory (its REPORT.md is rewritten)")
    parser.add_argument("--wandb", action="store_true", help="also build (and, when logged in, save) a W&B Report")
    parser.add_argument("--project", default=WandbSection.project)
    parser.add_argument("--entity", default=WandbSection.entity)
    instead = parser.add_mutually_exclusive_group()  # each prints instead of writing the report
    instead.add_argument("--redecide", action="store_true",
                         help="print each claim's recorded outcome beside today's rules' on the same measurements "
                              "(a markdown table); writes nothing")
    instead.add_argument("--table", action="store_true",
                         help="print every claim's outcome, one column per data preset the suite ran (the suite's "
                              "root and its <preset>/ subdirectories), as a markdown table; writes nothing")
    args = parser.parse_args(argv)
    results = paths.existing_directory(args.results, "--results", "results")
    if not any(layout.finished_runs(results, name) for name in catalogue.BY_NAME) and \
            not (results / "studies").is_dir():
        raise UsageError(f"--results {args.results} holds no finished run (<mistake>/<run>/{layout.VERDICT}); give "
                         "the results_dir of a run, e.g. --results results or --results runs")
    if args.table:
        catalogue.register_config()
        suites = {setup.data_short_name(layout.read(runs[0], layout.CONFIG)["data"]): directory
                  for directory in layout.data_suites(results, config.groups()["data"])
                  if (runs := list(markdown.latest_runs(directory, catalogue.MISTAKES).values()))}
        print("\n".join(markdown.claims_table(suites, catalogue.MISTAKES, catalogue.PROTOCOLS_BY_NAME,
                                               catalogue.PROTOCOL_HASHES)))
        return 0
    if args.redecide:
        print("\n".join(markdown.redecided(results, catalogue.MISTAKES)))
        return 0
    paths.writable_file(results / markdown.REPORT, "--results", "results")
    print(markdown.write_markdown(results, catalogue.MISTAKES, catalogue.STUDIES, catalogue.PROTOCOLS_BY_NAME,
                                  catalogue.PROTOCOL_HASHES))
    if args.wandb:
        from ablations.reporting import wandb_report  # wandb_workspaces: imported only when asked for

        runs = markdown.latest_runs(results, catalogue.MISTAKES)
        entries = [(layout.read(run, layout.VERDICT), f"{name}-{run.name}", layout.read(run, layout.CONFIG))
                   for name, run in runs.items()]
        url = wandb_report.publish(wandb_report.build_report(entries, args.project, args.entity))
        print(url or wandb_report.offline_instructions([str(run) for run in runs.values()]))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(report, argv)


if __name__ == "__main__":
    sys.exit(main())
