"""The processes of a run: one, or several under `distributed.enabled=true` (multi-host, `jax.distributed`).
Every process trains (each batch is split over all processes' devices, gradients are reduced across them);
only process 0 writes files, takes the run directory's lock, logs to W&B and measures, as levanter and
MaxText do."""
from __future__ import annotations

import jax


def initialize(settings: dict) -> None:
    """Join the run's processes. Coordinator address, process count and id: from the config, or (null) from
    the cluster's environment (SLURM, Open MPI, Cloud TPU; JAX_COORDINATOR_ADDRESS). CPU devices reduce
    across processes over gloo."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=settings["coordinator_address"],
                               num_processes=settings["num_processes"], process_id=settings["process_id"])


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
