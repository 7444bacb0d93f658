"""Fixed vocabularies of the nuScenes schema (v1.0): tables, channels, map layers, categories, attributes, visibility.

The one home of these constants for the converter, the synthetic writer and the test writers.
The category -> detection-class mapping is the devkit's (``category_to_detection_name``), not a
copy; the rest is hand-written because the devkit does not expose it as data (its table list is
set per ``NuScenes`` instance, its category descriptions live only in the released tables).
"""

from __future__ import annotations

from nuscenes.eval.detection.utils import category_to_detection_name

# The tables of a version folder (``<root>/<version>/<table>.json``), in the order NuScenes loads them.
TABLES: tuple[str, ...] = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)

# Sensor channels of the nuScenes rig used here (no radars), cameras in the devkit's / mmdet3d's order.
LIDAR_CHANNEL = "LIDAR_TOP"
CAMERA_CHANNELS: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)

# The semantic layers of a map expansion (``maps/expansion/<location>.json``, schema v1.3); besides
# them the file holds the geometric layers ``node``, ``line``, ``polygon`` and ``arcline_path_3``,
# ``connectivity``, ``canvas_edge`` and ``version``.
MAP_LAYERS: tuple[str, ...] = (
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
    "traffic_light",
    "lane_connector",
)

# (name, description), in the order of the nuScenes-lidarseg category index (0..31).
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("noise", "Any lidar return that does not correspond to a physical object."),
    ("animal", "All animals, e.g. cats, rats, dogs, deer, birds."),
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    ("human.pedestrian.personal_mobility", "A small electric or self-propelled vehicle."),
    ("human.pedestrian.police_officer", "Police officer."),
    ("human.pedestrian.stroller", "Strollers."),
    ("human.pedestrian.wheelchair", "Wheelchairs."),
    ("movable_object.barrier", "Temporary road barrier placed in the scene in order to redirect traffic."),
    ("movable_object.debris", "Movable object that is left on the driveable surface."),
    ("movable_object.pushable_pullable", "Objects that a pedestrian may push or pull."),
    ("movable_object.trafficcone", "All types of traffic cone."),
    ("static_object.bicycle_rack", "Area or device intended to park or secure the bicycles in a row."),
    ("vehicle.bicycle", "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds."),
    ("vehicle.bus.bendy", "Bendy bus subcategory."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    ("vehicle.car", "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans."),
    ("vehicle.construction", "Vehicles primarily designed for construction. Typically very slow moving or stationary."),
    ("vehicle.emergency.ambulance", "All types of ambulances."),
    ("vehicle.emergency.police", "All types of police vehicles."),
    ("vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly."),
    ("vehicle.trailer", "Any vehicle trailer, both for trucks, cars and bikes."),
    (
        "vehicle.truck",
        "Vehicles primarily designed to haul cargo including pick-ups, lorrys, trucks and semi-tractors.",
    ),
    (
        "flat.driveable_surface",
        "All paved or unpaved surfaces that a car can drive on with no concern of traffic rules.",
    ),
    ("flat.other", "All other forms of horizontal ground-level structures that do not belong to any other category."),
    ("flat.sidewalk", "Sidewalk, pedestrian walkways, bike paths, etc. Part of the ground designated for pedestrians."),
    ("flat.terrain", "Natural horizontal surfaces such as ground level horizontal vegetation (< 20 cm tall), grass."),
    ("static.manmade", "Includes man-made structures but not limited to: buildings, walls, guard rails, fences."),
    ("static.other", "Points in the background that are not distinguishable, or objects that do not match any class."),
    (
        "static.vegetation",
        "Any vegetation in the frame that is higher than the ground, including bushes, plants, trees.",
    ),
    ("vehicle.ego", "The vehicle on which the cameras, radar and lidar are mounted."),
)

# The categories that sample_annotation may use (the 23 object classes of nuScenes).
OBJECT_CATEGORIES = frozenset(name for name, _ in CATEGORIES[1:24])

# Category -> nuScenes detection class, for the categories the devkit maps (14 of the 23 object
# categories; e.g. strollers, wheelchairs and animals have no detection class).
DETECTION_CLASS_OF_CATEGORY: dict[str, str] = {
    name: category_to_detection_name(name) for name, _ in CATEGORIES if category_to_detection_name(name) is not None
}

ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("vehicle.moving", "Vehicle is moving."),
    ("vehicle.stopped", "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move."),
    ("vehicle.parked", "Vehicle is stationary (usually for longer duration) with no immediate intent to move."),
    ("cycle.with_rider", "There is a rider on the bicycle or motorcycle."),
    ("cycle.without_rider", "There is NO rider on the bicycle or motorcycle."),
    ("pedestrian.sitting_lying_down", "The human is sitting or lying down."),
    ("pedestrian.standing", "The human is standing."),
    ("pedestrian.moving", "The human is moving."),
)

# token, level, description (nuScenes uses the tokens '1'..'4').
VISIBILITY: tuple[tuple[str, str, str], ...] = (
    ("1", "v0-40", "visibility of whole object is between 0 and 40%"),
    ("2", "v40-60", "visibility of whole object is between 40 and 60%"),
    ("3", "v60-80", "visibility of whole object is between 60 and 80%"),
    ("4", "v80-100", "visibility of whole object is between 80 and 100%"),
)


def visibility_token(fraction: float) -> str:
    """nuScenes visibility token of a visible fraction in [0, 1]."""
    if fraction < 0.4:
        return "1"
    if fraction < 0.6:
        return "2"
    if fraction < 0.8:
        return "3"
    return "4"
