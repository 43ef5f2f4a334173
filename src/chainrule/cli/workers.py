"""``chainrule train --workers N``: data-parallel training over MPI, launched by the command.

The command re-runs itself as N ranks under the venv's ``mpiexec`` (``python -m mpi4py -m
chainrule train ...``: a rank that fails then aborts the whole job instead of leaving the
others waiting). The same ranks can be started by hand on a cluster with ``mpiexec -n N
python -m mpi4py -m chainrule train ...``; a rank knows it is one from MPI's environment.

Inside the job only rank 0 touches the run directory and prints; the others take their
settings from it (one broadcast of plain JSON), train on their shards of every global batch,
and keep quiet.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import chainrule as cr

__all__ = ["in_mpi_job", "launch", "share_from_rank0"]

# variables an MPI launcher sets in every rank's environment (Open MPI, MPICH / Hydra, Slurm)
_RANK_ENV = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK")


def in_mpi_job() -> bool:
    """Whether this process was started by ``mpiexec`` (as one rank of a job)."""
    return any(name in os.environ for name in _RANK_ENV)


def _mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    if here.exists():
        return str(here)
    import shutil

    found = shutil.which("mpiexec")
    if found is None:
        raise cr.ChainruleError("--workers needs MPI: pip install 'chainrule[mpi]' "
                                "(mpi4py and Open MPI, with its mpiexec)")
    return found


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def launch(workers: int, argv: list[str]) -> int:
    """Run ``chainrule <argv>`` as ``workers`` MPI ranks; return the job's exit status."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise cr.ChainruleError("--workers needs mpi4py: pip install 'chainrule[mpi]'") from None
    cmd = [_mpiexec(), "-n", str(workers)]
    if workers > (os.cpu_count() or 1):
        cmd.append("--oversubscribe")
    cmd += [sys.executable, "-m", "mpi4py", "-m", "chainrule", *_without_workers(argv)]
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Open MPI refuses root unless told twice; containers and CI machines run as root
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # N ranks on this machine share its cores: one BLAS thread each unless told otherwise
    env.setdefault("OPENBLAS_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    # The job gets its own session, so Ctrl-C reaches this launcher alone; the launcher asks
    # the ranks to stop with SIGUSR1, which mpiexec forwards to every rank (SIGINT would make
    # mpiexec kill them mid-step). Each saves at the end of the same step and exits.
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    asked: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        if asked:                           # a second Ctrl-C: end the job now
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGUSR1)
        asked.append(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if asked and status in (0, 128 + signal.SIGUSR1, -signal.SIGUSR1):
        return 128 + asked[0]               # as if the signal had stopped one process
    return status if status >= 0 else 128 - status


def share_from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` (plain JSON data) on every rank: sent as UTF-8 bytes in two
    buffer broadcasts (length, then text), so nothing is unpickled."""
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    data = (np.frombuffer(json.dumps(value, default=_plain).encode(), np.uint8)
            if comm.Get_rank() == 0 else None)
    size = np.array([0 if data is None else data.size], np.int64)
    comm.Bcast(size, root=0)
    if data is None:
        data = np.empty(int(size[0]), np.uint8)
    else:
        data = data.copy()
    comm.Bcast(data, root=0)
    return json.loads(data.tobytes().decode())


def _plain(value: Any) -> Any:
    # NumPy scalars and arrays read back from a checkpoint's config
    return value.tolist() if hasattr(value, "tolist") else str(value)
