"""Stopping a pair cleanly: a signal stops every variant at the end of its chunk, after a checkpoint."""
from __future__ import annotations

import signal


class StopRequest:
    """Ctrl-C / SIGTERM set a flag; the pair's training loop checkpoints every variant at the end of the
    chunk and stops cleanly."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self.previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def handle(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Stopped(Exception):
    """Training was stopped by a signal after a checkpoint; the same command resumes it."""
