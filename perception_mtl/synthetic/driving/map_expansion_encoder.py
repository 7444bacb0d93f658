"""Encodes a synthetic city as a nuScenes map-expansion JSON (schema v1.3).

The devkit's ``NuScenesMap`` reads ``maps/expansion/<location>.json``: geometric layers
(``node``, ``line``, ``polygon``) referenced by token from the semantic layers (drivable_area,
road_segment, road_block, lane, ped_crossing, walkway, stop_line, carpark_area, road_divider,
lane_divider, traffic_light, lane_connector), plus ``arcline_path_3`` (lane centre lines),
``connectivity`` (lane graph), ``canvas_edge`` and ``version``.
"""

from __future__ import annotations

import hashlib

import numpy as np
from shapely.geometry import LineString, Polygon

from perception_mtl.datasets.converters.nuscenes_schema import MAP_LAYERS

from .city_map import CityMap


class MapExpansionEncoder:
    """Turns a :class:`CityMap` into the map-expansion dictionary.

    Args:
        city: the city.
        namespace: salt for the tokens (e.g. the dataset seed), so two cities never share tokens.
    """

    def __init__(self, city: CityMap, namespace: str = "") -> None:
        self.city = city
        self.namespace = f"{namespace}/{city.location}"
        self.nodes: list[dict] = []
        self.lines: list[dict] = []
        self.polygons: list[dict] = []

    def token(self, key: str) -> str:
        return hashlib.md5(f"{self.namespace}/{key}".encode()).hexdigest()

    def encode(self) -> dict:
        """The JSON-ready map dictionary."""
        city = self.city
        out: dict = {"version": "1.3", "canvas_edge": [float(v) for v in city.canvas_edge]}
        for name in MAP_LAYERS:
            out[name] = []
        tok = self.token
        da = city.layers["drivable_area"][0]
        out["drivable_area"].append(
            {
                "token": tok(da["key"]),
                "polygon_tokens": [self._polygon(f"{da['key']}:{i}", p) for i, p in enumerate(da["geometries"])],
            }
        )
        da_token = tok(da["key"])
        for rec in city.layers["road_segment"]:
            out["road_segment"].append(
                {
                    "token": tok(rec["key"]),
                    "polygon_token": self._polygon(rec["key"], rec["geometry"]),
                    "is_intersection": bool(rec["is_intersection"]),
                    "drivable_area_token": da_token,
                }
            )
        for rec in city.layers["road_block"]:
            poly_token, coords, node_tokens = self._polygon_with_nodes(rec["key"], rec["geometry"])
            out["road_block"].append(
                {
                    "token": tok(rec["key"]),
                    "polygon_token": poly_token,
                    "from_edge_line_token": self._edge_line(
                        rec["key"] + ":from", coords, node_tokens, rec["heading"], False
                    ),
                    "to_edge_line_token": self._edge_line(
                        rec["key"] + ":to", coords, node_tokens, rec["heading"], True
                    ),
                    "road_segment_token": tok(rec["road_segment"]),
                }
            )
        arcline, connectivity = {}, {}
        lanes_by_flow: dict[tuple, dict[int, str]] = {}
        for rec in city.layers["lane"]:
            lane_token = tok(rec["key"])
            poly_token, coords, node_tokens = self._polygon_with_nodes(rec["key"], rec["geometry"])
            road = city.roads[rec["road"]]
            left_type, right_type = self._boundary_types(rec, road.lanes_per_direction, city.left_hand_traffic)
            out["lane"].append(
                {
                    "token": lane_token,
                    "polygon_token": poly_token,
                    "lane_type": "CAR",
                    "from_edge_line_token": self._edge_line(
                        rec["key"] + ":from", coords, node_tokens, rec["yaw"], False
                    ),
                    "to_edge_line_token": self._edge_line(rec["key"] + ":to", coords, node_tokens, rec["yaw"], True),
                    "left_lane_divider_segments": self._segments(rec["key"] + ":left", rec["left"], left_type),
                    "right_lane_divider_segments": self._segments(rec["key"] + ":right", rec["right"], right_type),
                }
            )
            start, end = np.asarray(rec["start"], float), np.asarray(rec["end"], float)
            length = float(np.linalg.norm(end - start))
            yaw = float(rec["yaw"])
            arcline[lane_token] = [
                {
                    "start_pose": [float(start[0]), float(start[1]), yaw],
                    "end_pose": [float(end[0]), float(end[1]), yaw],
                    "shape": "LSR",
                    "radius": 999.999,
                    "segment_length": [0.0, length, 0.0],
                }
            ]
            seg = int(rec["key"].split(":")[3])
            lanes_by_flow.setdefault((rec["road"], rec["heading_sign"], rec["lane_id"]), {})[seg] = lane_token
        for (_, heading, _), by_seg in lanes_by_flow.items():
            for seg, lane_token in by_seg.items():
                nxt, prv = by_seg.get(seg + int(heading)), by_seg.get(seg - int(heading))
                connectivity[lane_token] = {"incoming": [prv] if prv else [], "outgoing": [nxt] if nxt else []}
        out["arcline_path_3"] = arcline
        out["connectivity"] = connectivity
        for rec in city.layers["ped_crossing"]:
            out["ped_crossing"].append(
                {
                    "token": tok(rec["key"]),
                    "polygon_token": self._polygon(rec["key"], rec["geometry"]),
                    "road_segment_token": tok(rec["road_segment"]),
                }
            )
        for rec in city.layers["walkway"]:
            out["walkway"].append(
                {"token": tok(rec["key"]), "polygon_token": self._polygon(rec["key"], rec["geometry"])}
            )
        for rec in city.layers["stop_line"]:
            out["stop_line"].append(
                {
                    "token": tok(rec["key"]),
                    "polygon_token": self._polygon(rec["key"], rec["geometry"]),
                    "stop_line_type": rec["stop_line_type"],
                    "ped_crossing_tokens": [tok(k) for k in rec["ped_crossings"]],
                    "traffic_light_tokens": [],
                    "road_block_token": tok(rec["road_block"]),
                }
            )
        for rec in city.layers["carpark_area"]:
            out["carpark_area"].append(
                {
                    "token": tok(rec["key"]),
                    "polygon_token": self._polygon(rec["key"], rec["geometry"]),
                    "orientation": float(rec["orientation"]),
                    "road_block_token": "",
                }
            )
        for rec in city.layers["road_divider"]:
            out["road_divider"].append(
                {
                    "token": tok(rec["key"]),
                    "line_token": self._line(rec["key"], rec["geometry"])[0],
                    "road_segment_token": tok(rec["road_segment"]),
                }
            )
        for rec in city.layers["lane_divider"]:
            line_token, node_tokens = self._line(rec["key"], rec["geometry"])
            out["lane_divider"].append(
                {
                    "token": tok(rec["key"]),
                    "line_token": line_token,
                    "lane_divider_segments": [
                        {"node_token": n, "segment_type": "SINGLE_DASHED_WHITE"} for n in node_tokens
                    ],
                }
            )
        out["node"], out["line"], out["polygon"] = self.nodes, self.lines, self.polygons
        return out

    # ------------------------------------------------------------- geometry
    def _node(self, key: str, xy) -> str:
        token = self.token(f"node:{key}")
        self.nodes.append({"token": token, "x": round(float(xy[0]), 4), "y": round(float(xy[1]), 4)})
        return token

    def _ring(self, key: str, coords) -> list[str]:
        coords = np.asarray(coords)[:-1]  # shapely rings repeat the first point
        return [self._node(f"{key}:{i}", c) for i, c in enumerate(coords)]

    def _polygon_with_nodes(self, key: str, poly: Polygon) -> tuple[str, np.ndarray, list[str]]:
        token = self.token(f"polygon:{key}")
        exterior = self._ring(f"{key}:ext", poly.exterior.coords)
        holes = [{"node_tokens": self._ring(f"{key}:hole{i}", r.coords)} for i, r in enumerate(poly.interiors)]
        self.polygons.append({"token": token, "exterior_node_tokens": exterior, "holes": holes})
        return token, np.asarray(poly.exterior.coords)[:-1], exterior

    def _polygon(self, key: str, poly: Polygon) -> str:
        return self._polygon_with_nodes(key, poly)[0]

    def _line(self, key: str, line: LineString) -> tuple[str, list[str]]:
        token = self.token(f"line:{key}")
        nodes = [self._node(f"{key}:l{i}", c) for i, c in enumerate(np.asarray(line.coords))]
        self.lines.append({"token": token, "node_tokens": nodes})
        return token, nodes

    def _edge_line(self, key: str, coords: np.ndarray, node_tokens: list[str], yaw: float, front: bool) -> str:
        """A line through the polygon's two exterior nodes at its rear (``front`` False) or front edge."""
        along = coords @ np.array([np.cos(yaw), np.sin(yaw)])
        order = np.argsort(-along if front else along)[:2]
        token = self.token(f"line:{key}")
        self.lines.append({"token": token, "node_tokens": [node_tokens[i] for i in sorted(order)]})
        return token

    def _segments(self, key: str, points, segment_type: str) -> list[dict]:
        return [{"node_token": self._node(f"{key}:{i}", p), "segment_type": segment_type} for i, p in enumerate(points)]

    @staticmethod
    def _boundary_types(rec: dict, lanes_per_direction: int, left_hand: bool) -> tuple[str, str]:
        """Paint on the lane's left/right boundary: centre line, lane divider or kerb."""
        inner = "DOUBLE_SOLID_YELLOW" if rec["lane_id"] == 0 else "SINGLE_DASHED_WHITE"
        outer = "SINGLE_DASHED_WHITE" if rec["lane_id"] < lanes_per_direction - 1 else "NIL"
        # The centre of the road is on the lane's left in right-hand traffic, on its right in left-hand.
        return (outer, inner) if left_hand else (inner, outer)
