import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from perception_mtl.deploy import export_onnx
from perception_mtl.registry import MODELS
from perception_mtl.synthetic.faces import render_face_image
from perception_mtl.testing.faces import face_batch, tiny_model_cfg


def _generated_batch(n=4, img_size=128):
    """Rendered synthetic faces packed as the dataset packs them (no resize: scale 1)."""
    inputs, samples = [], []
    for i in range(n):
        img, faces = render_face_image(np.random.default_rng([7, i]), img_size, max_faces=3, min_face=16)
        inputs.append(torch.from_numpy(img.transpose(2, 0, 1).copy()))
        s = DetDataSample(metainfo=dict(img_shape=(img_size, img_size), scale_factor=(1.0, 1.0)))
        gt = InstanceData()
        gt.bboxes = torch.tensor(np.stack([f["box"] for f in faces]), dtype=torch.float32)
        gt.labels = torch.zeros(len(faces), dtype=torch.long)
        gt.landmarks = torch.tensor(np.stack([f["landmarks"] for f in faces]), dtype=torch.float32)
        gt.landmarks_valid = torch.ones(len(faces), dtype=torch.bool)
        gt.poses = torch.tensor(np.stack([f["pose"] for f in faces]), dtype=torch.float32)
        s.gt_instances = gt
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_loss_is_finite_and_falls_on_a_tiny_generated_set():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg())
    batch = _generated_batch()
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    totals = []
    model.train()
    for _ in range(12):
        data = model.data_preprocessor(batch, training=True)
        losses = model(**data, mode="loss")
        assert {"face.loss_cls", "face.loss_bbox", "landmark.loss", "pose.loss_cls", "pose.loss_reg"} <= set(losses)
        total = sum(v for k, v in losses.items() if "loss" in k and k != "uncertainty.loss")
        assert torch.isfinite(total)
        optim.zero_grad()
        (total + losses["uncertainty.loss"]).backward()
        optim.step()
        totals.append(float(total.detach()))
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:3]), totals
    # the learned log-variances moved (uncertainty weighting is trained)
    assert model.task_weighting.log_vars.abs().sum() > 0


def test_predict_maps_back_to_original_pixels():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg()).eval()
    batch = face_batch()
    with torch.no_grad():
        data = model.data_preprocessor(batch, training=False)
        first = [p.pred_instances for p in model(**data, mode="predict")]
        for s in data["data_samples"]:
            s.set_metainfo(dict(scale_factor=(2.0, 4.0), img_offset=(10.0, 0.0)))
        second = [p.pred_instances for p in model(**data, mode="predict")]
    a, b = first[0], second[0]
    assert len(a) > 0
    torch.testing.assert_close(b.bboxes, (a.bboxes - torch.tensor([10.0, 0, 10, 0])) / torch.tensor([2.0, 4, 2, 4]))
    torch.testing.assert_close(b.landmarks, (a.landmarks - torch.tensor([10.0, 0])) / torch.tensor([2.0, 4]))
    torch.testing.assert_close(b.poses, a.poses)
    assert ((a.poses > -99) & (a.poses < 99)).all()


def _vit_moe(router: str) -> dict:
    return dict(
        type="ViTMoE",
        img_size=256,
        patch_size=16,
        embed_dim=32,
        depth=3,
        num_heads=2,
        moe_every=2,
        moe_cfg=dict(num_experts=4, top_k=2, router=dict(type=router)),
        out_indices=(0, 1, 2),
        feature_scales=(2.0, 1.0, 0.5),
    )


def test_vit_moe_backbone_variant():
    init_default_scope("perception_mtl")
    model = MODELS.build(tiny_model_cfg(_vit_moe("NoisyTopKGate")))
    data = model.data_preprocessor(face_batch(), training=True)
    losses = model(**data, mode="loss")
    assert "moe.loss_balance" in losses and torch.isfinite(sum(losses.values()))
    with pytest.raises(ValueError, match="route by task"):
        MODELS.build(tiny_model_cfg(dict(_vit_moe("PerTaskRouter"), tasks=("face",))))


class _HeadOutputs(torch.nn.Module):
    """The deployment graph: normalised images -> (cls, box, landmark, yaw, pitch, roll) over all priors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, img):
        outs = self.model.head_forward(img)
        return tuple(outs[k] for k in ("cls", "box", "landmark", "yaw", "pitch", "roll"))


def test_head_outputs_export_to_onnx_and_match_onnxruntime():
    init_default_scope("perception_mtl")
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg()).eval()
    wrapper = _HeadOutputs(model).eval()
    session, ops = export_onnx(
        wrapper, (torch.randn(1, 3, 64, 64),), input_names=["img"], dynamic_axes={"img": {0: "batch"}}
    )
    assert "NonZero" not in ops
    img = torch.randn(2, 3, 64, 64)  # another batch size and other values than the traced ones
    outs = session.run(None, {"img": img.numpy()})
    with torch.no_grad():
        ref = wrapper(img)
    assert [o.shape for o in outs] == [tuple(r.shape) for r in ref]
    # relative to each output's scale: an untrained model in eval mode (BN running stats 0 / 1) after
    # ConvModule's Kaiming init gives logits of ~100, where float32 differences reach ~1e-4 absolute
    assert max(np.abs(o - r.numpy()).max() / max(1.0, float(r.abs().max())) for o, r in zip(outs, ref)) < 1e-5
