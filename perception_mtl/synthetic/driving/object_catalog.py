"""What the synthetic world's objects are: nuScenes categories, sizes, frequencies, shapes, looks.

Sizes are the nuScenes training-set means and spreads (l along the heading, w across, h up; a
barrier's long side is its *width*, as in nuScenes). Frequencies are the nuScenes detection-class
shares of annotations (car 43 %, pedestrian 20 %, barrier 13 %, traffic cone 8.5 %, truck 7.5 %,
trailer 2 %, bus 1.4 %, construction vehicle 1.2 %, motorcycle 1.1 %, bicycle 1 %).

Every object is a union of axis-aligned *parts* in its own frame (fractions of l, w, h, origin at
the centre of the bottom face), so sensors see a silhouette (a car's cabin, a pedestrian's head)
rather than a plain box, while the annotation box is the tight box around all parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perception_mtl.datasets.converters.nuscenes_schema import DETECTION_CLASS_OF_CATEGORY

# Occ3D-nuScenes label ids (0..16 from nuScenes-lidarseg's 16 classes, 17 = free).
OCC_OTHERS, OCC_CAR, OCC_TRUCK, OCC_TRAILER, OCC_BUS, OCC_CONSTRUCTION = 0, 1, 2, 3, 4, 5
OCC_BICYCLE, OCC_MOTORCYCLE, OCC_PEDESTRIAN, OCC_CONE, OCC_BARRIER = 6, 7, 8, 9, 10
OCC_DRIVEABLE, OCC_OTHER_FLAT, OCC_SIDEWALK, OCC_TERRAIN, OCC_MANMADE, OCC_VEGETATION, OCC_FREE = (
    11,
    12,
    13,
    14,
    15,
    16,
    17,
)
OCC_CLASS_NAMES = (
    "others",
    "car",
    "truck",
    "trailer",
    "bus",
    "construction_vehicle",
    "bicycle",
    "motorcycle",
    "pedestrian",
    "traffic_cone",
    "barrier",
    "driveable_surface",
    "other_flat",
    "sidewalk",
    "terrain",
    "manmade",
    "vegetation",
    "free",
)


@dataclass(frozen=True)
class PartSpec:
    """One axis-aligned part in the object frame, as fractions of the object's (l, w, h).

    ``x`` and ``y`` span [-0.5, 0.5] (centre of the footprint at 0); ``z`` spans [0, 1] from the
    ground. ``look`` selects the colour source: 'body' (the instance's paint), or a fixed material.
    """

    x: tuple[float, float]
    y: tuple[float, float]
    z: tuple[float, float]
    look: str = "body"


@dataclass(frozen=True)
class ObjectClassSpec:
    """A nuScenes category as the generator draws it.

    Attributes:
        category: nuScenes category name (e.g. 'vehicle.car'); its detection class is the devkit's
            mapping (:attr:`detection_name`).
        size_mean: mean (l, w, h) in metres.
        size_std: standard deviation of (l, w, h).
        occ_label: Occ3D label id.
        parts: the silhouette.
        palette: RGB body colours (0..1) to draw from.
        reflectivity: LiDAR reflectivity (intensity units at normal incidence).
        ridden_parts: the silhouette with a rider (cycles only); the box is then taller.
    """

    category: str
    size_mean: tuple[float, float, float]
    size_std: tuple[float, float, float]
    occ_label: int
    parts: tuple[PartSpec, ...]
    palette: tuple[tuple[float, float, float], ...]
    reflectivity: float = 20.0
    ridden_parts: tuple[PartSpec, ...] = field(default_factory=tuple)

    @property
    def detection_name(self) -> str:
        """The nuScenes detection class of :attr:`category` (nuscenes-devkit's mapping)."""
        return DETECTION_CLASS_OF_CATEGORY[self.category]


# Fixed looks (RGB 0..1, LiDAR reflectivity).
LOOKS: dict[str, tuple[tuple[float, float, float], float]] = {
    "glass": ((0.12, 0.15, 0.19), 6.0),
    "tyre": ((0.06, 0.06, 0.06), 4.0),
    "skin": ((0.80, 0.62, 0.50), 18.0),
    "hair": ((0.15, 0.11, 0.08), 8.0),
    "trousers": ((0.16, 0.18, 0.26), 10.0),
    "cone_stripe": ((0.95, 0.95, 0.95), 120.0),
    "frame": ((0.10, 0.10, 0.12), 12.0),
    "rider": ((0.25, 0.25, 0.30), 12.0),
    "steel": ((0.45, 0.45, 0.47), 30.0),
}

CAR_PAINT = (
    (0.92, 0.92, 0.92),
    (0.08, 0.08, 0.09),
    (0.62, 0.63, 0.65),
    (0.55, 0.08, 0.07),
    (0.10, 0.22, 0.52),
    (0.35, 0.36, 0.38),
    (0.80, 0.78, 0.70),
    (0.12, 0.35, 0.20),
)
CLOTHES = (
    (0.10, 0.10, 0.12),
    (0.75, 0.15, 0.12),
    (0.15, 0.30, 0.65),
    (0.85, 0.85, 0.82),
    (0.40, 0.40, 0.42),
    (0.85, 0.65, 0.15),
    (0.25, 0.45, 0.25),
)

_CAR_PARTS = (
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.18, 0.55)),
    PartSpec((-0.42, -0.22), (-0.5, 0.5), (0.0, 0.18), "tyre"),
    PartSpec((0.22, 0.42), (-0.5, 0.5), (0.0, 0.18), "tyre"),
    PartSpec((-0.33, 0.17), (-0.44, 0.44), (0.55, 1.0), "glass"),
)
_TRUCK_PARTS = (
    PartSpec((0.24, 0.5), (-0.5, 0.5), (0.12, 0.88)),
    PartSpec((0.26, 0.5), (-0.46, 0.46), (0.6, 0.85), "glass"),
    PartSpec((-0.5, 0.22), (-0.5, 0.5), (0.15, 1.0), "steel"),
    PartSpec((-0.42, 0.45), (-0.5, 0.5), (0.0, 0.15), "tyre"),
)
_BUS_PARTS = (
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.1, 0.55)),
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.55, 0.85), "glass"),
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.85, 1.0)),
    PartSpec((-0.4, 0.4), (-0.5, 0.5), (0.0, 0.1), "tyre"),
)
_TRAILER_PARTS = (
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.3, 1.0)),
    PartSpec((-0.45, -0.2), (-0.5, 0.5), (0.0, 0.3), "tyre"),
    PartSpec((0.35, 0.45), (-0.15, 0.15), (0.0, 0.3), "steel"),
)
_CONSTRUCTION_PARTS = (
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.0, 0.45), "tyre"),
    PartSpec((-0.45, 0.25), (-0.5, 0.5), (0.2, 0.55)),
    PartSpec((-0.2, 0.15), (-0.5, 0.05), (0.55, 1.0), "glass"),
    PartSpec((0.25, 0.5), (-0.2, 0.2), (0.3, 0.75)),
)
_PEDESTRIAN_PARTS = (
    PartSpec((-0.25, 0.25), (-0.35, 0.35), (0.0, 0.47), "trousers"),
    PartSpec((-0.35, 0.35), (-0.5, 0.5), (0.47, 0.83)),
    PartSpec((-0.2, 0.2), (-0.18, 0.18), (0.83, 0.97), "skin"),
    PartSpec((-0.22, 0.22), (-0.2, 0.2), (0.97, 1.0), "hair"),
)
# Cycles are drawn parked (no rider, lower box) or ridden (rider parts, taller box); both sets
# span the whole box so the annotation stays tight.
_CYCLE_PARTS = (
    PartSpec((-0.5, 0.5), (-0.12, 0.12), (0.0, 0.85)),
    PartSpec((0.2, 0.35), (-0.5, 0.5), (0.85, 1.0), "frame"),
)
_CYCLE_RIDDEN = (
    PartSpec((-0.5, 0.5), (-0.12, 0.12), (0.0, 0.55)),
    PartSpec((0.2, 0.35), (-0.5, 0.5), (0.5, 0.58), "frame"),
    PartSpec((-0.25, 0.05), (-0.35, 0.35), (0.45, 0.85), "rider"),
    PartSpec((-0.17, 0.0), (-0.15, 0.15), (0.85, 1.0), "skin"),
)
_MOTORCYCLE_PARTS = (
    PartSpec((-0.5, 0.5), (-0.25, 0.25), (0.0, 0.85)),
    PartSpec((0.3, 0.45), (-0.5, 0.5), (0.85, 1.0), "frame"),
)
_MOTORCYCLE_RIDDEN = (
    PartSpec((-0.5, 0.5), (-0.25, 0.25), (0.0, 0.6)),
    PartSpec((0.3, 0.45), (-0.5, 0.5), (0.55, 0.65), "frame"),
    PartSpec((-0.25, 0.05), (-0.35, 0.35), (0.5, 0.87), "rider"),
    PartSpec((-0.17, 0.0), (-0.15, 0.15), (0.87, 1.0), "skin"),
)
_CONE_PARTS = (
    PartSpec((-0.5, 0.5), (-0.5, 0.5), (0.0, 0.08), "frame"),
    PartSpec((-0.3, 0.3), (-0.3, 0.3), (0.08, 0.45)),
    PartSpec((-0.22, 0.22), (-0.22, 0.22), (0.45, 0.65), "cone_stripe"),
    PartSpec((-0.14, 0.14), (-0.14, 0.14), (0.65, 1.0)),
)
_BARRIER_PARTS = (
    PartSpec((-0.5, 0.5), (-0.45, -0.35), (0.0, 0.35), "steel"),
    PartSpec((-0.5, 0.5), (0.35, 0.45), (0.0, 0.35), "steel"),
    PartSpec((-0.25, 0.25), (-0.5, 0.5), (0.35, 1.0)),
)

