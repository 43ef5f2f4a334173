"""optim: eager steps equal torch.optim's; compiled updates equal eager steps; schedules."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

STEPS = 6


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4)], rng.standard_normal((5, 3))


def cr_loss(params, x):
    w, b = params
    out = cr.tanh((cr.tensor(x) if isinstance(x, np.ndarray) else x) @ w + b)
    return cr.sum(out * out) + cr.sum(w * 0.3)


def torch_loss(params, x):
    w, b = params
    out = torch.tanh(torch.tensor(x) @ w + b)
    return (out * out).sum() + (w * 0.3).sum()


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "nesterov": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.005, "centered": True}),
    ("RMSprop", {"lr": 0.005, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1, "initial_accumulator_value": 0.5,
                     "eps": 1e-6}),
]


@pytest.mark.parametrize("name, kwargs", CASES)
def test_eager_steps_match_torch(name, kwargs):
    values, x = make_problem()
    params = [cr.Variable(v.copy(), name=f"p{i}") for i, v in enumerate(values)]
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    opt = getattr(cr.optim, name)(params, **kwargs)
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    for _ in range(STEPS):
        opt.zero_grad()
        cr_loss(params, x).backward()
        opt.step()
        topt.zero_grad()
        torch_loss(tparams, x).backward()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_compiled_updates_match_eager_steps(name, kwargs):
    values, x = make_problem(1)
    eager = [cr.Variable(v.copy(), name=f"e{i}") for i, v in enumerate(values)]
    static = [cr.Variable(v.copy(), name=f"s{i}") for i, v in enumerate(values)]
    opt_eager = getattr(cr.optim, name)(eager, **kwargs)
    opt_static = getattr(cr.optim, name)(static, **kwargs)
    xs = cr.placeholder((None, 3), dtype=np.float64, name="x")
    w, b = static
    out = cr.tanh(xs @ w + b)
    step = opt_static.minimize(cr.sum(out * out) + cr.sum(w * 0.3), [xs])
    for _ in range(STEPS):
        opt_eager.zero_grad()
        expected = cr_loss(eager, x)
        expected.backward()
        opt_eager.step()
        assert float(step(x)) == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(eager, static):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-10, atol=1e-12)
    # the symbolic state Variables share the eager buffers
    for s_eager, s_static in zip(opt_eager.state, opt_static.state):
        for key in s_eager:
            np.testing.assert_allclose(s_static[key].data, s_eager[key].data, rtol=1e-10,
                                       atol=1e-12)


def _torch_trajectory(name, groups_of, kwargs, values, x, steps=STEPS, schedule=None):
    """torch.optim's parameters after ``steps`` steps; ``groups_of(params)`` makes the groups."""
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    topt = getattr(torch.optim, name)(groups_of(tparams), **kwargs)
    tsched = schedule(torch.optim, topt) if schedule else None
    for _ in range(steps):
        topt.zero_grad()
        torch_loss(tparams, x).backward()
        topt.step()
        if tsched:
            tsched.step()
    return [tp.detach().numpy() for tp in tparams]


GROUPED = [
    ("SGD", {"lr": 0.1, "momentum": 0.9},
     lambda ps: [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.03, "momentum": 0.5,
                                       "weight_decay": 0.2}]),
    ("SGD", {"lr": 0.1},
     lambda ps: [{"params": [ps[0]], "momentum": 0.8, "nesterov": True}, {"params": [ps[1]]}]),
    ("Adam", {"lr": 0.01},
     lambda ps: [{"params": [ps[0]], "betas": (0.5, 0.9)},
                 {"params": [ps[1]], "lr": 0.05, "weight_decay": 0.1}]),
    ("AdamW", {"lr": 0.01},
     lambda ps: [{"params": [ps[1]], "weight_decay": 0.3}, {"params": [ps[0]], "lr": 0.02}]),
    ("RMSprop", {"lr": 0.01},
     lambda ps: [{"params": [ps[0]], "centered": True},
                 {"params": [ps[1]], "momentum": 0.9, "alpha": 0.8}]),
    ("Adagrad", {"lr": 0.1},
     lambda ps: [{"params": [ps[0]], "lr_decay": 0.1}, {"params": [ps[1]], "lr": 0.3}]),
]


