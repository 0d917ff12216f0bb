"""Every committed run is still the run its command names: composing the suite, the Shakespeare suite and every
study point today gives the directory the committed results sit in (or, for the suite's older runs, the committed
reference a rerun is compared with). A change to the config's schema, presets or catalogue that moved a hash would
orphan committed results; this fails first."""
from pathlib import Path

import pytest
from conftest import ROOT

from ablations import catalogue
from ablations.runner.config import composed, resolve
from ablations.runner.execution import longer_budget_run
from ablations.runner.identity import run_directory
from ablations.runner.reference import reference_run
from ablations.runner.study_points import composed_points

RESULTS = ROOT / "results"


def committed(path: Path) -> bool:
    return (ROOT / path / "verdict.json").is_file()


def needs_committed(directory: Path) -> None:
    """A mistake or study added after the committed results has none yet: nothing to keep."""
    if not directory.is_dir():
        pytest.skip(f"nothing committed under {directory.relative_to(ROOT)}")


@pytest.mark.parametrize("spec", catalogue.MISTAKES, ids=lambda spec: spec.name)
def test_the_shakespeare_suite_composes_to_its_committed_run_directories(spec):
    needs_committed(RESULTS / "shakespeare" / spec.name)
    resolved = resolve(composed([f"mistake={spec.name}", "data=shakespeare", "results_dir=results/shakespeare"]))
    assert committed(run_directory(resolved)), run_directory(resolved)


@pytest.mark.parametrize("spec", catalogue.MISTAKES, ids=lambda spec: spec.name)
def test_a_rerun_of_the_suite_finds_its_committed_reference(spec):
    needs_committed(RESULTS / spec.name)
    resolved = resolve(composed([f"mistake={spec.name}"]))
    found = reference_run(ROOT / run_directory(resolved), resolved)
    assert found is not None and found[0].is_relative_to(RESULTS), found  # the suite's own, or a study point's


@pytest.mark.parametrize("study", catalogue.STUDIES, ids=lambda study: study.name)
def test_every_study_point_composes_to_its_committed_run_directory(study):
    needs_committed(RESULTS / "studies" / study.name)
    for at, resolved in composed_points(study, study.axes, ["results_dir=results"]):
        assert committed(run_directory(resolved)), (at, run_directory(resolved))


@pytest.mark.parametrize("data", ["synthetic", "shakespeare"])
@pytest.mark.parametrize("spec", catalogue.MISTAKES, ids=lambda spec: spec.name)
def test_every_committed_best_lr_run_is_its_grid_or_the_longer_budget_that_follows_it(spec, data):
    results = RESULTS / "best_lr" / ("shakespeare" if data == "shakespeare" else "")
    needs_committed(results / spec.name)
    resolved = resolve(composed([f"mistake={spec.name}", f"data={data}", "comparison=best_lr",
                                 f"results_dir={results.relative_to(ROOT)}"]))
    grid = run_directory(resolved)
    assert committed(grid), grid
    longer = longer_budget_run({**resolved, "results_dir": str(RESULTS.parent / resolved["results_dir"])})
    expected = {grid.name, run_directory(longer).name}
    found = {p.parent.name for p in (results / spec.name).glob("*/verdict.json")}
    assert found <= expected, found - expected  # nothing committed there that the command would not make


def test_every_committed_confirmatory_run_still_counts_and_all_come_from_one_clean_commit():
    """A catalogue edit that moved a mistake's protocol hash would silently demote its committed confirmatory runs to
    exploratory; the protocol asks that they come from one clean commit."""
    from ablations.reporting.setup import protocol_of, run_record

    for protocol in catalogue.PROTOCOLS:
        runs = sorted(p.parent for p in (RESULTS / protocol.name).glob("**/verdict.json"))
        needs_committed(RESULTS / protocol.name)
        records = [run_record(run) for run in runs]
        assert records
        for run, record in zip(runs, records):
            assert protocol_of(record, catalogue.PROTOCOL_HASHES) == (protocol.name, None), run
        assert len({record["environment"]["git_commit"] for record in records}) == 1
