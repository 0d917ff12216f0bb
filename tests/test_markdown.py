"""REPORT.md's sections that need no training (ablations/reporting/markdown.py): the claims against the literature,
the families, and the claims table the README quotes."""
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from ablations import catalogue
from ablations.catalogue.schema import Finding
from ablations import report
from ablations.reporting.markdown import SEED_PAGE, agreement, literature_section, outcome_cell

ROOT = Path(__file__).resolve().parents[1]
QUOTED_TABLE = re.compile(r"<!-- table: python -m ablations\.report --results (\S+) --table -->\n(.*?)\n"
                          r"<!-- end of table -->", re.S)


def test_agreement_reads_the_labs_outcome_against_the_sources_prediction():
    assert agreement("reproduced", "reproduced") == "agrees" and agreement("holds", "reproduced") == "agrees"
    assert agreement("opposite", "reproduced") == "disagrees" and agreement("no effect", "no effect") == "agrees"
    assert agreement("inconclusive", "reproduced") == "undecided"
    assert agreement("reproduced", None) == "no prediction"


def verdict_of(spec, outcomes):
    return {"claims": [{"says": c.says, "source": c.source, "outcome": o} for c, o in zip(spec.claims, outcomes)]}


def test_each_page_claim_and_each_finding_is_a_row_and_a_disagreement_says_why_or_unexplained():
    post_norm, norm_axis = catalogue.lookup("post_norm"), catalogue.lookup("norm_wrong_axis")
    unexplained = dataclasses.replace(post_norm, literature=(
        dataclasses.replace(post_norm.literature[0], explained=""),))
    verdicts = {"post_norm": verdict_of(post_norm, ["opposite"]),
                "norm_wrong_axis": verdict_of(norm_axis, ["holds", "reproduced", "reproduced"])}
    configs = {name: {"mistake": name} for name in verdicts}
    rows = [line for line in literature_section([unexplained, norm_axis], verdicts, configs, {})
            if line.startswith("| 1 ") or line.startswith("| 5 ")]
    assert len(rows) == 1  # norm_wrong_axis: lab claims only, and no source bears on them
    assert "Xiong et al. 2020" in rows[0] and "| disagrees | unexplained |" in rows[0]
    assert "(exploratory)" in rows[0]
    (row,) = [line for line in literature_section([post_norm], {"post_norm": verdicts["post_norm"]}, configs, {})
              if line.startswith("| 1 ")]
    assert post_norm.literature[0].explained and row.endswith(f"| disagrees | {post_norm.literature[0].explained} |")
    reproduced = {"post_norm": verdict_of(post_norm, ["reproduced"])}
    (agreeing,) = [line for line in literature_section([post_norm], reproduced, configs, {}) if line.startswith("| 1 ")]
    assert agreeing.endswith("| agrees |  |")  # an explanation shows only where the lab disagrees
    no_final_norm = catalogue.lookup("no_final_norm")
    (page_row,) = [line for line in literature_section([no_final_norm], {"no_final_norm": verdict_of(
        no_final_norm, ["inconclusive"])}, {"no_final_norm": {"mistake": "no_final_norm"}}, {})
        if line.startswith("| 6 ")]
    assert SEED_PAGE in page_row and "| undecided |" in page_row


def test_a_finding_must_name_one_of_the_mistakes_claims():
    spec = catalogue.lookup("post_norm")
    with pytest.raises(ValueError, match="names no claim"):
        dataclasses.replace(spec, literature=(Finding("a claim it never makes", "Someone 2020", "something"),))


def test_the_families_use_the_protocols_level_only_when_every_run_is_confirmatory_under_it():
    from ablations.reporting.markdown import family_level
    from ablations.science.firmness import FAMILY_LEVEL

    strict = dataclasses.replace(catalogue.PROTOCOLS_BY_NAME["confirmatory"], family_level=0.01)
    protocols = {"confirmatory": strict}
    hashes = {("confirmatory", "no_residual"): "abc", ("confirmatory", "narrow_ffn"): "def"}
    clean = {"environment": {"git_dirty": False}, "protocol": "confirmatory"}
    confirmatory = {"no_residual": {**clean, "mistake": "no_residual", "protocol_hash": "abc"},
                    "narrow_ffn": {**clean, "mistake": "narrow_ffn", "protocol_hash": "def"}}
    assert family_level(confirmatory, protocols, hashes) == 0.01
    changed = {**confirmatory, "narrow_ffn": {**confirmatory["narrow_ffn"], "protocol_hash": "old"}}
    assert family_level(changed, protocols, hashes) == FAMILY_LEVEL  # one run is exploratory: the lab's default
    exploratory = {"no_residual": {"mistake": "no_residual", "environment": {"git_dirty": False}}}
    assert family_level(exploratory, protocols, hashes) == FAMILY_LEVEL


