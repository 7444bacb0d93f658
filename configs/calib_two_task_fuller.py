# Two-modality, two-task model trained with FULLER(-inspired) gradient calibration: IMTL-G
# across tasks at the shared decoder output, camera/LiDAR gradients rescaled to their mean.
_base_ = ["./calib_two_task_ew.py"]

optim_wrapper = dict(
    type="CalibratedOptimWrapper",
    tasks=("det", "map"),
    calibration=dict(type="FULLER", inter="imtl_g", intra="mean"),
    monitor=False,
)
