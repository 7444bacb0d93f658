# Label names of M3Net's map and occupancy tasks, shared by the demo and the full-size configs: BEVFusion's
# six map layers, and the occupancy class ids of the synthetic data (the Occ3D challenge order, as
# perception_mtl/synthetic/driving/object_catalog.py writes them). For real Occ3D labels drop `classes`
# from the occupancy metric (its default is Occ3D's nuScenes-lidarseg order).
map_classes = ["drivable_area", "ped_crossing", "walkway", "stop_line", "carpark_area", "divider"]
occ_classes = [
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
]
