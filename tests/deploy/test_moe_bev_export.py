"""A task-conditioned MoE BEV decoder exports: the decoder runs per task inside the bev_heads graph, on the
MoE layers' fixed-shape gather dispatch, and ONNX Runtime matches the PyTorch model's own forward."""

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception_mtl.deploy.export import export_bev_model, sparse_task_model, write_manifest
from perception_mtl.deploy.ort_runner import ORTBEVRunner
from perception_mtl.deploy.tensorrt_ops import check_graph
from perception_mtl.registry import MODELS
from perception_mtl.testing.bev import model_cfg, moe_model_cfg, random_batch

TASKS = ("det", "map")


def test_moe_decoder_model_exports_and_matches_pytorch(tmp_path):
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    reference = MODELS.build(moe_model_cfg(TASKS))
    reference.init_weights()
    reference.eval()
    exported = MODELS.build(moe_model_cfg(TASKS)).eval()
    exported.load_state_dict(reference.state_dict())
    data = exported.data_preprocessor(random_batch(1), training=False)
    body = export_bev_model(exported, data, str(tmp_path), TASKS)
    cfg = Config(dict(model=moe_model_cfg(TASKS)))
    write_manifest(str(tmp_path), "MultiTaskBEVModel", cfg, None, None, TASKS, 17, body)
    assert all(check_graph(str(tmp_path / g["file"])) == [] for g in body["graphs"].values())
    runner = ORTBEVRunner(reference, str(tmp_path), Config(dict(model=moe_model_cfg(TASKS))))
    data = reference.data_preprocessor(random_batch(2, seed=4), training=False)
    with torch.no_grad():
        ref = reference(data["inputs"], data["data_samples"], mode="tensor")  # default (bucketed) dispatch
    got = runner.raw_outputs(data["inputs"], data["data_samples"])
    assert np.abs(got["map.logits"].numpy() - ref["map"].numpy()).max() < 1e-4
    heatmap = ref["det"][0][0]["heatmap"].numpy()
    assert np.abs(got["det.0.heatmap"].numpy() - heatmap).max() < 1e-4


def test_sparse_single_task_export_matches_the_full_model(tmp_path):
    init_default_scope("perception_mtl")
    torch.manual_seed(1)
    full = MODELS.build(moe_model_cfg(TASKS))
    full.init_weights()
    full.eval()
    single = sparse_task_model(full, "map")
    assert single.tasks == ("map",) and list(single.heads) == ["map"]
    data = single.data_preprocessor(random_batch(1), training=False)
    body = export_bev_model(single, data, str(tmp_path), ("map",))
    cfg = Config(dict(model=moe_model_cfg(TASKS)))
    write_manifest(str(tmp_path), "MultiTaskBEVModel", cfg, None, None, ("map",), 17, body)
    assert [o["name"] for o in body["graphs"]["bev_heads"]["outputs"]] == ["map.logits"]
    runner = ORTBEVRunner(full, str(tmp_path), Config(dict(model=moe_model_cfg(TASKS))))
    data = full.data_preprocessor(random_batch(2, seed=4), training=False)
    with torch.no_grad():
        ref = full(data["inputs"], data["data_samples"], mode="tensor")["map"]
    got = runner.raw_outputs(data["inputs"], data["data_samples"])["map.logits"]
    assert np.abs(got.numpy() - ref.numpy()).max() < 1e-4


def test_sparse_needs_moe_layers():
    init_default_scope("perception_mtl")
    with pytest.raises(ValueError, match="--sparse det: MultiTaskBEVModel of this config has no MoE layers"):
        sparse_task_model(MODELS.build(model_cfg(("lidar",), None)), "det")
