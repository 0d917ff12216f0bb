"""The suite's report, `<results>/REPORT.md`: the verdict table, every study that has run and every figure
(`python -m ablations.report`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ablations.reporting import figures
from ablations.reporting.setup import (evidence_label, protocol_of, run_record, setup_lines, suite_subject,
                                      with_added_keys)
from ablations.runner import layout
from ablations.science import budgets, firmness, learning_rates, rules
from ablations.science.verdict import MARKS, claim_line, firmness_of, in_data_units, seeds_note

HOW_TO_READ = (
    "One row per claim: the seed page's (`page`) or the lab's own (`lab`). A statistical claim is decided on the "
    "per-seed differences broken − reference (same seeds, same batches), signed so that a positive effect is the "
    "claimed direction, by the rule and practical margin fixed in its catalogue entry (`ablations/catalogue/`) "
    "before the run: "
    f"{MARKS['reproduced']} reproduced (the 95% interval lies beyond the margin on the claimed side), "
    f"{MARKS['opposite']} opposite (beyond it on the other side), {MARKS['no effect']} no effect (inside ± the "
    f"margin), {MARKS['inconclusive']} inconclusive (anything else, with the seeds that would likely decide it). "
    f"Exact claims {MARKS['holds']} hold or {MARKS['fails']} fail on every seed. p: two-sided paired t-test of no "
    "difference; n: seeds.")
TABLE_HEAD = ("| # | mistake | claim | by | outcome | measurement (mean ± std) | effect [95% CI] | p | n "
              "| margin / rule |")

REPORT = "REPORT.md"


def latest_runs(results_dir: Path, mistakes) -> dict[str, Path]:
    """Per mistake (catalogue entries), the newest run directory that finished (holds verdict.json), leaving out a
    grid whose longer budget has finished (that run reports both budgets)."""
    out = {}
    for spec in mistakes:
        done = layout.finished_runs(results_dir, spec.name)
        followed = {layout.read(run, layout.CONFIG).get("follows") for run in done}
        if kept := [run for run in done if run.name not in followed]:
            out[spec.name] = kept[-1]
    return out


def cell(x) -> str:
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3g}"


def measurement_table(measured: dict) -> list[str]:
    """Every scalar measurement of every variant, mean ± std over seeds ("never": a floor not reached)."""
    variants = list(measured)
    lines = ["| measurement | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
    for key, value in measured["correct"][0].items():
        if isinstance(value, (int, float)) or value is None:
            lines.append(f"| {key} | " + " | ".join(summarise([m.get(key) for m in measured[v]]) for v in variants)
                         + " |")
    return lines + [""]


def summarise(values: list) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return f"never ({len(values)} seeds)"
    s = rules.summary(reached)
    text = f"{s['mean']:.4g} ± {s['std']:.2g}"
    return text + (f" (never on {len(values) - len(reached)} seeds)" if len(reached) < len(values) else "")


def claim_row(spec, c: dict) -> str:
    if c["kind"] == "none":
        return f"| {spec.number} | {spec.name} | {c['says']} | {c['source']} | " \
               f"{MARKS[c['outcome']]} {c['outcome']} | {c['why']} | | | {c['n']} | |"
    if c["kind"] == "share":
        part = lambda s: f"{s['k']}/{s['n']} [{cell(s['ci'][0])}, {cell(s['ci'][1])}]"  # noqa: E731
        return (f"| {spec.number} | {spec.name} | {c['says']} | {c['source']} | {MARKS[c['outcome']]} "
                f"**{c['outcome']}** | converged seeds: correct {part(c['correct'])}, broken {part(c['broken'])} "
                f"| {cell(c['mean'])} (share) | {cell(c['p'])} | {c['n']} | {c['rule']} |")
    stat = c["kind"] == "statistical"
    side = lambda s: f"{s['mean']:.4g} ± {s['std']:.2g}"  # noqa: E731
    effect, p = (f"{cell(c['mean'])} [{cell(c['ci'][0])}, {cell(c['ci'][1])}]", cell(c["p"])) if stat else ("exact", "")
    margin = f"±{c['margin']:g} {c['unit']}" if stat else c["rule"]
    note = seeds_note(c).lstrip("; ")
    outcome = f"{MARKS[c['outcome']]} **{c['outcome']}**" + (f" ({note})" if note else "")
    return (f"| {spec.number} | {spec.name} | {c['says']} | {c['source']} | {outcome} | {c['metric']}: "
            f"{c['reference']} {side(c['correct'])}, broken {side(c['broken'])} | {effect} | {p} | {c['n']} "
            f"| {margin} |")


def family_decisions(mistakes, verdicts: dict[str, dict], level: float = firmness.FAMILY_LEVEL) -> dict:
    """Each source's statistical claims across the suite as one family (ablations.science.firmness), in catalogue
    order: source -> [(spec, decided)], decided being the claim with its `firmness`, `holm_p` and `family_outcome`
    (the outcome that stands at the family-wise error rate `level`). A source with no such claim is left out."""
    out = {}
    for source in ("page", "lab"):
        tested = [({**c, "firmness": firmness_of(spec, c)}, spec) for spec in mistakes if spec.name in verdicts
                  for c in verdicts[spec.name]["claims"] if c["source"] == source and c["kind"] in
                  ("statistical", "share")]
        if decided := firmness.family([c for c, _ in tested], level):  # the same claims, in the same order
            out[source] = [(spec, d) for (_, spec), d in zip(tested, decided)]
    return out


def distance_text(firm: dict | None) -> str:
    """How far an outcome lies from its decision boundary, in standard errors, as the reports print it."""
    firm = firm or {"distance_se": math.nan, "fragile": False}
    distance = ("one pair of seeds" if firm["distance_se"] is None else
                "no interval (counted with p = 1)" if math.isnan(firm["distance_se"]) else
                f"{firm['distance_se']:.2g} SE")
    return distance + (" ⚠ fragile" if firm["fragile"] else "")


def family_section(mistakes, verdicts: dict[str, dict], level: float = firmness.FAMILY_LEVEL) -> list[str]:
    """The families of family_decisions as tables: the p of each outcome's own test, Holm's adjusted p, the outcome
    that stands at `level` (a protocol's declared one when every run is confirmatory under it), and how far each
    outcome lies from its decision boundary."""
    lines = []
    for source, decided in family_decisions(mistakes, verdicts, level).items():
        stand = sum(d["family_outcome"] != "inconclusive" for _, d in decided)
        fragile = sum(bool(d["firmness"] and d["firmness"]["fragile"]) for _, d in decided)
        unknown = [c["says"] for spec in mistakes if spec.name in verdicts for c in verdicts[spec.name]["claims"]
                   if c["source"] == source and c["kind"] == "statistical" and c["outcome"] != "inconclusive"
                   and not firmness_of(spec, c)]
        lines += [f"### The {source}'s claims: {stand} of {len(decided)} outcomes stand after Holm's correction; "
                  f"{fragile} fragile", ""]
        lines += [f"Counted with p = 1: {len(unknown)} decided claims recorded under a wording the catalogue no "
                  f"longer has (its rule is not known): {'; '.join(unknown)}.", ""] if unknown else []
        lines += [
                  "| # | mistake | claim | outcome | p (own test) | Holm p | after Holm | from the boundary |",
                  "|---|---|---|---|---|---|---|---|"]
        for spec, d in decided:
            after = d["family_outcome"] + (" (was " + d["outcome"] + ")" if d["family_outcome"] != d["outcome"]
                                           else "")
            lines.append(f"| {spec.number} | {spec.name} | {d['says']} | {MARKS[d['outcome']]} {d['outcome']} | "
                         f"{cell((d['firmness'] or {'p': 1.0})['p'])} | {cell(d['holm_p'])} | {after} | "
                         f"{distance_text(d['firmness'])} |")
        lines.append("")
    head = ("p (own test): the smallest 1 − confidence at which the claim's two-sided interval would still decide "
            "as it does (for an inconclusive one, decide anything); Holm p: adjusted over the family (every "
            "statistical claim of one source in this report, as each mistake's reported run reads it: on a best-lr "
            f"run its longer budget), an outcome stands while it is below {level:g}; a claim with no interval counts "
            "with p = 1. From the boundary: how far the interval's deciding end lies from the margin it is decided "
            f"against, in standard errors of the mean difference; within {firmness.FRAGILE_SE:g} SE an outcome is "
            "fragile (rounding or one seed could move it). Exact claims hold or fail on every seed and are not "
            "part of a family.")
    return ["## The claims as families (Holm–Bonferroni)", "", head, "", *lines] if lines else []


def family_level(configs: dict, protocols: dict, protocol_hashes: dict) -> float:
    """The family-wise error rate of the report's families: its protocol's, when every run counts as confirmatory
    under one declared protocol, else the lab's default."""
    names = {protocol_of(record, protocol_hashes)[0] for record in configs.values()}
    (name,) = names if len(names) == 1 else ("exploratory",)
    return protocols[name].family_level if name in protocols else firmness.FAMILY_LEVEL


SEED_PAGE = "the seed page (../shared/seed/)"


def agreement(outcome: str, predicts: str | None) -> str:
    if predicts is None:
        return "no prediction"
    if outcome in ("inconclusive", rules.NOT_MEASURED):
        return "undecided"
    return "agrees" if outcome == predicts or (predicts == "reproduced" and outcome in rules.HOLDS) else "disagrees"


def literature_section(mistakes, verdicts: dict[str, dict], configs: dict[str, dict], hashes: dict) -> list[str]:
    """Each claim the seed page makes, or a published source bears on (the catalogue's `literature`), beside the
    lab's outcome in this report: whether they agree, and where they do not, the lab's measured explanation."""
    rows = []
    for spec in mistakes:
        if spec.name not in verdicts:
            continue
        label = protocol_of(configs[spec.name], hashes)[0]
        for c in verdicts[spec.name]["claims"]:
            findings = [(f.source, f.reports, f.predicts, f.explained) for f in spec.literature if f.claim == c["says"]]
            if not findings and c["source"] == "page":
                findings = [(SEED_PAGE, "the claim as stated", "reproduced", "")]
            for source, reports, predicts, explained in findings:
                agrees = agreement(c["outcome"], predicts)
                why = (explained or "unexplained") if agrees == "disagrees" else ""
                rows.append(f"| {spec.number} | {spec.name} | {c['says']} | {source}: {reports} | {predicts or '–'} | "
                            f"{MARKS[c['outcome']]} {c['outcome']} ({label}) | {agrees} | {why} |")
    if not rows:
        return []
    return ["## Against the literature", "",
            "Each claim of the seed page, and each a published source bears on (`literature` in the catalogue "
            "entries), beside this report's outcome. A source predicts an outcome for the claim at its own scale; "
            "where the lab's differs, the explanation names what the lab measured, or says it is unexplained.", "",
            "| # | mistake | claim | source: what it reports | predicts | the lab | agrees | explanation |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]


def study_section(results_dir: Path, studies) -> list[str]:
    """"Where each claim holds": every study (catalogue Studies) that has run, its figure and its one-line finding."""
    lines = []
    for study in studies:
        path = results_dir / "studies" / study.name / "study.json"
        if not path.exists():
            continue
        summary = json.loads(path.read_text())
        done = sum("claims" in p for p in summary["points"])
        lines += [f"### {study.name} — {study.question}", "",
                  f"Mistake `{study.mistake}`; grid {' × '.join(a['key'] for a in summary['axes'])}; "
                  f"{done}/{len(summary['points'])} points finished, {summary['seconds'] / 60:.0f} min on "
                  f"this machine. Finding: {summary['finding']}.", "",
                  f"![{study.name}](studies/{study.name}/figures/study.png)", ""]
    return ["## Where each claim holds", "", "Studies (`python -m ablations.study --list`): each point is a paired run "
            "with its seeds; the figure shows each claim's effect with its 95% interval against the axis, points "
            "coloured by outcome.", "", *lines] if lines else []


def comparison_lines(results_dir: Path, run_dir: Path, verdict: dict) -> list[str]:
    """A best-learning-rate comparison: the rates each variant was compared at, the grid's sensitivity figure, and,
    on a longer-budget run, every claim read at both budgets."""
    grid_verdict, lines = verdict, []
    if "budgets" in verdict:
        grid_run = run_dir.parent / verdict["budgets"]["grid_run"]
        grid_verdict = layout.read(grid_run, layout.VERDICT)
        short, longer = verdict["budgets"]["steps"]
        lines += [f"Both budgets (the claims above are at {longer} steps, each variant retrained at its chosen rate on "
                  f"fresh seeds; the grid run at {short} steps: `{grid_run.relative_to(results_dir)}`):", ""]
        lines += [f"- {line}" for line in budgets.describe(verdict["budgets"])] + [""]
    else:
        grid_run = None
    if "learning_rates" in grid_verdict:
        kept = grid_verdict["learning_rates"]
        lines += [learning_rates.describe(kept) + f"; rule: {kept['rule']}.", ""]
        if grid_run is not None:
            lines += [f"![lr_sensitivity]({grid_run.relative_to(results_dir)}/figures/lr_sensitivity.png)", ""]
    return lines


def redecided(results_dir: Path, mistakes) -> list[str]:
    """Every claim of the latest run of each mistake, its recorded outcome (verdict.json) beside the outcome today's
    rules give on the same measurements.json: what a change of rule changed, without retraining or rewriting."""
    from ablations.runner import pair  # the model config of a run needs its corpus (its vocabulary)
    from ablations.runner.config import train_settings
    from ablations.science.verdict import decide

    lines = ["| # | mistake | claim | recorded | today's rules | why (today) |", "|---|---|---|---|---|---|"]
    for spec in mistakes:
        run = latest_runs(results_dir, [spec]).get(spec.name)
        if run is None:
            continue
        saved = layout.read(run, layout.CONFIG)
        config = with_added_keys(saved)
        corpora = pair.variant_corpora(spec, config)
        model_cfg = pair.variant_models(spec, config, corpora, train_settings(config))["correct"]
        recorded = {c["says"]: c["outcome"] for c in layout.read(run, layout.VERDICT)["claims"]}
        for c in decide(spec, layout.read(run, layout.MEASUREMENTS), model_cfg)["claims"]:
            before = recorded.get(c["says"], "(no such claim then)")
            mark = "**" if before != c["outcome"] else ""
            lines.append(f"| {spec.number} | {spec.name} | {c['says']} | {before} | {mark}{c['outcome']}{mark} | "
                         f"{c.get('why', '')} |")
    return lines


FIGURES = ("card", "claims", "loss", "symptom", "loss_by_position", "grad_norms", "lr_sensitivity")  # a run's, in order


def read_suite(results_dir: Path, mistakes) -> tuple[dict, dict, dict]:
    """The runs a suite reports (latest_runs), and by mistake their run_records and verdicts."""
    runs = latest_runs(results_dir, mistakes)
    return (runs, {name: run_record(run) for name, run in runs.items()},
            {name: layout.read(run, layout.VERDICT) for name, run in runs.items()})


def suite_figures(mistakes, configs: dict, verdicts: dict, label: str) -> dict:
    """A suite's Figure 1 ("summary") and its claims figure ("claims") over the mistakes it ran (configs and
    verdicts by mistake, read_suite), titled with the data and the comparison its runs' configs name
    (setup.suite_subject) and `label`, what they are evidence of; empty when no mistake ran."""
    entries = [(spec, verdicts[spec.name], configs[spec.name]) for spec in mistakes if spec.name in verdicts]
    if not entries:
        return {}
    title = f"{suite_subject(configs)}, {label}"
    return {"summary": figures.summary(entries, title), "claims": figures.claims_forest(entries, title)}


def outcome_cell(c: dict | None, decided: dict | None, config: dict | None, label: str) -> str:
    """One claim as one suite reports it, in a table cell: its outcome, the effect with its 95% interval in the data's
    unit, Holm's adjusted p with the outcome that stands after it, and the distance from the boundary (decided:
    the claim as family_decisions gives it); `label` names what the run is evidence of when it is not the table's."""
    if c is None:
        return "not run"
    mark = f"{MARKS[c['outcome']]} {c['outcome']}"
    tail = f"; {label}" if label else ""
    if c["kind"] == "exact":
        return f"{mark} (exact, {c['n']} seeds){tail}"
    if c["kind"] == "none":
        return f"{mark}: {c['why']}{tail}"
    effect = (f"{cell(c['mean'])} [{cell(c['ci'][0])}, {cell(c['ci'][1])}] {c['unit']}" if c["kind"] == "statistical"
              else f"converged share {cell(c['mean'])}")
    after = decided["family_outcome"] if decided else "inconclusive"
    holm = f"Holm p {cell(decided['holm_p'])}" if decided else "Holm p –"
    holm += f" → {after}" if after != c["outcome"] else ""
    firm = decided["firmness"] if decided else c.get("firmness")
    return f"{mark}: {in_data_units(effect, config)}; {holm}; {distance_text(firm)}; n={c['n']}{tail}"


def claims_table(suites: dict[str, Path], mistakes, protocols: dict, protocol_hashes: dict) -> list[str]:
    """Every claim of every mistake, one row each, and one column per suite (a heading -> its results directory):
    the outcome that suite's report gives the claim (outcome_cell; Holm's correction over the report's families at
    its level, as REPORT.md decides them). A table a page can quote whole, so that its numbers are the committed
    runs' and never typed by hand."""
    columns = []
    for heading, results_dir in suites.items():
        _, configs, verdicts = read_suite(results_dir, mistakes)
        level = family_level(configs, protocols, protocol_hashes)
        label = evidence_label(configs, protocol_hashes) if configs else ""
        decided = {(spec.name, d["says"]): d for pairs in family_decisions(mistakes, verdicts, level).values()
                   for spec, d in pairs}
        columns.append((heading, configs, verdicts, decided, label))
    headings = [f"{heading} ({label or 'no runs'})" for heading, _, _, _, label in columns]
    lines = ["| # | mistake | claim | by | " + " | ".join(headings) + " |",
             "|---" * (4 + len(columns)) + "|"]
    for spec in mistakes:
        for claim in spec.claims:
            cells = []
            for _, configs, verdicts, decided, label in columns:
                recorded = {c["says"]: c for c in verdicts.get(spec.name, {}).get("claims", [])}
                c, config = recorded.get(claim.says), configs.get(spec.name)
                own = protocol_of(config, protocol_hashes)[0] if config else label
                cells.append(outcome_cell(c, decided.get((spec.name, claim.says)), config,
                                          "" if own == label else own))
            says = claim.says.replace("<", "\\<")  # "<unk>" is text, not an HTML tag
            lines.append(f"| {spec.number} | {spec.name} | {says} | {claim.source} | " + " | ".join(cells) + " |")
    return lines


def write_markdown(results_dir: Path, mistakes, studies, protocols: dict, protocol_hashes: dict) -> Path:
    """REPORT.md (and the claims figure of every mistake) under results_dir, from its finished runs; protocols:
    the declared ones by name, protocol_hashes: today's hash of each (protocol, mistake), which a run made under a
    protocol must still have to count as confirmatory."""
    runs, configs, verdicts = read_suite(results_dir, mistakes)
    glance, rows, sections = [], [], []
    for spec in mistakes:
        if spec.name not in runs:
            glance.append(f"- **{spec.number}. {spec.name}**: not run")
            continue
        run, verdict = runs[spec.name], verdicts[spec.name]
        config = configs[spec.name]
        glance.append(f"- **{spec.number}. {spec.name}**: {verdict['verdict']}")
        rows += [in_data_units(claim_row(spec, c), config) for c in verdict["claims"]]
        relative = run.relative_to(results_dir)
        sections += [f"## Mistake {spec.number}: {spec.title} — {verdict['verdict']}", "", f"Run: `{relative}`.", ""]
        sections += [f"- {claim_line(c, config)}" for c in verdict["claims"]] + [""]
        sections += comparison_lines(results_dir, run, verdict)
        sections += measurement_table(layout.read(run, layout.MEASUREMENTS))
        drawn = [name for name in FIGURES if (layout.figures_dir(run) / f"{name}.png").exists()]
        sections += [f"![{name}]({relative}/figures/{name}.png)" for name in drawn]
        sections.append("")
    figure = []
    label = evidence_label(configs, protocol_hashes) if configs else "no runs"
    drawn = suite_figures(mistakes, configs, verdicts, label)
    for name, caption in (("summary", "each mistake's headline claim"), ("claims", "every claim")):
        if drawn.get(name) is not None:
            figures.save(drawn[name], results_dir, name)
            figure += [f"![{caption}](figures/{name}.png)", ""]
    lines = [f"# Transformer mistakes: paired ablation report ({label})", "",
             *setup_lines(results_dir, runs, configs, protocol_hashes, protocols), HOW_TO_READ, "",
             "## At a glance", "", *glance,
             "", *figure, "## Every claim", "", TABLE_HEAD, "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
             *family_section(mistakes, verdicts, family_level(configs, protocols, protocol_hashes)),
             *literature_section(mistakes, verdicts, configs, protocol_hashes),
             *study_section(results_dir, studies), *sections]
    path = results_dir / REPORT
    path.write_text("\n".join(lines))
    return path
