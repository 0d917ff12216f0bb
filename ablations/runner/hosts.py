"""The processes of a run: one, or several under `distributed.enabled=true` (multi-host, `jax.distributed`).
Every process trains (each batch is split over all processes' devices, gradients are reduced across them);
only process 0 writes files, takes the run directory's lock, logs to W&B and measures, as levanter and
MaxText do."""
from __future__ import annotations

import socket
import time

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(settings: dict) -> None:
    """Join the run's processes. Coordinator address, process count and id: from the config, or (null) from
    the cluster's environment (SLURM, Open MPI, Cloud TPU; JAX_COORDINATOR_ADDRESS). CPU devices reduce
    across processes over gloo."""
    if jax.distributed.is_initialized():  # a sweep's later job: the processes are joined already
        return
    count, index, timeout = settings["num_processes"], settings["process_id"], settings["timeout_s"]
    for key, value, lowest, nullable in (("num_processes", count, 1, True), ("process_id", index, 0, True),
                                         ("timeout_s", timeout, 1, False)):
        if (value is not None or not nullable) and (type(value) is not int or value < lowest):
            null = ", or null (taken from the cluster's environment)" if nullable else ""
            raise ValueError(f"distributed.{key}={value!r} must be an integer of at least {lowest}{null}")
    if count is not None and index is not None and index >= count:
        raise ValueError(f"distributed.process_id={index} must be below distributed.num_processes={count}")
    if settings["coordinator_address"] is not None and index:  # process 0 serves the address; the others dial it
        wait_for_coordinator(settings["coordinator_address"], timeout)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=settings["coordinator_address"], num_processes=count,
                                   process_id=index, initialization_timeout=timeout)
    except (ValueError, RuntimeError) as error:  # e.g. no cluster environment to take null settings from
        raise ValueError(f"distributed.enabled=true: {str(error).splitlines()[0]} (give "
                         "distributed.coordinator_address=host:port, num_processes and process_id)") from None


def wait_for_coordinator(address: str, timeout: int) -> None:
    """Wait until process 0's coordinator accepts connections, at most `timeout` seconds: jax.distributed ends
    the process with a fatal error and a C++ stack trace when it cannot reach the coordinator, so an address
    that is wrong, or a process 0 that never starts, is told here in one line instead."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"distributed.coordinator_address={address!r} must be host:port, e.g. 10.0.0.1:1234")
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise ValueError(f"distributed.coordinator_address={address}: nothing answered within "
                                 f"distributed.timeout_s={timeout} s ({error.strerror or error}); is process 0 "
                                 "running there?") from None
            time.sleep(0.5)


def writes() -> bool:
    """Whether this process writes results (process 0; the only one without jax.distributed)."""
    return jax.process_index() == 0


def concurrent_programs(wanted: int) -> int:
    """How many compiled programs may run at once from separate threads: across processes, the programs
    that communicate must start in the same order on every process, so there they take turns."""
    return wanted if jax.process_count() == 1 else 1


def local_copy(tree):
    """A tree of replicated global arrays as this process's own arrays, so that process 0 can measure them
    alone (a computation on global arrays needs every process)."""
    return jax.device_get(tree) if jax.process_count() > 1 else tree


def any_process(flag: bool) -> bool:
    """Whether `flag` holds on any process: a signal or a failure seen by one process is every process's, so
    that all of them stop (or go on) at the same chunk and none waits forever in a collective."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def barrier(name: str) -> None:
    """Every process waits here for the others (e.g. for process 0's measurements before the next run)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)
