"""`python -m ablations.protocol [NAME] [--plan]`: the declared confirmatory protocols. With no name, each with how
many mistakes have their seeds planned; with a name, its declaration and, per mistake, its seeds, its learning-rate
grid and the hash every run under it records; with --plan, the seeds the exploratory results it names ask for (per
claim and per mistake), to declare in ablations/catalogue/protocols.py before any run. Writes nothing."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
from pathlib import Path

from ablations import catalogue, paths
from ablations.reporting import markdown
from ablations.runner import layout
from ablations.science import planning
from ablations.science.verdict import firmness_of


def planned_claims(protocol, spec) -> list[dict]:
    """Every statistical claim of the mistake's latest exploratory runs in the protocol's results directories (a
    longer budget and the grid it follows both count), with its firmness."""
    claims = []
    for results in protocol.planned_on:
        run = markdown.latest_runs(Path(results), [spec]).get(spec.name)
        if run is None:
            continue
        follows = layout.read(run, layout.CONFIG).get("follows")
        for each in [run, *([run.parent / follows] if follows else [])]:
            claims += [{**c, "firmness": firmness_of(spec, c), "from": str(each)}
                       for c in layout.read(each, layout.VERDICT)["claims"] if c["kind"] == "statistical"]
    return claims


def plan(protocol) -> list[str]:
    lines, seeds = [], {}
    for spec in catalogue.MISTAKES:
        claims = planned_claims(protocol, spec)
        if not claims:
            lines.append(f"{spec.name}: no finished exploratory run in {', '.join(protocol.planned_on)}")
            continue
        seeds[spec.name], needs = planning.mistake_seeds(claims, protocol.min_seeds, protocol.max_seeds)
        lines.append(f"{spec.name}: {seeds[spec.name]} seeds")
        for c in claims:
            need = needs.get(c["says"])
            lines.append(f"   {'>' + str(protocol.max_seeds) if need is None else need:>4} for {c['says']} "
                         f"({c['outcome']}, {c['from']})")
    return lines + ["", f"seeds={seeds!r},"]


def show(protocol) -> list[str]:
    lines = [f"protocol {protocol.name}: {protocol.question}",
             f"   comparison={protocol.comparison}; data={', '.join(protocol.data)}; first seed {protocol.first_seed}; "
             f"{protocol.min_seeds}-{protocol.max_seeds} seeds per mistake, planned on "
             f"{', '.join(protocol.planned_on)}; families: each source's statistical claims, Holm at "
             f"{protocol.family_level:g}"]
    for spec in catalogue.MISTAKES:
        seeds = protocol.seeds.get(spec.name)
        grid = ", ".join(f"{lr:g}" for lr in protocol.lr_grid(spec.lr_grid))
        lines.append(f"   {spec.name}: {'not planned yet' if seeds is None else f'{seeds} seeds'}, learning rates "
                     f"{grid}, hash {catalogue.PROTOCOL_HASHES[protocol.name, spec.name]}")
    return lines


def protocol_command(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.protocol", __doc__)
    parser.add_argument("name", nargs="?", help=f"a declared protocol: {', '.join(catalogue.PROTOCOLS_BY_NAME)}")
    parser.add_argument("--plan", action="store_true",
                        help="the seeds per mistake that the exploratory results it names ask for")
    args = parser.parse_args(argv)
    if args.name is None:
        if args.plan:
            parser.error("--plan needs a protocol: python -m ablations.protocol <name> --plan")
        for p in catalogue.PROTOCOLS:
            print(f"{p.name}: seeds planned for {len(p.seeds)} of {len(catalogue.MISTAKES)} mistakes; {p.question}")
        return 0
    protocol = catalogue.protocol(args.name)
    if args.plan:
        for results in protocol.planned_on:
            paths.existing_directory(results, f"protocol {protocol.name}'s planned_on", "results/best_lr")
    print("\n".join(plan(protocol) if args.plan else show(protocol)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(protocol_command, argv)


if __name__ == "__main__":
    raise SystemExit(main())
