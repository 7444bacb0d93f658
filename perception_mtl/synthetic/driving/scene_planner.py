"""Plans one scene in a city: where the ego drives and which actors are where, moving how.

Placement follows the map: moving and stopped vehicles in travel lanes (one flow speed per lane
so they keep their spacing), parked ones in parking strips and car parks, pedestrians on walkways
and crossings, cycles ridden along the kerb or parked on the walkway, traffic cones and barriers
in rows at road works (sometimes with a construction vehicle and a worker). Class counts are drawn
from the nuScenes class frequencies. No two things ever overlap: every candidate's footprint is
checked against the ego, the other actors and the static structures at 0.25 s steps over the
whole scene.
"""

from __future__ import annotations

import datetime

import numpy as np

from .city_map import LANE_WIDTH, CityMap, Slot, location_seed
from .geometry import footprints_overlap, footprints_overlap_paired
from .object_catalog import CLASS_SPECS, DETECTION_CLASS_FREQUENCY, LOOKS, ObjectClassSpec, draw_category, draw_size
from .scene_plan import ActorSet, EgoRoute, RoutePiece, ScenePlan
from .sensor_rig import SensorRig

ROI_RADIUS = 80.0  # actors are placed within this distance (m) of the ego route
OBJECT_DENSITY = 0.0022  # actors per square metre of the region of interest
_VEHICLES = {"car", "truck", "bus", "trailer", "construction_vehicle"}


