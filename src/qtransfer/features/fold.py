"""Batch norm folded into the convolution before it, for inference on a frozen backbone.

A frozen backbone's ``BatchNorm2d`` is an affine map per channel, so it can be merged into
the weights and bias of the ``Conv2d`` that feeds it (``torch.nn.utils.fusion.fuse_conv_bn_eval``),
saving one pass over every activation. :func:`fold_batch_norm` finds the pairs without
tracing the model: consecutive ``(Conv2d, BatchNorm2d)`` children of a plain ``nn.Sequential``
(MobileNet, EfficientNet and every torchvision ``Conv2dNormActivation``), and the named pairs
of torchvision's ResNet blocks (:data:`_NAMED_PAIRS`). Any batch norm left over (another
architecture) is folded by torch.fx's ``fuse``, which traces the model.

Why not always ``fuse``: generating the traced module's code costs about 0.13 s the first time
in a process once torchvision has loaded torch._dynamo (an ``isinstance`` check against
``HigherOrderOperator``'s many subclasses), more than the rest of the fold
(MobileNetV2, 2 cores, 2026-11-27). The weights are the same either way.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> folded = fold_batch_norm(model)
    >>> [type(m).__name__ for m in folded]
    ['Conv2d', 'ReLU']
    >>> x = torch.randn(2, 3, 8, 8)
    >>> torch.allclose(folded(x), model(x), atol=1e-6)
    True
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batch_norm"]

#: (conv, batch norm) attribute pairs of modules whose ``forward`` computes ``bn(conv(x))`` for each,
#: by the exact class (a subclass may compute something else).
_NAMED_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "torchvision.models.resnet.ResNet": (("conv1", "bn1"),),
    "torchvision.models.resnet.BasicBlock": (("conv1", "bn1"), ("conv2", "bn2")),
    "torchvision.models.resnet.Bottleneck": (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
}


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.track_running_stats


def _fold_sequential(seq: nn.Sequential) -> None:
    """Fold each (conv, bn) pair of children and drop the batch norm (Sequential runs its
    children in order, whatever their names)."""
    names = list(seq._modules)
    folded = []
    for first, second in zip(names, names[1:]):
        conv, bn = seq._modules[first], seq._modules[second]
        if _foldable(conv, bn):
            seq._modules[first] = fuse_conv_bn_eval(conv, bn)
            folded.append(second)
    for name in folded:
        del seq._modules[name]


def _fold_named(module: nn.Module, pairs: tuple[tuple[str, str], ...]) -> None:
    for conv_name, bn_name in pairs:
        conv, bn = getattr(module, conv_name), getattr(module, bn_name)
        if _foldable(conv, bn):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            setattr(module, bn_name, nn.Identity())


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every batch norm folded into its convolution.

    ``model`` itself is left as it is. The copy computes the same function up to rounding
    (the folded weights are ``fuse_conv_bn_eval``'s, as torch.fx's ``fuse`` makes them).
    """
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        cls = type(module)
        if isinstance(module, nn.Sequential) and cls.forward is nn.Sequential.forward:
            _fold_sequential(module)
        pairs = _NAMED_PAIRS.get(f"{cls.__module__}.{cls.__qualname__}")
        if pairs:
            _fold_named(module, pairs)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules()):
        from torch.fx.experimental.optimization import fuse

        return fuse(folded, inplace=True)
    return folded
