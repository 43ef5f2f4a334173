"""Synchronous data-parallel training over MPI: every rank holds the whole model, takes its
shard of each global batch, and the gradients are averaged before every update.

MPI is the established engine for this on CPUs (Horovod and PyTorch's MPI backend are built
on it), so chainrule runs on it as it is: ``pip install 'chainrule[mpi]'`` brings mpi4py and an
Open MPI build with its ``mpiexec``. Launch a script with

    mpiexec -n 4 python -m mpi4py train.py

(``-m mpi4py`` matters: without it a rank that raises leaves the others waiting forever in
their next collective; with it the whole job is aborted) or let ``chainrule train --workers 4``
launch itself.

Without MPI (or before :func:`init`) everything here works as a world of one: rank 0 of 1,
and the collectives return at once, so one script serves both.

Each step makes one MPI call for all gradients: they are packed into one contiguous buffer,
made once per set of parameters and reused every step, and summed in place.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .core.tensor import Tensor
from .errors import ChainruleError

__all__ = ["init", "is_initialized", "rank", "world_size", "barrier", "broadcast_parameters",
           "allreduce_gradients", "allreduce_", "GradientBuffer", "compiled_step"]

_comm: Any = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ChainruleError("cr.distributed needs mpi4py and an MPI library: "
                             "pip install 'chainrule[mpi]'") from None
    return MPI


def init() -> None:
    """Join the MPI job this process was launched in (a world of one when run alone).

    Idempotent. Raises :class:`~chainrule.ChainruleError` when mpi4py is missing.

    >>> import chainrule as cr
    >>> cr.distributed.init()            # doctest: +SKIP
    >>> cr.distributed.rank(), cr.distributed.world_size()   # doctest: +SKIP
    (0, 1)
    """
    global _comm
    if _comm is None:
        _comm = _mpi().COMM_WORLD


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process."""
    return _comm is not None


def rank() -> int:
    """This process's rank, 0 to ``world_size() - 1`` (0 before :func:`init`)."""
    return 0 if _comm is None else _comm.Get_rank()


def world_size() -> int:
    """The number of ranks in the job (1 before :func:`init`)."""
    return 1 if _comm is None else _comm.Get_size()


def barrier() -> None:
    """Wait until every rank has reached this call."""
    if _comm is not None and _comm.Get_size() > 1:
        _comm.Barrier()


def _tensors(params: Any) -> list:
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    out = list(params)
    for p in out:
        if not isinstance(p, Tensor) or p.data is None:
            raise ChainruleError(f"cr.distributed: expected Variables with values, got "
                                 f"{type(p).__name__}")
    return out


def broadcast_parameters(params: Any, root: int = 0) -> None:
    """Overwrite every rank's parameters (a Module or Variables) with ``root``'s, in place.

    One broadcast per dtype: the values are packed into one buffer, sent, and unpacked.
    """
    ts = _tensors(params)
    if _comm is None or _comm.Get_size() == 1 or not ts:
        return
    for dtype in sorted({t.data.dtype.str for t in ts}):
        group = [t for t in ts if t.data.dtype.str == dtype]
        flat = np.concatenate([t.data.ravel() for t in group]) if group else None
        _comm.Bcast(flat, root=root)
        offset = 0
        for t in group:
            n = t.data.size
            t.data[...] = flat[offset:offset + n].reshape(t.data.shape)
            offset += n


def allreduce_(array: np.ndarray, average: bool = True) -> np.ndarray:
    """Sum ``array`` over all ranks in place (then divide by the world size if ``average``)."""
    if _comm is None or _comm.Get_size() == 1:
        return array
    if not array.flags.c_contiguous:
        raise ChainruleError("cr.distributed.allreduce_ needs a contiguous array")
    _comm.Allreduce(_mpi().IN_PLACE, array, op=_mpi().SUM)
    if average:
        array /= _comm.Get_size()
    return array


