# Two-modality, two-task model trained with equal task weights (the summed loss): the baseline
# for gradient balancing. monitor=True logs the task-gradient cosine and the camera/LiDAR
# gradient ratio without changing the update.
_base_ = [
    "../_base_/datasets/two_modality_bev.py",
    "../_base_/models/two_modality_multitask_net.py",
    "../_base_/schedules/grad_balance_adamw_cosine_4e.py",
    "../_base_/default_runtime.py",
]

optim_wrapper = dict(
    type="GradBalanceOptimWrapper",
    tasks=("det", "map"),
    balancer=dict(type="EqualWeighting"),
    monitor=True,
)
default_hooks = dict(logger=dict(interval=16))
# Balancing statistics are averaged over the logging window like losses.
log_processor = dict(window_size=16, mean_pattern=r".*(loss|time|data_time|grad_norm|grad_balance).*")
