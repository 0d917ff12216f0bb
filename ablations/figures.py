"""`python -m ablations.figures <run_dir> [<run_dir> ...]`: redraw every figure of finished runs from their saved
metrics (never retrains), each as PNG and SVG under <run_dir>/figures/."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import sys
from pathlib import Path

from ablations import catalogue, paths
from ablations.reporting.figures import write_figures
from ablations.errors import UsageError
from ablations.runner import layout


def figures(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.figures", __doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="run_dir", help="a finished run's directory")
    args = parser.parse_args(argv)
    for directory in args.run_dirs:  # every one checked before any figure is drawn
        if not layout.is_complete(directory):
            raise UsageError(f"{directory} is not a finished run directory (no {layout.VERDICT}); give "
                             "<results_dir>/<mistake>/<run>/")
        catalogue.lookup(layout.read(directory, layout.CONFIG)["mistake"])  # a mistake this lab knows
        paths.writable_directory(layout.figures_dir(directory), "run_dir", "results/<mistake>/<run>")
    for directory in args.run_dirs:
        spec = catalogue.lookup(layout.read(directory, layout.CONFIG)["mistake"])
        for path in write_figures(spec, directory):
            print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(figures, argv)


if __name__ == "__main__":
    sys.exit(main())
