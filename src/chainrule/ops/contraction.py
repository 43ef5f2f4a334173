"""Tensor contraction, ``einsum``: one primitive whose gradient is einsum again.

For ``out = einsum("ab,bc->ac", x, y)`` the gradient of ``x`` is ``einsum("ac,bc->ab", g,
y)``: the upstream gradient takes the output's place and ``x``'s subscripts become the output.
Written that way the rule is differentiable again and prints as one line of NumPy. Two cases
need more than the swap: an index only ``x`` has (summed away inside ``x`` alone, as ``j`` in
``"ij->i"``) is broadcast back, and an index repeated within ``x`` (a diagonal, ``"ii->"``) is
put back on the diagonal by an identity matrix operand.
"""
from __future__ import annotations

import string

import numpy as np

from ..core.tensor import Tensor
from ..errors import ShapeError
from .axes import _tensor
from .registry import primitive


def parse(subscripts: str, ndims: list) -> tuple[list, str]:
    """Explicit subscripts (one letter per axis, ellipses spelled out, the output given), as
    ``(input subscripts, output subscripts)``, with NumPy's implicit-output rule."""
    s = subscripts.replace(" ", "")
    ins_text, arrow, out = s.partition("->")
    ins = ins_text.split(",")
    if len(ins) != len(ndims):
        raise ShapeError(f"einsum: {subscripts!r} names {len(ins)} operands, got {len(ndims)}")
    used = {c for c in s if c.isalpha()}
    spare = [c for c in string.ascii_letters if c not in used]
    ell = 0
    for sub, nd in zip(ins, ndims):
        if "..." in sub:
            ell = max(ell, nd - (len(sub) - 3))
    ell_letters = "".join(spare[:ell])
    full = []
    for sub, nd in zip(ins, ndims):
        if "..." in sub:
            k = nd - (len(sub) - 3)
            sub = sub.replace("...", ell_letters[ell - k:] if k else "")
        if len(sub) != nd or not all(c.isalpha() for c in sub):
            raise ShapeError(f"einsum: subscripts {subscripts!r} do not fit operands with "
                             f"{ndims} dims")
        full.append(sub)
    if arrow:
        out = out.replace("...", ell_letters)
    else:                       # NumPy: broadcast axes, then the letters used once, sorted
        joined = "".join(full)
        once = sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ell_letters)
        out = ell_letters + "".join(once)
    return full, out


def _spec(ins: list, out: str) -> str:
    return ",".join(ins) + "->" + out


def _einsum(*xs, spec: str):
    # the naive loop beats the path search for two operands; longer chains need the path
    return np.einsum(spec, *xs, optimize=len(xs) > 2)


def _einsum_vjp(F, g, out, *xs, spec):
    ins, o = spec.split("->")
    ins = ins.split(",")
    grads = []
    for i, x in enumerate(xs):
        sub = ins[i]
        subs = [o] + [s for j, s in enumerate(ins) if j != i]
        operands = [g] + [y for j, y in enumerate(xs) if j != i]
        # a letter repeated within x (a diagonal): the repeat gets a new letter, tied to the
        # first by an identity matrix, so the gradient lands on the diagonal only
        taken = set("".join(ins) + o)
        target = ""
        for pos, c in enumerate(sub):
            if c in target:
                fresh = next(ch for ch in string.ascii_letters if ch not in taken)
                taken.add(fresh)
                n = x.shape[pos]
                if n is None:
                    raise NotImplementedError("einsum: the gradient of a repeated index over a "
                                              "free (None) dimension")
                subs.append(c + fresh)
                operands.append(np.eye(n, dtype=x.dtype))
                c = fresh
            target += c
        known = set("".join(subs))
        kept = "".join(c for c in target if c in known)
        gx = F.einsum(_spec(subs, kept), *operands)
        if kept != target:      # letters summed inside x alone: g is the same along them
            for pos, c in enumerate(target):
                if c not in known:
                    gx = F.expand_dims(gx, pos)
            gx = F.broadcast_like(gx, x)
        grads.append(gx)
    return tuple(grads)


def _einsum_infer(*xs, spec):
    # each letter's size from the operands that know it: a free (None) dim takes a fixed size
    # met elsewhere, and stays free only if no operand fixes it (stand-in sizes would guess)
    ins, out = spec.split("->")
    size: dict = {}
    for sub, x in zip(ins.split(","), xs):
        for c, n in zip(sub, x.shape):
            m = size.get(c, 1)
            if n is None:
                size[c] = None if m == 1 else m
            elif n != 1:
                if m not in (1, None) and m != n:
                    raise ShapeError(f"einsum: index {c!r} of {spec!r} has sizes {m} and {n} "
                                     f"for operands of shapes {[x.shape for x in xs]}")
                size[c] = n
            else:
                size.setdefault(c, 1)
    dtype = np.result_type(*[x.dtype for x in xs])
    return tuple(size[c] for c in out), dtype


einsum_p = primitive(
    "einsum", _einsum, _einsum_vjp,
    lambda a, p, node: f"np.einsum({p['spec']!r}, {', '.join(a)}"
                       f"{', optimize=True' if len(a) > 2 else ''})", "einsum",
    fresh=False,   # NumPy returns a view for a pure permutation or diagonal ("ij->ji")
    infer=_einsum_infer)


def einsum(subscripts: str, *operands) -> Tensor:
    """Einstein summation, as ``np.einsum``/``torch.einsum``: ``"ij,jk->ik"`` is a matrix
    product, ``"bij,bjk->bik"`` a batched one, ``"ii->"`` a trace, ``"...i,...i->..."`` a
    row-wise dot product. Operands may also be given as one list.

    >>> import chainrule as cr
    >>> a = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> cr.einsum("ij,j->i", a, cr.tensor([1.0, 1.0])).numpy().tolist()
    [3.0, 7.0]
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    xs = [_tensor(x) for x in operands]
    ins, out = parse(subscripts, [x.ndim for x in xs])
    return einsum_p(*xs, spec=_spec(ins, out))
