"""The synthetic world: map layers, scene planning, and the sensors and labels simulated from it."""

import numpy as np
import pytest
from nuscenes.eval.detection.utils import category_to_detection_name
from shapely.geometry import Point
from shapely.ops import unary_union

from perception_mtl.synthetic.driving.camera_renderer import CameraRenderer
from perception_mtl.synthetic.driving.city_map import CityMap
from perception_mtl.synthetic.driving.geometry import box_corners, make_transform, rotation_z
from perception_mtl.synthetic.driving.ground_raster import ASPHALT, WALKWAY, GroundRaster
from perception_mtl.synthetic.driving.lidar_simulator import LidarSimulator
from perception_mtl.synthetic.driving.object_catalog import CLASS_SPECS, OCC_CAR, OCC_DRIVEABLE, OCC_FREE
from perception_mtl.synthetic.driving.occupancy_labeler import (
    GRID_LOWER,
    VOXEL_SIZE,
    CameraView,
    OccupancyLabeler,
)
from perception_mtl.synthetic.driving.primitive_set import PrimitiveSet
from perception_mtl.synthetic.driving.scene_planner import plan_scene
from perception_mtl.synthetic.driving.sensor_rig import SensorRig


@pytest.fixture(scope="module")
def world():
    city = CityMap("boston-seaport", seed=3)
    ground = GroundRaster(city)
    plan = plan_scene(city, 0, "scene-0061", seed=3, num_samples=8)
    return city, ground, plan


def _box_prims(centers, sizes, yaws, owners, occ=OCC_CAR, color=(0.8, 0.1, 0.1)):
    n = len(centers)
    return PrimitiveSet(
        np.asarray(centers, float),
        np.asarray(sizes, float) / 2,
        np.asarray(yaws, float),
        np.tile(color, (n, 1)),
        np.full(n, 30.0),
        np.asarray(owners),
        np.full(n, occ),
        np.zeros(n, int),
    )


def _road_pose(city):
    """An ego pose in the middle of a travel lane, heading along it (4x4, global)."""
    slot = max(city.slots["lane"], key=lambda s: s.length)
    xy = slot.point(slot.length / 2)
    return make_transform(rotation_z(slot.direction), [xy[0], xy[1], 0.0])


def test_map_layers_are_consistent(world):
    city, ground, _ = world
    drivable = unary_union(city.drivable_polygons())
    walk = unary_union([r["geometry"] for r in city.layers["walkway"]])
    for name in ("lane", "ped_crossing", "stop_line", "road_segment", "carpark_area"):
        assert city.layers[name], name
        for rec in city.layers[name]:
            assert rec["geometry"].difference(drivable).area < 1e-6, name
    assert walk.intersection(drivable).area < 1e-6
    for name in ("road_divider", "lane_divider"):
        assert all(drivable.buffer(1e-6).contains(r["geometry"]) for r in city.layers[name])
    # The raster follows the polygons.
    lane = city.layers["lane"][0]["geometry"].representative_point()
    walk_point = city.layers["walkway"][0]["geometry"].representative_point()
    assert ground.lookup(np.array([lane.x]), np.array([lane.y]))[0] == ASPHALT
    assert ground.lookup(np.array([walk_point.x]), np.array([walk_point.y]))[0] == WALKWAY


def test_plan_is_deterministic_and_placed_on_the_map(world):
    city, _, plan = world
    again = plan_scene(city, 0, "scene-0061", seed=3, num_samples=8)
    assert np.array_equal(plan.actors.positions, again.actors.positions)
    assert plan.actors.categories == again.actors.categories
    actors = plan.actors
    assert len(actors) > 20
    for category, name in zip(actors.categories, actors.detection_names):
        assert category_to_detection_name(category) == name
    drivable = unary_union(city.drivable_polygons()).buffer(0.5)
    walk = unary_union(
        [r["geometry"] for r in city.layers["walkway"]] + [r["geometry"] for r in city.layers["ped_crossing"]]
    ).buffer(1.5)
    centers, _, _ = actors.boxes(0.0)
    for i, name in enumerate(actors.detection_names):
        p = Point(centers[i, :2])
        if name in ("car", "truck", "bus", "trailer", "motorcycle"):
            assert drivable.contains(p), (name, actors.attributes[i])
        if name in ("pedestrian", "bicycle"):
            assert walk.contains(p) or drivable.contains(p), (name, actors.attributes[i])
        attribute = actors.attributes[i]
        if actors.speeds[i] > 0:
            assert attribute in ("vehicle.moving", "pedestrian.moving", "cycle.with_rider")
        if attribute in ("vehicle.moving", "pedestrian.moving"):
            assert actors.speeds[i] > 0
        if attribute in ("vehicle.parked", "vehicle.stopped", "pedestrian.standing", "cycle.without_rider", ""):
            assert actors.speeds[i] == 0


