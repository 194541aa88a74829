"""Adam and the step-decay schedule of the published protocol (Adam, StepLR(10, 0.1)).

The arithmetic is PyTorch's own: :meth:`Adam.step` calls the kernel that
``torch.optim.Adam(fused=True)`` calls (``torch._fused_adam_``), or, on a device without
it, the update of ``torch.optim.Adam``'s single-tensor implementation, line for line.
``tests/test_optimizer.py`` holds both to ``torch.optim.Adam`` bit for bit.

Why not ``torch.optim`` itself? Two fixed costs that dominate a training run of a
five-thousand-parameter head (measured on the 2-core CI machine, see the README):

* the first ``torch.optim`` optimizer a process builds imports ``torch._dynamo`` (its
  methods are wrapped by ``torch._disable_dynamo``, which imports it on first call):
  1.7 s, more than a whole warm training run of the published experiment;
* ``Optimizer.step()`` spends about 80 us per call in Python bookkeeping around a kernel
  that takes 6 us, about half of a fused training step (:mod:`qtransfer.heads.fused_step`).

The learning-rate schedule is StepLR's: after every ``step_size`` epochs, ``lr *= gamma``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["Adam"]

_KERNEL_DEVICES = ("cpu", "cuda")


class Adam:
    """Adam (Kingma & Ba) on ``params``, stepped with gradients passed in.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = Adam([w], lr=0.1)
        >>> opt.step([torch.ones(3)])
        >>> w.detach()
        tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam needs at least one parameter")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {lr!r}")
        if not all(0.0 <= b < 1.0 for b in betas) or not eps >= 0.0:
            raise ValueError(f"Adam needs 0 <= betas < 1 and eps >= 0, got betas={betas!r}, eps={eps!r}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.n_steps = 0
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        # The fused kernel takes one step counter per parameter; they are equal, so one tensor per
        # device is counted and passed for every parameter.
        counters = {p.device: torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params}
        self._counters = list(counters.values())
        self._steps = [counters[p.device] for p in self.params]
        self._kernel = hasattr(torch, "_fused_adam_") and all(
            p.device.type in _KERNEL_DEVICES and p.dtype.is_floating_point for p in self.params)

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        """One Adam update with ``grads`` (aligned with ``params``)."""
        self.n_steps += 1
        beta1, beta2 = self.betas
        if self._kernel:
            for counter in self._counters:
                counter.add_(1)
            torch._fused_adam_(self.params, grads, self.exp_avg, self.exp_avg_sq, [], self._steps, amsgrad=False,
                               lr=self.lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
                               maximize=False, grad_scale=None, found_inf=None)
            return
        step_size = self.lr / (1 - beta1**self.n_steps)
        bias_correction2_sqrt = (1 - beta2**self.n_steps) ** 0.5
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v.sqrt() / bias_correction2_sqrt).add_(self.eps), value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """Plain data (numbers and tensors): loadable with ``torch.load(weights_only=True)``."""
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "n_steps": self.n_steps,
                "exp_avg": [m.clone() for m in self.exp_avg], "exp_avg_sq": [v.clone() for v in self.exp_avg_sq]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; the moments must match the parameters' shapes."""
        for key in ("exp_avg", "exp_avg_sq"):
            saved = state[key]
            if len(saved) != len(self.params) or any(s.shape != p.shape for s, p in zip(saved, self.params)):
                raise ValueError(f"the saved optimizer state does not fit these parameters ({key} shapes differ)")
        self.lr, self.betas, self.eps = float(state["lr"]), tuple(map(float, state["betas"])), float(state["eps"])
        self.n_steps = int(state["n_steps"])
        for mine, saved in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"]):
            mine.copy_(saved)
        for counter in self._counters:
            counter.fill_(self.n_steps)

    def decay(self, epoch: int, step_size: int, gamma: float) -> None:
        """StepLR, stepped after ``epoch`` (1-based): multiply the rate by ``gamma`` every ``step_size`` epochs."""
        if epoch % step_size == 0:
            self.lr *= gamma
