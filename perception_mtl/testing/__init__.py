"""Test helpers shared by the test suite and the benchmarks (one home, as ``mmdet.testing``).

This module: the registry-wide test's cases (tests/test_registered_modules.py) and the training check.
``on_data_root`` re-points a repository config at generated data, ``random_checkpoint`` saves an untrained one.
Submodules: ``bev`` (BEV model configs and batches), ``faces``, ``camera_calibration``, ``moe``,
``tiny_nuscenes`` (hand-made nuScenes-format files).

Each area of the package lists its registered modules in a ``tests/<area>/registry_cases.py``
file that defines ``CASES: dict[str, RegistryCase]`` (registered name -> how to build and check
it). The registry-wide test collects every such file and fails when a registered module has no case.
"""

from __future__ import annotations

import os
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


def on_data_root(cfg, data_root: str):
    """``cfg`` (an mmengine ``Config``, changed in place and returned) re-pointed at the nuScenes-format folder
    ``data_root``: the datasets, the map-label loader, the object-paste database and the evaluators, with the
    loaders in the main process (no workers), as tests and benchmarks run the repository configs on the
    session's generated data. ``test_evaluator`` becomes ``val_evaluator``, since both then score mini_val."""
    root = str(data_root).rstrip("/") + "/"
    cfg.data_root = root
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(name)
        if not loader:
            continue
        loader.dataset.data_root = root
        loader.num_workers = 0
        loader.persistent_workers = False
        for step in loader.dataset.get("pipeline", []):
            if step["type"] == "LoadBEVMapSegmentation":
                step["data_root"] = root
            if step["type"] == "mmdet3d.ObjectSample":
                step["db_sampler"]["data_root"] = root
                step["db_sampler"]["info_path"] = root + os.path.basename(step["db_sampler"]["info_path"])
    evaluators = cfg.get("val_evaluator")
    if evaluators:
        for ev in evaluators if isinstance(evaluators, list) else [evaluators]:
            if "data_root" in ev:
                ev["data_root"] = root
        cfg.test_evaluator = evaluators
    return cfg


def random_checkpoint(config: str, path: str, cfg_options: dict | None = None):
    """Builds ``config``'s model (with ``cfg_options`` merged) at seed 0, initialises it and saves its weights
    to ``path`` as an MMEngine checkpoint, for tools that need one (export, test, visualise) where training
    would cost minutes. Returns ``(cfg, model)``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from perception_mtl.registry import MODELS

    cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, str(path))
    return cfg, model


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