def test_nothing_overlaps_at_any_sample(world):
    _, _, plan = world
    from perception_mtl.synthetic.driving.geometry import footprints_overlap

    for t in plan.sample_times:
        fp = plan.actors.footprints(float(t))
        overlap = footprints_overlap(fp, fp)
        np.fill_diagonal(overlap, False)
        assert not overlap.any(), t
        ego = plan.route.body_footprints(np.array([t]))
        assert not footprints_overlap(ego, fp).any()


def test_motion_is_constant_velocity(world):
    _, _, plan = world
    c0, _, _ = plan.actors.boxes(0.0)
    c1, _, _ = plan.actors.boxes(1.5)
    assert np.allclose((c1 - c0)[:, :2] / 1.5, plan.actors.velocities())
    assert (plan.actors.speeds > 0).any() and (plan.actors.speeds == 0).any()


def test_lidar_sees_a_box_with_noise_and_dropout(world):
    city, ground, _ = world
    ego = _road_pose(city)
    rig = SensorRig(np.random.default_rng(0), jitter=False)
    lidar2global = ego @ rig.lidar.sensor2ego
    # A car 12 m ahead of the ego, in the lane.
    center = ego[:3, :3] @ np.array([12.0, 0.0, 0.8]) + ego[:3, 3]
    prims = _box_prims([center], [[4.5, 1.9, 1.6]], [np.arctan2(ego[1, 0], ego[0, 0])], [0])
    sim = LidarSimulator()
    scan = sim.scan(lidar2global, prims, ground, np.random.default_rng(0))
    assert scan.points.shape[1] == 5 and scan.points.dtype == np.float32
    assert set(np.unique(scan.points[:, 4])) <= set(range(32))
    assert len(scan.points) < 32 * 1084  # dropout and sky
    on_car = scan.owners == 0
    assert on_car.sum() > 200
    pts = scan.points[on_car, :3] @ lidar2global[:3, :3].T + lidar2global[:3, 3]
    local = (pts - center) @ ego[:3, :3]
    assert np.all(np.abs(local[:, 0]) < 2.25 + 0.1) and np.all(np.abs(local[:, 1]) < 0.95 + 0.1)
    # Range noise: the returns on the rear face are spread around it, not exactly on it.
    rear = local[:, 0] < -2.0
    assert 0.005 < np.std(local[rear, 0]) < 0.05
    # Intensity: road paint reflects more than asphalt.
    assert scan.points[:, 3].max() > 40


def test_camera_renders_objects_where_they_are(world):
    city, ground, _ = world
    ego = _road_pose(city)
    rig = SensorRig(np.random.default_rng(0), image_width=200, jitter=False)
    renderer = CameraRenderer(rig.image_width, rig.image_height)
    yaw = np.arctan2(ego[1, 0], ego[0, 0])
    near = ego[:3, :3] @ np.array([12.0, 0.0, 1.0]) + ego[:3, 3]
    far = ego[:3, :3] @ np.array([20.0, 0.0, 0.8]) + ego[:3, 3]  # hidden behind the near box
    prims = _box_prims([near, far], [[2.0, 2.0, 2.0], [1.0, 1.0, 1.6]], [yaw, yaw], [0, 1])
    sun = np.array([0.3, 0.2, 0.93])
    front = rig.camera("CAM_FRONT")
    frame = renderer.render(
        front.intrinsic, ego @ front.sensor2ego, prims, ground, sun, 1.0, 2, np.random.default_rng(0)
    )
    mask = frame.owner == 0
    assert frame.visible_pixels[0] == mask.sum() > 50
    assert frame.visible_pixels[1] == 0 and frame.covered_pixels[1] > 0  # occluded, but in view
    red = frame.image[mask].astype(float).mean(0)
    assert red[0] > 1.5 * red[1] and red[0] > 1.5 * red[2]  # the box's own colour, shaded
    # Depth along the ray at the box's centre pixel: the camera is 12 - 1.7 - 1 m from the face.
    cam = np.linalg.inv(ego @ front.sensor2ego) @ np.append(near, 1.0)
    u, v = (front.intrinsic @ cam[:3])[:2] / cam[2]
    depth = frame.depth[int(v), int(u)]
    ray = np.linalg.inv(front.intrinsic) @ np.array([int(u) + 0.5, int(v) + 0.5, 1.0])
    assert np.isclose(depth * ray[2] / np.linalg.norm(ray), 12.0 - 1.0 - front.sensor2ego[0, 3], atol=0.05)
    back = rig.camera("CAM_BACK")
    frame_back = renderer.render(
        back.intrinsic, ego @ back.sensor2ego, prims, ground, sun, 1.0, 2, np.random.default_rng(0)
    )
    assert frame_back.covered_pixels.sum() == 0 and (frame_back.owner < 0).all()


