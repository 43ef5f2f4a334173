"""Errors say which op, which shapes and which line of the user's code."""
from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # IEEE NaN/Inf on purpose


def var(*shape):
    return cr.Variable(np.ones(shape))


# name, building function (its single line is the site the error must point at), op name in
# the message, the operand shapes as the message prints them
MISMATCHES = [
    ("add", lambda: var(2, 3) + var(4), "add", ["(2, 3)", "(4,)"]),
    ("mul with array", lambda: var(2, 3) * np.ones((3, 2)), "mul", ["(2, 3)", "(3, 2)"]),
    ("sub", lambda: var(3) - var(2), "sub", ["(3,)", "(2,)"]),
    ("matmul", lambda: var(2, 3) @ var(2, 3), "matmul", ["(2, 3)", "(2, 3)"]),
    ("matmul vector", lambda: var(3) @ var(4), "matmul", ["(3,)", "(4,)"]),
    ("maximum", lambda: cr.maximum(var(2), var(3)), "maximum", ["(2,)", "(3,)"]),
    ("where", lambda: cr.where(np.ones(2, bool), var(3), var(3)), "where", ["(2,)", "(3,)"]),
    ("concatenate", lambda: cr.concatenate([var(2, 3), var(3, 2)]), "concatenate",
     ["(2, 3)", "(3, 2)"]),
    ("stack", lambda: cr.stack([var(2), var(3)]), "stack", ["(2,)", "(3,)"]),
    ("reshape", lambda: cr.reshape(var(2, 3), (4, 2)), "reshape", ["(2, 3)"]),
]


