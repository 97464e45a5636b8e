"""Multi-host start-up: `jax.distributed.initialize` from the environment, or nothing.

    from mmada_jax import distributed
    distributed.initialize()        # first thing in a program, before any JAX computation

Explicit cluster (any platform, e.g. CPU processes on one machine or GPU nodes):
    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0
    [JAX_LOCAL_DEVICE_IDS=0,1]
Auto-detected cluster (Cloud TPU pod slices, Slurm, Open MPI): JAX finds everything itself;
this module calls `jax.distributed.initialize()` without arguments when it sees such an
environment (TPU_WORKER_HOSTNAMES with several hosts, MEGASCALE_COORDINATOR_ADDRESS,
SLURM_NTASKS > 1, OMPI_COMM_WORLD_SIZE > 1) or when MMADA_DISTRIBUTED=1.
Otherwise (one process) it does nothing. MMADA_DISTRIBUTED=0 forces the single-process path.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import jax

_ENV_ADDR, _ENV_N, _ENV_ID, _ENV_LOCAL = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES",
                                          "JAX_PROCESS_ID", "JAX_LOCAL_DEVICE_IDS")
_state = {"initialized": False}


def _int_env(name: str, env) -> Optional[int]:
    v = env.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name}={v!r} is not an integer") from None


def _auto_cluster(env) -> bool:
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]
    if len(hosts) > 1 or env.get("MEGASCALE_COORDINATOR_ADDRESS"):
        return True
    for var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        n = _int_env(var, env) if env.get(var, "").isdigit() else None
        if n is not None and n > 1:
            return True
    return False


def cluster_args(env=None) -> Optional[dict]:
    """The keyword arguments for jax.distributed.initialize, {} for auto-detection, or None for
    a single process. Raises ValueError on a half-specified explicit cluster."""
    env = os.environ if env is None else env
    mode = env.get("MMADA_DISTRIBUTED", "").strip().lower()
    if mode in ("0", "false", "no", "off"):
        return None
    addr, n, pid = env.get(_ENV_ADDR) or None, _int_env(_ENV_N, env), _int_env(_ENV_ID, env)
    if addr or n is not None or pid is not None:
        missing = [k for k, v in ((_ENV_ADDR, addr), (_ENV_N, n), (_ENV_ID, pid)) if v is None]
        if missing:
            raise ValueError(f"multi-process launch: {', '.join(missing)} not set (set "
                             f"{_ENV_ADDR}, {_ENV_N} and {_ENV_ID} together)")
        if not 0 <= pid < n:
            raise ValueError(f"{_ENV_ID}={pid} is outside [0, {_ENV_N}={n})")
        args = dict(coordinator_address=addr, num_processes=n, process_id=pid)
        local = env.get(_ENV_LOCAL)
        if local:
            args["local_device_ids"] = [int(x) for x in local.split(",") if x.strip()]
        return args
    if mode in ("1", "true", "yes", "on", "auto") or _auto_cluster(env):
        return {}
    return None


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None,
               local_device_ids: Optional[Sequence[int]] = None, env=None) -> bool:
    """Join the cluster (explicit arguments win over the environment). Returns True when this
    is a multi-process run. Safe to call twice."""
    # jax's own flag: `python -m mmada_jax.distributed` runs this file as __main__, a second
    # module object whose _state does not see the first initialization.
    if _state["initialized"] or jax.distributed.is_initialized():
        return jax.process_count() > 1
    if coordinator_address is not None or num_processes is not None or process_id is not None:
        args = dict(coordinator_address=coordinator_address, num_processes=num_processes,
                    process_id=process_id)
        if local_device_ids is not None:
            args["local_device_ids"] = list(local_device_ids)
    else:
        args = cluster_args(env)
    if args is None:
        return False
    if args.get("num_processes") == 1:
        return False
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms.split(",")[0] == "cpu":
        # CPU collectives across processes (the default in recent JAX; explicit for clarity).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**args)
    _state["initialized"] = True
    if jax.process_index() == 0:
        print(f"distributed: {jax.process_count()} processes, {jax.device_count()} devices "
              f"({jax.local_device_count()} local)", flush=True)
    return jax.process_count() > 1


def is_main() -> bool:
    return jax.process_index() == 0


def main(argv=None) -> int:
    """`python -m mmada_jax.distributed train ARGS...`: initialize, then run mmada_jax.train."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "train":
        print("usage: python -m mmada_jax.distributed train --config ... --workdir ...",
              file=sys.stderr)
        return 1
    initialize()
    from absl import app
    from mmada_jax import train as train_cli
    sys.argv = ["mmada_jax.train"] + argv[1:]
    app.run(train_cli.main)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
