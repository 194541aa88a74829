"""qtransfer's Adam is torch.optim.Adam bit for bit (fused kernel and single-tensor fallback); StepLR too."""

from __future__ import annotations

import math

import pytest
import torch

from qtransfer.training.optimizer import Adam

SHAPES = [(4, 12), (4,), (6, 4), (2, 4), (2,)]  # the dressed quantum head's parameters


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in SHAPES]


def _grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]


def _run_torch(params, steps, lr, **kind):
    opt = torch.optim.Adam(params, lr=lr, **kind)
    for k in range(steps):
        for p, g in zip(params, _grads(params, k)):
            p.grad = g
        opt.step()
    return opt


def _run_ours(params, steps, lr, kernel=None):
    opt = Adam(params, lr=lr)
    if kernel is not None:
        opt._kernel = kernel
    for k in range(steps):
        opt.step(_grads(params, k))
    return opt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel, torch_kind", [(True, {"fused": True}), (False, {"foreach": False})])
def test_equals_torch_adam_bit_for_bit(dtype, kernel, torch_kind):
    if kernel and not hasattr(torch, "_fused_adam_"):
        pytest.skip("this torch has no fused Adam kernel")
    ours, theirs = _params(dtype), _params(dtype)
    opt = _run_ours(ours, 25, 3e-3, kernel=kernel)
    ref = _run_torch(theirs, 25, 3e-3, **torch_kind)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
    for p, m, v in zip(theirs, opt.exp_avg, opt.exp_avg_sq):
        assert torch.equal(m, ref.state[p]["exp_avg"]) and torch.equal(v, ref.state[p]["exp_avg_sq"])
    assert opt.n_steps == 25


def test_without_the_kernel_it_falls_back(monkeypatch):
    monkeypatch.delattr(torch, "_fused_adam_", raising=False)
    opt = Adam(_params(torch.float32), lr=1e-3)
    assert not opt._kernel
    opt.step(_grads(opt.params, 0))
    assert opt.n_steps == 1


def test_state_dict_round_trip_continues_exactly():
    full, part = _params(torch.float32), _params(torch.float32)
    opt_full = _run_ours(full, 10, 1e-2)
    opt_part = _run_ours(part, 6, 1e-2)
    saved = opt_part.state_dict()
    torch.save(saved, buffer := __import__("io").BytesIO())
    buffer.seek(0)
    resumed = Adam(part, lr=99.0)  # the saved rate wins
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.lr == 1e-2 and resumed.n_steps == 6
    for k in range(6, 10):
        resumed.step(_grads(part, k))
    for p, q in zip(full, part):
        assert torch.equal(p, q)
    assert resumed.n_steps == opt_full.n_steps


def test_state_that_does_not_fit_is_refused():
    state = Adam(_params(torch.float32)).state_dict()
    other = Adam([torch.nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match="does not fit"):
        other.load_state_dict(state)


def test_decay_is_torch_step_lr():
    p = torch.nn.Parameter(torch.zeros(1))
    p.grad = torch.zeros(1)
    ref = torch.optim.Adam([p], lr=4e-4)
    schedule = torch.optim.lr_scheduler.StepLR(ref, step_size=10, gamma=0.1)
    ours = Adam([torch.nn.Parameter(torch.zeros(1))], lr=4e-4)
    for epoch in range(1, 36):
        assert ours.lr == ref.param_groups[0]["lr"], epoch
        ours.decay(epoch, 10, 0.1)
        ref.step()
        schedule.step()


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(lr=-1.0), dict(lr=math.nan), dict(betas=(1.0, 0.9)), dict(eps=-1.0)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        Adam([torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_no_parameters_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        Adam([])
