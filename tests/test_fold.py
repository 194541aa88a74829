"""fold_batch_norm: the same folded weights as torch.fx's fuse, without tracing."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

from qtransfer.features.backbones import create_backbone
from qtransfer.features.fold import fold_batch_norm


def _with_running_stats(model: nn.Module) -> nn.Module:
    """Random-init batch norms are the identity; give them statistics so that folding matters."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_fold_equals_fx_fuse_and_the_model(name, request):
    weights = request.getfixturevalue("mobilenet_weights") if name == "mobilenet_v2" else None
    model = create_backbone(name, weights=weights).model
    if weights is None:
        _with_running_stats(model)
    before = copy.deepcopy(model.state_dict())
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert not isinstance(folded, torch.fx.GraphModule)  # the known architectures need no tracing
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        mine, fx, eager = folded(x), fuse(copy.deepcopy(model))(x), model(x)
    torch.testing.assert_close(mine, fx, atol=1e-6, rtol=0)
    torch.testing.assert_close(mine, eager, atol=1e-4, rtol=1e-4)
    # the model itself is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_unknown_layout_falls_back_to_fx():
    class Block(nn.Module):  # conv -> bn by attribute: not a known pair
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)))

    model = _with_running_stats(nn.Sequential(Block(), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))).eval()
    folded = fold_batch_norm(model)
    assert isinstance(folded, torch.fx.GraphModule)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_sequential_subclass_with_its_own_forward_is_left_to_fx():
    class Residual(nn.Sequential):  # bn is applied to x + conv(x): not foldable into conv
        def forward(self, x):
            return self[1](x + self[0](x))

    model = _with_running_stats(Residual(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3))).eval()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(fold_batch_norm(model)(x), model(x), atol=1e-5, rtol=1e-5)
