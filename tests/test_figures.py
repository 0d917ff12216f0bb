"""Figures: regenerated from the same data they are the same files, byte for byte, and every figure the lab draws,
from a small run and from the committed results, passes the checks of tests/figure_checks.py (which are shown to
fail on a figure that breaks each of them)."""
import dataclasses
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


def study(directory: Path):
    summary = study_figure.read_summary(directory)
    return study_figure.study_figure(summary, catalogue.lookup(summary["mistake"]))


def suite_figures(suite: Path) -> dict:
    _, configs, verdicts = markdown.read_suite(suite, catalogue.MISTAKES)
    return markdown.suite_figures(catalogue.MISTAKES, configs, verdicts, "exploratory")


@pytest.mark.slow
def test_every_committed_study_and_suite_figure_passes():
    found = []
    for summary in sorted((RESULTS / "studies").glob("*/study.json")):
        found += [f"{summary.parent.name}: {p}" for p in checked({"study": study(summary.parent)})]
    for suite in sorted({run.parent.parent for run in COMMITTED}):
        found += [f"{suite.name}: {p}" for p in checked(suite_figures(suite))]
    assert found == [], "\n".join(found)


def claim_of(rule, **recorded) -> dict:
    """A recorded statistical claim decided by `rule` (its numbers do not matter to its boundaries)."""
    return {"says": "a claim", "source": "page", "reference": "correct", "kind": "statistical", "outcome": "reproduced",
            "metric": rule.metric, "margin": rule.margin, "unit": rule.unit, "rule": rule.describe(), **recorded}


def test_the_margins_drawn_are_the_boundaries_of_the_rule_that_decided_the_claim():
    from ablations.catalogue.schema import Claim
    from ablations.science.rules import Effect, NoGain
    from ablations.science.verdict import boundaries

    untied = catalogue.lookup("untied_embeddings")  # its second claim: a NoGain rule
    no_gain = next(c for c in untied.claims if isinstance(c.rule, NoGain))
    recorded = claim_of(no_gain.rule, says=no_gain.says, why="")
    assert boundaries(untied, recorded) == (-no_gain.rule.margin,)  # only a gain beyond m decides
    assert figures.margin_text(boundaries(untied, recorded)) == f"margin {-no_gain.rule.margin:+g}"
    narrow = catalogue.lookup("narrow_ffn")
    effect = next(c for c in narrow.claims if isinstance(c.rule, Effect))
    m = effect.rule.margin
    assert boundaries(narrow, claim_of(effect.rule, says=effect.says)) == (-m, m)
    assert figures.margin_text((-m, m)) == f"margin ±{m:g}"
    # the recorded margin, not today's; a reworded claim by its rule's recorded description; no rule, no margins
    assert boundaries(narrow, {**claim_of(effect.rule, says=effect.says), "margin": 0.3}) == (-0.3, 0.3)
    reworded = dataclasses.replace(untied, claims=(Claim("reworded since", no_gain.rule),), literature=())
    assert boundaries(reworded, recorded) == (-no_gain.rule.margin,)
    gone = dataclasses.replace(untied, claims=(), literature=())
    assert boundaries(gone, recorded) == (-no_gain.rule.margin,)  # its recorded description names a NoGain
    assert boundaries(gone, {**recorded, "rule": "a rule no one wrote"}) is None
    assert figures.margin_text(None).startswith("rule not known")


def test_every_committed_claim_gets_its_rules_boundaries():
    """Each statistical claim of the committed results, in a run's verdict or a study's summary, finds the rule that
    decided it: a NoGain claim has its one boundary, every other claim two, at its recorded margin."""
    from ablations.science.verdict import boundaries, decided_by
    from ablations.science.rules import NoGain

    claims = [(catalogue.lookup(layout.read(run, layout.CONFIG)["mistake"]), c) for run in COMMITTED
              for c in layout.read(run, layout.VERDICT)["claims"]]
    for path in sorted((RESULTS / "studies").glob("*/study.json")):
        summary = study_figure.read_summary(path.parent)
        claims += [(catalogue.lookup(summary["mistake"]), c) for p in summary["points"] for c in p.get("claims", [])]
    for spec, c in claims:
        if c["kind"] == "statistical":
            m = c["margin"]
            assert boundaries(spec, c) == ((-m,) if isinstance(decided_by(spec, c), NoGain) else (-m, m)), c["says"]


def test_a_suites_figures_name_its_data_and_comparison():
    synthetic = {"data": {"source": "synthetic"}, "train": {"lr_grid": []}}
    shakespeare = {"data": {"source": "shakespeare"}, "train": {"lr_grid": [1e-3, 1e-2]}}
    follows = {"data": {"source": "shakespeare"}, "train": {"lr_grid": []}, "follows": "abc"}
    assert setup.suite_subject({"a": synthetic}) == "All mistakes on the synthetic copy task, at one learning rate"
    assert setup.suite_subject({"a": shakespeare, "b": follows}) == \
        "All mistakes on tiny Shakespeare, each variant at its best learning rate"
    suite = RESULTS / "best_lr" / "shakespeare"
    drawn = suite_figures(suite)
    for name, fig in drawn.items():
        assert fig.get_suptitle().replace("\n", " ").startswith(
            "All mistakes on tiny Shakespeare, each variant at its best learning rate, exploratory"), name
    width, height = drawn["claims"].get_size_inches()
    assert width == style.DOUBLE and height <= 8.5  # two columns of claims, each on its own axis
    assert len({round(ax.get_position().x0, 2) for ax in drawn["claims"].axes}) == 2
    assert checked(drawn) == []


