"""Export of the tiny multi-task BEV model: every graph matches PyTorch in ONNX Runtime, passes onnx.checker
and the TensorRT 10 op check; the pooling plan equals the scatter pooling; the runner's errors name the graph."""

import json
import os
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from perception_mtl.deploy.bev_graphs import BEVHeadsGraph
from perception_mtl.deploy.bev_pool_plan import build_pool_plan, pool_with_plan
from perception_mtl.deploy.export import export_bev_model, write_manifest
from perception_mtl.deploy.ort_runner import ManifestError, ORTBEVRunner, load_manifest
from perception_mtl.deploy.tensorrt_ops import check_graph
from perception_mtl.models.view_transforms.bev_pool import bev_pool
from perception_mtl.registry import MODELS
from perception_mtl.testing.bev import PCR, model_cfg, random_batch

TASKS = ("det", "map", "occ")
TOL = 1e-4


def tiny_cfg() -> dict:
    """The tests' tiny camera + LiDAR model with the three heads (32-channel shared feature)."""
    cfg = model_cfg(("camera", "lidar"), "ConvFuser")
    cfg["heads"]["map"] = dict(
        type="BEVMapSegHead", in_channels=32, bev_range=PCR, xbound=(-50.0, 50.0, 5.0), ybound=(-50.0, 50.0, 5.0),
        feat_channels=8,
    )  # fmt: skip
    cfg["heads"]["occ"] = dict(
        type="OccupancyHead", in_channels=32, bev_range=PCR, grid_size=(25, 25, 4), feat_channels=8
    )
    cfg["tasks"] = TASKS
    return cfg


def _max_abs(a, b) -> float:
    a = a.numpy() if isinstance(a, torch.Tensor) else a
    b = b.numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.fixture(scope="module")
def model():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    model.init_weights()
    return model.eval()


def _export(model, out_dir, fixed_rig: bool) -> dict:
    data = model.data_preprocessor(random_batch(2), training=False)
    body = export_bev_model(model, data, str(out_dir), TASKS, fixed_rig=fixed_rig)
    return write_manifest(
        str(out_dir), "MultiTaskBEVModel", Config(dict(model=tiny_cfg())), None, None, TASKS, 17, body
    )


@pytest.fixture(scope="module", params=[False, True], ids=["rig_as_input", "fixed_rig"])
def exported(model, request, tmp_path_factory):
    out = tmp_path_factory.mktemp("fixed" if request.param else "dynamic")
    return str(out), _export(model, out, request.param)


# ---------------------------------------------------------------------- pooling plan
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_pool_plan_sums_like_the_scatter_pool(levels):
    torch.manual_seed(0)
    cells, points = 2000, 4000
    index = torch.randint(0, cells + 400, (points,)).clamp(max=cells)  # some points outside (dump cell)
    index[:700] = 7  # one dense cell: several chunks and levels
    feats = torch.randn(points, 5)
    plan = build_pool_plan(index, cells, run=8, num_levels=levels)
    out = pool_with_plan(torch.stack([feats, 2 * feats]), plan.levels, plan.cell_rows)
    ref = bev_pool(feats, index, cells)
    assert _max_abs(out[0], ref) < TOL and _max_abs(out[1], 2 * ref) < 2 * TOL
    empty = torch.bincount(index[index < cells], minlength=cells) == 0
    assert empty.any() and torch.all(out[:, empty] == 0)  # empty cells are exactly zero, not tiny residues


def test_pool_plan_graph_has_only_gathers_and_sums(tmp_path):
    index = torch.randint(0, 60, (500,)).clamp(max=50)
    plan = build_pool_plan(index, 50, run=4, num_levels=2)

    class Pool(torch.nn.Module):
        def forward(self, feats, level0, level1, cells):
            return pool_with_plan(feats, [level0, level1], cells)

    path = str(tmp_path / "pool.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = ["feats", "level0", "level1", "cells"]
        torch.onnx.export(Pool(), (torch.randn(1, 500, 3), *plan.tensors()), path, dynamo=False, opset_version=17,
                          input_names=names, dynamic_axes={"feats": {0: "batch"}})  # fmt: skip
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Gather", "ReduceSum"} <= ops and not {"ScatterElements", "ScatterND", "CumSum", "NonZero"} & ops
    assert check_graph(proto) == []
    feats = torch.randn(2, 500, 3)
    session = ort.InferenceSession(path)
    out = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), (feats, *plan.tensors()))})[0]
    ref = torch.stack([bev_pool(f, index, 50) for f in feats])
    assert _max_abs(out, ref) < TOL


# ---------------------------------------------------------------------- the three graphs
def test_every_graph_passes_the_checker_and_the_tensorrt_rules(exported):
    out_dir, manifest = exported
    assert set(manifest["graphs"]) == {"camera_encoder", "lidar_encoder", "bev_heads"}
    for name, graph in manifest["graphs"].items():
        proto = onnx.load(os.path.join(out_dir, graph["file"]))
        onnx.checker.check_model(proto, full_check=True)
        ops = {node.op_type for node in proto.graph.node}
        assert "NonZero" not in ops and not any(o.startswith("Scatter") and o != "ScatterElements" for o in ops), name
        assert check_graph(proto) == [], (name, check_graph(proto))
        assert graph["tensorrt10"] == {"ok": True, "violations": []}
    cam = manifest["graphs"]["camera_encoder"]
    assert "ScatterElements" not in cam["op_types"] and "CumSum" not in cam["op_types"]
    names = [i["name"] for i in cam["inputs"]]
    assert names == (["img"] if manifest["fixed_rig"] else ["img", "pool_level0", "pool_level1", "pool_cells"])
    assert cam["inputs"][0]["shape"][0] == "batch"  # dynamic batch
    heads = manifest["graphs"]["bev_heads"]
    assert [i["name"] for i in heads["inputs"]] == ["camera_bev", "lidar_bev", "lidar2ego"]
    outs = [o["name"] for o in heads["outputs"]]
    assert outs[0] == "det.0.reg" and outs[-2:] == ["map.logits", "occ.logits"]


