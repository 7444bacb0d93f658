"""Test helpers shared by the test suite and the benchmarks (one home, as ``mmdet.testing``).

This module: the registry-wide test's cases (tests/test_registered_modules.py) and the training check.
Submodules: ``bev`` (BEV model configs and batches), ``faces``, ``camera_calibration``, ``moe``,
``tiny_nuscenes`` (hand-made nuScenes-format files).

Each area of the package lists its registered modules in a ``tests/<area>/registry_cases.py``
file that defines ``CASES: dict[str, RegistryCase]`` (registered name -> how to build and check
it). The registry-wide test collects every such file and fails when a registered module has no case.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from mmengine.registry import Registry

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def config_path(name: str) -> pathlib.Path:
    """The repository config file called ``name`` (e.g. ``'bevfusion_fusion_demo.py'``), wherever its family
    folder is; fails when none or several match."""
    found = [p for p in (REPO_ROOT / "configs").rglob(name) if "_base_" not in p.parts]
    assert len(found) == 1, f"config {name!r}: expected one match under configs/, found {found}"
    return found[0]


@dataclass
class RegistryCase:
    """How to check one registered module: build ``cfg`` from ``registry``, then ``check(module)``.

    ``cfg`` may be a function returning the config, for configs that need files made at test time.
    """

    registry: Registry
    cfg: dict | Callable[[], dict]
    check: Callable

    def build(self):
        return self.registry.build(self.cfg() if callable(self.cfg) else self.cfg)


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
