# Two-modality, two-task model trained with equal task weights (the summed loss): the baseline
# for gradient calibration. monitor=True logs the task-gradient cosine and the camera/LiDAR
# gradient ratio without changing the update.
_base_ = [
    "_base_/datasets/calib_two_modality_bev.py",
    "_base_/models/calib_two_modality_multitask_net.py",
    "_base_/schedules/calib_adamw_cosine_4e.py",
    "_base_/default_runtime.py",
]

optim_wrapper = dict(
    type="CalibratedOptimWrapper",
    tasks=("det", "map"),
    calibration=dict(type="EqualWeighting"),
    monitor=True,
)
default_hooks = dict(logger=dict(interval=16))
# Calibration statistics are averaged over the logging window like losses.
log_processor = dict(window_size=16, mean_pattern=r".*(loss|time|data_time|grad_norm|calib).*")