@pytest.mark.parametrize("name, build, op, shapes", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_shape_error_names_op_shapes_and_user_line(name, build, op, shapes):
    with pytest.raises(cr.ShapeError) as e:
        build()
    msg = str(e.value)
    assert msg.startswith(op + ":")
    for s in shapes:
        assert s in msg
    # the site is this file's line that built the node, not a line inside chainrule
    line = build.__code__.co_firstlineno
    assert f"built at {__file__}:{line}" in msg


def test_shape_error_is_raised_at_the_building_line_not_inside_chainrule():
    x = var(2, 3)
    y = var(3, 2)
    with pytest.raises(cr.ShapeError) as e:
        z = x + y  # noqa: F841 -- the line the message must quote
    msg = str(e.value)
    assert "z = x + y" in msg
    assert __file__ in msg and "test_shape_error_is_raised_at_the_building_line" in msg


# -- anomaly mode --------------------------------------------------------------------------------
def _log_of_minus_one():
    return cr.log(cr.Variable([-1.0, 2.0]))


def _zero_over_zero():
    z = cr.Variable([0.0, 1.0])
    return z / z


def _sqrt_at_zero_backward():
    s = cr.sqrt(cr.Variable([0.0, 4.0]))
    s.sum().backward()


ANOMALIES = [
    # name, run, op in the message, forward/backward, the line of user code the message quotes
    ("log(-1) forward", _log_of_minus_one, "log", "forward",
     "return cr.log(cr.Variable([-1.0, 2.0]))"),
    ("0/0 forward", _zero_over_zero, "div", "forward", "return z / z"),
    ("sqrt at 0: fine forward, Inf backward", _sqrt_at_zero_backward, "sqrt", "backward",
     "s = cr.sqrt(cr.Variable([0.0, 4.0]))"),
]


@pytest.mark.parametrize("name, run, op, phase, line", ANOMALIES, ids=[a[0] for a in ANOMALIES])
def test_detect_anomaly_names_op_phase_and_line(name, run, op, phase, line):
    with cr.detect_anomaly():
        with pytest.raises(cr.GraphError) as e:
            run()
    msg = str(e.value)
    assert f"anomaly: {op} produced" in msg and f"{phase} pass" in msg
    assert line in msg and __file__ in msg


def test_detect_anomaly_on_zero_d_values():
    with cr.detect_anomaly():
        with pytest.raises(cr.GraphError, match="log"):
            cr.log(cr.Variable(-1.0))


def test_without_anomaly_mode_nan_and_inf_propagate_as_ieee():
    x = cr.Variable([0.0, -1.0, 1.0])
    y = cr.log(x)
    v = y.numpy()
    assert v[0] == -np.inf and np.isnan(v[1]) and v[2] == 0.0
    y.sum().backward()
    g = x.grad.numpy()
    assert g[0] == np.inf and g[1] == -1.0 and g[2] == 1.0
    z = cr.Variable([0.0])
    assert np.isnan((z / z).numpy()[0])


def test_anomaly_mode_is_off_again_after_the_block():
    with cr.detect_anomaly():
        pass
    assert np.isnan(cr.log(cr.Variable([-1.0])).numpy()[0])


def test_gradcheck_reports_nan():
    with pytest.raises(cr.GradcheckError, match="NaN"):
        cr.gradcheck(cr.log, [np.array([-1.0, 2.0])])


# -- symbolic graphs ---------------------------------------------------------------------------
def test_missing_feed_names_the_placeholder():
    x = cr.placeholder((None, 3), name="images")
    y = cr.placeholder((3,), name="bias")
    out = x + y
    with pytest.raises(cr.GraphError) as e:
        out.eval({x: np.ones((2, 3))})
    msg = str(e.value)
    assert "'bias'" in msg and "missing" in msg and "(3,)" in msg
    assert 'y = cr.placeholder((3,), name="bias")' in msg


WRONG_FEEDS = [
    ("fixed dim", (None, 3), np.ones((2, 4)), "(None, 3)", "(2, 4)"),
    ("rank", (None, 3), np.ones(3), "(None, 3)", "(3,)"),
    ("0-d fed a vector", (), np.ones(2), "()", "(2,)"),
]


@pytest.mark.parametrize("name, shape, value, want, got", WRONG_FEEDS,
                         ids=[w[0] for w in WRONG_FEEDS])
def test_wrong_fed_shape_names_the_placeholder(name, shape, value, want, got):
    x = cr.placeholder(shape, name="x")
    with pytest.raises(cr.GraphError) as e:
        (x * 2.0).eval({x: value})
    msg = str(e.value)
    assert "placeholder 'x'" in msg and want in msg and got in msg


def test_build_time_shape_mismatch_on_placeholders():
    x = cr.placeholder((None, 3), name="x")
    W = cr.Variable(np.ones((4, 2)), name="W")
    with pytest.raises(cr.ShapeError) as e:
        h = x @ W  # noqa: F841
    msg = str(e.value)
    assert msg.startswith("matmul:") and "(None, 3)" in msg and "(4, 2)" in msg
    assert "h = x @ W" in msg and __file__ in msg


SYMBOLIC_VALUE_OUT = [
    ("numpy()", lambda t: t.numpy()), ("np.asarray", np.asarray), ("item()", lambda t: t.item()),
    ("float()", float), ("backward()", lambda t: t.backward()), ("detach()", lambda t: t.detach()),
]


@pytest.mark.parametrize("name, get", SYMBOLIC_VALUE_OUT, ids=[s[0] for s in SYMBOLIC_VALUE_OUT])
def test_symbolic_tensor_has_no_value(name, get):
    x = cr.placeholder((2,), name="x")
    w = cr.Variable(np.ones(2))
    y = (x * w).sum()
    with pytest.raises(cr.GraphError, match="symbolic"):
        get(y)


def test_indexing_with_a_symbolic_tensor_is_refused():
    x = cr.Variable(np.ones(3))
    i = cr.placeholder((2,), dtype=np.int64, name="i")
    with pytest.raises(cr.GraphError):
        x[i]


# -- the hierarchy -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [cr.ShapeError, cr.GraphError, cr.GradcheckError,
                                 cr.ChainruleError])
def test_errors_subclass_chainrule_error_and_value_error(cls):
    assert issubclass(cls, cr.ChainruleError) and issubclass(cls, ValueError)


def test_a_shape_error_can_be_caught_as_value_error():
    with pytest.raises(ValueError):
        var(2) + var(3)
