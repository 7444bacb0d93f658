import os
import os.path as osp

import numpy as np
import pytest
import scipy.io
from mmengine.registry import init_default_scope

from perception_mtl.apis.create_data import main as create_data
from perception_mtl.datasets import AFLW2000Dataset, BadSampleError, FaceDataset
from perception_mtl.datasets.aflw2000_dataset import read_aflw2000_mat
from perception_mtl.datasets.face_dataset import parse_label_txt
from perception_mtl.registry import TRANSFORMS
from perception_mtl.synthetic.faces import SyntheticFaceWriter, synthetic_face_writer

# A line of RetinaFace's train label.txt: box, five (x, y, flag) landmarks, blur/score.
LINE20 = (
    "449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 "
    "485.174 425.893 0.0 538.357 431.491 0.0 0.82"
)


@pytest.fixture(scope="module")
def face_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("faces"))
    create_data(["faces", "--out-dir", root, "--num-train", "3", "--num-val", "2", "--num-pose-eval", "2"])
    create_data(["faces", "--out-dir", root + "_b", "--num-train", "2", "--num-val", "0", "--num-pose-eval", "0"])
    return root


def test_parse_retinaface_lines(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text(f"# a.jpg\n{LINE20}\n10 20 30 40\n# b.jpg\n{LINE20} 10 -20 5\n# c.jpg\n")
    images = parse_label_txt(str(path))
    assert [im["img_path"] for im in images] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [im["line"] for im in images] == [1, 4, 6]
    a, b, c = images
    np.testing.assert_allclose(a["gt_bboxes"], [[449, 330, 571, 479], [10, 20, 40, 60]])
    np.testing.assert_allclose(a["gt_landmarks"][0, 1], [542.089, 376.442], rtol=1e-6)
    assert a["gt_landmarks_valid"].tolist() == [True, False] and np.isnan(a["gt_poses"]).all()
    np.testing.assert_allclose(b["gt_poses"], [[10, -20, 5]])
    assert c["gt_bboxes"].shape == (0, 4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("# a.jpg\n1 2 3\n", "line 2: 3 values"),
        ("# a.jpg\n10 20 30 40\n1 2 x 4\n", "line 3: not a number"),
        ("10 20 30 40\n", "line 1: face line before"),
        ("# a.jpg\n10 20 -3 40\n", "line 2: negative box size"),
        ("# a.jpg\n\n#\n", "line 3: '#' without an image path"),
    ],
)
def test_malformed_label_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "label.txt"
    path.write_text(text)
    with pytest.raises(BadSampleError, match=message) as err:
        parse_label_txt(str(path))
    assert str(path) in str(err.value)


def test_writer_round_trip_and_disjoint_splits(face_root):
    train = parse_label_txt(osp.join(face_root, "train", "label.txt"))
    assert len(train) == 3 and all(len(im["gt_bboxes"]) >= 1 for im in train)
    writer = SyntheticFaceWriter(face_root, seed=0)
    from perception_mtl.synthetic.faces import render_face_image

    _, faces = render_face_image(writer.rng("train", 0), writer.img_size)
    np.testing.assert_allclose(train[0]["gt_bboxes"], np.stack([f["box"] for f in faces]), atol=2e-3)
    np.testing.assert_allclose(train[0]["gt_poses"], np.stack([f["pose"] for f in faces]), atol=2e-3)
    read = lambda split, i: open(osp.join(face_root, split, "images", f"{i:06d}.jpg"), "rb").read()  # noqa: E731
    assert read("train", 0) != read("val", 0)  # disjoint seed streams
    assert read("train", 1) == open(osp.join(face_root + "_b", "train", "images", "000001.jpg"), "rb").read()


def test_missing_image_names_label_file_and_line(face_root, tmp_path):
    label = tmp_path / "label.txt"
    label.write_text(
        f"# {osp.join(face_root, 'train', 'images', '000000.jpg')}\n10 10 20 20\n# nope.jpg\n10 10 20 20\n"
    )
    with pytest.raises(BadSampleError, match="line 3: image not found") as err:
        FaceDataset(ann_file=str(label), data_prefix=dict(img="/"))
    assert str(label) in str(err.value)


