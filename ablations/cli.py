"""The one command-line style of the lab's own commands that are not Hydra apps (study, check, calibrate, report,
figures, benchmark): argparse, with a usage error of any kind reported as one line on stderr (`error: ...`, no
traceback) and exit status 2, argparse's own code for usage errors."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ablations.errors import UsageError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose two-line usage error becomes the lab's one line."""

    def __init__(self, prog: str, doc: str, **kwargs):
        super().__init__(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def error(self, message):
        raise UsageError(message)


def run(command: Callable[[list[str]], int | None], argv: list[str] | None = None) -> int:
    """command(argv) -> exit status (None: 0); a UsageError becomes one line on stderr and EXIT_USAGE. Each command
    module's `main(argv=None)` returns this, and `python -m` exits with it."""
    try:
        return command(sys.argv[1:] if argv is None else argv) or 0
    except UsageError as error:
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return EXIT_USAGE