def test_a_fragile_outcome_says_so_in_its_panel_of_the_claims_figure():
    titles = [ax.get_title(loc="left").replace("\n", " ") for ax in
              suite_figures(RESULTS / "confirmatory" / "shakespeare")["claims"].axes]
    fragile = [title for title in titles if "fragile" in title]
    assert len(fragile) == 1 and fragile[0].startswith("4. untied_embeddings"), titles  # as REPORT.md marks it
    assert "reproduced, fragile: 0.3 SE from its boundary" in fragile[0]


def late_values(ax) -> np.ndarray:
    """The y values of every curve of a loss panel past the first tenth of training."""
    values = []
    for line in ax.lines:
        x, y = (np.asarray(v, float) for v in line.get_data())
        if line.get_transform() is ax.transData and x.size > 1:
            values.append(y[x >= 0.1 * np.nanmax(x)])
    return np.concatenate(values)


def run_named(*parts) -> Path:
    return next(r for r in COMMITTED if r.relative_to(RESULTS).parts[:-1] == parts)


def run_figures(run: Path):
    spec = catalogue.lookup(layout.read(run, layout.CONFIG)["mistake"])
    return figures.draw_figures(spec, run)


def test_loss_panels_that_share_an_axis_show_every_curve_of_both_and_say_where_curves_coincide():
    drawn = run_figures(run_named("shakespeare", "no_residual"))
    fig = drawn["loss"]
    for ax in fig.axes:
        low, high = ax.get_ylim()
        values = late_values(ax)
        assert np.all(values[np.isfinite(values)] >= low) and np.all(values[np.isfinite(values)] <= high)
    labels = [h.get_label() for h in fig.legends[0].legend_handles]
    assert figures.UNCONVERGED in labels and "coincide" not in fig.get_suptitle()
    same = run_figures(run_named("shakespeare", "padding_mask"))["loss"]
    assert "the curves coincide" in same.get_suptitle()
    assert checked(drawn) == [] and checked({"loss": same}) == []


def test_a_loss_figure_that_cuts_early_losses_at_the_top_says_how_high_they_go():
    """The y range leaves out the first tenth of training so the floor band shows; where that hides a loss, the
    legend says so. Confirmatory no_residual: a broken seed starts above its plateau; the Shakespeare suite's: none."""
    cuts = {}
    for run in (run_named("shakespeare", "no_residual"), run_named("confirmatory", "no_residual")):
        fig = run_figures(run)["loss"]
        peak = max(np.nanmax(np.asarray(line.get_ydata(), float)) for ax in fig.axes for line in ax.lines
                   if line.get_transform() is ax.transData and len(line.get_xdata()) > 1)
        cut = [h.get_label() for h in fig.legends[0].legend_handles if h.get_label().startswith("cut at the top")]
        cuts[run.parts[-3]] = cut
        assert cut == ([f"cut at the top: early losses up to {peak:.3g}"]
                       if peak > max(ax.get_ylim()[1] for ax in fig.axes) else []), (run, cut)
        figures.plt.close(fig)
    assert cuts["confirmatory"] and not cuts["shakespeare"], cuts


def test_a_study_legend_names_every_reference_and_its_lines_are_grey():
    fig = study(RESULTS / "studies" / "position_overflow_budget_depth")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"correct", "sinusoidal", "broken"} <= set(labels)
    for handle in fig.legends[0].legend_handles:
        if handle.get_label().startswith("n_layers"):
            r, g, b, _ = figures.plt.matplotlib.colors.to_rgba(handle.get_color())
            assert r == g == b  # a grey, never a variant's colour
    assert checked({"study": fig}) == []


def test_tiny_vocab_figures_keep_each_tokenization_in_its_own_unit():
    grid = next(run for run in COMMITTED if run.parent == RESULTS / "best_lr" / "tiny_vocab"
                and (run / layout.LEARNING_RATES).exists())  # the grid run on the copy task (its floor is known)
    drawn = run_figures(grid)
    labels = [ax.get_ylabel().replace("\n", " ") for ax in drawn["lr_sensitivity"].axes if ax.get_ylabel()]
    assert any(label.startswith("correct:") and "nats/char" in label for label in labels)
    assert any(label.startswith("broken:") and "16-symbol" in label and "nats/char" not in label for label in labels)
    card_lines = [line for ax in drawn["card"].axes for line in ax.lines
                  if line.get_transform() is not ax.transData]  # axhline: a floor drawn across the panel
    assert card_lines == []
    assert checked(drawn) == []


@pytest.mark.slow
def test_a_small_run_figures_pass(tiny_suite):
    found = [p for spec in catalogue.MISTAKES for run in layout.finished_runs(tiny_suite, spec.name)
             for p in run_problems(run)]
    assert found == [], "\n".join(found)
