"""SGD and Adam against torch.optim, argument checks, zero_grad, and state_dict round trips."""

import numpy as np
import pytest

import bnp
import bnp.functional as F
from bnp import backend
from bnp.optim import SGD, Adam, Optimizer

# A small model written by hand: two layers with tanh, so gradients change from step to step.
SHAPES = [(5, 4), (5,), (3, 5), (3,)]


def _init(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) * 0.5 for s in SHAPES]


def _batch(step):
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((8, 4)), rng.integers(0, 3, 8)


def _bnp_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = F.tanh(F.linear(bnp.tensor(x), w1, b1))
    return F.cross_entropy(F.linear(h, w2, b2), bnp.tensor(y))


def _torch_loss(torch, params, x, y):
    w1, b1, w2, b2 = params
    h = torch.tanh(torch.tensor(x) @ w1.T + b1)
    return torch.nn.functional.cross_entropy(h @ w2.T + b2, torch.tensor(y))


def _run_bnp(make_opt, steps, start=0, params=None, opt=None):
    if params is None:
        params = [bnp.tensor(a, requires_grad=True) for a in _init()]
        opt = make_opt(params)
    for s in range(start, start + steps):
        x, y = _batch(s)
        opt.zero_grad()
        _bnp_loss(params, x, y).backward()
        opt.step()
    return params, opt


def _run_torch(torch, make_opt, steps):
    params = [torch.tensor(a, requires_grad=True) for a in _init()]
    opt = make_opt(params)
    for s in range(steps):
        x, y = _batch(s)
        opt.zero_grad()
        _torch_loss(torch, params, x, y).backward()
        opt.step()
    return params


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
]
ADAM_CASES = [
    dict(lr=1e-2),
    dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=0.05),
    dict(lr=1e-1, betas=(0.0, 0.9)),
]


@pytest.mark.parametrize(
    "name,kwargs", [("SGD", k) for k in SGD_CASES] + [("Adam", k) for k in ADAM_CASES]
)
def test_optimizer_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours_cls, torch_cls = {"SGD": (SGD, torch.optim.SGD), "Adam": (Adam, torch.optim.Adam)}[name]
    ours, _ = _run_bnp(lambda p: ours_cls(p, **kwargs), 6)
    ref = _run_torch(torch, lambda p: torch_cls(p, **kwargs), 6)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert not np.allclose(ours[0].numpy(), _init()[0])  # the parameters did move


def test_sgd_by_hand_on_a_quadratic():
    """Two momentum steps on f(p) = p^2 / 2 (gradient p), written out."""
    p = bnp.tensor([1.0], requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        (p * p / 2).sum().backward()
        opt.step()
    # step 1: b = 1, p = 0.9; step 2: b = 0.9 * 1 + 0.9 = 1.8, p = 0.9 - 0.18 = 0.72
    assert p.numpy()[0] == pytest.approx(0.72, rel=1e-15)


def test_adam_first_step_is_lr_times_sign():
    """With bias correction the first Adam step has size lr (up to eps), whatever the gradient's scale."""
    p = bnp.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = Adam([p], lr=0.01, eps=0.0)
    (p * bnp.tensor([1e-3, 5.0, -1e4])).sum().backward()
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.99, -2.01, 3.01], rtol=1e-14)


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
                                  lambda p: Adam(p, lr=1e-2, weight_decay=0.01)])
def test_state_dict_round_trip_continues_identically(make):
    straight, _ = _run_bnp(make, 6)
    params, opt = _run_bnp(make, 3)
    saved_params = [p.numpy().copy() for p in params]
    saved = opt.state_dict()
    _run_bnp(make, 2, start=3, params=params, opt=opt)  # wander off: the saved state must not change
    fresh = [bnp.tensor(a, requires_grad=True) for a in saved_params]
    opt2 = make(fresh)
    opt2.load_state_dict(saved)
    _run_bnp(make, 3, start=3, params=fresh, opt=opt2)
    for a, b in zip(fresh, straight, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_holds_only_arrays_numbers_and_strings():
    _, opt = _run_bnp(lambda p: Adam(p), 2)
    sd = opt.state_dict()

    def leaves(d):
        for v in d.values():
            yield from (leaves(v) if isinstance(v, dict) else [v])

    for leaf in leaves(sd):
        assert backend.is_array(leaf) or isinstance(leaf, (int, float, str, bool, list)), type(leaf)
    assert sd["type"] == "Adam" and sd["num_params"] == 4 and sd["state"]["0"]["step"] == 2


def test_load_state_dict_rejects_mismatches():
    _, sgd = _run_bnp(lambda p: SGD(p, lr=0.1, momentum=0.9), 1)
    params = [bnp.tensor(a, requires_grad=True) for a in _init()]
    with pytest.raises(ValueError, match="saved by 'SGD'"):
        Adam(params).load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match="state for 4 parameters"):
        SGD(params[:2], lr=0.1).load_state_dict(sgd.state_dict())
    wrong = [bnp.tensor(np.zeros((2, 2)), requires_grad=True) for _ in SHAPES]
    with pytest.raises(ValueError, match="has shape"):
        SGD(wrong, lr=0.1, momentum=0.9).load_state_dict(sgd.state_dict())


def test_params_without_grad_are_skipped_and_zero_grad():
    a = bnp.tensor([1.0, 2.0], requires_grad=True)
    b = bnp.tensor([3.0], requires_grad=True)
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    (a * a).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [3.0])
    assert "momentum_buffer" not in opt.state[1]
    np.testing.assert_allclose(a.numpy(), [0.0, 0.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_update_is_in_place_and_records_no_graph():
    p = bnp.tensor([1.0, 2.0], requires_grad=True)
    array = p.data
    opt = Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.data is array and p.is_leaf and p.requires_grad


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "lr must be"),
    (dict(lr=float("nan")), "lr must be"),
    (dict(lr=0.1, momentum=-0.5), "momentum must be"),
    (dict(lr=0.1, weight_decay=-1), "weight_decay must be"),
    (dict(lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
])
def test_sgd_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD([bnp.tensor([1.0], requires_grad=True)], **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1e-3), "lr must be"),
    (dict(eps=-1.0), "eps must be"),
    (dict(betas=(0.9, 1.0)), "betas must be"),
    (dict(betas=(0.9,)), "betas must be"),
    (dict(weight_decay=-0.1), "weight_decay must be"),
])
def test_adam_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam([bnp.tensor([1.0], requires_grad=True)], **kwargs)


def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="does not require gradients"):
        SGD([bnp.tensor([1.0])], lr=0.1)
    p = bnp.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)
    with pytest.raises(TypeError, match="iterable of tensors"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="expected a bnp.Tensor"):
        SGD([np.zeros(2)], lr=0.1)


def test_lr_can_be_changed_between_steps():
    p = bnp.tensor([1.0], requires_grad=True)
    opt = SGD([p], lr=0.1)
    opt.lr = 0.5
    (p * 1.0).sum().backward()
    opt.step()
    assert p.numpy()[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lr must be"):
        opt.lr = -1.0
    assert isinstance(Optimizer, type) and "SGD(1 parameters" in repr(opt)
