# Single-task comparison for m3net_nuscenes_demo.py: occupancy only (same model, data and schedule).
_base_ = ["./m3net_nuscenes_demo.py"]

occ_classes = {{_base_.occ_classes}}

model = dict(tasks=("occ",), task_scaling=None)
optim_wrapper = dict(tasks=("occ",))
val_evaluator = [dict(type="OccupancyMIoUMetric", classes=occ_classes, prefix="occ")]
test_evaluator = val_evaluator
