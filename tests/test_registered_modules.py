"""Every module registered in scope perception_mtl builds from a small config and runs on CPU.

Add a case here when you register a module: ``test_every_registered_module_has_a_case`` fails
until you do. Models also run backward, and every parameter must receive a gradient.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.registry import ALL_REGISTRIES, DATASETS, METRICS, MODELS


@dataclass
class Case:
    registry: object
    cfg: dict
    check: Callable


def _toy_batch(n=2):
    dataset = DATASETS.build(dict(type="ToyBEVDataset", num_samples=n, grid_size=16))
    items = [dataset[i] for i in range(n)]
    return dict(
        inputs=dict(bev=[it["inputs"]["bev"] for it in items]), data_samples=[it["data_samples"] for it in items]
    )


def check_model(model):
    model.train()
    batch = model.data_preprocessor(_toy_batch(), training=True)
    losses = model(**batch, mode="loss")
    total = sum(v for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total)
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, f"parameters without gradient: {missing}"
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(_toy_batch(), training=False), mode="predict")
    assert len(preds) == 2


def check_dataset(dataset):
    item = dataset[0]
    assert set(item) == {"inputs", "data_samples"}
    assert len(dataset) > 0


def check_metric(metric):
    metric.dataset_meta = {"classes": ("car", "pedestrian")}
    gt = torch.zeros(2, 4, 4)
    gt[0, :2] = 1
    metric.process({}, [dict(pred_bev_seg=gt.clone(), gt_bev_seg=gt)])
    result = metric.evaluate(1)
    assert any(k.endswith("mIoU") for k in result)


CASES: dict[str, Case] = {
    "ToyBEVSegmentor": Case(MODELS, dict(type="ToyBEVSegmentor", base_channels=4), check_model),
    "ToyBEVDataset": Case(DATASETS, dict(type="ToyBEVDataset", num_samples=3, grid_size=16), check_dataset),
    "BEVSegIoUMetric": Case(METRICS, dict(type="BEVSegIoUMetric"), check_metric),
}


def _registered_names() -> set[str]:
    names = set()
    for reg in ALL_REGISTRIES.values():
        reg.import_from_location()
        names.update(reg.module_dict)
    return names


def test_every_registered_module_has_a_case():
    assert _registered_names() == set(CASES), "add a Case to CASES for each newly registered module"


@pytest.mark.parametrize("name", sorted(CASES))
def test_registered_module_builds_and_runs(name):
    init_default_scope("perception_mtl")
    case = CASES[name]
    module = case.registry.build(case.cfg)
    assert type(module).__name__ == name
    case.check(module)