@pytest.mark.parametrize("seed", [0, 5], ids=["export_batch", "new_random_batch"])
def test_onnxruntime_matches_pytorch_per_graph(model, exported, seed):
    out_dir, manifest = exported
    runner = ORTBEVRunner(model, out_dir, Config(dict(model=tiny_cfg())))
    data = model.data_preprocessor(random_batch(2, seed=seed), training=False)
    inputs, samples = data["inputs"], data["data_samples"]
    with torch.no_grad():
        cam = model.camera_encoder(inputs["img"], inputs["calib"])[0]  # the model's own index_add pooling
        vox = inputs["voxels"]
        lidar = model.lidar_encoder(vox["voxels"], vox["num_points"], vox["coors"], 2)
        lidar2ego = model.heads["occ"].batch_lidar2ego(samples, cam)
        heads = BEVHeadsGraph(model, TASKS)
        ref = dict(zip(heads.output_names(cam, lidar, lidar2ego), heads(cam, lidar, lidar2ego)))
        full = model(inputs, samples, mode="tensor")  # the PyTorch model's own forward
    diffs = {
        "camera_bev": _max_abs(cam, runner.camera_bev(inputs["img"], inputs["calib"])),
        "lidar_bev": _max_abs(lidar, runner.lidar_bev(vox)),
    }
    ort_heads = runner.head_outputs({"camera": cam.numpy(), "lidar": lidar.numpy()}, samples)
    diffs.update({name: _max_abs(value, ort_heads[name]) for name, value in ref.items()})
    chained = runner.raw_outputs(inputs, samples)
    diffs["chain.map"] = _max_abs(full["map"], chained["map.logits"])
    diffs["chain.occ"] = _max_abs(full["occ"], chained["occ.logits"])
    diffs["chain.det.0.heatmap"] = _max_abs(full["det"][0][0]["heatmap"], chained["det.0.heatmap"])
    assert max(diffs.values()) < TOL, {k: f"{v:.2e}" for k, v in diffs.items() if v >= TOL}


def test_runner_predictions_equal_the_pytorch_predictions(model, exported):
    out_dir, _ = exported
    runner = ORTBEVRunner(model, out_dir)
    batch = random_batch(2, seed=1)
    with torch.no_grad():
        ref = model(**model.data_preprocessor(batch, training=False), mode="predict")
    got = runner.predict(**model.data_preprocessor(random_batch(2, seed=1), training=False))
    for a, b in zip(ref, got):
        assert torch.equal(a.pred_occ, b.pred_occ) or (a.pred_occ != b.pred_occ).float().mean() < 1e-3
        assert _max_abs(a.pred_bev_seg, b.pred_bev_seg) < TOL
        pa, pb = a.pred_instances_3d, b.pred_instances_3d
        top = min(10, len(pa.scores_3d))
        assert _max_abs(pa.scores_3d[:top], pb.scores_3d[:top]) < TOL
        # Boxes: sizes are exp() of the raw maps, so compare relative to the value (random weights: up to ~50 m).
        torch.testing.assert_close(pa.bboxes_3d.tensor[:top], pb.bboxes_3d.tensor[:top], rtol=2e-4, atol=1e-4)


# ---------------------------------------------------------------------- clear errors
def test_wrong_input_shape_names_the_graph_and_input(model, exported):
    out_dir, _ = exported
    runner = ORTBEVRunner(model, out_dir)
    feeds = {"camera_bev": np.zeros((1, 16, 30, 32), np.float32), "lidar_bev": np.zeros((1, 24, 32, 32), np.float32),
             "lidar2ego": np.eye(4, dtype=np.float32)[None]}  # fmt: skip
    with pytest.raises(
        ManifestError, match=r"graph 'bev_heads' input 'camera_bev': expected shape \['batch', 16, 32, 32\]"
    ):
        runner.sessions["bev_heads"](feeds)
    with pytest.raises(ManifestError, match=r"graph 'bev_heads': .*missing \['lidar2ego'\]"):
        runner.sessions["bev_heads"]({k: v for k, v in feeds.items() if k != "lidar2ego"})


def test_foreign_manifest_and_missing_graph_are_named(model, exported, tmp_path):
    out_dir, manifest = exported
    other = tiny_cfg()
    other["heads"]["map"]["feat_channels"] = 16
    with pytest.raises(ManifestError, match="builds a different model than this config"):
        ORTBEVRunner(model, out_dir, Config(dict(model=other)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="graph 'camera_encoder': file .*camera_encoder.onnx is missing"):
        load_manifest(str(broken))
    with pytest.raises(ManifestError, match="no manifest.json"):
        load_manifest(str(tmp_path))


def test_fixed_rig_rejects_another_rig_and_a_rig_input_follows_it(model, exported):
    out_dir, manifest = exported
    runner = ORTBEVRunner(model, out_dir)
    data = model.data_preprocessor(random_batch(1), training=False)["inputs"]
    calib = data["calib"]
    calib.lidar2cam[0, 2, 0, 3] += 0.5  # camera 2 moved by half a metre
    if manifest["fixed_rig"]:
        with pytest.raises(ManifestError, match="fixed rig.*lidar2cam"):
            runner.camera_bev(data["img"], calib)
    else:  # the rig is a graph input: the moved camera is pooled where PyTorch pools it
        got = np.asarray(runner.camera_bev(data["img"], calib))
        with torch.no_grad():
            want = model.camera_encoder(data["img"], calib)[0].numpy()
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4
