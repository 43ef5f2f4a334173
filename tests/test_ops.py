"""Every row of the op table (tests/op_table.py) through every check.

(a) forward equals NumPy, (b) gradcheck on drawn broadcasting shapes, (c) each gradient has its
input's shape, (d) float32 in, float32 gradients out, (e) values and gradients equal PyTorch's,
(f) second order where claimed, (g) the same op on placeholders evaluates to the eager values,
and its symbolic gradients to the eager gradients, (h) the same graph compiled with
cr.function gives the eager values and gradients, and its source runs on its own.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import chainrule as cr
from op_table import OPS, PUBLIC_FUNCTIONS, SECOND_ORDER, case, rows

# derandomized: the same cases every run, so an expected failure stays expected
FAST = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=10, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def every_op(check):
    return pytest.mark.parametrize("op", rows(check))


def _weights(shape, seed, dtype=np.float64):
    """A random upstream gradient, so no gradient hides behind a sum of ones."""
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
    return np.asarray(w, dtype=dtype)  # a 0-d array, not a NumPy scalar, for shape ()


def _eager(op, arrays, kw):
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    return xs, op.cr(*xs, **kw)


def _eager_grads(op, arrays, kw, seed):
    xs, out = _eager(op, arrays, kw)
    w = _weights(out.shape, seed, out.dtype)
    return out, cr.grad(out, xs, grad_outputs=w), w


def test_every_public_function_has_a_row():
    names = {op.name for op in OPS}
    assert [f for f in PUBLIC_FUNCTIONS if f not in names] == []
    for f in PUBLIC_FUNCTIONS:
        assert callable(getattr(cr, f))


@every_op("forward")
@FAST
@given(data=st.data())
def test_forward_matches_numpy(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    _, out = _eager(op, arrays, kw)
    want = np.asarray(op.np(*arrays, **kw))
    assert out.shape == want.shape
    assert out.dtype == np.float64
    np.testing.assert_allclose(np.asarray(out.numpy()), want, rtol=1e-12, atol=1e-12)


@every_op("gradcheck")
@FAST
@given(data=st.data())
def test_gradcheck(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    assert cr.gradcheck(lambda *xs: op.cr(*xs, **kw), arrays, atol=op.atol, rtol=op.rtol)


@every_op("grad_shape")
@FAST
@given(data=st.data())
def test_grad_shape_is_input_shape(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    _, grads, _ = _eager_grads(op, arrays, kw, seed)
    assert [g.shape for g in grads] == [a.shape for a in arrays]
    # backward() fills .grad with the same shapes
    xs, out = _eager(op, arrays, kw)
    out.backward(_weights(out.shape, seed))
    assert [x.grad.shape for x in xs] == [a.shape for a in arrays]


@every_op("float32")
@FAST
@given(data=st.data())
def test_float32_stays_float32(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed, dtype=np.float32)
    out, grads, _ = _eager_grads(op, arrays, kw, seed)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * len(arrays)
    # and the float32 gradients are the float64 ones, to float32 precision
    _, grads64, _ = _eager_grads(op, [a.astype(np.float64) for a in arrays], kw, seed)
    for g, g64 in zip(grads, grads64):
        np.testing.assert_allclose(g.numpy(), g64.numpy(), rtol=1e-4, atol=1e-4)


@every_op("torch")
@FAST
@given(data=st.data())
def test_matches_torch(op, data):
    torch = pytest.importorskip("torch")
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    out, grads, w = _eager_grads(op, arrays, kw, seed)
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tout = op.torch(*txs, **kw)
    np.testing.assert_allclose(np.asarray(out.numpy()), tout.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    tgrads = torch.autograd.grad(tout, txs, grad_outputs=torch.tensor(w), allow_unused=True)
    for g, tg, a in zip(grads, tgrads, arrays):
        want = np.zeros_like(a) if tg is None else tg.numpy()
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-10, atol=1e-12)


def _second_order_fn(op, kw, w, us):
    """``sum_i <d<out, w>/dx_i, u_i>`` built with create_graph: a function to differentiate."""
    def f(*xs):
        out = op.cr(*xs, **kw)
        gs = cr.grad(out, list(xs), grad_outputs=cr.tensor(w), create_graph=True)
        total = (gs[0] * us[0]).sum()
        for g, u in zip(gs[1:], us[1:]):
            total = total + (g * u).sum()
        return total
    return f


@pytest.mark.parametrize("op", rows("second_order", SECOND_ORDER))
@SLOW
@given(data=st.data())
def test_second_order(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    out_shape = np.asarray(op.np(*arrays, **kw)).shape
    w = _weights(out_shape, seed)
    us = [_weights(a.shape, seed + 7 + i) for i, a in enumerate(arrays)]
    f = _second_order_fn(op, kw, w, us)
    assert cr.gradcheck(f, arrays, atol=1e-5, rtol=1e-3)

    torch = pytest.importorskip("torch")
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    total = f(*xs)
    got = cr.grad(total, xs, allow_unused=True) if total.requires_grad else [None] * len(xs)
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tgs = torch.autograd.grad(op.torch(*txs, **kw), txs, grad_outputs=torch.tensor(w),
                              create_graph=True)
    ttotal = sum((g * torch.tensor(u)).sum() for g, u in zip(tgs, us))
    want = (torch.autograd.grad(ttotal, txs, allow_unused=True) if ttotal.requires_grad
            else [None] * len(txs))
    for g, tg, a in zip(got, want, arrays):
        g = np.zeros_like(a) if g is None else g.numpy()
        tg = np.zeros_like(a) if tg is None else tg.numpy()
        np.testing.assert_allclose(g, tg, rtol=1e-9, atol=1e-11)


@every_op("symbolic")
@FAST
@given(data=st.data())
def test_symbolic_matches_eager(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    out, grads, w = _eager_grads(op, arrays, kw, seed)

    # values: every input a placeholder
    phs = [cr.placeholder(a.shape, dtype=np.float64, name=f"x{i}") for i, a in enumerate(arrays)]
    sym = op.cr(*phs, **kw)
    assert sym.data is None and sym.shape == out.shape
    feed = dict(zip(phs, arrays))
    np.testing.assert_allclose(sym.eval(feed), np.asarray(out.numpy()), rtol=1e-12, atol=1e-12)

    # gradients: each input a Variable plus a placeholder offset, so the graph is symbolic
    vs = [cr.Variable(a, name=f"v{i}") for i, a in enumerate(arrays)]
    offs = [cr.placeholder(a.shape, dtype=np.float64, name=f"o{i}") for i, a in enumerate(arrays)]
    sym = op.cr(*[v + o for v, o in zip(vs, offs)], **kw)
    sgrads = cr.grad(sym, vs, grad_outputs=w)
    zeros = {o: np.zeros(a.shape) for o, a in zip(offs, arrays)}
    for sg, g in zip(sgrads, grads):
        # (a gradient that depends on no placeholder, as add's, may come back as a constant)
        np.testing.assert_allclose(sg.eval(zeros), g.numpy(), rtol=1e-12, atol=1e-12)


# -- kinks and ties: the values the table's domains avoid, against the documented rule --------
KINKS = [
    # name, function, input, expected gradient of sum(f(x)) (PyTorch's convention)
    ("relu at 0", cr.relu, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    ("abs at 0", cr.abs, [-1.0, 0.0, 2.0], [-1.0, 0.0, 1.0]),
    ("clip at both bounds passes", lambda x: cr.clip(x, -0.5, 0.5),
     [-0.6, -0.5, 0.0, 0.5, 0.6], [0.0, 1.0, 1.0, 1.0, 0.0]),
    ("max ties split evenly", lambda x: cr.max(x), [1.0, 3.0, 3.0, 2.0], [0.0, 0.5, 0.5, 0.0]),
    ("min three-way tie", lambda x: cr.min(x), [1.0, 1.0, 1.0, 2.0], [1 / 3, 1 / 3, 1 / 3, 0.0]),
    ("max along axis with ties", lambda x: cr.max(cr.reshape(x, (2, 2)), axis=1),
     [5.0, 5.0, 1.0, 4.0], [0.5, 0.5, 0.0, 1.0]),
    ("maximum ties split evenly", lambda x: cr.maximum(x, 1.0), [0.0, 1.0, 2.0], [0.0, 0.5, 1.0]),
    ("minimum ties split evenly", lambda x: cr.minimum(x, 1.0), [0.0, 1.0, 2.0], [1.0, 0.5, 0.0]),
]


def _kink(k):
    return pytest.param(*k, id=k[0])


@pytest.mark.parametrize("name, fn, x, want", [_kink(k) for k in KINKS])
def test_kinks_and_ties(name, fn, x, want):
    v = cr.tensor(np.array(x), requires_grad=True)
    fn(v).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("name, fn, x, want", KINKS, ids=[k[0] for k in KINKS])
def test_kinks_and_ties_match_torch(name, fn, x, want):
    torch = pytest.importorskip("torch")
    tfns = {
        "relu at 0": torch.relu, "abs at 0": torch.abs,
        "clip at both bounds passes": lambda t: torch.clamp(t, -0.5, 0.5),
        "max ties split evenly": torch.amax, "min three-way tie": torch.amin,
        "max along axis with ties": lambda t: torch.amax(t.reshape(2, 2), dim=1),
        "maximum ties split evenly": lambda t: torch.maximum(t, torch.tensor(1.0, dtype=t.dtype)),
        "minimum ties split evenly": lambda t: torch.minimum(t, torch.tensor(1.0, dtype=t.dtype)),
    }
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tfns[name](t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-12)


# -- comparisons -------------------------------------------------------------------------------
COMPARISONS = [
    ("<", lambda a, b: a < b, np.less), ("<=", lambda a, b: a <= b, np.less_equal),
    (">", lambda a, b: a > b, np.greater), (">=", lambda a, b: a >= b, np.greater_equal),
    ("==", lambda a, b: a == b, np.equal), ("!=", lambda a, b: a != b, np.not_equal),
]


@pytest.mark.parametrize("name, fn, ref", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons_broadcast_and_carry_no_grad(name, fn, ref):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    x = cr.Variable(a)
    out = fn(x, b)
    assert out.dtype == np.bool_
    assert out.requires_grad is False
    np.testing.assert_array_equal(out.numpy(), ref(a, b))
    # a comparison used as a mask stops the gradient through itself, not through the data
    (x * out).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), ref(a, b).astype(float))


@every_op("compiled")
@FAST
@given(data=st.data())
def test_compiled_matches_eager(op, data):
    """(h) the op on placeholders, compiled with cr.function: value and cr.grad gradients equal
    the eager ones, and the generated source runs on its own with the same results."""
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    out, grads, w = _eager_grads(op, arrays, kw, seed)

    # gradients w.r.t. Variables, through a placeholder offset so the graph is symbolic; the
    # upstream gradient w is fed too, so no constant folding hides the backward lines
    vs = [cr.Variable(a, name=f"v{i}") for i, a in enumerate(arrays)]
    offs = [cr.placeholder(a.shape, dtype=np.float64, name=f"o{i}") for i, a in enumerate(arrays)]
    seed_ph = cr.placeholder(out.shape, dtype=np.float64, name="g")
    sym = op.cr(*[v + o for v, o in zip(vs, offs)], **kw)
    sgrads = cr.grad(sym, vs, grad_outputs=seed_ph)
    f = cr.function(offs + [seed_ph], [sym] + sgrads)
    feed = [np.zeros(a.shape) for a in arrays] + [w]
    got = f(*feed)
    assert len(got) == 1 + len(arrays)
    assert got[0].shape == out.shape and got[0].dtype == out.dtype
    np.testing.assert_allclose(got[0], np.asarray(out.numpy()), rtol=1e-12, atol=1e-12)
    for g, want, a in zip(got[1:], grads, arrays):
        assert g.shape == a.shape and g.dtype == a.dtype
        np.testing.assert_allclose(g, want.numpy(), rtol=1e-12, atol=1e-12)

    # the source alone, Variables passed by name, gives the very same arrays
    assert "chainrule" not in f.source
    namespace: dict = {}
    exec(f.source, namespace)
    alone = namespace["f"](*feed, **{f"v{i}": a for i, a in enumerate(arrays)})
    for g, a in zip(got, alone):
        np.testing.assert_array_equal(g, np.asarray(a))


# -- the classes of input every row must handle ------------------------------------------------
# Each check below turns a drawn case into an edge case of one class (negative axes, empty
# tensors, 0-d tensors, strided views, NumPy arrays and Python scalars as operands) and runs
# it every way chainrule can: eagerly, as a symbolic graph under eval, compiled with
# cr.function and as the compiled source run on its own. A new row gets every check for free.
AXIS_KEYS = ("axis", "axes", "dim")


def _upstream(out_shape, seed):
    return _weights(out_shape, seed) if out_shape else np.asarray(_weights((), seed))


def all_ways(op, arrays, kw, w, *, feed=None):
    """{way: (value, gradients)} of ``op`` at ``arrays`` with upstream gradient ``w``.

    ``feed`` (default: ``arrays``) are the arrays actually handed over, so a caller can feed
    strided views and compare with contiguous results. The compiled function must leave every
    array it is given, and every Variable it reads, as it found them, and hand out arrays of
    its own.
    """
    feed = arrays if feed is None else feed
    ways = {}
    xs = [cr.tensor(a, requires_grad=True) for a in feed]
    out = op.cr(*xs, **kw)
    ways["eager"] = (out.numpy(), [g.numpy() for g in cr.grad(out, xs, grad_outputs=w)])

    vs = [cr.Variable(a, name=f"v{i}") for i, a in enumerate(feed)]
    offs = [cr.placeholder(a.shape, dtype=a.dtype, name=f"o{i}") for i, a in enumerate(feed)]
    g_ph = cr.placeholder(np.shape(w), dtype=out.dtype, name="g")
    sym = op.cr(*[v + o for v, o in zip(vs, offs)], **kw)
    grads = cr.grad(sym, vs, grad_outputs=g_ph)
    zeros = [np.zeros(a.shape, a.dtype) for a in feed]
    fed = dict(zip(offs, zeros))
    fed[g_ph] = w
    ways["eval"] = (sym.eval(fed), [g.eval(fed) for g in grads])

    f = cr.function(offs + [g_ph], [sym] + grads)
    args = zeros + [np.array(w)]
    before = [a.copy() for a in args] + [np.array(a) for a in feed]
    got = f(*args)
    after = args + [v.data for v in vs]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b, err_msg="compiled code wrote into its inputs")
    for i, r in enumerate(got):
        assert r.flags.writeable, f"output {i} of the compiled code is read-only"
        assert not any(np.shares_memory(r, a) for a in after + got[:i]), \
            f"output {i} of the compiled code shares storage"
    for r in got:                  # the caller may write into what it got ...
        r[...] = 7
    again = f(*args)               # ... and the next call does not see it
    for r, a in zip(again, ways["eval"][:1] + tuple(ways["eval"][1])):
        np.testing.assert_allclose(r, a, rtol=1e-12, atol=1e-12, err_msg="second call")
    got = f(*args)
    ways["compiled"] = (got[0], got[1:])
    namespace: dict = {}
    exec(f.source, namespace)
    alone = namespace["f"](*args, **{f"v{i}": a for i, a in enumerate(feed)})
    alone = [np.asarray(a) for a in (alone if isinstance(alone, tuple) else [alone])]
    ways["source alone"] = (alone[0], alone[1:])
    return ways


def assert_ways(ways, want, want_grads, tol=1e-10):
    for way, (out, grads) in ways.items():
        np.testing.assert_allclose(np.asarray(out), want, rtol=tol, atol=tol, err_msg=way)
        assert np.shape(out) == np.shape(want), way
        for i, (g, tg) in enumerate(zip(grads, want_grads)):
            assert np.shape(g) == np.shape(tg), f"{way}: gradient {i}"
            np.testing.assert_allclose(g, tg, rtol=tol, atol=tol, err_msg=f"{way}: gradient {i}")


def torch_reference(op, arrays, kw, w=None):
    """PyTorch's value and gradients (upstream ``w``, ones by default), or None where PyTorch
    refuses the case."""
    torch = pytest.importorskip("torch")
    if op.torch is None:
        return None
    txs = [torch.tensor(a, requires_grad=True) for a in arrays]
    try:
        tout = op.torch(*txs, **kw)
        tw = torch.ones_like(tout) if w is None else torch.tensor(w)
        tgs = torch.autograd.grad(tout, txs, grad_outputs=tw, allow_unused=True)
    except Exception:       # PyTorch (or the row's wrapper around it) refuses the case
        return None
    return tout.detach().numpy(), [np.zeros_like(a) if g is None else g.numpy()
                                   for g, a in zip(tgs, arrays)]


def _map_axes(kw, fn):
    """``kw`` with ``fn`` applied to every axis it holds, or None if it holds none."""
    keys = [k for k in AXIS_KEYS if kw.get(k) is not None and not isinstance(kw[k], bool)]
    if not keys:
        return None
    out = dict(kw)
    for k in keys:
        v = kw[k]
        out[k] = fn(v) if isinstance(v, (int, np.integer)) else tuple(fn(a) for a in v)
    return out


def negative_axes(op, arrays, kw):
    """``kw`` with each axis written as a negative number, meaning what it meant (the rank
    it counts from is found by asking NumPy: the input's, or one more for stack)."""
    want = np.asarray(op.np(*arrays, **kw))
    for rank in (arrays[0].ndim, arrays[0].ndim + 1):
        neg = _map_axes(kw, lambda a: a - rank if a >= 0 else a)
        if neg is None:
            return None
        try:
            got = np.asarray(op.np(*arrays, **neg))
        except (ValueError, IndexError, TypeError, np.exceptions.AxisError):
            continue
        if got.shape == want.shape and np.array_equal(got, want, equal_nan=True):
            return neg
    return None


@every_op("negative_axes")
@SLOW
@given(data=st.data())
def test_negative_axes(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    neg = negative_axes(op, arrays, kw)
    if neg is None:
        return
    out, grads, w = _eager_grads(op, arrays, kw, seed)
    assert_ways(all_ways(op, arrays, neg, w), out.numpy(), [g.numpy() for g in grads],
                tol=1e-12)


def empty_cases(op, shapes):
    """Each way of making the inputs empty: one axis, counted from the right, set to 0 in
    every input that has it (size-1 axes stay 1, broadcasting against 0)."""
    rank = max(len(s) for s in shapes)
    for k in range(1, rank + 1):
        new = []
        for s in shapes:
            s = list(s)
            if len(s) >= k and s[-k] != 1:
                s[-k] = 0
            new.append(tuple(s))
        if any(0 in s for s in new):
            yield tuple(new)


@every_op("empty")
@SLOW
@given(data=st.data())
def test_empty_tensors_as_torch(op, data):
    """Wherever PyTorch accepts an empty tensor, chainrule does too, forward and backward."""
    shapes, kw, seed = case(data, op)
    for empty in empty_cases(op, shapes):
        arrays = op.inputs(empty, seed)
        ref = torch_reference(op, arrays, kw)
        if ref is None:
            continue
        w = _upstream(ref[0].shape, seed)
        want, want_grads = torch_reference(op, arrays, kw, w)
        with np.errstate(all="ignore"):        # the mean of nothing is NaN, as in PyTorch
            assert_ways(all_ways(op, arrays, kw, w), want, want_grads)


def zero_dim_kw(kw):
    """Static arguments for 0-d inputs: each axis 0, a tuple of axes (0,) or ()."""
    keys = [k for k in AXIS_KEYS if kw.get(k) is not None and not isinstance(kw[k], bool)]
    yield {k: (0 if isinstance(v, (int, np.integer)) else (0,)) if k in keys else v
           for k, v in kw.items()}
    if any(isinstance(kw[k], tuple) for k in keys):
        yield {k: () if k in keys and isinstance(v, tuple) else v for k, v in kw.items()}


@every_op("zero_dim")
@SLOW
@given(data=st.data())
def test_zero_dim_tensors_as_torch(op, data):
    """Every input 0-d: wherever PyTorch accepts it, chainrule gives PyTorch's answer."""
    shapes, kw, seed = case(data, op)
    arrays = op.inputs([()] * len(shapes), seed)
    for kw0 in zero_dim_kw(kw):
        ref = torch_reference(op, arrays, kw0)
        if ref is None:
            continue
        w = _upstream(ref[0].shape, seed)
        want, want_grads = torch_reference(op, arrays, kw0, w)
        assert_ways(all_ways(op, arrays, kw0, w), want, want_grads)
        return


def strided(a: np.ndarray) -> np.ndarray:
    """``a`` as a non-contiguous view (every other element, the first axis reversed) of a
    larger array whose gaps hold NaN: an op that reads outside the view shows NaN."""
    if a.ndim == 0:
        return a
    big = np.full(tuple(2 * n + 1 for n in a.shape), np.nan, a.dtype)
    view = big[(slice(-2, None, -2),) + (slice(None, None, 2),) * (a.ndim - 1)]
    view = view[tuple(slice(0, n) for n in a.shape)]
    view[...] = a
    return view


@every_op("strided")
@SLOW
@given(data=st.data())
def test_strided_inputs(op, data):
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    views = [strided(a) for a in arrays]
    for v, a in zip(views, arrays):
        assert np.array_equal(v, a) and (v.size <= 1 or not v.flags.c_contiguous)
    out, grads, w = _eager_grads(op, arrays, kw, seed)
    assert_ways(all_ways(op, arrays, kw, w, feed=views), out.numpy(),
                [g.numpy() for g in grads], tol=1e-12)


@every_op("mixed_operands")
@SLOW
@given(data=st.data())
def test_arrays_and_scalars_on_either_side(op, data):
    """Any input may be a NumPy array (a Python float when 0-d) instead of a tensor: the value
    and the other inputs' gradients are the all-tensor ones, eagerly and in symbolic graphs."""
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    out, grads, w = _eager_grads(op, arrays, kw, seed)
    for i, a in enumerate(arrays):
        for plain in [a] + ([float(a)] if a.ndim == 0 else []):
            xs = [cr.tensor(b, requires_grad=True) for b in arrays]
            args = xs[:i] + [plain] + xs[i + 1:]
            try:
                got = op.cr(*args, **kw)
            except AttributeError:      # a method row (x.sum()) on a Python float
                assert isinstance(plain, float)
                continue
            if len(xs) == 1 and not isinstance(got, cr.Tensor):
                continue            # an operator on a plain value alone is NumPy's business
            # (a Python float alone becomes the default dtype, float32)
            tol = 1e-6 if len(xs) == 1 and isinstance(plain, float) else 1e-12
            np.testing.assert_allclose(got.numpy(), out.numpy(), rtol=tol, atol=tol)
            others = [x for j, x in enumerate(xs) if j != i]
            want = [g for j, g in enumerate(grads) if j != i]
            if others:
                gs = cr.grad(got, others, grad_outputs=w)
                for g, g0 in zip(gs, want):
                    np.testing.assert_allclose(g.numpy(), g0.numpy(), rtol=1e-12, atol=1e-12)
            # the same with placeholders for the other inputs, evaluated and compiled
            phs = [cr.placeholder(b.shape, dtype=b.dtype, name=f"x{j}")
                   for j, b in enumerate(arrays)]
            sym = op.cr(*(phs[:i] + [plain] + phs[i + 1:]), **kw)
            inputs = [p for j, p in enumerate(phs) if j != i]
            fed = [b for j, b in enumerate(arrays) if j != i]
            np.testing.assert_allclose(sym.eval(dict(zip(inputs, fed))), out.numpy(),
                                       rtol=tol, atol=tol)
            np.testing.assert_allclose(cr.function(inputs, sym)(*fed), out.numpy(),
                                       rtol=tol, atol=tol)


@every_op("free_dims")
@SLOW
@given(data=st.data())
def test_free_leading_dims(op, data):
    """Rows given arrays of data (labels, indices, conditions): every input a placeholder,
    the first one's first dim free (None) as a batch is. The graph builds (shape inference
    never indexes real data with stand-in sizes), evaluates and compiles to the eager values
    and gradients."""
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    if not arrays[0].ndim or not any(isinstance(v, np.ndarray) for v in kw.values()):
        return
    try:         # only rows whose first input takes another batch size (NumPy decides)
        op.np(np.concatenate([arrays[0]] * 2), *arrays[1:], **kw)
    except Exception:
        return
    out, grads, w = _eager_grads(op, arrays, kw, seed)
    free = [(None,) + a.shape[1:] if i == 0 else a.shape for i, a in enumerate(arrays)]
    phs = [cr.placeholder(s, dtype=a.dtype, name=f"x{i}") for i, (s, a) in
           enumerate(zip(free, arrays))]
    try:
        sym = op.cr(*phs, **kw)
    except NotImplementedError:         # a documented limit (concatenate along a free dim)
        return
    except cr.ShapeError as e:          # an op that refuses a free dim by design (squeeze)
        if "free (None) dim" not in str(e):
            raise
        return
    assert len(sym.shape) == out.ndim
    assert all(d is None or d == n for d, n in zip(sym.shape, out.shape)), sym.shape
    np.testing.assert_allclose(sym.eval(dict(zip(phs, arrays))), out.numpy(), rtol=1e-12,
                               atol=1e-12)
    vs = [cr.Variable(a, name=f"v{i}") for i, a in enumerate(arrays)]
    offs = [cr.placeholder(s, dtype=a.dtype, name=f"o{i}") for i, (s, a) in
            enumerate(zip(free, arrays))]
    g_ph = cr.placeholder(tuple(None if i == 0 else n for i, n in enumerate(out.shape)),
                          dtype=out.dtype, name="g")
    sym = op.cr(*[v + o for v, o in zip(vs, offs)], **kw)
    sgrads = cr.grad(sym, vs, grad_outputs=g_ph)
    feed = [np.zeros_like(a) for a in arrays] + [np.asarray(w)]
    got = cr.function(offs + [g_ph], [sym] + sgrads)(*feed)
    np.testing.assert_allclose(got[0], out.numpy(), rtol=1e-12, atol=1e-12)
    for g, want in zip(got[1:], grads):
        np.testing.assert_allclose(g, want.numpy(), rtol=1e-12, atol=1e-12)


@every_op("variables_at_call_time")
@SLOW
@given(data=st.data())
def test_variables_are_read_at_call_time(op, data):
    """A graph of Variables alone (its gradients built with create_graph) has values now, but
    evaluated or compiled it reads the Variables as they are at that call: nothing that
    depends on one (a mask, a sign, a cast in a backward rule) is frozen at build time."""
    shapes, kw, seed = case(data, op)
    arrays = op.inputs(shapes, seed)
    later = op.inputs(shapes, seed + 1000)
    vs = [cr.Variable(a.copy(), name=f"v{i}") for i, a in enumerate(arrays)]
    out = op.cr(*vs, **kw)
    w = _weights(out.shape, seed)
    grads = cr.grad(out, vs, grad_outputs=w, create_graph=True)
    f = cr.function([], [out] + grads)
    for v, a in zip(vs, later):
        v.data = a.copy()
    want, want_grads, _ = _eager_grads(op, later, kw, seed)
    got = f()
    evaluated = [t.eval() for t in [out] + grads]
    for way, results in (("compiled", got), ("eval", evaluated)):
        np.testing.assert_allclose(results[0], want.numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=way)
        for g, g0 in zip(results[1:], want_grads):
            np.testing.assert_allclose(g, g0.numpy(), rtol=1e-12, atol=1e-12, err_msg=way)
