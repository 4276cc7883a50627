"""AdamW for the downstream heads, stepped through torch's functional AdamW.

``torch.optim.Optimizer`` imports ``torch._dynamo`` the first time any of its methods runs, even
when nothing is compiled: about 3.5 s on a 2-core CPU, as long as a classification head takes to
train, in each of the demo's 45 evaluation jobs. This class holds AdamW's state itself and steps
with ``torch.optim.adamw.adamw``, the function ``torch.optim.AdamW.step`` calls, with the same
arguments, so the weights it produces are torch.optim.AdamW's, bit for bit (tests/evaluate/
test_adamw.py). Pre-training keeps ``torch.optim.AdamW``: it checkpoints the optimiser's state.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.adamw import adamw


class AdamW:
    """``torch.optim.AdamW(params, lr, weight_decay=...)`` with its other defaults, from scratch."""

    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float,
        weight_decay: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        # Step counts as torch.optim keeps them when not capturable: scalar tensors on the CPU.
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        self.steps = [torch.tensor(0.0, dtype=scalar) for _ in self.params]

    def zero_grad(self) -> None:
        """Forget the gradients, as ``torch.optim``'s ``zero_grad(set_to_none=True)`` does."""
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of every parameter that has a gradient."""
        chosen: list[int] = []
        params: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        for i, param in enumerate(self.params):
            if param.grad is not None:
                chosen.append(i)
                params.append(param)
                grads.append(param.grad)
        adamw(
            params,
            grads,
            [self.exp_avgs[i] for i in chosen],
            [self.exp_avg_sqs[i] for i in chosen],
            [],
            [self.steps[i] for i in chosen],
            has_complex=any(torch.is_complex(param) for param in params),
            amsgrad=False,
            beta1=self.betas[0],
            beta2=self.betas[1],
            lr=self.lr,
            weight_decay=self.weight_decay,
            eps=self.eps,
            maximize=False,
        )
