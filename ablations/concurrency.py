"""A pair's variants train at once, one thread each; a signal or an error in one stops both at their next
checkpoint."""
from __future__ import annotations

import concurrent.futures
import signal


class StopRequest:
    """Ctrl-C / SIGTERM (or an error in the paired variant) set a flag; each training loop checkpoints at
    the end of its chunk and stops cleanly. Installed in the main thread, read by the training threads."""

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


def train_concurrently(jobs, stop: StopRequest) -> list:
    """Run the variants' training jobs at once, one thread each: the suite's small models keep about
    one core busy per op, so on 2 cores a pair trains in ~55% of the sequential time. An error in one
    job stops the other at its next chunk (checkpointed); the error is raised, not the stop it caused."""
    def guarded(job):
        try:
            return job()
        except BaseException as error:
            stop.signal = stop.signal or f"the error in the paired variant ({type(error).__name__})"
            raise

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(guarded, job) for job in jobs]
    errors = sorted((f.exception() for f in futures if f.exception()), key=lambda e: isinstance(e, Stopped))
    if errors:
        raise errors[0]
    return [f.result() for f in futures]