CLASS_SPECS: dict[str, ObjectClassSpec] = {
    spec.category: spec
    for spec in (
        ObjectClassSpec("vehicle.car", (4.62, 1.95, 1.73), (0.45, 0.18, 0.22), OCC_CAR, _CAR_PARTS, CAR_PAINT),
        ObjectClassSpec(
            "vehicle.truck",
            (6.9, 2.5, 2.85),
            (1.6, 0.25, 0.55),
            OCC_TRUCK,
            _TRUCK_PARTS,
            ((0.9, 0.9, 0.9), (0.2, 0.3, 0.6), (0.7, 0.1, 0.1), (0.3, 0.5, 0.3)),
        ),
        ObjectClassSpec(
            "vehicle.bus.rigid",
            (11.2, 2.95, 3.45),
            (1.2, 0.12, 0.25),
            OCC_BUS,
            _BUS_PARTS,
            ((0.85, 0.15, 0.12), (0.15, 0.35, 0.7), (0.95, 0.75, 0.1), (0.9, 0.9, 0.9)),
        ),
        ObjectClassSpec(
            "vehicle.trailer",
            (12.0, 2.9, 3.8),
            (2.5, 0.15, 0.35),
            OCC_TRAILER,
            _TRAILER_PARTS,
            ((0.85, 0.85, 0.85), (0.55, 0.55, 0.58), (0.2, 0.3, 0.55)),
        ),
        ObjectClassSpec(
            "vehicle.construction",
            (6.5, 2.8, 3.2),
            (1.5, 0.35, 0.5),
            OCC_CONSTRUCTION,
            _CONSTRUCTION_PARTS,
            ((0.95, 0.7, 0.05), (0.9, 0.45, 0.05)),
            reflectivity=35.0,
        ),
        ObjectClassSpec(
            "human.pedestrian.adult",
            (0.73, 0.67, 1.77),
            (0.12, 0.1, 0.1),
            OCC_PEDESTRIAN,
            _PEDESTRIAN_PARTS,
            CLOTHES,
            reflectivity=15.0,
        ),
        ObjectClassSpec(
            "human.pedestrian.child",
            (0.5, 0.5, 1.3),
            (0.07, 0.07, 0.12),
            OCC_PEDESTRIAN,
            _PEDESTRIAN_PARTS,
            CLOTHES,
            reflectivity=15.0,
        ),
        ObjectClassSpec(
            "human.pedestrian.construction_worker",
            (0.75, 0.7, 1.78),
            (0.1, 0.08, 0.08),
            OCC_PEDESTRIAN,
            _PEDESTRIAN_PARTS,
            ((0.98, 0.55, 0.05), (0.85, 0.95, 0.15)),
            reflectivity=80.0,
        ),
        ObjectClassSpec(
            "vehicle.bicycle",
            (1.7, 0.6, 1.28),
            (0.12, 0.08, 0.25),
            OCC_BICYCLE,
            _CYCLE_PARTS,
            ((0.1, 0.1, 0.1), (0.6, 0.1, 0.1), (0.1, 0.3, 0.6), (0.8, 0.8, 0.8)),
            reflectivity=14.0,
            ridden_parts=_CYCLE_RIDDEN,
        ),
        ObjectClassSpec(
            "vehicle.motorcycle",
            (2.1, 0.77, 1.47),
            (0.2, 0.1, 0.2),
            OCC_MOTORCYCLE,
            _MOTORCYCLE_PARTS,
            ((0.1, 0.1, 0.1), (0.7, 0.1, 0.1), (0.15, 0.2, 0.55), (0.85, 0.85, 0.85)),
            reflectivity=25.0,
            ridden_parts=_MOTORCYCLE_RIDDEN,
        ),
        ObjectClassSpec(
            "movable_object.trafficcone",
            (0.41, 0.41, 1.07),
            (0.05, 0.05, 0.18),
            OCC_CONE,
            _CONE_PARTS,
            ((0.98, 0.42, 0.05),),
            reflectivity=60.0,
        ),
        ObjectClassSpec(
            "movable_object.barrier",
            (0.5, 2.5, 0.98),
            (0.08, 0.25, 0.1),
            OCC_BARRIER,
            _BARRIER_PARTS,
            ((0.92, 0.92, 0.9), (0.85, 0.2, 0.15), (0.95, 0.6, 0.1)),
            reflectivity=45.0,
        ),
    )
}