class ScenePlanner:
    """Draws the ego route and the actors of one scene.

    Args:
        city: the city the scene is in.
        rng: the scene's random generator.
        t_start: earliest time (s) anything is sensed (the first pre-roll sweep).
        t_end: latest time (s) anything is sensed.
    """

    def __init__(self, city: CityMap, rng: np.random.Generator, t_start: float, t_end: float) -> None:
        self.city = city
        self.rng = rng
        self.t_start, self.t_end = t_start, t_end
        self.times = np.arange(t_start, t_end + 0.25, 0.25)
        self.plus_side = 1.0 if city.left_hand_traffic else -1.0

    # ------------------------------------------------------------------ ego
    def plan_route(self) -> EgoRoute:
        """A lane-following ego route that stays on the map for the whole scene."""
        city, rng = self.city, self.rng
        width, height = city.canvas_edge
        for _ in range(200):
            slot = city.slots["lane"][rng.integers(len(city.slots["lane"]))]
            speed = 0.0 if rng.random() < 0.1 else float(rng.uniform(3.0, 11.0))
            if slot.length < 30.0:
                continue
            s = float(rng.uniform(8.0, slot.length - 8.0))
            start = slot.point(s)
            pieces = self._turn_pieces(slot, start, speed) if speed > 0 and rng.random() < 0.5 else None
            if pieces is None:
                pieces = [RoutePiece(start, slot.direction, np.inf)]
            route = EgoRoute(pieces, speed, self.t_start)
            xy, _ = route.pose(self.times)
            if np.all((xy > 40.0) & (xy < np.array([width, height]) - 40.0)):
                return route
        raise RuntimeError(f"could not plan an ego route in {city.location}")

    def _turn_pieces(self, slot: Slot, start: np.ndarray, speed: float) -> list[RoutePiece] | None:
        """Straight, quarter-circle turn at the next intersection, straight again (or None)."""
        city, rng = self.city, self.rng
        road = city.roads[slot.road]
        heading = 1.0 if np.cos(slot.direction - road.heading) > 0 else -1.0
        along = 0 if road.axis == "x" else 1
        travel = speed * (self.t_end - self.t_start)
        ahead = [(float((cr.center - start[along]) * heading), cr) for cr in city.crossing_roads(road)]
        ahead = sorted((d, cr) for d, cr in ahead if cr.half_width + 8.0 < d < travel + 10.0)
        if not ahead:
            return None
        _, cross = ahead[0]
        turn = float(rng.choice([-1.0, 1.0]))
        yaw2 = slot.direction + turn * np.pi / 2.0
        heading2 = 1.0 if np.cos(yaw2 - cross.heading) > 0 else -1.0
        near_side = (turn < 0) != city.left_hand_traffic  # right turn in right-hand traffic
        lane_id = cross.lanes_per_direction - 1 if near_side else 0
        d = self.plus_side * heading2 * (lane_id + 0.5) * LANE_WIDTH
        q = cross.to_world(0.0, d)
        corner = np.array([q[0], start[1]]) if along == 0 else np.array([start[0], q[1]])
        boundary = cross.center - heading * cross.half_width
        radius = float(np.clip(abs(corner[along] - boundary), 4.0, 14.0))
        dir1 = np.array([np.cos(slot.direction), np.sin(slot.direction)])
        dir2 = np.array([np.cos(yaw2), np.sin(yaw2)])
        arc_start, arc_end = corner - radius * dir1, corner + radius * dir2
        first = float(np.dot(arc_start - start, dir1))
        if first <= 0.0:
            return None
        return [
            RoutePiece(start, slot.direction, first),
            RoutePiece(arc_start, slot.direction, radius * np.pi / 2.0, radius, turn),
            RoutePiece(arc_end, yaw2, np.inf),
        ]

    # --------------------------------------------------------------- actors
    def place_actors(self, route: EgoRoute) -> ActorSet:
        """Draws class counts from the nuScenes frequencies and places each actor without overlaps."""
        rng = self.rng
        self.route_points = route.pose(np.linspace(self.t_start, self.t_end, 60))[0]
        self.placed = [route.body_footprints(self.times)]  # (T, 5) per placed thing
        self.margins = [0.5]
        statics = self.city.statics
        near = self._near(statics.centers[:, :2], ROI_RADIUS + 20.0)
        ground_level = statics.centers[:, 2] - statics.sizes[:, 2] / 2.0 < 1.0  # trunks, posts, buildings
        keep = near & ground_level
        self.static_fp = np.concatenate(
            [statics.centers[keep, :2], statics.sizes[keep, :2], statics.yaws[keep, None]], axis=1
        )
        self.lane_speed: dict[tuple, float] = {}
        self.slots = {k: [s for s in v if self._slot_near(s)] for k, v in self.city.slots.items()}
        self.actors = _ActorBuilder()

        lo, hi = self.route_points.min(0) - ROI_RADIUS, self.route_points.max(0) + ROI_RADIUS
        area = float(np.prod(hi - lo))
        total = int(rng.poisson(OBJECT_DENSITY * area))
        names = list(DETECTION_CLASS_FREQUENCY)
        freq = np.array([DETECTION_CLASS_FREQUENCY[n] for n in names])
        quota = dict(zip(names, rng.multinomial(total, freq / freq.sum()).tolist()))

        while quota["barrier"] > 0 or quota["traffic_cone"] > 0:
            kind = "barrier" if quota["barrier"] >= quota["traffic_cone"] else "traffic_cone"
            count = min(quota[kind], int(rng.integers(3, 10)))
            quota[kind] -= count
            self._place_roadworks(kind, count, quota)
        for name in ("bus", "trailer", "truck", "construction_vehicle", "car", "motorcycle", "bicycle", "pedestrian"):
            while quota[name] > 0:
                quota[name] -= 1
                for _ in range(6):
                    if self._place_one(name, quota):
                        break
        return self.actors.build()

    # Placement of one actor by class. Returns True when placed.
    def _place_one(self, name: str, quota: dict[str, int]) -> bool:
        rng = self.rng
        u = rng.random()
        if name == "car":
            if u < 0.55:
                return self._in_lane(name, stopped=rng.random() < 0.12)
            if u < 0.85 or not self.slots["carpark"]:
                return self._parked(name, "parking")
            return self._parked(name, "carpark")
        if name == "truck":
            if u < 0.6:
                with_trailer = quota["trailer"] > 0 and rng.random() < 0.35
                if with_trailer:
                    quota["trailer"] -= 1
                return self._in_lane(name, stopped=rng.random() < 0.1, trailer=with_trailer)
            return self._parked(name, "parking")
        if name == "bus":
            return self._in_lane(name, stopped=rng.random() < 0.25)
        if name == "trailer":
            return self._parked(name, "carpark" if self.slots["carpark"] and u < 0.5 else "parking")
        if name == "construction_vehicle":
            if u < 0.3:
                return self._in_lane(name, stopped=False, speed=float(rng.uniform(0.5, 2.0)))
            return self._parked(name, "parking")
        if name == "motorcycle":
            if u < 0.5:
                return self._in_lane(name, stopped=rng.random() < 0.1, ridden=True)
            return self._parked(name, "parking")
        if name == "bicycle":
            if u < 0.5:
                return self._ridden_along_kerb(name)
            return self._on_walkway(name, moving=False)
        if name == "pedestrian":
            if u < 0.5:
                return self._on_walkway(name, moving=True)
            if u < 0.8:
                return self._on_walkway(name, moving=False)
            return self._on_crossing(name)
        raise ValueError(name)

    def _in_lane(self, name, stopped, trailer=False, ridden=False, speed=None) -> bool:
        rng = self.rng
        if not self.slots["lane"]:
            return False
        slot = self._pick("lane")
        category = draw_category(name, rng)
        spec = CLASS_SPECS[category]
        size = draw_size(spec, rng)
        if ridden:
            size[2] *= 1.2
        if speed is None:
            flow_key = tuple(slot.key.split(":")[2:3] + slot.key.split(":")[4:6])
            if flow_key not in self.lane_speed:
                self.lane_speed[flow_key] = float(rng.uniform(4.0, 12.0))
            speed = 0.0 if stopped else self.lane_speed[flow_key]
        tau = float(rng.uniform(0.0, self.t_end))
        s_tau = self._sample_s(slot)
        if np.isnan(s_tau):
            return False
        p_tau = slot.point(s_tau, rng.normal(0.0, 0.15))
        yaw = slot.direction + rng.normal(0.0, 0.01)
        attribute = ("vehicle.moving" if speed > 0 else "vehicle.stopped") if name in _VEHICLES else "cycle.with_rider"
        direction = np.array([np.cos(yaw), np.sin(yaw)])
        p0 = p_tau - speed * tau * direction
        members = [(spec, category, size, p0, yaw, speed, attribute, ridden)]
        if trailer:
            tspec = CLASS_SPECS["vehicle.trailer"]
            tsize = draw_size(tspec, rng)
            tp0 = p0 - direction * (size[0] / 2 + 0.4 + tsize[0] / 2)
            members.append((tspec, "vehicle.trailer", tsize, tp0, yaw, speed, attribute, False))
        return self._commit(members, margin=0.6)

    def _parked(self, name, kind) -> bool:
        rng = self.rng
        if not self.slots[kind]:
            kind = "parking" if kind == "carpark" else "carpark"
            if not self.slots[kind]:
                return False
        slot = self._pick(kind)
        category = draw_category(name, rng)
        spec = CLASS_SPECS[category]
        size = draw_size(spec, rng)
        s = self._sample_s(slot, clearance=size[0] / 2.0 + 1.0 if kind == "parking" else None)
        if np.isnan(s):
            return False
        if kind == "carpark" and name in ("car", "motorcycle"):
            yaw = slot.direction + float(rng.choice([-1.0, 1.0])) * np.pi / 2.0
        else:
            yaw = slot.direction + (np.pi if rng.random() < 0.05 else 0.0)
        yaw += rng.normal(0.0, 0.03)
        lateral = float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.3))
        p = slot.point(s, lateral)
        attribute = "vehicle.parked" if name in _VEHICLES else "cycle.without_rider"
        return self._commit([(spec, category, size, p, yaw, 0.0, attribute, False)], margin=0.3)

    def _ridden_along_kerb(self, name) -> bool:
        rng = self.rng
        use_parking = bool(self.slots["parking"]) and rng.random() < 0.6
        slot = self._pick("parking" if use_parking else "lane")
        if slot is None:
            return False
        spec = CLASS_SPECS[draw_category(name, rng)]
        size = draw_size(spec, rng)
        size[2] *= 1.25
        kerb = -self.plus_side  # the kerb is on the right in right-hand traffic
        lateral = 0.0 if use_parking else kerb * (LANE_WIDTH / 2.0 - 0.7)
        speed = float(rng.uniform(2.5, 6.0))
        tau = float(rng.uniform(0.0, self.t_end))
        yaw = slot.direction + rng.normal(0.0, 0.02)
        s_tau = self._sample_s(slot)
        if np.isnan(s_tau):
            return False
        p_tau = slot.point(s_tau, lateral)
        p0 = p_tau - speed * tau * np.array([np.cos(yaw), np.sin(yaw)])
        return self._commit([(spec, spec.category, size, p0, yaw, speed, "cycle.with_rider", True)], margin=0.4)

    def _on_walkway(self, name, moving) -> bool:
        rng = self.rng
        slot = self._pick("walkway")
        if slot is None:
            return False
        category = draw_category(name, rng)
        spec = CLASS_SPECS[category]
        size = draw_size(spec, rng)
        lateral = float(rng.uniform(-slot.width / 2.0, slot.width / 2.0))
        if name == "bicycle":
            yaw = slot.direction + float(rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2])) + rng.normal(0, 0.05)
            s = self._sample_s(slot, 1.0, slot.length - 1.0)
            if np.isnan(s):
                return False
            p0 = slot.point(s, lateral)
            return self._commit([(spec, category, size, p0, yaw, 0.0, "cycle.without_rider", False)], margin=0.15)
        if moving:
            speed = float(rng.uniform(0.9, 1.7))
            sign = float(rng.choice([-1.0, 1.0]))
            span = speed * (self.t_end - self.t_start)
            if slot.length - 1.0 - span < 0.5:
                moving = False
            else:
                s_start = self._sample_s(slot, 0.5, slot.length - 0.5 - span)
                if np.isnan(s_start):
                    return False
                if sign < 0:
                    s_start += span
                s0 = s_start + sign * speed * (0.0 - self.t_start)
                yaw = slot.direction + (0.0 if sign > 0 else np.pi) + rng.normal(0.0, 0.03)
                p0 = slot.point(s0, lateral)
                return self._commit([(spec, category, size, p0, yaw, speed, "pedestrian.moving", False)], margin=0.15)
        yaw = float(rng.uniform(-np.pi, np.pi))
        s = self._sample_s(slot, 0.5, slot.length - 0.5)
        if np.isnan(s):
            return False
        p0 = slot.point(s, lateral)
        return self._commit([(spec, category, size, p0, yaw, 0.0, "pedestrian.standing", False)], margin=0.15)

    def _on_crossing(self, name) -> bool:
        rng = self.rng
        slot = self._pick("crossing")
        if slot is None:
            return False
        category = draw_category(name, rng)
        spec = CLASS_SPECS[category]
        size = draw_size(spec, rng)
        lateral = float(rng.uniform(-slot.width / 2.0, slot.width / 2.0))
        speed = float(rng.uniform(1.0, 1.6))
        span = speed * (self.t_end - self.t_start)
        sign = float(rng.choice([-1.0, 1.0]))
        if span < slot.length + 3.0:
            s_start = float(rng.uniform(-1.5, slot.length + 1.5 - span))
            if sign < 0:
                s_start = slot.length - s_start
            s0 = s_start + sign * speed * (0.0 - self.t_start)
            yaw = slot.direction + (0.0 if sign > 0 else np.pi)
            members = [(spec, category, size, slot.point(s0, lateral), yaw, speed, "pedestrian.moving", False)]
        else:  # too long to cross within the scene: waiting at the kerb
            s = float(rng.choice([-1.0, slot.length + 1.0]))
            yaw = slot.direction + (0.0 if s < 0 else np.pi)
            members = [(spec, category, size, slot.point(s, lateral), yaw, 0.0, "pedestrian.standing", False)]
        return self._commit(members, margin=0.15)

    def _place_roadworks(self, kind: str, count: int, quota: dict[str, int]) -> None:
        """A row of cones or barriers along a parking strip, a lane edge or a walkway edge."""
        rng = self.rng
        choices = [k for k in ("parking", "lane", "walkway") if self.slots[k]]
        if not choices:
            return
        where = str(
            rng.choice(choices, p=_normalised([{"parking": 3.0, "lane": 2.0, "walkway": 1.0}[c] for c in choices]))
        )
        slot = self._pick(where)
        spec = CLASS_SPECS["movable_object.barrier" if kind == "barrier" else "movable_object.trafficcone"]
        spacing = float(spec.size_mean[1] + 0.15) if kind == "barrier" else float(rng.uniform(1.5, 3.0))
        s0 = self._sample_s(slot, 2.0, slot.length - count * spacing - 2.0, clearance=0.5)
        if np.isnan(s0):
            return
        if where == "lane":
            lateral = -self.plus_side * float(rng.uniform(0.0, LANE_WIDTH / 2.0 - 0.5))
        elif where == "walkway":
            lateral = float(rng.uniform(-slot.width / 2, slot.width / 2))
        else:
            lateral = float(rng.normal(0.0, 0.2))
        for k in range(count):
            size = draw_size(spec, rng)
            yaw = slot.direction + (np.pi / 2.0 if kind == "barrier" else rng.uniform(-np.pi, np.pi))
            yaw += rng.normal(0.0, 0.04)
            s = s0 + k * spacing
            p = slot.point(s, lateral + rng.normal(0.0, 0.05))
            if slot.is_free(s, 0.5) and self._near(p[None], ROI_RADIUS)[0]:
                self._commit([(spec, spec.category, size, p, yaw, 0.0, "", False)], margin=0.02)
        end = slot.point(s0 + count * spacing + 5.0, lateral)
        if where != "walkway" and quota["construction_vehicle"] > 0 and rng.random() < 0.5:
            cspec = CLASS_SPECS["vehicle.construction"]
            csize = draw_size(cspec, rng)
            center = end + (csize[0] / 2.0) * np.array([np.cos(slot.direction), np.sin(slot.direction)])
            if self._commit(
                [(cspec, cspec.category, csize, center, slot.direction, 0.0, "vehicle.parked", False)], 0.3
            ):
                quota["construction_vehicle"] -= 1
        if quota["pedestrian"] > 0 and rng.random() < 0.5:
            wspec = CLASS_SPECS["human.pedestrian.construction_worker"]
            p = slot.point(s0 + rng.uniform(0, count * spacing), lateral + float(rng.choice([-1.2, 1.2])))
            yaw = float(rng.uniform(-np.pi, np.pi))
            if self._commit(
                [(wspec, wspec.category, draw_size(wspec, rng), p, yaw, 0.0, "pedestrian.standing", False)], 0.1
            ):
                quota["pedestrian"] -= 1

    # --------------------------------------------------------------- helpers
    def _pick(self, kind: str) -> Slot | None:
        slots = self.slots[kind]
        if not slots:
            return None
        lengths = np.array([s.length for s in slots])
        return slots[int(self.rng.choice(len(slots), p=lengths / lengths.sum()))]

    def _sample_s(self, slot: Slot, lo: float = 0.0, hi: float | None = None, clearance: float | None = None) -> float:
        """A random position along ``slot`` within [lo, hi] that lies in the region of interest (NaN if none).

        With ``clearance``, the position must also keep that distance from the slot's blocked intervals.
        """
        hi = slot.length if hi is None else hi
        if hi <= lo:
            return float("nan")
        grid = np.arange(lo, hi, 1.0)
        ok = self._near(slot.point(grid), ROI_RADIUS)
        if clearance is not None:
            ok &= np.array([slot.is_free(v, clearance) for v in grid], dtype=bool)
        if not ok.any():
            return float("nan")
        return float(grid[ok][self.rng.integers(ok.sum())] + self.rng.uniform(0.0, min(1.0, hi - lo)))

    def _near(self, points: np.ndarray, radius: float) -> np.ndarray:
        d = np.linalg.norm(points[:, None, :] - self.route_points[None], axis=-1).min(1)
        return d < radius

    def _slot_near(self, slot: Slot) -> bool:
        samples = slot.point(np.linspace(0.0, slot.length, max(2, int(slot.length / 10.0))))
        return bool(self._near(samples, ROI_RADIUS).any())

    def _commit(self, members: list[tuple], margin: float) -> bool:
        """Adds the actors if none of them overlaps anything over the scene; True if added."""
        tracks = []
        for _, _, size, p0, yaw, speed, *_ in members:
            direction = np.array([np.cos(yaw), np.sin(yaw)])
            xy = p0[None] + speed * self.times[:, None] * direction[None]
            tracks.append(np.concatenate([xy, np.broadcast_to([size[0], size[1], yaw], (len(self.times), 3))], 1))
        for track in tracks:
            if len(self.static_fp) and footprints_overlap(track[:: max(1, len(track) // 8)], self.static_fp, 0.1).any():
                return False
            placed = np.stack(self.placed, 1)  # (T, P, 5)
            reach = np.linalg.norm(placed[..., 2:4], axis=-1) / 2 + np.linalg.norm(track[:, 2:4], axis=-1)[:, None] / 2
            close = np.linalg.norm(placed[..., :2] - track[:, None, :2], axis=-1) < reach + margin + 0.6
            if close.any():
                t_idx, p_idx = np.nonzero(close)
                # Each half-extent grows by half the larger of the two clearances.
                clearance = float(np.maximum(np.asarray(self.margins)[p_idx], margin).max()) / 2.0
                if footprints_overlap_paired(track[t_idx], placed[t_idx, p_idx], clearance).any():
                    return False
        for member, track in zip(members, tracks):
            self.placed.append(track)
            self.margins.append(margin)
            self.actors.add(*member, rng=self.rng)
        return True


class _ActorBuilder:
    """Collects actors and their parts into an :class:`ActorSet`."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, spec: ObjectClassSpec, category: str, size, p0, yaw, speed, attribute, ridden, rng) -> None:
        paint = np.asarray(spec.palette[int(rng.integers(len(spec.palette)))]) * rng.uniform(0.85, 1.1)
        self.rows.append(
            (
                spec,
                category,
                np.asarray(size, float),
                np.asarray(p0, float),
                float(yaw),
                float(speed),
                attribute,
                ridden,
                np.clip(paint, 0.0, 1.0),
                float(rng.uniform(0.7, 1.3)),
            )
        )

    def build(self) -> ActorSet:
        actors = ActorSet()
        if not self.rows:
            return actors
        owners, bounds, colors, refl, textures = [], [], [], [], []
        for index, (spec, _, size, _, _, _, _, ridden, paint, gain) in enumerate(self.rows):
            length, width, height = size
            # Annotation boxes are drawn a few centimetres outside the surface, so that the LiDAR
            # returns of an object (with their range noise) fall inside its box, as in nuScenes.
            gap = np.minimum(0.05, 0.1 * np.asarray(size))
            lo = np.array([-length / 2 + gap[0], -width / 2 + gap[1], 0.0])
            hi = np.array([length / 2 - gap[0], width / 2 - gap[1], height - gap[2]])
            for part in spec.ridden_parts if ridden and spec.ridden_parts else spec.parts:
                owners.append(index)
                b = np.array(
                    [
                        part.x[0] * length,
                        part.x[1] * length,
                        part.y[0] * width,
                        part.y[1] * width,
                        part.z[0] * height,
                        part.z[1] * height,
                    ]
                )
                bounds.append(np.clip(b, np.repeat(lo, 2), np.repeat(hi, 2)))
                if part.look == "body":
                    colors.append(paint)
                    refl.append(spec.reflectivity * gain)
                else:
                    color, r = LOOKS[part.look]
                    colors.append(color)
                    refl.append(r)
                textures.append(3 if part.look == "glass" else 0)
        actors.categories = [r[1] for r in self.rows]
        actors.detection_names = [r[0].detection_name for r in self.rows]
        actors.attributes = [r[6] for r in self.rows]
        actors.sizes = np.stack([r[2] for r in self.rows])
        actors.positions = np.stack([r[3] for r in self.rows])
        actors.yaws = np.array([r[4] for r in self.rows])
        actors.speeds = np.array([r[5] for r in self.rows])
        actors.occ_labels = np.array([r[0].occ_label for r in self.rows], dtype=np.int64)
        actors.part_owner = np.array(owners, dtype=np.int64)
        actors.part_bounds = np.array(bounds, dtype=np.float64)
        actors.part_colors = np.array(colors, dtype=np.float64)
        actors.part_reflectivity = np.array(refl, dtype=np.float64)
        actors.part_textures = np.array(textures, dtype=np.int64)
        return actors


def _normalised(weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


_LOG_STYLE = {"singapore": ("n015", 8), "boston": ("n008", -4)}  # vehicle, UTC offset (h)
SAMPLE_INTERVAL = 0.5  # key frames at 2 Hz, as nuScenes


def plan_scene(
    city: CityMap,
    index: int,
    name: str,
    seed: int,
    num_samples: int,
    sweeps_per_sample: int = 2,
    image_width: int = 400,
) -> ScenePlan:
    """Plans a whole scene: timing, log, calibration, ego route, actors, lighting.

    Args:
        city: the city of the scene's location.
        index: scene index in the dataset (decorrelates scenes).
        name: nuScenes scene name.
        seed: dataset seed.
        num_samples: key frames (2 Hz).
        sweeps_per_sample: non-key LiDAR sweeps between consecutive key frames (and before the first).
        image_width: camera image width (pixels).
    """
    scene_seed = int(np.random.SeedSequence([seed, index, location_seed(seed, city.location)]).generate_state(1)[0])
    rng = np.random.default_rng(scene_seed)
    sample_times = np.arange(num_samples) * SAMPLE_INTERVAL
    step = SAMPLE_INTERVAL / (sweeps_per_sample + 1)
    sweep_times = [t - step * np.arange(sweeps_per_sample, 0, -1) for t in sample_times]
    t_start = -SAMPLE_INTERVAL - 0.05
    t_end = float(sample_times[-1]) + 0.05
    planner = ScenePlanner(city, rng, t_start, t_end)
    route = planner.plan_route()
    actors = planner.place_actors(route)
    rig = SensorRig(rng, image_width)
    vehicle, utc_offset = _LOG_STYLE[city.location.split("-")[0]]
    start_s = 1531900000 + index * 7919 + int(rng.integers(0, 3600))
    local = datetime.datetime.fromtimestamp(start_s, datetime.timezone(datetime.timedelta(hours=utc_offset)))
    log_name = f"{vehicle}-{local:%Y-%m-%d-%H-%M-%S}{utc_offset:+03d}00"
    azimuth, elevation = rng.uniform(-np.pi, np.pi), np.deg2rad(rng.uniform(25.0, 70.0))
    sun = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    statics = city.statics
    near = planner._near(statics.centers[:, :2], 200.0)
    moving = int(np.sum(actors.speeds > 0)) if len(actors) else 0
    description = (
        f"synthetic {city.location}, ego {'parked' if route.speed == 0 else f'{route.speed:.1f} m/s'}, "
        f"{len(actors)} actors ({moving} moving)"
    )
    return ScenePlan(
        index=index,
        name=name,
        location=city.location,
        log_name=log_name,
        date_captured=f"{local:%Y-%m-%d}",
        vehicle=vehicle,
        start_timestamp=int(start_s * 1_000_000 + rng.integers(0, 1_000_000)),
        sample_times=sample_times,
        sweep_times=sweep_times,
        route=route,
        actors=actors,
        statics=statics.select(near),
        rig=rig,
        sun=sun,
        exposure=float(rng.uniform(0.85, 1.1)),
        seed=scene_seed,
        description=description,
    )
