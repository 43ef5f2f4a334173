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
    out = cr.tanh(cr.tensor(x) @ w + b)
    return cr.sum(out * out) + cr.sum(w * 0.3)


def torch_loss(params, x):
    w, b = params
    out = torch.tanh(torch.tensor(x) @ w + b)
    return (out * out).sum() + (w * 0.3).sum()


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.05)),
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
