"""Camera geometry against OpenCV and scipy on random cameras."""

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from perception_mtl.structures.camera_geometry import (
    axis_planes,
    camera_centre,
    decompose_projection_matrix,
    intrinsic_matrix,
    project_points,
    projection_matrix,
    projection_matrix_np,
    rotation_x,
    rotation_x_from_cos_sin,
    vanishing_directions,
    vanishing_points,
    world_origin_image,
)


def _random_cameras(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    fx, fy = rng.uniform(200, 1500, n), rng.uniform(200, 1500, n)
    u0, v0 = rng.uniform(100, 900, n), rng.uniform(100, 600, n)
    k = intrinsic_matrix(*(torch.from_numpy(a) for a in (fx, fy, u0, v0)))
    rot = torch.from_numpy(Rotation.random(n, random_state=seed).as_matrix())
    trans = torch.from_numpy(rng.uniform(-5, 5, (n, 3)))
    return k, rot, trans


def test_decomposition_matches_opencv_and_inverts_projection():
    k, rot, trans = _random_cameras(20)
    proj = projection_matrix(k, rot, trans)
    for scale in (1.0, 3.7, -0.4):  # P is defined up to scale, including its sign
        k2, r2, t2 = decompose_projection_matrix(proj * scale)
        torch.testing.assert_close(k2, k)
        torch.testing.assert_close(r2, rot)
        torch.testing.assert_close(t2, trans)
    for i in range(len(proj)):
        k_cv, r_cv, c_cv = cv2.decomposeProjectionMatrix(proj[i].numpy())[:3]
        np.testing.assert_allclose(k_cv / k_cv[2, 2], k[i].numpy(), rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(r_cv, rot[i].numpy(), atol=1e-9)
        np.testing.assert_allclose(c_cv[:3, 0] / c_cv[3, 0], camera_centre(rot, trans)[i].numpy(), atol=1e-8)


def test_projection_matches_opencv_project_points():
    k, rot, trans = _random_cameras(10, seed=1)
    rng = np.random.default_rng(2)
    proj = projection_matrix(k, rot, trans)
    # Points in front of each camera: X = R^T (p_cam - t) with p_cam.z > 0.
    p_cam = torch.from_numpy(np.concatenate([rng.uniform(-3, 3, (10, 50, 2)), rng.uniform(1, 30, (10, 50, 1))], -1))
    points = (p_cam - trans[:, None]) @ rot
    ours = project_points(proj, points)
    for i in range(10):
        rvec = cv2.Rodrigues(rot[i].numpy())[0]
        theirs = cv2.projectPoints(points[i].numpy(), rvec, trans[i].numpy(), k[i].numpy(), None)[0][:, 0]
        np.testing.assert_allclose(ours[i].numpy(), theirs, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(
        projection_matrix_np(k[0].numpy(), rot[0].numpy(), trans[0].numpy()), proj[0].numpy(), atol=1e-12
    )


def test_vanishing_points_and_world_origin_are_limits_of_projected_points():
    k, rot, trans = _random_cameras(8, seed=3)
    proj = projection_matrix(k, rot, trans)
    vps = vanishing_points(proj)
    for axis in range(3):
        # A point far along world axis +e_i projects onto that axis' vanishing point (if in front).
        far = torch.zeros(8, 1, 3, dtype=torch.float64)
        far[..., axis] = 1e9
        depth = (rot[:, :, axis] * 1e9 + trans)[:, 2]
        img = project_points(proj, far)[:, 0]
        in_front = depth > 0
        torch.testing.assert_close(img[in_front], vps[in_front, axis], rtol=1e-5, atol=1e-3)
    origin = project_points(proj, torch.zeros(8, 1, 3, dtype=torch.float64))[:, 0]
    torch.testing.assert_close(world_origin_image(proj), origin)
    dirs = vanishing_directions(proj)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(8, 3, dtype=torch.float64))
    torch.testing.assert_close(dirs[..., :2] / dirs[..., 2:], vps)


def test_rows_of_p_are_the_planes_of_the_image_axes_and_the_principal_plane():
    k, rot, trans = _random_cameras(10, seed=5)
    proj = projection_matrix(k, rot, trans)
    planes = axis_planes(proj)
    torch.testing.assert_close(planes[..., :3].norm(dim=-1), torch.ones(10, 3, dtype=torch.float64))
    torch.testing.assert_close(axis_planes(proj * 2.5), planes)
    rng = np.random.default_rng(6)
    for i in range(10):
        k_cv, r_cv, c_cv = cv2.decomposeProjectionMatrix(proj[i].numpy())[:3]
        centre = c_cv[:3, 0] / c_cv[3, 0]
        normals, offsets = planes[i, :, :3].numpy(), planes[i, :, 3].numpy()
        np.testing.assert_allclose(normals @ centre + offsets, 0.0, atol=1e-8)  # all three hold the centre
        np.testing.assert_allclose(normals[2], r_cv[2], atol=1e-12)  # principal plane normal = optical axis
        rvec = cv2.Rodrigues(rot[i].numpy())[0]
        for row in (0, 1):
            # Points of plane `row` in front of the camera: OpenCV images them on u = 0 (row 0) or v = 0 (row 1).
            basis = np.linalg.svd(normals[row][None])[2][1:]  # two unit vectors spanning the plane
            pts = centre + rng.uniform(-20, 20, (30, 2)) @ basis
            pts = pts[(pts - centre) @ r_cv[2] > 0.5]
            img = cv2.projectPoints(pts, rvec, trans[i].numpy(), k[i].numpy(), None)[0][:, 0]
            np.testing.assert_allclose(img[:, row], 0.0, atol=1e-6)
            assert np.abs(img[:, 1 - row]).max() > 1.0  # the other coordinate is free


def test_pitch_only_road_camera_has_the_documented_vanishing_points():
    # Level road frame (X right, Y down, Z forward); pitch > 0 tilts the camera down.
    pitch = torch.tensor([0.1], dtype=torch.float64)
    k = intrinsic_matrix(*(torch.tensor([f], dtype=torch.float64) for f in (100.0, 110.0, 64.0, 48.0)))
    proj = projection_matrix(k, rotation_x(pitch), torch.tensor([[0.0, 1.5, 10.0]], dtype=torch.float64))
    vps = vanishing_points(proj)
    torch.testing.assert_close(vps[0, 2], torch.tensor([64.0, 48.0 - 110.0 * np.tan(0.1)], dtype=torch.float64))
    torch.testing.assert_close(vps[0, 1], torch.tensor([64.0, 48.0 + 110.0 / np.tan(0.1)], dtype=torch.float64))
    assert not torch.isfinite(vps[0, 0]).all()  # the lateral axis is parallel to the image plane
    optical_axis_world = rotation_x(pitch)[0].T @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert optical_axis_world[1] > 0  # pointing down (world Y is down)


def test_cos_sin_rotation_is_orthonormal_only_on_the_unit_circle():
    c, s = torch.tensor([0.6, 1.2]), torch.tensor([0.8, 0.5])
    rot = rotation_x_from_cos_sin(c, s)
    torch.testing.assert_close(torch.linalg.det(rot), c**2 + s**2)
    torch.testing.assert_close(rot[0] @ rot[0].T, torch.eye(3))
    assert not torch.allclose(rot[1] @ rot[1].T, torch.eye(3))
    torch.testing.assert_close(rotation_x(torch.atan2(s[:1], c[:1])), rot[:1])
