import os.path as osp
import tempfile

import numpy as np
import torch

from perception_mtl.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from perception_mtl.testing import RegistryCase, check_model_trains
from perception_mtl.testing.faces import TINY_HEAD, face_batch, face_sample, tiny_model_cfg

_ROOT: dict = {}


def _face_root() -> str:
    """A tiny synthetic face dataset (2 train, 1 val, 1 pose image at 64 px), written once per session."""
    if not _ROOT:
        from perception_mtl.synthetic.faces import SyntheticFaceWriter

        root = tempfile.mkdtemp(prefix="synthetic_faces_")
        SyntheticFaceWriter(root, num_train=2, num_val=1, num_pose_eval=1, img_size=64, max_faces=2).run()
        _ROOT["root"] = root
    return _ROOT["root"]


def _results() -> dict:
    rng = np.random.default_rng(0)
    return dict(
        img=rng.integers(0, 255, (40, 80, 3), dtype=np.uint8),
        img_path="x.jpg",
        gt_bboxes=np.array([[10, 5, 30, 35]], np.float32),
        gt_landmarks=np.array([[[15, 15], [25, 15], [20, 20], [16, 28], [24, 28]]], np.float32),
        gt_landmarks_valid=np.ones(1, bool),
        gt_poses=np.array([[30.0, 5.0, -10.0]], np.float32),
    )


def check_head(head):
    feats = [torch.randn(2, 16, s, s, requires_grad=True) for s in (32, 16, 8)]
    samples = face_batch()["data_samples"]
    losses = head.loss(feats, samples, (256, 256))
    assert set(losses) == {"face.loss_cls", "face.loss_bbox", "landmark.loss", "pose.loss_cls", "pose.loss_reg"}
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    head.eval()
    preds = head.predict([f.detach() for f in feats], samples, (256, 256))
    assert preds[0].pred_instances.landmarks.shape[1:] == (5, 2) and preds[0].pred_instances.poses.shape[1:] == (3,)


def check_neck(neck):
    # conv + BN (+ LeakyReLU 0.1) blocks as mmcv ConvModules; RetinaFace's SSH branch ends have no activation
    ssh = neck.ssh[0]
    assert isinstance(neck.lateral[0].activate, torch.nn.LeakyReLU) and neck.lateral[0].activate.negative_slope == 0.1
    assert isinstance(ssh.conv5_1.activate, torch.nn.LeakyReLU) and neck.lateral[0].conv.bias is None
    assert not any(m.with_activation for m in (ssh.conv3, ssh.conv5_2, ssh.conv7_3))
    assert isinstance(ssh.conv3.bn, torch.nn.BatchNorm2d) and ssh.conv3.conv.bias is None
    outs = neck([torch.randn(1, 8, 16, 16), torch.randn(1, 12, 8, 8), torch.randn(1, 20, 4, 4)])
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 16), (1, 16, 8, 8), (1, 16, 4, 4)]
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in neck.parameters())


def check_model(model):
    losses = check_model_trains(model, face_batch())
    assert "uncertainty.loss" in losses and "pose.loss_cls" in losses
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(face_batch(), training=False)
        out = model(**data, mode="predict")
    assert out[0].pred_instances.bboxes.shape[1:] == (4,)


def check_face_dataset(dataset):
    item = dataset[0]
    assert item["inputs"].shape == (3, 64, 64) and len(item["data_samples"].gt_instances) >= 1


def check_aflw_dataset(dataset):
    assert dataset[0]["data_samples"].gt_instances.poses.shape == (1, 3)


def check_load(t):
    out = t(dict(img_path=osp.join(_face_root(), "val", "images", "000000.jpg")))
    assert out["img"].shape == (64, 64, 3) and out["ori_shape"] == (64, 64)


def check_resize(t):
    out = t(_results())
    assert out["img"].shape == (64, 64, 3) and out["scale_factor"] == (0.8, 0.8)
    np.testing.assert_allclose(out["gt_bboxes"], [[8, 4, 24, 28]])


def check_flip(t):
    out = t(_results())
    np.testing.assert_allclose(out["gt_bboxes"], [[50, 5, 70, 35]])
    np.testing.assert_allclose(out["gt_poses"], [[-30, 5, 10]])
    np.testing.assert_allclose(out["gt_landmarks"][0, 0], [80 - 25, 15])


def check_pack(t):
    out = t(_results())
    assert out["inputs"].shape == (3, 40, 80) and out["data_samples"].gt_instances.landmarks.shape == (1, 5, 2)


def check_metric(metric):
    sample = face_sample([[0, 0, 60, 60]])
    pred = sample.gt_instances.clone()
    pred.scores = torch.ones(1)
    sample.pred_instances = pred
    metric.process({}, [sample.to_dict()])
    m = metric.compute_metrics(metric.results)
    assert m["AP_hard"] == 1.0 and m["NME"] == 0.0 and m["pose_MAE"] == 0.0


CASES = {
    "FacePoseHead": RegistryCase(MODELS, dict(TINY_HEAD, in_channels=16), check_head),
    "FPNSSH": RegistryCase(MODELS, dict(type="FPNSSH", in_channels=[8, 12, 20], out_channels=16), check_neck),
    "MOSFaceNet": RegistryCase(MODELS, tiny_model_cfg(), check_model),
    "FaceDataset": RegistryCase(
        DATASETS,
        lambda: dict(
            type="FaceDataset",
            ann_file=osp.join(_face_root(), "train", "label.txt"),
            pipeline=[dict(type="LoadFaceImage"), dict(type="PackFaceInputs")],
        ),
        check_face_dataset,
    ),
    "AFLW2000Dataset": RegistryCase(
        DATASETS,
        lambda: dict(
            type="AFLW2000Dataset",
            data_root=osp.join(_face_root(), "pose_eval"),
            pipeline=[dict(type="LoadFaceImage"), dict(type="PackFaceInputs")],
        ),
        check_aflw_dataset,
    ),
    "LoadFaceImage": RegistryCase(TRANSFORMS, dict(type="LoadFaceImage"), check_load),
    "FaceResizePad": RegistryCase(TRANSFORMS, dict(type="FaceResizePad", size=64), check_resize),
    "FaceRandomFlip": RegistryCase(TRANSFORMS, dict(type="FaceRandomFlip", prob=1.0), check_flip),
    "PackFaceInputs": RegistryCase(TRANSFORMS, dict(type="PackFaceInputs"), check_pack),
    "FaceMetric": RegistryCase(METRICS, dict(type="FaceMetric"), check_metric),
}
