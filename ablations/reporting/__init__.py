"""Figures, REPORT.md and the W&B report, drawn from saved results. The figure writers here import matplotlib
when first called, so a command that may draw (run, study) pays for it only once it does."""


def write_figures(spec, run_dir):
    """Every figure of one run of `spec` (ablations.reporting.figures.write_figures)."""
    from ablations.reporting import figures

    return figures.write_figures(spec, run_dir)


def write_study_figure(spec, directory):
    """The figure of a study of `spec` from its study.json (ablations.reporting.study_figure.write_study_figure)."""
    from ablations.reporting import study_figure

    return study_figure.write_study_figure(spec, directory)
