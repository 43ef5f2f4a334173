"""One rank of the data-parallel equivalence test (run by tests/test_distributed.py).

    mpiexec -n N python -m mpi4py tests/distributed_worker.py OUT.npz MODE OPTIMIZER DTYPE

trains a small MLP for 50 steps on a fixed data set with a global batch of 32, each rank on
its shard, and rank 0 writes the final parameters to OUT.npz. Run without mpiexec it is the
single-process reference. MODE is ``eager`` or ``compiled``; ``FAIL_AT=k`` in the environment
makes rank 1 raise at step k (the fault test).
"""
from __future__ import annotations

import os
import sys

import numpy as np


def main(out: str, mode: str, optimizer: str, dtype: str) -> None:
    import chainrule as cr

    cr.distributed.init()
    rank, world = cr.distributed.rank(), cr.distributed.world_size()
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)).astype(dt)
    y = rng.integers(0, 3, 200)
    params = [cr.Variable(rng.standard_normal((6, 16)).astype(dt) * 0.5, name="W1"),
              cr.Variable(np.zeros(16, dt), name="b1"),
              cr.Variable(rng.standard_normal((16, 3)).astype(dt) * 0.5, name="W2"),
              cr.Variable(np.zeros(3, dt), name="b2")]
    if rank != 0:                    # different starting values: broadcast must fix them
        for p in params:
            p.data[...] = rank
    cr.distributed.broadcast_parameters(params)
    W1, b1, W2, b2 = params
    if optimizer == "sgd":
        opt = cr.optim.SGD(params, lr=0.1, momentum=0.9)
    else:
        opt = cr.optim.Adam(params, lr=0.01)
    loader = cr.data.DataLoader(X, y, batch_size=32, seed=1, rank=rank, world_size=world)

    def loss_of(x, labels):
        return cr.cross_entropy(cr.relu(x @ W1 + b1) @ W2 + b2, labels)

    if mode == "compiled":
        xp = cr.placeholder((None, 6), dtype=dt, name="x")
        yp = cr.placeholder((None,), dtype=np.int64, name="y")
        wp = cr.placeholder((), dtype=dt, name="weight")
        step = cr.distributed.compiled_step(opt, loss_of(xp, yp), [xp, yp], weight=wp)
    fail_at = int(os.environ.get("FAIL_AT", "-1"))
    done = 0
    while done < 50:
        for xb, yb in loader:
            if done == fail_at and rank == 1:
                raise RuntimeError(f"rank 1 fails at step {done} on purpose")
            # this rank's share of the global batch's mean loss
            weight = len(xb) / loader.global_batch
            if mode == "compiled":
                step(xb, yb, np.asarray(weight, dt))
            else:
                opt.zero_grad()
                loss_of(cr.tensor(xb), yb).backward()
                cr.distributed.allreduce_gradients(params, weight=weight)
                opt.step()
            done += 1
            if done == 50:
                break
    if rank == 0:
        np.savez(out, **{p.name: p.data for p in params})


if __name__ == "__main__":
    main(*sys.argv[1:5])
