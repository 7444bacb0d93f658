# Two-modality, two-task model trained with FULLER(-inspired) gradient balancing: IMTL-G
# across tasks at the shared decoder output, camera/LiDAR gradients rescaled to their mean.
_base_ = ["./grad_balance_two_task_ew.py"]

optim_wrapper = dict(
    type="GradBalanceOptimWrapper",
    tasks=("det", "map"),
    balancer=dict(type="FULLER", inter="imtl_g", intra="mean"),
    monitor=False,
)