# Share of annotations per detection class in nuScenes (train split).
DETECTION_CLASS_FREQUENCY: dict[str, float] = {
    "car": 0.43,
    "pedestrian": 0.195,
    "barrier": 0.13,
    "traffic_cone": 0.085,
    "truck": 0.075,
    "trailer": 0.021,
    "bus": 0.014,
    "construction_vehicle": 0.012,
    "motorcycle": 0.011,
    "bicycle": 0.010,
}

# Which nuScenes categories make up a detection class, with their shares.
CATEGORY_MIX: dict[str, tuple[tuple[str, float], ...]] = {
    "pedestrian": (
        ("human.pedestrian.adult", 0.93),
        ("human.pedestrian.child", 0.02),
        ("human.pedestrian.construction_worker", 0.05),
    ),
}


def draw_size(spec: ObjectClassSpec, rng: np.random.Generator) -> np.ndarray:
    """Draws an (l, w, h) size (m) around the class mean, clipped to +-2 standard deviations."""
    mean, std = np.asarray(spec.size_mean), np.asarray(spec.size_std)
    return mean + np.clip(rng.standard_normal(3), -2.0, 2.0) * std


def draw_category(detection_name: str, rng: np.random.Generator) -> str:
    """Picks the nuScenes category of an object of a detection class."""
    mix = CATEGORY_MIX.get(detection_name)
    if mix is None:
        return next(c for c, s in CLASS_SPECS.items() if s.detection_name == detection_name)
    names, shares = zip(*mix)
    return str(rng.choice(names, p=np.asarray(shares) / np.sum(shares)))
