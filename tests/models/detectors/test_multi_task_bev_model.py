"""MultiTaskBEVModel: modality/task assembly, config errors, contract methods, export boundaries, overfitting."""

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

from perception_mtl.deploy import export_onnx
from perception_mtl.registry import MODELS
from perception_mtl.testing.bev import model_cfg, random_batch


@pytest.fixture(autouse=True)
def scope():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)


def build(*args):
    model = MODELS.build(model_cfg(*args))
    model.init_weights()
    return model


@pytest.mark.parametrize(
    "modalities,fuser", [(("camera",), None), (("lidar",), None), (("camera", "lidar"), "AddFuser")]
)
def test_same_class_runs_every_modality_setting(modalities, fuser):
    model = build(modalities, fuser)
    assert list(model.encoders) == list(modalities) and (model.fuser is None) == (fuser is None)
    data = model.data_preprocessor(random_batch(), training=True)
    losses = model(**data, mode="loss")
    assert all(torch.isfinite(v) for v in losses.values())
    assert ("depth.loss_depth" in losses) == ("camera" in modalities)
    assert {k.split(".")[0] for k in losses} <= {"det", "depth"}
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(random_batch(), training=False), mode="predict")
        raw = model(**model.data_preprocessor(random_batch(), training=False), mode="tensor")
    assert out[0].pred_instances_3d.bboxes_3d.tensor.shape[1] == 9
    assert set(raw) == {"det"}


def test_config_errors_name_the_key():
    cfg = model_cfg(("camera", "lidar"), "ConvFuser")
    with pytest.raises(ValueError, match="fuser: required"):
        MODELS.build({**cfg, "fuser": None})
    single = model_cfg(("lidar",), None)
    with pytest.raises(ValueError, match="fuser: set to None"):
        MODELS.build({**single, "fuser": dict(type="ConvFuser", in_channels=[24], out_channels=24)})
    with pytest.raises(ValueError, match="heads: no head configured for tasks \\['map'\\]"):
        MODELS.build({**cfg, "tasks": ("det", "map")})
    with pytest.raises(ValueError, match="unknown modalities \\['radar'\\]"):
        MODELS.build({**cfg, "encoders": {**cfg["encoders"], "radar": dict(type="X")}})
    model = MODELS.build({**single, "data_preprocessor": dict(type="BEVDataPreprocessor")})
    with pytest.raises(KeyError, match="data_preprocessor.voxelize"):
        model(**model.data_preprocessor(random_batch(), training=True), mode="loss")
    mismatched = model_cfg(("camera", "lidar"), "ConvFuser")
    mismatched["encoders"]["lidar"]["out_stride"] = 4
    model = MODELS.build(mismatched)
    with pytest.raises(ValueError, match="BEV sizes differ"):
        model(**model.data_preprocessor(random_batch(), training=True), mode="loss")


def test_extract_shared_and_loss_by_shared_follow_the_calibration_contract():
    model = build(("camera", "lidar"), "ConvFuser")
    data = model.data_preprocessor(random_batch(), training=True)
    seen = {}

    def hook(feats):
        seen.update(feats)
        return {"camera": feats["camera"] * 0, "lidar": feats["lidar"]}

    shared = model.extract_shared(data["inputs"], data["data_samples"], modality_hook=hook)
    assert set(seen) == {"camera", "lidar"} and seen["camera"].shape[-2:] == seen["lidar"].shape[-2:]
    assert torch.all(shared.modality_feats["camera"] == 0)  # the fuser consumed the hook's output
    assert set(shared.aux_losses) == {"depth.loss_depth"}
    losses = model.loss_by_shared(shared.feat, data["data_samples"])
    assert all(k.startswith("det.") for k in losses)
    model.loss_scale["det"] = 2.0
    doubled = model.loss_by_shared(shared.feat, data["data_samples"])
    assert torch.allclose(doubled["det.car.loss_heatmap"], 2 * losses["det.car.loss_heatmap"])


def test_camera_encoder_accepts_precomputed_pool_indices():
    model = build(("camera",), None).eval()
    data = model.data_preprocessor(random_batch(), training=False)["inputs"]
    vt = model.encoders["camera"]["view_transform"]
    with torch.no_grad():
        bev, _ = model.camera_encoder(data["img"], data["calib"])
        index = vt.pool_index(data["calib"], (4, 11), tuple(data["img"].shape[-2:]))
        bev2, _ = model.camera_encoder(data["img"], pool_index=index)
    assert torch.equal(bev, bev2)


class _LidarToHeads(torch.nn.Module):
    """Export boundary chain: lidar_encoder -> fuse -> bev_decode -> head raw outputs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, voxels, num_points, coors):
        bev = self.model.lidar_encoder(voxels, num_points, coors, 1)
        feat = self.model.bev_decode(self.model.fuse({"lidar": bev}))
        return self.model.heads["det"].export_outputs(feat)


def test_lidar_branch_to_head_outputs_exports_to_onnx():
    model = build(("lidar",), None).eval()
    vox = model.data_preprocessor(random_batch(1), training=False)["inputs"]["voxels"]
    args = (vox["voxels"], vox["num_points"], vox["coors"])
    session, _ = export_onnx(_LidarToHeads(model).eval(), args, input_names=["voxels", "num_points", "coors"],
                             dynamic_axes={"voxels": {0: "v"}, "num_points": {0: "v"}, "coors": {0: "v"}})  # fmt: skip
    vox2 = model.data_preprocessor(random_batch(1, seed=3), training=False)["inputs"]["voxels"]
    feeds = {k: vox2[k].numpy() for k in ("voxels", "num_points", "coors")}
    outs = session.run(None, feeds)
    with torch.no_grad():
        ref = _LidarToHeads(model)(vox2["voxels"], vox2["num_points"], vox2["coors"])
    assert len(outs) == len(ref) == 36
    assert max(np.abs(o - r.numpy()).max() for o, r in zip(outs, ref)) < 1e-4


def test_fused_model_overfits_a_fixed_batch():
    """CPU smoke test: a few AdamW steps on one batch; the loss must fall."""
    model = build(("camera", "lidar"), "ConvFuser")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = model.data_preprocessor(random_batch(), training=True)
    history = []
    for _ in range(8):
        losses = model(**data, mode="loss")
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert history[-1] < 0.75 * history[0], history
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(random_batch(), training=False), mode="predict")
    assert len(out[0].pred_instances_3d.scores_3d) > 0
