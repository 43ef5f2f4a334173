"""Learning-rate schedulers: PyTorch's sequences on every param group, in eager and compiled
training, and through a checkpoint."""
import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

STEPS = 25

# (name, kwargs, optimizer name, optimizer kwargs); torch's classes share the names
SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, "SGD", {"lr": 0.2}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}, "SGD", {"lr": 0.2}),
    ("ExponentialLR", {"gamma": 0.9}, "Adam", {"lr": 0.01}),
    ("LambdaLR", {"lr_lambda": lambda epoch: 1.0 / (1 + epoch) ** 0.5}, "RMSprop", {}),
    ("LambdaLR", {"lr_lambda": [lambda e: 0.9**e, lambda e: 1.0 + e]}, "Adagrad", {}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}, "SGD", {"lr": 0.2}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}, "SGD",
     {"lr": 0.1, "momentum": 0.9}),
    ("OneCycleLR", {"max_lr": [0.5, 0.1], "total_steps": STEPS, "anneal_strategy": "linear",
                    "three_phase": True, "pct_start": 0.25}, "Adam", {}),
    ("OneCycleLR", {"max_lr": 0.1, "epochs": 5, "steps_per_epoch": 5,
                    "cycle_momentum": False}, "Adagrad", {}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": STEPS, "base_momentum": 0.6,
                    "max_momentum": 0.8}, "RMSprop", {"momentum": 0.5}),
]


def two_groups(params):
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": 0.05}]


def hyper(group):
    return {key: group[key] for key in ("lr", "momentum", "betas") if key in group}


@pytest.mark.parametrize("name, kwargs, opt_name, opt_kwargs", SCHEDULES)
def test_schedules_match_torch_on_every_group(name, kwargs, opt_name, opt_kwargs):
    opt = getattr(cr.optim, opt_name)(two_groups([cr.Variable(np.zeros(1)),
                                                  cr.Variable(np.zeros(2))]), **opt_kwargs)
    topt = getattr(torch.optim, opt_name)(two_groups([torch.zeros(1, requires_grad=True),
                                                      torch.zeros(2, requires_grad=True)]),
                                          **opt_kwargs)
    sched = getattr(cr.optim.lr_scheduler, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(STEPS):
        for group, tgroup in zip(opt.param_groups, topt.param_groups):
            for key, value in hyper(group).items():
                assert value == pytest.approx(tgroup[key], rel=1e-12, abs=1e-15), key
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        topt.step()
        sched.step()
        tsched.step()


@pytest.mark.parametrize("kwargs", [
    {},
    {"mode": "max", "patience": 1, "factor": 0.5},
    {"threshold_mode": "abs", "threshold": 0.05, "patience": 0, "cooldown": 2,
     "min_lr": [0.01, 0.002]},
    {"patience": 2, "eps": 0.05, "factor": 0.2},
])
def test_reduce_on_plateau_matches_torch(kwargs):
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(2.0, 1.0, 5), 1.0 + 0.02 * rng.random(40)])
    opt = cr.optim.SGD(two_groups([cr.Variable(np.zeros(1)), cr.Variable(np.zeros(2))]), lr=0.2)
    topt = torch.optim.SGD(two_groups([torch.zeros(1, requires_grad=True),
                                       torch.zeros(2, requires_grad=True)]), lr=0.2)
    sched = cr.optim.ReduceLROnPlateau(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    changes = 0
    for metric in metrics:
        before = opt.lr
        sched.step(cr.tensor(metric))
        tsched.step(float(metric))
        changes += opt.lr != before
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(
            [g["lr"] for g in topt.param_groups], rel=1e-12)
        assert sched.num_bad_epochs == tsched.num_bad_epochs
    assert changes > 0  # the sequence plateaus: the test exercised a reduction


def _loss(params, x):
    w, b = params
    wrap = cr.tensor if isinstance(w, cr.Tensor) else torch.tensor
    out = (wrap(x) if isinstance(x, np.ndarray) else x) @ w + b
    return (out * out).sum() if not isinstance(w, cr.Tensor) else cr.sum(out * out)


@pytest.mark.parametrize("opt_name, opt_kwargs, name, kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}, "OneCycleLR", {"max_lr": 0.05, "total_steps": 12}),
    ("Adam", {"lr": 0.05}, "OneCycleLR", {"max_lr": [0.05, 0.02], "total_steps": 12}),
    ("RMSprop", {"lr": 0.01}, "StepLR", {"step_size": 2, "gamma": 0.5}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}, "ExponentialLR", {"gamma": 0.8}),
])
def test_scheduled_compiled_steps_follow_torch(opt_name, opt_kwargs, name, kwargs):
    """Learning rate and momentum are read at call time: a scheduler steers a compiled step."""
    rng = np.random.default_rng(1)
    values, x = [rng.standard_normal((3, 2)), rng.standard_normal(2)], rng.standard_normal((4, 3))
    tparams = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    topt = getattr(torch.optim, opt_name)(two_groups(tparams), **opt_kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    params = [cr.Variable(v.copy(), name=f"p{i}") for i, v in enumerate(values)]
    opt = getattr(cr.optim, opt_name)(two_groups(params), **opt_kwargs)
    sched = getattr(cr.optim.lr_scheduler, name)(opt, **kwargs)
    xs = cr.placeholder((None, 3), dtype=np.float64, name="x")
    step = opt.minimize(_loss(params, xs), [xs])
    for _ in range(11):
        topt.zero_grad()
        _loss(tparams, x).backward()
        topt.step()
        tsched.step()
        step(x)
        sched.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda o: cr.optim.MultiStepLR(o, milestones=[3, 6], gamma=0.5),
    lambda o: cr.optim.CosineAnnealingLR(o, T_max=5),
    lambda o: cr.optim.OneCycleLR(o, max_lr=1.0, total_steps=20),
])
def test_schedule_resumes_from_a_checkpoint(make, tmp_path):
    def fresh():
        return cr.optim.SGD(two_groups([cr.Variable(np.zeros(1)), cr.Variable(np.zeros(2))]),
                            lr=0.3, momentum=0.5)

    ref_opt = fresh()
    ref = make(ref_opt)
    opt = fresh()
    sched = make(opt)
    for _ in range(7):
        ref.step()
        sched.step()
    cr.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s.npz")
    state = cr.load(tmp_path / "s.npz")
    opt2 = fresh()
    opt2.load_state_dict(state["opt"])
    sched2 = make(opt2)
    sched2.load_state_dict(state["sched"])
    for _ in range(8):
        ref.step()
        sched2.step()
        assert [hyper(g) for g in opt2.param_groups] == [hyper(g) for g in ref_opt.param_groups]


