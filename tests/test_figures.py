"""Figures: regenerated from the same data they are the same files, byte for byte, and every figure the lab draws,
from a small run and from the committed results, passes the checks of tests/figure_checks.py (which are shown to
fail on a figure that breaks each of them)."""
import json
from pathlib import Path

import numpy as np
import pytest

from ablations import catalogue
from ablations.reporting import figures, markdown, setup, style, study_figure
from ablations.runner import layout
from figure_checks import problems

RESULTS = Path(__file__).resolve().parents[1] / "results"
COMMITTED = sorted(p.parent for p in RESULTS.rglob(layout.VERDICT) if "studies" not in p.parts)


def small_figure():
    """Lines, a seed band, an image with a colour bar, a legend and text: clip paths, images and glyphs get ids."""
    fig, (left, right) = figures.plt.subplots(1, 2, figsize=(4, 2))
    steps = np.arange(10)
    left.plot(steps, np.exp(-steps / 4), label="correct")
    left.fill_between(steps, np.exp(-steps / 3), np.exp(-steps / 5), alpha=0.2)
    left.legend()
    fig.colorbar(right.imshow(np.arange(12.0).reshape(3, 4)), ax=right)
    right.set_title("grad norm")
    return fig


def test_regenerated_png_and_svg_are_byte_identical(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    paths = figures.save(small_figure(), first, "small") + figures.save(small_figure(), second, "small")
    first_png, first_svg, second_png, second_svg = (path.read_bytes() for path in paths)
    assert b"<dc:date>" not in first_svg
    assert first_svg == second_svg
    assert first_png == second_png


@style.styled
def broken_figure():
    """A figure with one of each defect the checks look for."""
    fig, axes = figures.plt.subplots(1, 3, figsize=(5, 2))
    axes[0].plot(np.arange(10), np.arange(10), label="a line under its own legend")
    axes[0].legend(loc="center")  # over the data
    axes[0].set_xlabel("training step")  # no unit; the y axis has no label at all
    axes[1].set_title("nothing plotted here")
    axes[1].axhline(1.0)  # a reference line is not data
    axes[2].plot([0, 1], [0, 1])
    axes[2].set(xlabel="step (steps)", ylabel="loss (nats)")
    fig.text(0.98, 0.5, "a note that runs well past the right edge of the figure")
    return fig


def test_the_checks_catch_each_defect():
    found = "\n".join(problems(broken_figure()))
    figures.plt.close("all")
    for defect in ("width 5.0 in", "empty panel", "no label", "names no unit", "a legend covers", "outside the figure"):
        assert defect in found, f"the checks missed: {defect}\n{found}"


def checked(named: dict) -> list[str]:
    found = []
    for name, fig in named.items():
        if fig is not None:
            found += [f"{name}: {p}" for p in problems(fig)]
            figures.plt.close(fig)
    return found


def run_problems(run: Path) -> list[str]:
    spec = catalogue.lookup(layout.read(run, layout.CONFIG)["mistake"])
    return [f"{run.relative_to(RESULTS.parent) if RESULTS in run.parents else run}: {p}"
            for p in checked(figures.draw_figures(spec, run))]


SAMPLE = [next(r for r in COMMITTED if r.parent.name == name and r.parent.parent == RESULTS)
          for name in ("position_overflow", "tiny_vocab", "argmax_gradient")]


@pytest.mark.parametrize("run", SAMPLE, ids=lambda r: r.parent.name)
def test_a_committed_run_figures_pass(run):
    assert run_problems(run) == []


@pytest.mark.slow
def test_every_committed_run_figure_passes():
    found = [p for run in COMMITTED for p in run_problems(run)]
    assert found == [], "\n".join(found)


@pytest.mark.slow
def test_every_committed_study_and_suite_figure_passes():
    found = []
    for summary in sorted((RESULTS / "studies").glob("*/study.json")):
        found += [f"{summary.parent.name}: {p}"
                  for p in checked({"study": study_figure.study_figure(json.loads(summary.read_text()))})]
    for suite in sorted({run.parent.parent for run in COMMITTED}):
        runs = markdown.latest_runs(suite, catalogue.MISTAKES).values()
        entries = [(layout.read(run, layout.VERDICT), setup.run_record(run)) for run in runs]
        found += [f"{suite.name}: {p}" for p in checked({"summary": figures.summary(entries, "All"),
                                                         "claims": figures.claims_forest(entries, "All")})]
    assert found == [], "\n".join(found)


@pytest.mark.slow
def test_a_small_run_figures_pass(tiny_suite):
    found = [p for spec in catalogue.MISTAKES for run in layout.finished_runs(tiny_suite, spec.name)
             for p in run_problems(run)]
    assert found == [], "\n".join(found)