def test_occupancy_labels_follow_the_scene(world):
    city, ground, _ = world
    ego = _road_pose(city)
    yaw = np.arctan2(ego[1, 0], ego[0, 0])
    car_ego = np.array([10.0, 3.0, 0.8])
    car = ego[:3, :3] @ car_ego + ego[:3, 3]
    wall_ego = np.array([-15.0, 0.0, 2.0])
    wall = ego[:3, :3] @ wall_ego + ego[:3, 3]
    prims = PrimitiveSet.concatenate(
        [
            _box_prims([car], [[4.4, 1.8, 1.6]], [yaw + 0.3], [0]),
            _box_prims([wall], [[0.8, 30.0, 4.0]], [yaw], [-1], occ=15),
        ]
    )
    labeler = OccupancyLabeler()
    sem = labeler.semantics(ego, prims, ground)
    assert sem.shape == (200, 200, 16) and sem.dtype == np.uint8
    idx = np.floor((car_ego - GRID_LOWER) / VOXEL_SIZE).astype(int)
    assert sem[tuple(idx)] == OCC_CAR
    assert sem[100, 100, labeler.ground_layer] == OCC_DRIVEABLE  # the ego stands on the road
    assert (sem[:, :, labeler.ground_layer + 5] == OCC_FREE).mean() > 0.5
    # Every car voxel overlaps the (voxel-grown) car box.
    car_voxels = labeler.centers[(sem == OCC_CAR).ravel()]
    local = car_voxels - car_ego
    c, s = np.cos(0.3), np.sin(0.3)
    lx, ly = c * local[:, 0] + s * local[:, 1], -s * local[:, 0] + c * local[:, 1]
    grow = VOXEL_SIZE / 2 + 1e-6
    assert len(car_voxels) > 20
    assert np.all((np.abs(lx) < 2.2 + grow) & (np.abs(ly) < 0.9 + grow) & (np.abs(local[:, 2]) < 0.8 + grow))
    # Camera mask: the back camera sees the wall but nothing behind it.
    rig = SensorRig(np.random.default_rng(0), image_width=200, jitter=False)
    renderer = CameraRenderer(rig.image_width, rig.image_height)
    back = rig.camera("CAM_BACK")
    frame = renderer.render(
        back.intrinsic, ego @ back.sensor2ego, prims, ground, np.array([0, 0, 1.0]), 1.0, 1, np.random.default_rng(0)
    )
    mask = labeler.camera_mask(ego, [CameraView(ego @ back.sensor2ego, back.intrinsic, frame.depth)])
    i_front, i_behind = int((-12.0 + 40) / VOXEL_SIZE), int((-20.0 + 40) / VOXEL_SIZE)
    k = int((1.5 + 1) / VOXEL_SIZE)
    assert mask[i_front, 100, k] == 1 and mask[i_behind, 100, k] == 0
    assert mask[150, 100, k] == 0  # ahead of the ego: not in the back camera
    # LiDAR mask: voxels with returns and the free space in front of them.
    rig_l = SensorRig(np.random.default_rng(0), jitter=False)
    scan = LidarSimulator().scan(ego @ rig_l.lidar.sensor2ego, prims, ground, np.random.default_rng(1))
    lmask = labeler.lidar_mask(ego, scan.origin, scan.directions, scan.ranges)
    assert lmask[i_front, 100, k] == 1 and lmask[i_behind, 100, k] == 0


def test_catalog_sizes_are_nuscenes_like():
    car = CLASS_SPECS["vehicle.car"].size_mean
    assert 4.0 < car[0] < 5.0 and 1.7 < car[1] < 2.1
    barrier = CLASS_SPECS["movable_object.barrier"].size_mean
    assert barrier[1] > 4 * barrier[0]  # a barrier's long side is its width
    ped = CLASS_SPECS["human.pedestrian.adult"].size_mean
    assert 1.6 < ped[2] < 1.9
    corners = box_corners(np.zeros((1, 3)), np.array([car]), np.zeros(1))
    assert np.isclose(corners[0, :, 0].max(), car[0] / 2)
