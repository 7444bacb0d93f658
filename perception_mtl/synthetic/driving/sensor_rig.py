"""The sensor rig of the synthetic car: a nuScenes-like LIDAR_TOP and six cameras.

Mounting positions, headings and intrinsics follow the nuScenes rig (1600x900 cameras scaled to the
requested width; CAM_BACK has the wider lens). Each log gets its own small calibration jitter, as
real nuScenes logs do. Frames:

* ego: x forward, y left, z up, origin on the ground below the rear axle;
* LIDAR_TOP: x right, y forward, z up (nuScenes' lidar2ego is a -90 deg yaw);
* cameras: x right, y down, z forward (OpenCV).

Cameras fire when the spinning LiDAR (20 Hz) sweeps across them, so each camera's timestamp is
a few milliseconds off the LiDAR's, as in nuScenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception_mtl.datasets.converters.nuscenes_schema import CAMERA_CHANNELS, LIDAR_CHANNEL
from perception_mtl.structures.rotations import euler_xyz_to_matrix

from .geometry import make_transform

# channel: (translation in ego (m), yaw (deg), fx, cx, cy) at 1600x900.
_NUSCENES_CAMERAS = {
    "CAM_FRONT": ((1.700, 0.016, 1.511), 0.0, 1266.4, 816.3, 491.5),
    "CAM_FRONT_RIGHT": ((1.551, -0.493, 1.496), -55.0, 1260.8, 808.0, 495.3),
    "CAM_FRONT_LEFT": ((1.524, 0.495, 1.509), 55.0, 1272.6, 826.6, 479.8),
    "CAM_BACK": ((0.028, 0.003, 1.579), 180.0, 809.2, 829.2, 481.8),
    "CAM_BACK_LEFT": ((1.036, 0.485, 1.591), 110.0, 1256.7, 817.8, 452.0),
    "CAM_BACK_RIGHT": ((1.015, -0.480, 1.562), -110.0, 1259.5, 807.3, 501.2),
}
_LIDAR_TRANSLATION = (0.943, 0.000, 1.840)
# Camera axes (x right, y down, z forward) expressed in the ego frame for a camera looking along +x.
_CAM_AXES_IN_EGO = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass
class RigSensor:
    """One sensor of the synthetic rig: its mounting, intrinsics and capture-time offset (not the batched
    ``perception_mtl.structures.SensorCalibration`` that models read).

    Attributes:
        channel: nuScenes channel name.
        sensor2ego: (4, 4) transform sensor frame -> ego frame.
        intrinsic: (3, 3) camera matrix, or None for the LiDAR.
        time_offset: capture time relative to the LiDAR key frame (s).
    """

    channel: str
    sensor2ego: np.ndarray
    intrinsic: np.ndarray | None
    time_offset: float


class SensorRig:
    """Calibrations of the rig for one log.

    Args:
        rng: generator for the per-log calibration jitter.
        image_width: camera width in pixels; the height keeps nuScenes' 16:9 (900/1600).
        jitter: whether to perturb the nominal calibration (off only for tests that need exact values).
    """

    def __init__(self, rng: np.random.Generator, image_width: int = 400, jitter: bool = True) -> None:
        self.image_width = int(image_width)
        self.image_height = int(round(image_width * 900 / 1600))
        scale = self.image_width / 1600.0
        amp = 1.0 if jitter else 0.0
        deg = np.pi / 180.0
        self.sensors: dict[str, RigSensor] = {}
        # Drawn yaw, pitch, roll in this order (the seed stream); composed as Rz(yaw) Ry(pitch) Rx(roll).
        yaw_l = -90.0 * deg + amp * rng.normal(0, 0.3) * deg
        pitch_l = amp * rng.normal(0, 0.3) * deg
        roll_l = amp * rng.normal(0, 0.3) * deg
        lidar_rot = euler_xyz_to_matrix(roll_l, pitch_l, yaw_l)
        lidar_t = np.asarray(_LIDAR_TRANSLATION) + amp * rng.normal(0, 0.01, 3)
        self.sensors[LIDAR_CHANNEL] = RigSensor(LIDAR_CHANNEL, make_transform(lidar_rot, lidar_t), None, 0.0)
        for channel in CAMERA_CHANNELS:
            translation, yaw, fx, cx, cy = _NUSCENES_CAMERAS[channel]
            yaw_c = (yaw + amp * rng.normal(0, 0.5)) * deg
            pitch_c = amp * rng.normal(0.0, 0.8) * deg
            roll_c = amp * rng.normal(0, 0.4) * deg
            rot = euler_xyz_to_matrix(roll_c, pitch_c, yaw_c)
            t = np.asarray(translation) + amp * rng.normal(0, 0.01, 3)
            f = fx * scale * (1.0 + amp * rng.normal(0, 0.005))
            intrinsic = np.array(
                [
                    [f, 0.0, (cx + amp * rng.normal(0, 4.0)) * scale],
                    [0.0, f, (cy + amp * rng.normal(0, 4.0)) * scale],
                    [0.0, 0.0, 1.0],
                ]
            )
            # The LiDAR spins clockwise from the front at 20 Hz: a camera at heading `yaw` fires
            # yaw/360 of a turn after (or before) the front one.
            offset = -yaw / 360.0 * 0.05 + amp * rng.normal(0, 0.001)
            self.sensors[channel] = RigSensor(
                channel, make_transform(rot @ _CAM_AXES_IN_EGO, t), intrinsic, float(offset)
            )

    @property
    def lidar(self) -> RigSensor:
        return self.sensors[LIDAR_CHANNEL]

    def camera(self, channel: str) -> RigSensor:
        return self.sensors[channel]
