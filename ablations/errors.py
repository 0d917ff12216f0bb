"""The lab's own error for bad input: every command reports it in one line, before anything is written or compiled."""


class UsageError(ValueError):
    """A bad command line, config or argument; the message is the one line printed after `error: `."""


EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130  # every command's exit status (ablations/cli.py)
