# Single-task comparison for m3net_nuscenes_demo.py: detection only (same model, data and schedule).
_base_ = ["./m3net_nuscenes_demo.py"]

model = dict(tasks=("det",), task_scaling=None)
optim_wrapper = dict(tasks=("det",))
val_evaluator = [
    dict(
        type="NuScenesDetectionMetric",
        data_root="data/synthetic_nuscenes/",
        ann_file="nuscenes_infos_val.pkl",
        version="v1.0-mini",
        eval_set="mini_val",
    )
]
test_evaluator = val_evaluator
