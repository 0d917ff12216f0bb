"""`python -m ablations.calibrate [--out FILE.jsonl | --table FILE.jsonl]`: the measurements behind the thresholds
of `python -m ablations.check` (docs/auditing-a-model.md, "Thresholds"): every detector's value on the lab's GPT
and on the zoo of independent implementations (ablations/audit/zoo), correct and with each mistake planted alone, as
markdown tables, with the leave-one-architecture-out check. --out also writes each reading as one JSON line;
--table re-prints the tables from such a file."""
from __future__ import annotations

from ablations import cli  # first: a Ctrl-C while the rest imports is one line (ablations/cli.py)
import contextlib
import json
import sys

from ablations import catalogue, paths
from ablations.audit import calibration, zoo
from ablations.errors import UsageError


# what the tables read of a row
ROW_KEYS = ("architecture", "model", "mistake", "d_model", "dtype", "seed", "status", "value", "built_in")


def read_table(path) -> list[dict]:
    """An earlier --out's rows, each checked: one line naming the file, the line and what is wrong."""
    rows = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"--table {path} line {number} is not JSON ({error.msg}); give a file written by "
                                 "--out") from None
            missing = [key for key in ROW_KEYS if not isinstance(row, dict) or key not in row]
            if missing:
                raise UsageError(f"--table {path} line {number} is not a calibration reading (no "
                                 f"{', '.join(missing)}); give a file written by --out")
            rows.append(row)
    if not rows:
        raise UsageError(f"--table {path} holds no readings; give a file written by --out")
    return rows


def calibrate(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.calibrate", __doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", metavar="FILE.jsonl", help="also write every reading (refuses an existing file)")
    group.add_argument("--table", metavar="FILE.jsonl", help="re-print the table from an earlier --out")
    args = parser.parse_args(argv)
    if args.table is not None:
        try:
            rows = read_table(paths.readable_file(args.table, "--table", "calibration.jsonl"))
        except UnicodeDecodeError:
            raise UsageError(f"--table {args.table} is not UTF-8 text; give a file written by --out") from None
        print(calibration.report(rows, catalogue.DETECTORS))
        return 0
    if args.out is not None:  # an earlier calibration is never overwritten; checked before the hours of measuring
        paths.writable_file(args.out, "--out", "calibration.jsonl", exists_ok=False)
    members = zoo.members()
    try:
        with open(args.out, "x", encoding="utf-8") if args.out else contextlib.nullcontext() as out:
            rows = calibration.measure(catalogue.DETECTORS, out, members)
    except OSError as error:
        cli.fail(f"cannot write --out {args.out} ({error.strerror or error})", cli.EXIT_FAILED)
    print(calibration.report(rows, catalogue.DETECTORS))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(calibrate, argv)


if __name__ == "__main__":
    sys.exit(main())
