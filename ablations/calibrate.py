"""`python -m ablations.calibrate [--out FILE.jsonl | --table FILE.jsonl]`: the measurements behind the thresholds
of `python -m ablations.check` (docs/auditing-a-model.md, "Thresholds"): every detector's value on the lab's GPT,
correct and with each mistake switched on alone, as one markdown table. --out also writes each reading as one
JSON line; --table re-prints the table from such a file."""
from __future__ import annotations

import contextlib
import json
import sys

from ablations import catalogue, cli
from ablations.audit import calibration
from ablations.errors import UsageError


def calibrate(argv: list[str]) -> int:
    parser = cli.Parser("python -m ablations.calibrate", __doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", metavar="FILE.jsonl", help="also write every reading (refuses an existing file)")
    group.add_argument("--table", metavar="FILE.jsonl", help="re-print the table from an earlier --out")
    args = parser.parse_args(argv)
    try:
        if args.table:
            with open(args.table, encoding="utf-8") as file:
                print(calibration.table([json.loads(line) for line in file], catalogue.DETECTORS))
            return 0
        # "x": an earlier calibration is never overwritten; opened before the hours of measuring, not after
        with open(args.out, "x", encoding="utf-8") if args.out else contextlib.nullcontext() as out:
            rows = calibration.measure(catalogue.DETECTORS, out)
    except FileExistsError:
        raise UsageError(f"--out {args.out} exists; calibrations are never overwritten, name a new file") from None
    except OSError as error:
        raise UsageError(f"cannot use {args.table or args.out} ({error.strerror or error})") from None
    print(calibration.table(rows, catalogue.DETECTORS))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(calibrate, argv)


if __name__ == "__main__":
    sys.exit(main())