class GradientBuffer:
    """One contiguous array per dtype holding a gradient slot for every parameter.

    ``views[i]`` is parameter ``i``'s slot (a view of the flat buffer, in the parameter's
    shape). Made once and reused every step, so an allreduce allocates nothing.
    """

    def __init__(self, params: Sequence[Tensor]):
        self.params = list(params)
        self.flats: dict = {}
        sizes: dict = {}
        for p in self.params:
            sizes[p.data.dtype] = sizes.get(p.data.dtype, 0) + p.data.size
        for dtype, n in sizes.items():
            self.flats[dtype] = np.zeros(n, dtype)
        offsets = dict.fromkeys(sizes, 0)
        self.views = []
        for p in self.params:
            dt, n = p.data.dtype, p.data.size
            self.views.append(self.flats[dt][offsets[dt]:offsets[dt] + n].reshape(p.data.shape))
            offsets[dt] += n

    def allreduce(self, average: bool = True) -> None:
        """Sum (or average) every slot over all ranks, one MPI call per dtype."""
        for flat in self.flats.values():
            allreduce_(flat, average)


_buffers: dict = {}


def allreduce_gradients(params: Any, average: bool = True, weight: float | None = None
                        ) -> None:
    """Sum every parameter's ``.grad`` over all ranks, in place, then average.

    The gradients travel in one contiguous buffer per dtype (one MPI call, not one per
    tensor), kept between steps. A parameter without a gradient on this rank counts as zero.
    ``weight`` scales this rank's gradients before the sum instead of averaging after it:
    with shards of unequal size, ``weight = local_batch / global_batch`` gives exactly the
    gradient of the global batch's mean loss.

    >>> import chainrule as cr, numpy as np
    >>> w = cr.Variable(np.ones(2))
    >>> (w * 3.0).sum().backward()
    >>> cr.distributed.allreduce_gradients([w])   # a world of one: unchanged
    >>> w.grad.numpy().tolist()
    [3.0, 3.0]
    """
    ts = _tensors(params)
    if _comm is None or _comm.Get_size() == 1:
        if weight is not None:
            for t in ts:
                if t.grad is not None:
                    t.grad.data = t.grad.data * weight
        return
    key = tuple(id(t) for t in ts)
    buf = _buffers.get(key)
    if buf is None or any(v.shape != t.data.shape for v, t in zip(buf.views, ts)):
        buf = _buffers[key] = GradientBuffer(ts)
    for t, view in zip(ts, buf.views):
        if t.grad is None:
            view[...] = 0
        elif weight is None:
            view[...] = t.grad.data
        else:
            np.multiply(t.grad.data, weight, out=view)
    buf.allreduce(average and weight is None)
    for t, view in zip(ts, buf.views):
        if t.grad is None:
            t.grad = Tensor(view.copy())
        else:
            if not t.grad.data.flags.writeable or t.grad.data.shape != view.shape:
                t.grad.data = view.copy()
            else:
                t.grad.data[...] = view


def compiled_step(optimizer: Any, loss: Tensor, inputs: Sequence[Tensor],
                  outputs: Sequence[Tensor] = (), weight: Tensor | None = None):
    """A compiled data-parallel training step: the distributed ``optimizer.minimize``.

    Two compiled functions around one allreduce: the first computes the loss and writes every
    gradient into its slot of a persistent :class:`GradientBuffer`; the slots are summed over
    the ranks in place; the second is the optimizer's compiled update reading them. No
    gradient array is allocated per step. ``weight`` (a 0-d placeholder, optional) scales the
    local gradients before the sum (see :func:`allreduce_gradients`); without it the sum is
    averaged over the ranks.

    Returns ``step(*arrays)`` giving the loss (or ``outputs``), as ``minimize`` does.
    """
    import chainrule as cr

    params = [p for group in optimizer.param_groups for p in group["params"]]
    buf = GradientBuffer(params)
    slots = []
    for p, view in zip(params, buf.views):
        v = cr.Variable(np.zeros((), view.dtype), name=f"d{p.name}" if p.name else None)
        v.data = view                       # the compiled code writes into the buffer
        slots.append(v)
    grads = cr.grad(loss, params, allow_unused=True)
    scaled = []
    for p, g in zip(params, grads):
        if g is None:
            g = cr.tensor(np.zeros(p.data.shape, p.data.dtype))
        scaled.append(g if weight is None else g * weight)
    fetched = list(outputs) if outputs else loss
    forward = cr.function(list(inputs) + ([weight] if weight is not None else []), fetched,
                          updates=list(zip(slots, scaled)), name="local_gradients")
    update = cr.function([], [], updates=optimizer.updates(grads=slots), name="update")
    average = weight is None

    def step(*arrays):
        out = forward(*arrays)
        buf.allreduce(average)
        update()
        return out

    step.forward, step.update, step.buffer = forward, update, buf
    return step
