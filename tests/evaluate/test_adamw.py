"""The heads' AdamW is torch.optim.AdamW, bit for bit, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import torch
from torch import nn

from adaptor.evaluate.adamw import AdamW


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _train(model: nn.Module, optimiser: AdamW | torch.optim.Optimizer, frozen_until: int) -> nn.Module:
    """Ten steps; the last layer gets no gradient for the first ``frozen_until`` steps."""
    generator = torch.Generator().manual_seed(1)
    for step in range(10):
        x = torch.randn(16, 6, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        model[3].requires_grad_(step >= frozen_until)
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model


def test_weights_equal_torch_optim_adamw_bit_for_bit() -> None:
    ours = _net()
    _train(ours, AdamW(ours.parameters(), lr=5e-3, weight_decay=1e-4), frozen_until=4)
    theirs = _net()
    _train(theirs, torch.optim.AdamW(theirs.parameters(), lr=5e-3, weight_decay=1e-4), frozen_until=4)
    start = _net()
    for name, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
        if value.is_floating_point():
            assert not torch.equal(start.state_dict()[name], value), f"{name} never moved"


def test_training_does_not_import_dynamo() -> None:
    script = (
        "import sys, torch\n"
        "from adaptor.evaluate.adamw import AdamW\n"
        "layer = torch.nn.Linear(3, 1)\n"
        "optimiser = AdamW(layer.parameters(), lr=0.1)\n"
        "layer(torch.ones(2, 3)).sum().backward()\n"
        "optimiser.step()\n"
        "optimiser.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == "False"
