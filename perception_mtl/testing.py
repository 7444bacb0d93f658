"""Helpers for the registry-wide test (tests/test_registered_modules.py).

Each area of the package lists its registered modules in a ``tests/<area>/registry_cases.py``
file that defines ``CASES: dict[str, RegistryCase]`` (registered name -> how to build and check
it). The registry-wide test collects every such file and fails when a registered module has no case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from mmengine.registry import Registry


@dataclass
class RegistryCase:
    """How to check one registered module: build ``cfg`` from ``registry``, then ``check(module)``."""

    registry: Registry
    cfg: dict
    check: Callable


def check_model_trains(model: torch.nn.Module, batch: dict, loss_key: str = "loss") -> dict:
    """Runs ``mode='loss'`` on a batch, backpropagates, and asserts every trainable parameter got
    a non-zero gradient. Returns the loss dict."""
    model.train()
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode="loss")
    total = sum(v.sum() for k, v in losses.items() if loss_key in k)
    assert torch.isfinite(total), f"non-finite loss: {losses}"
    total.backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.any(p.grad != 0))
    ]
    assert not missing, f"parameters without gradient: {missing}"
    return losses
