"""A planned scene: the ego route, the actors' trajectories and the static world, as functions of time.

Times are seconds relative to the scene's first key frame. Every actor moves in a straight line
along its heading at constant speed (parked and standing ones have speed 0), so the velocity the
devkit derives from consecutive annotations is exactly the simulated one. The ego follows lane
centre lines, optionally turning at an intersection along a circular arc.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .city_map import StaticStructures
from .geometry import wrap_angle
from .primitive_set import PrimitiveSet
from .sensor_rig import SensorRig

# Offset (m) from the ego origin (rear axle) to the centre of the ego body, and the body size (l, w, h).
EGO_BODY_OFFSET = 1.4
EGO_BODY_SIZE = (4.9, 2.0, 1.8)


@dataclass
class RoutePiece:
    """A straight line (``radius == 0``) or a circular arc of the ego route.

    Attributes:
        start: (2,) start point.
        yaw: heading at the start (rad).
        length: arc length (m); the last piece is unbounded (``np.inf``).
        radius: arc radius (m), 0 for a line.
        turn: +1 left, -1 right (arcs only).
    """

    start: np.ndarray
    yaw: float
    length: float
    radius: float = 0.0
    turn: float = 0.0

    def pose(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (K, 2) and headings (K,) at arc lengths ``s`` (K,) from the piece start."""
        if self.radius == 0.0:
            direction = np.array([np.cos(self.yaw), np.sin(self.yaw)])
            return self.start + s[:, None] * direction, np.full(s.shape, self.yaw)
        normal = np.array([-np.sin(self.yaw), np.cos(self.yaw)]) * self.turn
        center = self.start + self.radius * normal
        angle0 = np.arctan2(self.start[1] - center[1], self.start[0] - center[0])
        angle = angle0 + self.turn * s / self.radius
        points = center + self.radius * np.stack([np.cos(angle), np.sin(angle)], -1)
        return points, self.yaw + self.turn * s / self.radius


