"""What every command of the lab does with bad input and with a stop, and the one argparse style of the commands
that are not Hydra apps (study, check, calibrate, report, figures, benchmark, protocol).

Exit status, the same for all eight commands: 0 done; 1 the work ran and failed (a run that failed, a mistake
that `check` detected); 2 a usage error, reported as one line on stderr (`error: ...`, naming the bad value and
the valid choices) before anything is written or compiled; 130 stopped by Ctrl-C or SIGTERM, one line, nothing
finished lost (the same command resumes). A traceback is only ever a bug in the lab.

Each command imports this module first: from then on a stop while the rest of the command is still importing
(JAX, Hydra: seconds) is one line too (`exit_while_starting`)."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import NoReturn

from ablations.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose two-line usage error becomes the lab's one line."""

    def __init__(self, prog: str, doc: str, **kwargs):
        super().__init__(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                         allow_abbrev=False, **kwargs)  # --config is not --configs

    def error(self, message):
        raise UsageError(message)


def one_line(error: BaseException | str) -> str:
    text = str(error)
    return text.splitlines()[0] if text.strip() else type(error).__name__


def fail(error: BaseException | str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `error: <the first line>` on stderr and exit with `code`."""
    print(f"error: {one_line(error)}", file=sys.stderr)
    raise SystemExit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python would raise KeyboardInterrupt for Ctrl-C, so that both stop the same way."""


def raise_terminated(signum, frame):
    raise Terminated


def usage_errors() -> tuple[type, ...]:
    """The lab's own errors for bad input (data/ cannot know ablations.errors; imported late: it imports JAX)."""
    from data.sources import DataError

    return UsageError, DataError


def stop_line(name: str) -> str:
    return (f"stopped by {name} before the command finished; what had finished is kept, and the same command "
            "resumes from it")


def exit_while_starting(signum, frame):
    """Ctrl-C or SIGTERM while the command is still importing: nothing is written yet, so the process ends here,
    in one line. (Raising KeyboardInterrupt would not do: an import may be inside a garbage-collection callback of
    JAX's, where Python ignores any exception, and the command would go on.)"""
    os.write(2, f"error: {stop_line('SIGTERM' if signum == signal.SIGTERM else 'Ctrl-C')}\n".encode())
    os._exit(EXIT_INTERRUPTED)


# Only where a command runs as the program (`python -m ablations.<command>`), not where one is merely imported
# (the tests, a notebook): guarded() takes over once the command's main starts.
if Path(sys.argv[0]).resolve().parent == Path(__file__).resolve().parent and \
        threading.current_thread() is threading.main_thread():
    for starting in (signal.SIGINT, signal.SIGTERM):
        signal.signal(starting, exit_while_starting)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Around a whole command: the lab's usage errors become one line and EXIT_USAGE; Ctrl-C or SIGTERM at any
    moment outside training (start-up, compiling, measuring, drawing; training stops at its next checkpoint on
    its own, runner.stopping) becomes one line and EXIT_INTERRUPTED. Whatever had finished is on disk: results
    are written whole or not at all (runner.layout), so the same command resumes."""
    in_main_thread = threading.current_thread() is threading.main_thread()  # where Python lets a handler be set
    handlers = {signal.SIGTERM: raise_terminated}
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a job started in the background ignores Ctrl-C
        handlers[signal.SIGINT] = signal.default_int_handler
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()} if in_main_thread else {}
    try:
        yield
    except KeyboardInterrupt as stop:
        fail(stop_line("SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"), EXIT_INTERRUPTED)
    except Exception as error:
        if isinstance(error, usage_errors()):
            fail(error)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(command: Callable[[list[str]], int | None], argv: list[str] | None = None) -> int:
    """command(argv) -> exit status (None: 0), under `guarded`. Each argparse command module's `main(argv=None)`
    returns this, and `python -m` exits with it."""
    try:
        with guarded():
            return command(sys.argv[1:] if argv is None else argv) or 0
    except SystemExit as stop:  # argparse's --help (0), `fail`, or sys.exit("error: ...") inside the command
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        return stop.code if isinstance(stop.code, int) else EXIT_FAILED if stop.code else 0
