"""A procedural city for one nuScenes map location: roads, lanes, crossings, walkways, car parks.

The city is a grid of straight roads in the global (map) frame, metres, x east, y north, all
coordinates inside ``[0, canvas_edge]`` as in the nuScenes map expansion. Every road has one or
two travel lanes per direction, and some have a parking strip along each kerb. Where roads
cross there is an intersection, a zebra crossing on each arm and a stop line before it on the
inbound lanes. Blocks between roads carry a walkway along every road, a grass verge with trees,
buildings, and sometimes a car park or a park.

Singapore locations drive on the left, Boston on the right, as in nuScenes.

``CityMap`` only *describes* the city (shapely geometry per map layer, static structures as
boxes, placement slots for actors). ``GroundRaster`` turns it into a material image and
``MapExpansionEncoder`` into nuScenes map-expansion JSON.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import LineString, Polygon, box
from shapely.ops import unary_union

LANE_WIDTH = 3.5
PARKING_WIDTH = 2.5
WALKWAY_WIDTH = 3.0
CROSSING_GAP, CROSSING_DEPTH = 0.5, 4.0  # crossing starts 0.5 m outside the intersection, 4 m deep
STOP_LINE_GAP, STOP_LINE_DEPTH = 0.5, 1.5  # stop line zone just before the crossing

LOCATIONS = ("singapore-onenorth", "singapore-hollandvillage", "singapore-queenstown", "boston-seaport")


@dataclass
class Road:
    """A straight road across the whole grid.

    Attributes:
        axis: 'x' if it runs along x (east-west), 'y' if along y.
        center: the other coordinate of its centre line (m).
        lanes_per_direction: travel lanes in each direction (1 or 2).
        parking: whether a parking strip runs along both kerbs.
        index: position in ``CityMap.roads``.
    """

    axis: str
    center: float
    lanes_per_direction: int
    parking: bool
    index: int = 0

    @property
    def half_width(self) -> float:
        return self.lanes_per_direction * LANE_WIDTH + (PARKING_WIDTH if self.parking else 0.0)

    def to_world(self, s: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        """Road coordinates -> world (x, y).

        ``s`` runs along the road (world x for an 'x' road, world y for a 'y' road) and ``d`` is the
        offset to the *left* of the +s heading.
        """
        s, d = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(d, dtype=np.float64))
        if self.axis == "x":
            return np.stack([s, self.center + d], -1)
        return np.stack([self.center - d, s], -1)

    @property
    def heading(self) -> float:
        """World yaw (rad) of the +s direction."""
        return 0.0 if self.axis == "x" else np.pi / 2.0

    def rect(self, s0: float, s1: float, d0: float, d1: float) -> Polygon:
        """World polygon of the road-frame rectangle [s0, s1] x [d0, d1] (counter-clockwise)."""
        corners = self.to_world(np.array([s0, s1, s1, s0]), np.array([d0, d0, d1, d1]))
        poly = Polygon(corners)
        return poly if poly.exterior.is_ccw else Polygon(corners[::-1])


@dataclass
class Slot:
    """Where actors may stand or drive: a strip along a road-aligned direction.

    Attributes:
        kind: 'lane', 'parking', 'walkway', 'crossing' or 'carpark'.
        origin: (2,) world point at s = 0 on the strip's centre line.
        direction: yaw (rad) of the strip's +s axis (the travel direction for lanes).
        length: extent along s (m), from 0.
        width: extent across (m), centred on the centre line.
        road: index of the road it belongs to, or -1.
        blocked: list of (s0, s1) intervals where nothing may be parked (intersections, crossings).
        key: map-layer key (lanes) for debugging.
    """

    kind: str
    origin: np.ndarray
    direction: float
    length: float
    width: float
    road: int = -1
    blocked: list[tuple[float, float]] = field(default_factory=list)
    key: str = ""

    def point(self, s: np.ndarray | float, lateral: np.ndarray | float = 0.0) -> np.ndarray:
        """World (x, y) of strip coordinates (s along, lateral to the left)."""
        c, sn = np.cos(self.direction), np.sin(self.direction)
        s, lateral = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(lateral, dtype=np.float64))
        return self.origin + np.stack([s * c - lateral * sn, s * sn + lateral * c], -1)

    def is_free(self, s: float, clearance: float) -> bool:
        return all(s + clearance < a or s - clearance > b for a, b in self.blocked)


@dataclass
class StaticStructures:
    """Static scene boxes that are not annotated: buildings, tree trunks and crowns, lamp posts.

    All arrays have one row per box: ``centers`` (N, 3) geometric centres (global frame), ``sizes``
    (N, 3) (l, w, h), ``yaws`` (N,), ``colors`` (N, 3) RGB in 0..1, ``reflectivity`` (N,),
    ``occ_labels`` (N,) Occ3D ids, ``textures`` (N,) 0 plain, 1 facade with windows, 2 foliage.
    """

    centers: np.ndarray
    sizes: np.ndarray
    yaws: np.ndarray
    colors: np.ndarray
    reflectivity: np.ndarray
    occ_labels: np.ndarray
    textures: np.ndarray

    def select(self, mask: np.ndarray) -> StaticStructures:
        return StaticStructures(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.centers)


def location_seed(seed: int, location: str) -> int:
    """Stable per-location seed (Python's ``hash`` is salted per process, crc32 is not)."""
    return (seed * 1_000_003 + zlib.crc32(location.encode())) % (2**32)


class CityMap:
    """The city of one location, generated deterministically from a seed.

    Args:
        location: one of the four nuScenes map names.
        seed: generator seed; the same (location, seed) always gives the same city.
        blocks: number of blocks along each axis.

    Attributes:
        layers: map-layer name -> list of records ``{'key': str, 'geometry': shapely geom, ...}`` for
            the nuScenes layers (drivable_area, road_segment, road_block, lane, ped_crossing, walkway,
            stop_line, carpark_area, road_divider, lane_divider).
        slots: placement strips for actors, by kind.
        statics: buildings, trees and lamp posts.
        canvas_edge: (width, height) of the map (m).
        grid_bounds: (x0, y0, x1, y1) of the area that roads cover.
        left_hand_traffic: True for Singapore.
        lane_markings / road_markings / crossing_stripes / stop_bands: painted geometry for the renderer.
    """

    def __init__(self, location: str, seed: int = 0, blocks: int = 4) -> None:
        if location not in LOCATIONS:
            raise ValueError(f"unknown nuScenes map location {location!r}; expected one of {LOCATIONS}")
        self.location = location
        self.left_hand_traffic = location.startswith("singapore")
        self.rng = np.random.default_rng(location_seed(seed, location))
        self.roads: list[Road] = []
        self.layers: dict[str, list[dict]] = {
            name: []
            for name in (
                "drivable_area",
                "road_segment",
                "road_block",
                "lane",
                "ped_crossing",
                "walkway",
                "stop_line",
                "carpark_area",
                "road_divider",
                "lane_divider",
            )
        }
        self.slots: dict[str, list[Slot]] = {k: [] for k in ("lane", "parking", "walkway", "crossing", "carpark")}
        self.lane_markings: list[Polygon] = []
        self.road_markings: list[Polygon] = []
        self.crossing_stripes: list[Polygon] = []
        self.stop_bands: list[Polygon] = []
        self._build_grid(blocks)
        self._build_roads()
        self._build_blocks()
        self.layers["drivable_area"].append(
            {"key": "da:0", "geometries": _polygons(unary_union(self._drivable_parts))},
        )

    # ------------------------------------------------------------------ grid
    def _build_grid(self, blocks: int) -> None:
        rng = self.rng
        margin = 70.0
        spacing = {"x": rng.uniform(95.0, 140.0, blocks), "y": rng.uniform(95.0, 140.0, blocks)}
        centers = {axis: margin + np.concatenate([[0.0], np.cumsum(sp)]) for axis, sp in spacing.items()}
        width = float(centers["y"][-1] + margin)  # 'y' roads sit at x positions
        height = float(centers["x"][-1] + margin)
        self.canvas_edge = (round(width, 1), round(height, 1))
        for axis in ("x", "y"):
            for c in centers[axis]:
                lanes = int(rng.choice([1, 2], p=[0.55, 0.45]))
                parking = bool(rng.random() < (0.6 if lanes == 1 else 0.3))
                self.roads.append(Road(axis, float(c), lanes, parking, index=len(self.roads)))
        self.h_roads = [r for r in self.roads if r.axis == "x"]  # run along x, sorted by y
        self.v_roads = [r for r in self.roads if r.axis == "y"]
        lo = 0.0
        self.grid_bounds = (lo, lo, width, height)

    def crossing_roads(self, road: Road) -> list[Road]:
        return self.v_roads if road.axis == "x" else self.h_roads

    def road_extent(self, road: Road) -> tuple[float, float]:
        """(s0, s1) of a road: it runs across the whole canvas."""
        return (0.0, self.canvas_edge[0] if road.axis == "x" else self.canvas_edge[1])

    # ----------------------------------------------------------------- roads
    def _build_roads(self) -> None:
        self._drivable_parts: list[Polygon] = []
        self._intersections: dict[tuple[int, int], Polygon] = {}
        for h in self.h_roads:
            for v in self.v_roads:
                poly = box(
                    v.center - v.half_width, h.center - h.half_width, v.center + v.half_width, h.center + h.half_width
                )
                key = f"rs:int:{h.index}:{v.index}"
                self._intersections[(h.index, v.index)] = poly
                self.layers["road_segment"].append({"key": key, "geometry": poly, "is_intersection": True})
                self._drivable_parts.append(poly)
        for road in self.roads:
            self._build_road(road)

    def _build_road(self, road: Road) -> None:
        s_min, s_max = self.road_extent(road)
        cuts = sorted((r.center - r.half_width, r.center + r.half_width) for r in self.crossing_roads(road))
        edges = [s_min] + [v for cut in cuts for v in cut] + [s_max]
        hw = road.half_width
        travel = road.lanes_per_direction * LANE_WIDTH
        # Sign of d for lanes heading +s: right of the heading (negative d) in right-hand traffic.
        plus_side = 1.0 if self.left_hand_traffic else -1.0
        blocked = [(a - CROSSING_DEPTH - 4.0, b + CROSSING_DEPTH + 4.0) for a, b in cuts]
        for seg_id in range(len(edges) // 2):
            s0, s1 = edges[2 * seg_id], edges[2 * seg_id + 1]
            if s1 - s0 < 1.0:
                continue
            seg_key = f"rs:{road.index}:{seg_id}"
            seg_poly = road.rect(s0, s1, -hw, hw)
            self.layers["road_segment"].append({"key": seg_key, "geometry": seg_poly, "is_intersection": False})
            self._drivable_parts.append(seg_poly)
            starts_at_intersection = seg_id > 0
            ends_at_intersection = seg_id < len(edges) // 2 - 1
            # Painted lines stop before the crossings at either end.
            inset = CROSSING_GAP + CROSSING_DEPTH + STOP_LINE_GAP
            m0 = s0 + (inset if starts_at_intersection else 0.0)
            m1 = s1 - (inset if ends_at_intersection else 0.0)
            self.layers["road_divider"].append(
                {
                    "key": f"rd:{seg_key}",
                    "geometry": LineString(road.to_world([m0, m1], [0.0, 0.0])),
                    "road_segment": seg_key,
                }
            )
            self.road_markings += [road.rect(m0, m1, -0.3, -0.1), road.rect(m0, m1, 0.1, 0.3)]
            for heading_sign in (1.0, -1.0):
                side = plus_side * heading_sign  # which half of the road (sign of d)
                block_key = f"rb:{seg_key}:{int(heading_sign)}"
                self.layers["road_block"].append(
                    {
                        "key": block_key,
                        "geometry": road.rect(s0, s1, *sorted((0.0, side * hw))),
                        "road_segment": seg_key,
                        "heading": road.heading + (0.0 if heading_sign > 0 else np.pi),
                    }
                )
                for lane_id in range(road.lanes_per_direction):
                    d_in, d_out = side * lane_id * LANE_WIDTH, side * (lane_id + 1) * LANE_WIDTH
                    d_mid = (d_in + d_out) / 2.0
                    a, b = (s0, s1) if heading_sign > 0 else (s1, s0)
                    lane_key = f"ln:{seg_key}:{int(heading_sign)}:{lane_id}"
                    self.layers["lane"].append(
                        {
                            "key": lane_key,
                            "geometry": road.rect(s0, s1, *sorted((d_in, d_out))),
                            "start": road.to_world(a, d_mid),
                            "end": road.to_world(b, d_mid),
                            "yaw": road.heading + (0.0 if heading_sign > 0 else np.pi),
                            "left": road.to_world(
                                [a, b], [max(d_in, d_out) if heading_sign > 0 else min(d_in, d_out)] * 2
                            ),
                            "right": road.to_world(
                                [a, b], [min(d_in, d_out) if heading_sign > 0 else max(d_in, d_out)] * 2
                            ),
                            "road": road.index,
                            "heading_sign": heading_sign,
                            "lane_id": lane_id,
                        }
                    )
                    if lane_id > 0:
                        d_div = side * lane_id * LANE_WIDTH
                        self.layers["lane_divider"].append(
                            {"key": f"ld:{lane_key}", "geometry": LineString(road.to_world([m0, m1], [d_div] * 2))}
                        )
                        for dash in np.arange(m0 + 1.0, m1 - 3.0, 9.0):
                            self.lane_markings.append(road.rect(dash, dash + 3.0, d_div - 0.1, d_div + 0.1))
                # Stop line on the inbound lanes, before the crossing at the end they drive towards.
                arrives_at = (s1, ends_at_intersection) if heading_sign > 0 else (s0, starts_at_intersection)
                if arrives_at[1]:
                    edge = arrives_at[0]
                    back = -heading_sign  # towards the segment interior
                    near = edge + back * (CROSSING_GAP + CROSSING_DEPTH + STOP_LINE_GAP)
                    far = near + back * STOP_LINE_DEPTH
                    crossing_key = f"pc:{seg_key}:{'end' if heading_sign > 0 else 'start'}"
                    self.layers["stop_line"].append(
                        {
                            "key": f"sl:{block_key}",
                            "geometry": road.rect(*sorted((near, far)), *sorted((0.0, side * travel))),
                            "stop_line_type": "PED_CROSSING",
                            "ped_crossings": [crossing_key],
                            "road_block": block_key,
                        }
                    )
                    band_far = near + back * 0.5
                    self.stop_bands.append(road.rect(*sorted((near, band_far)), *sorted((0.0, side * travel))))
                # Travel lanes and parking strips as actor slots.
                for lane_id in range(road.lanes_per_direction):
                    d_mid = side * (lane_id + 0.5) * LANE_WIDTH
                    self._add_slot(
                        road,
                        "lane",
                        s0,
                        s1,
                        d_mid,
                        LANE_WIDTH,
                        heading_sign,
                        f"ln:{seg_key}:{int(heading_sign)}:{lane_id}",
                        blocked,
                    )
                if road.parking:
                    d_mid = side * (travel + PARKING_WIDTH / 2.0)
                    self._add_slot(road, "parking", s0, s1, d_mid, PARKING_WIDTH, heading_sign, "", blocked)
            # Crossings at the segment ends that touch an intersection.
            for at_start, present in ((True, starts_at_intersection), (False, ends_at_intersection)):
                if not present:
                    continue
                edge, inward = (s0, 1.0) if at_start else (s1, -1.0)
                a = edge + inward * CROSSING_GAP
                b = a + inward * CROSSING_DEPTH
                key = f"pc:{seg_key}:{'start' if at_start else 'end'}"
                poly = road.rect(*sorted((a, b)), -hw, hw)
                self.layers["ped_crossing"].append({"key": key, "geometry": poly, "road_segment": seg_key})
                for d in np.arange(-hw + 0.3, hw - 0.3, 1.0):
                    self.crossing_stripes.append(road.rect(*sorted((a, b)), d, d + 0.5))
                mid = (a + b) / 2.0
                self.slots["crossing"].append(
                    Slot(
                        "crossing",
                        road.to_world(mid, -hw),
                        road.heading + np.pi / 2.0,
                        2.0 * hw,
                        CROSSING_DEPTH - 1.0,
                        road.index,
                    )
                )

    def _add_slot(
        self,
        road: Road,
        kind: str,
        s0: float,
        s1: float,
        d_mid: float,
        width: float,
        heading_sign: float,
        key: str,
        blocked: list[tuple[float, float]],
    ) -> None:
        start = s0 if heading_sign > 0 else s1
        origin = road.to_world(start, d_mid)
        direction = road.heading + (0.0 if heading_sign > 0 else np.pi)
        local_blocked = [
            tuple(sorted(((a - start) * heading_sign, (b - start) * heading_sign))) for a, b in blocked
        ] + [(-1e9, 6.0), (s1 - s0 - 6.0, 1e9)]
        self.slots[kind].append(Slot(kind, origin, direction, s1 - s0, width, road.index, local_blocked, key))

    # ---------------------------------------------------------------- blocks
    def _build_blocks(self) -> None:
        rng = self.rng
        statics: dict[str, list] = {k: [] for k in ("centers", "sizes", "yaws", "colors", "refl", "occ", "tex")}
        xs = [(0.0, None)] + [(r.center, r) for r in self.v_roads] + [(self.canvas_edge[0], None)]
        ys = [(0.0, None)] + [(r.center, r) for r in self.h_roads] + [(self.canvas_edge[1], None)]
        for (x0, left), (x1, right) in zip(xs[:-1], xs[1:]):
            for (y0, bottom), (y1, top) in zip(ys[:-1], ys[1:]):
                bx0 = x0 + (left.half_width if left else 0.0)
                bx1 = x1 - (right.half_width if right else 0.0)
                by0 = y0 + (bottom.half_width if bottom else 0.0)
                by1 = y1 - (top.half_width if top else 0.0)
                sides = {"W": left, "E": right, "S": bottom, "N": top}
                self._build_block((bx0, by0, bx1, by1), sides, statics, rng)
        self.statics = StaticStructures(
            centers=np.asarray(statics["centers"], dtype=np.float64).reshape(-1, 3),
            sizes=np.asarray(statics["sizes"], dtype=np.float64).reshape(-1, 3),
            yaws=np.asarray(statics["yaws"], dtype=np.float64),
            colors=np.asarray(statics["colors"], dtype=np.float64).reshape(-1, 3),
            reflectivity=np.asarray(statics["refl"], dtype=np.float64),
            occ_labels=np.asarray(statics["occ"], dtype=np.int64),
            textures=np.asarray(statics["tex"], dtype=np.int64),
        )

    def _build_block(self, rect, sides, statics, rng) -> None:
        bx0, by0, bx1, by1 = rect
        if bx1 - bx0 < 20.0 or by1 - by0 < 20.0:
            return
        w = WALKWAY_WIDTH
        strips = []
        # Walkway strip and its pedestrian slot along each side that borders a road.
        side_geom = {
            "W": ((bx0, by0, bx0 + w, by1), np.array([bx0 + w / 2, by0]), np.pi / 2, by1 - by0),
            "E": ((bx1 - w, by0, bx1, by1), np.array([bx1 - w / 2, by0]), np.pi / 2, by1 - by0),
            "S": ((bx0, by0, bx1, by0 + w), np.array([bx0, by0 + w / 2]), 0.0, bx1 - bx0),
            "N": ((bx0, by1 - w, bx1, by1), np.array([bx0, by1 - w / 2]), 0.0, bx1 - bx0),
        }
        for name, road in sides.items():
            if road is None:
                continue
            strip_box, origin, direction, length = side_geom[name]
            strips.append(box(*strip_box))
            self.slots["walkway"].append(Slot("walkway", origin, direction, length, w - 0.8, road.index))
        if strips:
            walk = unary_union(strips)
            for i, poly in enumerate(_polygons(walk)):
                self.layers["walkway"].append({"key": f"ww:{len(self.layers['walkway'])}:{i}", "geometry": poly})
        # Inner area: kerb-side trees and lamps, then buildings / a car park / a park.
        inner = (bx0 + w, by0 + w, bx1 - w, by1 - w)
        setback = float(rng.uniform(2.0, 6.0))
        kind = rng.choice(["buildings", "carpark", "park"], p=[0.65, 0.2, 0.15])
        for name, road in sides.items():
            if road is None:
                continue
            self._add_lamps_and_trees(name, rect, inner, setback, statics, rng)
        zone = (inner[0] + setback, inner[1] + setback, inner[2] - setback, inner[3] - setback)
        if zone[2] - zone[0] < 12.0 or zone[3] - zone[1] < 12.0:
            return
        occupied: list[tuple[float, float, float, float]] = []
        if kind == "carpark":
            road_sides = [n for n, r in sides.items() if r is not None]
            if road_sides:
                side = str(rng.choice(road_sides))
                self._add_carpark(side, zone, occupied, rng)
        if kind == "park":
            n_trees = int((zone[2] - zone[0]) * (zone[3] - zone[1]) / 180.0)
            for _ in range(n_trees):
                x, y = rng.uniform(zone[0] + 2, zone[2] - 2), rng.uniform(zone[1] + 2, zone[3] - 2)
                self._add_tree(x, y, statics, rng)
            return
        self._add_buildings(zone, occupied, statics, rng)

    def _add_lamps_and_trees(self, side, rect, inner, setback, statics, rng) -> None:
        bx0, by0, bx1, by1 = rect
        horizontal = side in ("S", "N")
        lo, hi = (bx0, bx1) if horizontal else (by0, by1)
        kerb = {"S": by0 + 0.4, "N": by1 - 0.4, "W": bx0 + 0.4, "E": bx1 - 0.4}[side]
        verge = {
            "S": inner[1] + setback / 2,
            "N": inner[3] - setback / 2,
            "W": inner[0] + setback / 2,
            "E": inner[2] - setback / 2,
        }[side]
        for s in np.arange(lo + 12.0, hi - 12.0, rng.uniform(25.0, 35.0)):
            x, y = (s, kerb) if horizontal else (kerb, s)
            _append_box(statics, (x, y, 3.5), (0.25, 0.25, 7.0), 0.0, (0.35, 0.36, 0.38), 35.0, 15, 0)
        if setback >= 2.5:
            for s in np.arange(lo + 10.0, hi - 10.0, rng.uniform(8.0, 14.0)):
                if rng.random() < 0.3:
                    continue
                x, y = (s, verge) if horizontal else (verge, s)
                self._add_tree(x, y, statics, rng)

    @staticmethod
    def _add_tree(x, y, statics, rng) -> None:
        trunk_h = float(rng.uniform(2.2, 3.2))
        crown = float(rng.uniform(2.5, 4.0))
        crown_h = float(rng.uniform(2.5, 4.5))
        yaw = float(rng.uniform(0, np.pi / 2))
        green = np.array([0.18, 0.38, 0.14]) * rng.uniform(0.75, 1.25)
        _append_box(statics, (x, y, trunk_h / 2), (0.35, 0.35, trunk_h), yaw, (0.30, 0.22, 0.15), 25.0, 16, 0)
        _append_box(statics, (x, y, trunk_h + crown_h / 2), (crown, crown, crown_h), yaw, tuple(green), 20.0, 16, 2)

    def _add_carpark(self, side, zone, occupied, rng) -> None:
        zx0, zy0, zx1, zy1 = zone
        horizontal = side in ("S", "N")
        along = (zx1 - zx0) if horizontal else (zy1 - zy0)
        across = (zy1 - zy0) if horizontal else (zx1 - zx0)
        length = float(min(along - 4.0, rng.uniform(30.0, 60.0)))
        depth = float(min(across - 4.0, rng.uniform(20.0, 32.0)))
        if length < 15.0 or depth < 12.0:
            return
        start = float(rng.uniform(0.0, along - length)) + (zx0 if horizontal else zy0)
        if side == "S":
            r = (start, zy0, start + length, zy0 + depth)
        elif side == "N":
            r = (start, zy1 - depth, start + length, zy1)
        elif side == "W":
            r = (zx0, start, zx0 + depth, start + length)
        else:
            r = (zx1 - depth, start, zx1, start + length)
        poly = box(*r)
        yaw = 0.0 if horizontal else np.pi / 2
        self.layers["carpark_area"].append(
            {"key": f"cp:{len(self.layers['carpark_area'])}", "geometry": poly, "orientation": yaw}
        )
        self._drivable_parts.append(poly)
        occupied.append(r)
        # Parking rows: cars stand across the row direction.
        rows = int((depth - 2.0) // 6.5)
        for k in range(rows):
            if horizontal:
                origin = np.array([r[0] + 1.0, r[1] + 3.5 + 6.5 * k if side == "S" else r[3] - 3.5 - 6.5 * k])
                self.slots["carpark"].append(Slot("carpark", origin, 0.0, length - 2.0, 5.0))
            else:
                origin = np.array([r[0] + 3.5 + 6.5 * k if side == "W" else r[2] - 3.5 - 6.5 * k, r[1] + 1.0])
                self.slots["carpark"].append(Slot("carpark", origin, np.pi / 2, length - 2.0, 5.0))

    def _add_buildings(self, zone, occupied, statics, rng) -> None:
        zx0, zy0, zx1, zy1 = zone
        placed = [np.array([(a + c) / 2, (b + d) / 2, c - a, d - b, 0.0]) for a, b, c, d in occupied]
        for side in ("S", "N", "W", "E"):
            horizontal = side in ("S", "N")
            lo, hi = (zx0, zx1) if horizontal else (zy0, zy1)
            s = lo + float(rng.uniform(0.0, 6.0))
            max_depth = ((zy1 - zy0) if horizontal else (zx1 - zx0)) / 2.0 - 1.0
            while s < hi - 8.0:
                front = float(min(rng.uniform(12.0, 35.0), hi - s))
                depth = float(min(rng.uniform(10.0, 22.0), max_depth))
                height = float(rng.choice([rng.uniform(5.0, 12.0), rng.uniform(12.0, 35.0)], p=[0.6, 0.4]))
                if depth < 6.0 or front < 8.0:
                    break
                if horizontal:
                    cy = zy0 + depth / 2 if side == "S" else zy1 - depth / 2
                    cand = np.array([s + front / 2, cy, front, depth, 0.0])
                else:
                    cx = zx0 + depth / 2 if side == "W" else zx1 - depth / 2
                    cand = np.array([cx, s + front / 2, depth, front, 0.0])
                if not placed or not _overlaps(cand, np.stack(placed), 1.0):
                    placed.append(cand)
                    tone = rng.uniform(0.45, 0.85)
                    tint = np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.8, 1.0)]) * tone
                    _append_box(
                        statics,
                        (cand[0], cand[1], height / 2),
                        (cand[2], cand[3], height),
                        0.0,
                        tuple(tint),
                        float(rng.uniform(25.0, 60.0)),
                        15,
                        1,
                    )
                s += front + float(rng.uniform(3.0, 10.0))

    # --------------------------------------------------------------- queries
    def drivable_polygons(self) -> list[Polygon]:
        return self.layers["drivable_area"][0]["geometries"]


def _overlaps(candidate: np.ndarray, placed: np.ndarray, margin: float) -> bool:
    from .geometry import footprints_overlap

    return bool(footprints_overlap(candidate[None], placed, margin).any())


def _append_box(statics, center, size, yaw, color, refl, occ, tex) -> None:
    statics["centers"].append(center)
    statics["sizes"].append(size)
    statics["yaws"].append(yaw)
    statics["colors"].append(color)
    statics["refl"].append(refl)
    statics["occ"].append(occ)
    statics["tex"].append(tex)


def _polygons(geom) -> list[Polygon]:
    """Flattens a shapely (Multi)Polygon into a list of Polygons."""
    if geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    return [g for g in geom.geoms if g.geom_type == "Polygon"]