@dataclass
class EgoRoute:
    """The ego's path and constant speed.

    Attributes:
        pieces: consecutive route pieces.
        speed: m/s (0 for a parked ego).
        t_start: time (s) at which the ego is at the start of the first piece.
    """

    pieces: list[RoutePiece]
    speed: float
    t_start: float

    def pose(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Ego origin (K, 2) and yaw (K,) at times ``t`` (K,)."""
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        s = (t - self.t_start) * self.speed
        xy = np.zeros((len(t), 2))
        yaw = np.zeros(len(t))
        offset = 0.0
        remaining = np.ones(len(t), dtype=bool)
        for piece in self.pieces:
            inside = remaining & (s <= offset + piece.length)
            if inside.any():
                xy[inside], yaw[inside] = piece.pose(s[inside] - offset)
            remaining &= ~inside
            offset += piece.length
        return xy, wrap_angle(yaw)

    def body_footprints(self, t: np.ndarray) -> np.ndarray:
        """(K, 5) ego body rectangles (x, y, l, w, yaw) at times ``t``."""
        xy, yaw = self.pose(t)
        center = xy + EGO_BODY_OFFSET * np.stack([np.cos(yaw), np.sin(yaw)], -1)
        return np.concatenate([center, np.broadcast_to(EGO_BODY_SIZE[:2], (len(yaw), 2)), yaw[:, None]], axis=1)


@dataclass
class ActorSet:
    """All actors of a scene, one row each.

    Attributes:
        categories: nuScenes category names.
        detection_names: nuScenes detection classes.
        attributes: nuScenes attribute name per actor ('' for none).
        sizes: (A, 3) annotation box (l, w, h).
        positions: (A, 2) box centre (x, y) at t = 0.
        yaws: (A,) headings.
        speeds: (A,) m/s along the heading.
        occ_labels: (A,) Occ3D ids.
        part_owner: (P,) actor of each part.
        part_bounds: (P, 6) part extents in the actor frame (x0, x1, y0, y1, z0, z1), z from the ground.
        part_colors: (P, 3) RGB 0..1.
        part_reflectivity: (P,) LiDAR reflectivity.
        part_textures: (P,) texture ids (see :class:`PrimitiveSet`).
    """

    categories: list[str] = field(default_factory=list)
    detection_names: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    yaws: np.ndarray = field(default_factory=lambda: np.zeros(0))
    speeds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    occ_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    part_owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    part_bounds: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    part_colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    part_reflectivity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    part_textures: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.categories)

    def velocities(self) -> np.ndarray:
        """(A, 2) global-frame velocities (m/s)."""
        return self.speeds[:, None] * np.stack([np.cos(self.yaws), np.sin(self.yaws)], -1)

    def boxes(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Annotation boxes at time ``t``: centres (A, 3) (geometric centre), sizes (A, 3), yaws (A,)."""
        xy = self.positions + self.velocities() * t
        centers = np.concatenate([xy, self.sizes[:, 2:3] / 2.0], axis=1)
        return centers, self.sizes, self.yaws

    def footprints(self, t: float) -> np.ndarray:
        """(A, 5) rectangles (x, y, l, w, yaw) at time ``t``."""
        xy = self.positions + self.velocities() * t
        return np.concatenate([xy, self.sizes[:, :2], self.yaws[:, None]], axis=1)

    def primitives(self, t: float) -> PrimitiveSet:
        """The actors' parts as global boxes at time ``t``."""
        owner = self.part_owner
        b = self.part_bounds
        local_center = np.stack([(b[:, 0] + b[:, 1]) / 2, (b[:, 2] + b[:, 3]) / 2, (b[:, 4] + b[:, 5]) / 2], -1)
        half = np.stack([(b[:, 1] - b[:, 0]) / 2, (b[:, 3] - b[:, 2]) / 2, (b[:, 5] - b[:, 4]) / 2], -1)
        yaw = self.yaws[owner]
        c, s = np.cos(yaw), np.sin(yaw)
        xy = self.positions[owner] + self.velocities()[owner] * t
        world = np.stack(
            [
                xy[:, 0] + c * local_center[:, 0] - s * local_center[:, 1],
                xy[:, 1] + s * local_center[:, 0] + c * local_center[:, 1],
                local_center[:, 2],
            ],
            -1,
        )
        return PrimitiveSet(
            world,
            half,
            yaw,
            self.part_colors,
            self.part_reflectivity,
            owner.copy(),
            self.occ_labels[owner],
            self.part_textures,
        )


@dataclass
class ScenePlan:
    """Everything needed to render any sample of a scene, independently of the others.

    Attributes:
        index: scene index in the dataset.
        name: nuScenes scene name (e.g. 'scene-0061').
        location: map location.
        log_name: nuScenes-style log name ('n015-2018-07-24-11-22-45+0800').
        date_captured: 'YYYY-MM-DD'.
        vehicle: vehicle name of the log.
        start_timestamp: microseconds of t = 0.
        sample_times: (M,) key-frame times (s).
        sweep_times: per key frame, the non-key LiDAR sweep times (s) before it, oldest first.
        route: the ego route.
        actors: the actors.
        statics: static structures near the route.
        rig: the sensor calibration of this log.
        sun: unit (3,) vector towards the sun (global frame).
        exposure: global brightness factor of the cameras.
        seed: base seed for per-sample sensor noise.
        description: scene description text.
    """

    index: int
    name: str
    location: str
    log_name: str
    date_captured: str
    vehicle: str
    start_timestamp: int
    sample_times: np.ndarray
    sweep_times: list[np.ndarray]
    route: EgoRoute
    actors: ActorSet
    statics: StaticStructures
    rig: SensorRig
    sun: np.ndarray
    exposure: float
    seed: int
    description: str = ""

    def timestamp_us(self, t: float) -> int:
        return int(self.start_timestamp + round(t * 1e6))

    def static_primitives(self) -> PrimitiveSet:
        st = self.statics
        return PrimitiveSet(
            st.centers,
            st.sizes / 2.0,
            st.yaws,
            st.colors,
            st.reflectivity,
            np.full(len(st), -1, dtype=np.int64),
            st.occ_labels,
            st.textures,
        )

    def primitives(self, t: float) -> PrimitiveSet:
        """Actors' parts at time ``t`` followed by the static structures."""
        return PrimitiveSet.concatenate([self.actors.primitives(t), self.static_primitives()])
