# Single-task comparison for m3net_nuscenes_demo.py: map segmentation only (same model, data and schedule).
_base_ = ["./m3net_nuscenes_demo.py"]

map_classes = ["drivable_area", "ped_crossing", "walkway", "stop_line", "carpark_area", "divider"]
model = dict(tasks=("map",), task_scaling=None)
optim_wrapper = dict(tasks=("map",))
val_evaluator = [dict(type="BEVSegIoUMetric", classes=map_classes, prefix="map")]
test_evaluator = val_evaluator