def test_plateau_state_survives_a_checkpoint(tmp_path):
    opt = cr.optim.Adam([cr.Variable(np.zeros(1))], lr=0.1)
    sched = cr.optim.ReduceLROnPlateau(opt, patience=1)
    for metric in [1.0, 2.0]:
        sched.step(metric)
    cr.save({"s": sched.state_dict()}, tmp_path / "p.npz")
    again = cr.optim.ReduceLROnPlateau(opt, patience=1)
    again.load_state_dict(cr.load(tmp_path / "p.npz")["s"])
    assert (again.best, again.num_bad_epochs) == (1.0, 1)
    again.step(3.0)
    assert opt.lr == pytest.approx(0.01)


def test_scheduler_errors():
    opt = cr.optim.Adagrad([cr.Variable(np.zeros(1))])
    with pytest.raises(cr.ChainruleError, match="momentum or betas"):
        cr.optim.OneCycleLR(opt, max_lr=0.1, total_steps=5)
    with pytest.raises(cr.ChainruleError, match="total_steps"):
        cr.optim.OneCycleLR(opt, max_lr=0.1, cycle_momentum=False)
    sched = cr.optim.OneCycleLR(opt, max_lr=0.1, total_steps=2, cycle_momentum=False)
    sched.step()
    sched.step()
    with pytest.raises(cr.ChainruleError, match="stepped 3 times"):
        sched.step()
    with pytest.raises(cr.ChainruleError, match="one per param group"):
        cr.optim.LambdaLR(opt, [lambda e: 1.0, lambda e: 2.0])
    with pytest.raises(cr.ChainruleError, match="initial_lr"):
        cr.optim.StepLR(cr.optim.SGD([cr.Variable(np.zeros(1))], lr=0.1), 2, last_epoch=3)
    with pytest.raises(cr.ChainruleError, match="factor < 1"):
        cr.optim.ReduceLROnPlateau(opt, factor=1.5)
