"""`python -m ablations.protocol [NAME] [--plan]`: the declared confirmatory protocols. With no name, each with how
many mistakes have their seeds planned; with a name, its declaration and, per mistake, its seeds, its learning-rate
grid and the hash every run under it records; with --plan, the seeds the exploratory results it names ask for (per
claim and per mistake), to declare in ablations/catalogue/protocols.py before any run. Writes nothing.

Here too, what `python -m ablations.run` prints at the end of an exploratory run: each protocol's committed verdict
for its mistake on its data (`committed_lines`)."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
from pathlib import Path

from omegaconf import OmegaConf

from ablations import catalogue, paths
from ablations.reporting import markdown
from ablations.reporting.setup import protocol_of, run_record
from ablations.runner import layout, reference
from ablations.runner.config import CONF_DIR
from ablations.runner.schema import DataSection
from ablations.science import planning
from ablations.science.verdict import claim_line, firmness_of


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


def data_preset(data: dict, presets) -> str | None:
    """Which of these `data` presets (ablations/conf/data/<name>.yaml) a run's data section comes from, by the source
    each names (the schema's default where it names none); None: a source none of them names."""
    for name in presets:
        preset = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / f"{name}.yaml")) or {}
        if preset.get("source", DataSection.source) == data["source"]:
            return name
    return None


def reported(config: dict) -> bool:
    """Whether a run's verdict is the one its comparison reports: not a learning-rate grid whose longer budget
    (the run that `follows` it) reports instead."""
    return bool(config.get("follows")) or not (config["train"].get("lr_grid") and config.get("longer_budget", 1) > 1)


def committed_run(protocol, mistake: str, data: str, hashes: dict) -> tuple[Path | None, str | None]:
    """The committed run that a declared protocol reports for a mistake on one of its data presets: the newest run
    under layout.protocol_dir of the committed results (runner.reference.REFERENCE_DIR) whose verdict is the
    reported one (a longer budget), on that data, that still counts under the protocol (setup.protocol_of: today's
    hash in `hashes`, a clean tree). (None, why the newest such run does not count) when none does; (None, None)
    when none is committed."""
    root, why = reference.REFERENCE_DIR, None
    for run in reversed(layout.finished_runs(layout.protocol_dir(root, protocol, data), mistake)):
        record = run_record(run)
        if not reported(record) or data_preset(record["data"], protocol.data) != data:
            continue
        counts, reason = protocol_of(record, hashes)
        if counts == protocol.name:
            return run, None
        why = why or f"{run.relative_to(root.parent)}: {reason or 'an exploratory run'}"
    return None, why


def committed_lines(resolved: dict, protocols: dict, hashes: dict) -> list[str]:
    """For an exploratory run (resolved: its config), each declared protocol's committed verdict for its mistake on
    its data (one of the protocol's presets), its claims as the run prints its own (verdict.claim_line); or one line
    saying none is committed yet, with the command that makes it. Nothing for a run under a protocol, or on data no
    protocol runs on. protocols: the declared ones by name; hashes: today's hash of each (protocol, mistake)."""
    if (resolved.get("protocol") or catalogue.EXPLORATORY) != catalogue.EXPLORATORY:
        return []
    lines, mistake = [], resolved["mistake"]
    for protocol in protocols.values():
        data = data_preset(resolved["data"], protocol.data)
        if data is None:
            continue
        run, why = committed_run(protocol, mistake, data, hashes)
        if run is None:
            where = layout.protocol_dir(Path(reference.REFERENCE_DIR.name), protocol, data)
            lines.append(f"{protocol.name}: none committed yet for {mistake} on {data} (python -m ablations.run "
                         f"protocol={protocol.name} mistake={mistake} data={data} results_dir={where})"
                         + (f"; not counted: {why}" if why else ""))
            continue
        verdict = layout.read(run, layout.VERDICT)
        seeds = verdict.get("seeds") or layout.read(run, layout.CONFIG)["seeds"]
        where = run.relative_to(reference.REFERENCE_DIR.parent)
        lines.append(f"{protocol.name} ({where}, {seeds} seeds): {verdict['verdict']}")
        config = layout.read(run, layout.CONFIG)
        lines += ["   " + claim_line(c, config).replace("\n", "\n   ") for c in verdict["claims"]]  # nested under it
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
