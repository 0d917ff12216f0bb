"""`python -m ablations.study --list` names the studies; `python -m ablations.study NAME [key=value ...]` runs one.

A study (declared in its mistake's catalogue file, `ablations/catalogue/`) is a grid over one or two config keys
for one mistake; every point is a paired run with its seeds, in `<results_dir>/studies/NAME/<mistake>/<hash>/`,
so an interrupted study resumes where it stopped and finished points are reused, never overwritten.
`key=value` applies to every point; `AXIS=[v1,v2,...]` replaces an axis's values. The study's summary,
`study.json`, and its figure are rewritten from the points' verdicts after every point."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import sys

from hydra.errors import HydraException

from ablations import catalogue
from ablations.errors import UsageError
from ablations.reporting import write_figures, write_study_figure
from ablations.runner import study_points


def study(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.study", __doc__)
    parser.add_argument("--list", action="store_true", help="name the studies and what each asks")
    parser.add_argument("name", nargs="?", help="the study to run")
    parser.add_argument("overrides", nargs="*", help="key=value for every point; AXIS=[v1,v2] replaces an axis")
    args = parser.parse_args(argv)
    if args.list or not args.name:
        print(study_points.listing(catalogue.STUDIES))
        return 0
    catalogue.register_config()
    try:
        chosen = catalogue.study(args.name)
        spec = catalogue.lookup(chosen.mistake)
        axes, configs = study_points.prepare(spec, chosen, args.overrides)
    except (ValueError, HydraException) as error:  # unknown study or key, a bad value, Hydra's parse errors
        raise UsageError(str(error)) from None
    study_points.run_study(spec, chosen, axes, configs, write_figures, write_study_figure)
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(study, argv)


if __name__ == "__main__":
    sys.exit(main())
