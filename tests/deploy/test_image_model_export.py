"""Image models (MOS, UGCL, M3ViT) export as one graph each (batch dynamic), pass onnx.checker and the
TensorRT 10 check, and match PyTorch in ONNX Runtime on real samples of their demo test sets."""

import onnx
import pytest

from perception_mtl.apis.create_data import main as create_data
from perception_mtl.deploy.export import export
from perception_mtl.deploy.tensorrt_ops import check_graph
from perception_mtl.deploy.verify import verify
from perception_mtl.testing import config_path, random_checkpoint

WORKERS_OFF = [f"{s}_dataloader.{k}" for s in ("train", "val", "test") for k in ("num_workers", "persistent_workers")]
M3VIT_TINY = {
    "test_dataloader.dataset.num_samples": 2,
    "test_dataloader.dataset.img_size": 32,
    "model.backbone.img_size": 32,
    "model.backbone.depth": 2,
    "model.backbone.embed_dim": 24,
    "model.backbone.out_indices": [0, 1],
    "model.backbone.feature_scales": [2.0, 1.0],
}


def _options(name: str, tmp) -> dict:
    off = {"test_dataloader.num_workers": 0, "test_dataloader.persistent_workers": False}
    if name.startswith("mos"):
        data = str(tmp / "faces")
        create_data(["faces", "--out-dir", data, "--num-train", "1", "--num-val", "2", "--num-pose-eval", "0"])
        return {**off, "test_dataloader.dataset.data_root": data}
    if name.startswith("ugcl"):
        data = str(tmp / "cvgl")  # the demo's 128x96 pairs (its fused map pools to itself, as ONNX needs)
        create_data(["cvgl", "--out-dir", data, "--num-samples", "10", "--workers", "1"])
        return {**off, "test_dataloader.dataset.data_root": data}
    return {**off, **M3VIT_TINY}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mos_face_pose_demo.py", "ugcl_calib_demo.py", "m3vit_demo.py"])
def test_image_model_exports_one_graph_matching_pytorch(tmp_path, name, capfd):
    config = str(config_path(name))
    options = _options(name, tmp_path)
    checkpoint = str(tmp_path / "random.pth")
    random_checkpoint(config, checkpoint, options)
    out = str(tmp_path / "onnx")
    manifest = export(config, checkpoint, out, cfg_options=options)
    (graph,) = manifest["graphs"].values()
    assert graph["inputs"][0]["name"] == "inputs" and graph["inputs"][0]["shape"][0] == "batch"
    proto = onnx.load(f"{out}/{graph['file']}")
    onnx.checker.check_model(proto, full_check=True)
    assert check_graph(proto) == [] and "NonZero" not in graph["op_types"]
    capfd.readouterr()
    diffs = verify(config, checkpoint, out, num_samples=2, cfg_options=options)
    assert "2/2" in capfd.readouterr().out  # the verification shows its progress over the samples
    # Within 1e-4 of each output's scale: untrained models (BN statistics 0 / 1) give outputs in the tens and
    # hundreds, where float32 reordering alone (ONNX Runtime folds BN into the convs) differs by ~1e-5 relative.
    assert diffs
    for key, entry in diffs.items():
        assert entry["max_abs_diff"] < 1e-4 * max(1.0, entry["max_abs_ref"]), (key, entry)


@pytest.mark.slow
def test_m3vit_sparse_single_task_export(tmp_path):
    """``--sparse TASK``: the single-task model extracted from the MoE ViT, one task's outputs only."""
    config = str(config_path("m3vit_demo.py"))
    options = _options("m3vit_demo.py", tmp_path)
    checkpoint = str(tmp_path / "random.pth")
    _, model = random_checkpoint(config, checkpoint, options)
    task = model.tasks[0]
    out = str(tmp_path / "onnx")
    manifest = export(config, checkpoint, out, cfg_options=options, sparse=task)
    (graph,) = manifest["graphs"].values()
    assert manifest["sparse_task"] == task and all(o["name"].split(".")[0] == task for o in graph["outputs"])
    diffs = verify(config, checkpoint, out, num_samples=1, cfg_options=options)  # against the full model
    assert diffs and all(key.split("/")[1].split(".")[0] == task for key in diffs)
    for key, entry in diffs.items():
        assert entry["max_abs_diff"] < 1e-4 * max(1.0, entry["max_abs_ref"]), (key, entry)