def test_mat_reader_and_bad_mat(face_root, tmp_path):
    record = read_aflw2000_mat(osp.join(face_root, "pose_eval", "image00000.mat"))
    assert record["pose"].shape == (3,) and record["landmarks68"].shape == (68, 2)
    scipy.io.savemat(
        tmp_path / "x.mat", {"Pose_Para": np.array([[0.1, -0.2, 0.3, 0, 0, 0, 1]]), "pt3d_68": np.ones((3, 68))}
    )
    np.testing.assert_allclose(
        read_aflw2000_mat(str(tmp_path / "x.mat"))["pose"], np.rad2deg([-0.2, 0.1, 0.3]), rtol=1e-6
    )
    scipy.io.savemat(tmp_path / "no_pose.mat", {"pt3d_68": np.ones((3, 68))})
    with pytest.raises(BadSampleError, match="no 'Pose_Para'") as err:
        read_aflw2000_mat(str(tmp_path / "no_pose.mat"))
    assert "no_pose.mat" in str(err.value)
    folder = tmp_path / "set"
    folder.mkdir()
    os.link(tmp_path / "no_pose.mat", folder / "image00001.mat")
    (folder / "image00001.jpg").write_bytes(b"")
    with pytest.raises(BadSampleError, match="sample 0: .*no 'Pose_Para'"):
        AFLW2000Dataset(data_root=str(folder))


def test_pose_eval_files_read_back_the_rendered_pose(tmp_path):
    """Generator -> .mat -> reader gives the pose the head was rendered with (one convention, no sign flip),
    and pt3d_68's third row is height toward the viewer (AFLW2000), i.e. minus the renderer's depth."""
    writer = SyntheticFaceWriter(str(tmp_path), num_train=0, num_val=0, num_pose_eval=3, img_size=64)
    writer.write_pose_eval_split()
    for index in range(3):
        _, faces = synthetic_face_writer.render_face_image(writer.rng("pose_eval", index), 64, 1, 0.4 * 64)
        mat_path = osp.join(str(tmp_path), "pose_eval", f"image{index:05d}.mat")
        record = read_aflw2000_mat(mat_path)
        np.testing.assert_allclose(record["pose"], faces[0]["pose"], atol=1e-4)
        np.testing.assert_allclose(record["landmarks68"], faces[0]["landmarks68"][:, :2], atol=1e-4)
        pt3d = scipy.io.loadmat(mat_path)["pt3d_68"]
        np.testing.assert_allclose(pt3d[2], -faces[0]["landmarks68"][:, 2], atol=1e-9)


def test_datasets_and_pipeline(face_root):
    init_default_scope("perception_mtl")
    pipeline = [
        dict(type="LoadFaceImage"),
        dict(type="FaceResizePad", size=128),
        dict(type="FaceRandomFlip", prob=1.0),
        dict(type="PackFaceInputs"),
    ]
    ds = FaceDataset(ann_file=osp.join(face_root, "val", "label.txt"), pipeline=pipeline)
    info = ds.get_data_info(0)
    item = ds[0]
    gt = item["data_samples"].gt_instances
    assert item["inputs"].shape == (3, 128, 128) and item["data_samples"].metainfo["flip"]
    scale = 128 / 192  # the generated 192 px images -> 128
    expected = info["gt_bboxes"][:, [2, 1, 0, 3]] * scale
    expected[:, [0, 2]] = 128 - expected[:, [0, 2]]
    np.testing.assert_allclose(gt.bboxes.numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(gt.poses.numpy(), info["gt_poses"] * [-1, 1, -1], atol=1e-5)
    np.testing.assert_allclose(gt.landmarks[:, 0, 0].numpy(), 128 - info["gt_landmarks"][:, 1, 0] * scale, atol=1e-3)
    aflw = AFLW2000Dataset(data_root=osp.join(face_root, "pose_eval"), pipeline=pipeline[:2] + pipeline[3:])
    assert len(aflw) == 2 and aflw[1]["data_samples"].gt_instances.poses.shape == (1, 3)
    with pytest.raises(BadSampleError, match="image missing or unreadable"):
        TRANSFORMS.build(dict(type="LoadFaceImage"))(dict(img_path="/nonexistent.jpg"))


def test_writer_error_keeps_earlier_samples(tmp_path, monkeypatch):
    real = synthetic_face_writer.render_face_image
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("renderer failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic_face_writer, "render_face_image", flaky)
    with pytest.raises(RuntimeError):
        SyntheticFaceWriter(str(tmp_path), num_train=5, num_val=0, num_pose_eval=0, img_size=64).run()
    images = parse_label_txt(str(tmp_path / "train" / "label.txt"))
    assert [im["img_path"] for im in images] == ["images/000000.jpg", "images/000001.jpg"]
    assert all((tmp_path / "train" / im["img_path"]).is_file() for im in images)
