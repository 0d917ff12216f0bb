"""The lab's own error for bad input: every command reports it in one line, before anything is written or compiled."""


class UsageError(ValueError):
    """A bad command line, config or argument; the message is the one line printed after `error: `."""