@pytest.mark.parametrize("name, kwargs, groups_of", GROUPED)
def test_param_groups_match_torch_eager_and_compiled(name, kwargs, groups_of):
    values, x = make_problem(3)
    expected = _torch_trajectory(name, groups_of, kwargs, values, x)
    eager = [cr.Variable(v.copy(), name=f"e{i}") for i, v in enumerate(values)]
    opt = getattr(cr.optim, name)(groups_of(eager), **kwargs)
    assert len(opt.param_groups) == 2
    for _ in range(STEPS):
        opt.zero_grad()
        cr_loss(eager, x).backward()
        opt.step()
    static = [cr.Variable(v.copy(), name=f"s{i}") for i, v in enumerate(values)]
    xs = cr.placeholder((None, 3), dtype=np.float64, name="x")
    step = getattr(cr.optim, name)(groups_of(static), **kwargs).minimize(cr_loss(static, xs),
                                                                           [xs])
    for _ in range(STEPS):
        step(x)
    for p, q, tp in zip(eager, static, expected):
        np.testing.assert_allclose(p.data, tp, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(q.data, tp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_updates_keep_each_parameters_dtype(name, kwargs):
    """Issue 7, bug 12: no float64 update (or state) for a float32 parameter, in symbolic
    updates, compiled steps or eager steps, with float32 and float64 parameters side by side."""
    rng = np.random.default_rng(4)
    w32 = cr.Variable(rng.standard_normal((3, 2)).astype(np.float32), name="w32")
    b32 = cr.Variable(rng.standard_normal(2).astype(np.float32), name="b32")
    w64 = cr.Variable(rng.standard_normal((3, 2)), name="w64")
    params = [w32, b32, w64]
    opt = getattr(cr.optim, name)(params, **kwargs)
    x32 = cr.placeholder((None, 3), dtype=np.float32, name="x32")
    x64 = cr.placeholder((None, 3), dtype=np.float64, name="x64")
    loss = cr.sum(cr.tanh(x32 @ w32 + b32)) + cr.sum(cr.tanh(x64 @ w64))
    pairs = opt.updates(loss)
    assert {id(var) for var, _ in pairs} >= {id(p) for p in params}
    for var, new in pairs:
        assert new.dtype == var.dtype, (var.name, new.dtype, var.dtype)
    for state, param in zip(opt.state, params):
        for buffer in state.values():
            assert buffer.dtype == param.dtype, (buffer.name, buffer.dtype)
    step = cr.function([x32, x64], loss, updates=pairs)
    xv = rng.standard_normal((4, 3))
    step(xv.astype(np.float32), xv)
    opt.zero_grad()
    eager_loss = cr.sum(cr.tanh(cr.tensor(xv.astype(np.float32)) @ w32 + b32))
    (eager_loss + cr.sum(cr.tanh(cr.tensor(xv) @ w64))).backward()
    opt.step()
    assert [p.dtype for p in params] == [np.float32, np.float32, np.float64]
    for state, param in zip(opt.state, params):
        for buffer in state.values():
            assert buffer.dtype == param.dtype


def test_group_values_are_python_numbers():
    """Eager steps compute with the group's values, and NumPy 2 promotes a float32 array
    against ``np.float64(0.1)`` but not against ``0.1``: groups keep Python numbers."""
    opt = cr.optim.Adam([cr.Variable(np.ones(2, np.float32))], lr=np.float64(0.1),
                        betas=(np.float64(0.9), np.float32(0.99)))
    group = opt.param_groups[0]
    group["eps"] = np.float64(1e-6)
    cr.optim.ExponentialLR(opt, gamma=np.float64(0.5)).step()
    for key in ("lr", "eps", "initial_lr"):
        assert type(group[key]) is float, key
    assert [type(b) for b in group["betas"]] == [float, float]


def test_float32_compiled_step_has_no_float64_arithmetic():
    w = cr.Variable(np.ones((4, 2), np.float32), name="w")
    x = cr.placeholder((None, 4), dtype=np.float32, name="x")
    step = cr.optim.SGD([w], lr=0.01).minimize(cr.sum(x @ w), [x])
    # every hyper-parameter the compiled code reads is a float32 0-d array
    opt = cr.optim.Adam([w], lr=0.01)
    pairs = opt.updates(cr.sum(x @ w))
    scalars = opt.param_groups[0]._scalars
    assert scalars and all(v.dtype == np.float32 for v in scalars.values())
    assert all(new.dtype == np.float32 for _, new in pairs)
    step(np.ones((3, 4), np.float32))
    np.testing.assert_allclose(w.data, np.full((4, 2), 0.97, np.float32))


def test_group_hyper_parameters_reach_compiled_steps():
    x = cr.placeholder((None,), dtype=np.float64, name="x")
    v = cr.Variable(np.zeros(()), name="v")
    u = cr.Variable(np.zeros(()), name="u")
    opt = cr.optim.SGD([{"params": [v]}, {"params": [u], "lr": 2.0}], lr=1.0)
    step = opt.minimize(cr.mean(v + u - x), [x])  # d/dv = d/du = 1
    step(np.zeros(3))
    opt.param_groups[1]["lr"] = 0.5
    opt.lr = 0.25  # sets every group
    step(np.zeros(3))
    assert (float(v.data), float(u.data)) == (-1.25, -2.25)


def test_left_out_term_warns_when_turned_on_after_compiling():
    w = cr.Variable(np.ones(2), name="w")
    x = cr.placeholder((None, 2), dtype=np.float64, name="x")
    opt = cr.optim.SGD([w], lr=0.1)
    opt.minimize(cr.sum(x @ w), [x])
    with pytest.warns(UserWarning, match="weight_decay was 0"):
        opt.param_groups[0]["weight_decay"] = 0.1
    opt.param_groups[0]["lr"] = 0.2  # a term the step has: no warning


def test_param_group_errors():
    a, b = cr.Variable(np.ones(2)), cr.Variable(np.ones(2))
    with pytest.raises(cr.ChainruleError, match="more than one param group"):
        cr.optim.SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    with pytest.raises(cr.ChainruleError, match="unknown hyper-parameter"):
        cr.optim.Adam([{"params": [a], "momentum": 0.9}])
    with pytest.raises(cr.ChainruleError, match="empty parameter list"):
        cr.optim.RMSprop([])
    with pytest.raises(cr.ChainruleError, match="one tensor"):
        cr.optim.Adagrad(a)
    with pytest.raises(cr.ChainruleError, match="learning rate"):
        cr.optim.SGD([{"params": [a], "lr": -1.0}], lr=0.1)
    opt = cr.optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"] == [b]


def test_step_closure_returns_the_loss():
    w = cr.Variable(np.array([1.0, 2.0]))
    opt = cr.optim.Adagrad([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = cr.sum(w * w)
        loss.backward()
        return loss

    assert opt.step(closure).item() == 5.0
    np.testing.assert_allclose(w.data, [0.9, 1.9])


def test_momentum_turned_on_later_matches_torch():
    """PyTorch creates the momentum buffer at the first step that needs it."""
    values, x = make_problem(5)
    params = [cr.Variable(v.copy()) for v in values]
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    opt, topt = cr.optim.SGD(params, lr=0.1), torch.optim.SGD(tparams, lr=0.1)
    for i in range(4):
        if i == 2:
            opt.param_groups[0]["momentum"] = 0.9
            topt.param_groups[0]["momentum"] = 0.9
        opt.zero_grad()
        cr_loss(params, x).backward()
        opt.step()
        topt.zero_grad()
        torch_loss(tparams, x).backward()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_parameters_without_grad_are_skipped():
    a, b = cr.Variable(np.ones(2)), cr.Variable(np.ones(2))
    opt = cr.optim.Adam([a, b], lr=0.1)
    cr.sum(a * a).backward()
    opt.step()
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert float(opt.state[1]["step"].data) == 0.0
    np.testing.assert_allclose(a.data, np.full(2, 0.9))


def test_state_dict_round_trip_continues_bit_exactly(tmp_path):
    values, x = make_problem(2)

    def run(n_steps, params, opt):
        for _ in range(n_steps):
            opt.zero_grad()
            cr_loss(params, x).backward()
            opt.step()

    ref = [cr.Variable(v.copy()) for v in values]
    opt_ref = cr.optim.Adam(ref, lr=0.01)
    run(6, ref, opt_ref)

    first = [cr.Variable(v.copy()) for v in values]
    opt_first = cr.optim.Adam(first, lr=0.01)
    run(3, first, opt_first)
    cr.save({"params": {str(i): p.data for i, p in enumerate(first)},
             "opt": opt_first.state_dict()}, tmp_path / "ckpt.npz")
    state = cr.load(tmp_path / "ckpt.npz")
    second = [cr.Variable(state["params"][str(i)]) for i in range(2)]
    opt_second = cr.optim.Adam(second, lr=0.5)
    opt_second.load_state_dict(state["opt"])
    assert opt_second.lr == 0.01
    run(3, second, opt_second)
    for p, q in zip(ref, second):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_keeps_param_groups_and_reads_the_01_format(tmp_path):
    a, b = cr.Variable(np.ones(2)), cr.Variable(np.ones(3))
    opt = cr.optim.RMSprop([{"params": [a], "momentum": 0.5}, {"params": [b], "lr": 0.3}])
    cr.sum(a * a + 1.0).backward()
    cr.sum(b * b).backward()
    opt.step()
    cr.save({"opt": opt.state_dict()}, tmp_path / "o.npz")
    saved = cr.load(tmp_path / "o.npz")["opt"]
    a2, b2 = cr.Variable(np.ones(2)), cr.Variable(np.ones(3))
    opt2 = cr.optim.RMSprop([{"params": [a2]}, {"params": [b2]}], lr=0.7)
    opt2.load_state_dict(saved)
    assert [g["lr"] for g in opt2.param_groups] == [0.01, 0.3]
    assert opt2.param_groups[0]["momentum"] == 0.5
    np.testing.assert_array_equal(opt2.state[0]["momentum_buffer"].data,
                                  opt.state[0]["momentum_buffer"].data)
    with pytest.raises(cr.ChainruleError, match="param groups of sizes"):
        cr.optim.RMSprop([a2, b2]).load_state_dict(saved)
    # chainrule 0.1 wrote one group as "lr" and "hyper", with a float64 step counter
    w = cr.Variable(np.ones(2, np.float32))
    old = {"lr": 0.05, "hyper": {"betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0},
           "state": {"0": {"step": np.array(3.0), "exp_avg": np.ones(2),
                           "exp_avg_sq": np.ones(2)}}}
    adam = cr.optim.Adam([w])
    adam.load_state_dict(old)
    assert adam.param_groups[0]["betas"] == (0.8, 0.9) and adam.lr == 0.05
    assert adam.state[0]["step"].dtype == np.float32 and float(adam.state[0]["step"].data) == 3


def test_schedulers_match_torch_and_reach_compiled_steps():
    w = cr.Variable(np.zeros(1))
    tw = torch.zeros(1, requires_grad=True)
    for make, tmake in [
        (lambda o: cr.optim.StepLR(o, step_size=3, gamma=0.5),
         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        (lambda o: cr.optim.CosineAnnealingLR(o, T_max=4, eta_min=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=0.01)),
    ]:
        opt, topt = cr.optim.SGD([w], lr=0.2), torch.optim.SGD([tw], lr=0.2)
        sched, tsched = make(opt), tmake(topt)
        for _ in range(10):
            assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
            topt.step()
            sched.step()
            tsched.step()

    # a compiled step reads the lr at call time
    x = cr.placeholder((None,), dtype=np.float64, name="x")
    v = cr.Variable(np.zeros(()), name="v")
    opt = cr.optim.SGD([v], lr=1.0)
    step = opt.minimize(cr.mean(v - x), [x])  # d/dv = 1: v -= lr
    step(np.zeros(3))
    opt.lr = 0.25
    step(np.zeros(3))
    assert float(v.data) == pytest.approx(-1.25)