def test_a_recorded_command_regenerates_from_the_repository_root(tmp_path, monkeypatch):
    from ablations.reporting.setup import here

    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "suite").mkdir(parents=True)
    made_in_a_worktree = f"python -m ablations.run mistake=x results_dir={tmp_path / 'results' / 'suite'} seeds=2"
    assert here(made_in_a_worktree, Path("results/suite")) == ("python -m ablations.run mistake=x "
                                                                "results_dir=results/suite seeds=2")
    elsewhere = "python -m ablations.run mistake=x results_dir=/somewhere/else"
    assert here(elsewhere, Path("results/suite")) == elsewhere
    assert here("python -m ablations.run results_dir=runs", Path("results/suite")).endswith("results_dir=runs")


def test_a_claims_cell_gives_the_outcome_interval_holm_distance_and_seeds_and_what_holm_moved():
    stated = {"kind": "statistical", "outcome": "reproduced", "mean": 0.25, "ci": [0.15, 0.35], "unit": "nats/token",
              "n": 8}
    characters = {"data": {"tokenizer": "char"}}
    moved = {"family_outcome": "inconclusive", "holm_p": 0.07, "firmness": {"distance_se": 0.5, "fragile": True}}
    assert outcome_cell(stated, moved, characters, "") == \
        "🟧 reproduced: 0.25 [0.15, 0.35] nats/char; Holm p 0.07 → inconclusive; 0.5 SE ⚠ fragile; n=8"
    stands = {"family_outcome": "reproduced", "holm_p": 0.001, "firmness": {"distance_se": 12.0, "fragile": False}}
    assert outcome_cell(stated, stands, characters, "exploratory") == \
        "🟧 reproduced: 0.25 [0.15, 0.35] nats/char; Holm p 0.001; 12 SE; n=8; exploratory"
    assert outcome_cell({"kind": "exact", "outcome": "fails", "n": 8}, None, characters, "") == \
        "🟩 fails (exact, 8 seeds)"
    assert outcome_cell(None, None, None, "") == "not run"


def test_the_claims_table_has_a_row_per_catalogue_claim_and_a_column_per_data_preset(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert report.main(["--results", "results/best_lr", "--table"]) == 0
    head, rule, *rows = capsys.readouterr().out.splitlines()
    assert head.endswith("| the synthetic copy task (exploratory) | tiny Shakespeare (exploratory) |")
    assert len(rows) == sum(len(spec.claims) for spec in catalogue.MISTAKES)
    assert all(row.count(" | ") == 5 and "not run" not in row for row in rows)  # both suites ran every mistake


def test_every_table_a_page_quotes_is_the_one_its_command_prints_from_the_committed_runs(capsys, monkeypatch):
    pages = [ROOT / "README.md", ROOT / "results" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    quoted = [found for page in pages for found in QUOTED_TABLE.findall(page.read_text())]
    assert quoted  # results/README.md quotes the confirmatory suite's
    monkeypatch.chdir(ROOT)
    for results, table in quoted:
        assert report.main(["--results", results, "--table"]) == 0
        assert capsys.readouterr().out.rstrip("\n") == table, f"regenerate: python -m ablations.report " \
                                                               f"--results {results} --table"


def test_the_setup_names_the_machine_of_each_mistake_when_runs_come_from_different_cpus(tmp_path):
    from ablations.reporting.markdown import read_suite
    from ablations.reporting.setup import setup_lines
    for name in ("narrow_ffn", "no_residual"):  # the json records of two committed runs, without their figures
        for path in (ROOT / "results/confirmatory" / name).rglob("*.json"):
            copy = tmp_path / path.relative_to(ROOT / "results/confirmatory")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, copy)
    for path in (tmp_path / "no_residual").rglob("environment.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "cpu_model": "AMD EPYC"}))
    runs, configs, _ = read_suite(tmp_path, [catalogue.lookup("narrow_ffn"), catalogue.lookup("no_residual")])
    machine = next(line for line in setup_lines(tmp_path, runs, configs, {}, {}) if line.startswith("- **Machine**"))
    assert "AMD EPYC, 2 cores" in machine and "(no_residual)" in machine and "Xeon" in machine, machine
    assert "(the others)" in machine or "(narrow_ffn)" in machine, machine
