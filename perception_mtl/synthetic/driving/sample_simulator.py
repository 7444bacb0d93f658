"""Simulates every sensor of one key frame of a planned scene, and labels it.

A sample is independent of the others (actors move on analytic trajectories), so samples can be
simulated in any order or in parallel. For key frame k this produces the LiDAR sweeps since
key frame k-1, the key-frame sweep, the six camera images (each at its own capture time), the
annotation statistics (LiDAR points inside each box, visibility in the cameras) and the Occ3D
occupancy labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera_renderer import CameraFrame, CameraRenderer
from .geometry import make_transform, points_in_boxes, rotation_z
from .ground_raster import GroundRaster
from .lidar_simulator import LidarScan, LidarSimulator
from .occupancy_labeler import CameraView, OccupancyLabeler
from .scene_plan import ScenePlan
from .sensor_rig import CAMERA_CHANNELS

ANNOTATION_RANGE = 70.0  # actors within this distance (m) of the ego are annotated
REPORT_RANGE = 85.0  # statistics are reported a little farther, to fill annotation gaps


@dataclass
class SensorFrame:
    """One capture: time (s), ego pose (4, 4) at that time and the sensor data."""

    time: float
    ego2global: np.ndarray
    data: LidarScan | CameraFrame


@dataclass
class SampleOutput:
    """All the data of one key frame.

    Attributes:
        index: key-frame index in its scene.
        time: key-frame time (s).
        ego2global: (4, 4) ego pose at the key frame.
        sweeps: non-key LiDAR sweeps since the previous key frame, oldest first.
        lidar: the key-frame LiDAR sweep.
        cameras: channel -> camera frame.
        actor_ids: actors within ``REPORT_RANGE`` at the key frame.
        distances: (len(actor_ids),) their distance to the ego (m).
        num_lidar_pts: (len(actor_ids),) key-frame LiDAR points inside each box.
        visibility: (len(actor_ids),) visible fraction over the six cameras (visible / covered pixels).
        occupancy: 'semantics', 'mask_lidar', 'mask_camera' arrays.
    """

    index: int
    time: float
    ego2global: np.ndarray
    sweeps: list[SensorFrame]
    lidar: SensorFrame
    cameras: dict[str, SensorFrame]
    actor_ids: np.ndarray
    distances: np.ndarray
    num_lidar_pts: np.ndarray
    visibility: np.ndarray
    occupancy: dict[str, np.ndarray] = field(default_factory=dict)


def ego_pose_matrix(plan: ScenePlan, t: float) -> np.ndarray:
    """(4, 4) ego -> global at time ``t`` (ego level on the ground)."""
    xy, yaw = plan.route.pose(t)
    return make_transform(rotation_z(float(yaw[0])), [xy[0, 0], xy[0, 1], 0.0])


class SampleSimulator:
    """Simulates samples of scenes in one city.

    Args:
        ground: the city's ground raster.
        image_size: (width, height) of the camera images.
        with_occupancy: whether to compute the occupancy labels.
    """

    def __init__(self, ground: GroundRaster, image_size: tuple[int, int], with_occupancy: bool = True) -> None:
        self.ground = ground
        self.lidar = LidarSimulator()
        self.renderer = CameraRenderer(*image_size)
        self.occupancy = OccupancyLabeler() if with_occupancy else None

    def simulate(self, plan: ScenePlan, index: int) -> SampleOutput:
        """Simulates key frame ``index`` of ``plan``."""
        rng = np.random.default_rng([plan.seed, index])
        t_key = float(plan.sample_times[index])
        lidar2ego = plan.rig.lidar.sensor2ego
        sweeps = []
        for t in plan.sweep_times[index]:
            ego = ego_pose_matrix(plan, float(t))
            scan = self.lidar.scan(ego @ lidar2ego, plan.primitives(float(t)), self.ground, rng)
            sweeps.append(SensorFrame(float(t), ego, scan))
        ego_key = ego_pose_matrix(plan, t_key)
        prims_key = plan.primitives(t_key)
        key_scan = self.lidar.scan(ego_key @ lidar2ego, prims_key, self.ground, rng)

        cameras = {}
        num_actors = len(plan.actors)
        visible = np.zeros(num_actors)
        covered = np.zeros(num_actors)
        for channel in CAMERA_CHANNELS:
            cal = plan.rig.camera(channel)
            t = t_key + cal.time_offset
            ego = ego_pose_matrix(plan, t)
            frame = self.renderer.render(
                cal.intrinsic,
                ego @ cal.sensor2ego,
                plan.primitives(t),
                self.ground,
                plan.sun,
                plan.exposure,
                num_actors,
                rng,
            )
            visible += frame.visible_pixels
            covered += frame.covered_pixels
            cameras[channel] = SensorFrame(t, ego, frame)

        centers, sizes, yaws = plan.actors.boxes(t_key)
        dist = np.linalg.norm(centers[:, :2] - ego_key[:2, 3], axis=1) if num_actors else np.zeros(0)
        ids = np.flatnonzero(dist <= REPORT_RANGE)
        lidar2global = ego_key @ lidar2ego
        points_global = key_scan.points[:, :3].astype(np.float64) @ lidar2global[:3, :3].T + lidar2global[:3, 3]
        counts = np.zeros(len(ids), dtype=np.int64)
        if len(ids):
            # Only points near a box can be inside it: find them through the points sorted by x.
            order = np.argsort(points_global[:, 0])
            xs = points_global[order, 0]
            reach = np.linalg.norm(sizes[ids, :2], axis=1) / 2.0 + 0.1
            lo = np.searchsorted(xs, centers[ids, 0] - reach)
            hi = np.searchsorted(xs, centers[ids, 0] + reach)
            for j, actor in enumerate(ids):
                cand = points_global[order[lo[j] : hi[j]]]
                cand = cand[np.abs(cand[:, 1] - centers[actor, 1]) <= reach[j]]
                if len(cand):
                    counts[j] = points_in_boxes(
                        cand, centers[actor : actor + 1], sizes[actor : actor + 1], yaws[actor : actor + 1]
                    ).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            vis = np.where(covered[ids] > 0, visible[ids] / np.maximum(covered[ids], 1), 0.0)

        occupancy = {}
        if self.occupancy is not None:
            views = [
                CameraView(
                    cameras[c].ego2global @ plan.rig.camera(c).sensor2ego,
                    plan.rig.camera(c).intrinsic,
                    cameras[c].data.depth,
                )
                for c in CAMERA_CHANNELS
            ]
            occupancy = {
                "semantics": self.occupancy.semantics(ego_key, prims_key, self.ground),
                "mask_lidar": self.occupancy.lidar_mask(ego_key, key_scan.origin, key_scan.directions, key_scan.ranges),
                "mask_camera": self.occupancy.camera_mask(ego_key, views),
            }
        return SampleOutput(
            index,
            t_key,
            ego_key,
            sweeps,
            SensorFrame(t_key, ego_key, key_scan),
            cameras,
            ids,
            dist[ids],
            counts,
            vis,
            occupancy,
        )
