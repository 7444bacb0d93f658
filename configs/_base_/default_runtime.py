# Runtime shared by every config: scope, hooks, logging (with ETA), checkpoints, environment.
default_scope = "perception_mtl"

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    # Atomic writes (temp file, fsync, rename) and unknown options refused at start-up.
    checkpoint=dict(type="AtomicCheckpointHook", interval=1, max_keep_ckpts=3, save_last=True),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    # Random generators' state saved in checkpoints and restored on --resume; validation does not
    # move the training stream.
    rng_state=dict(type="RNGStateHook"),
    # A NaN/Inf loss or gradient names the task, term and parameter group; the step is skipped and
    # training stops after max_consecutive in a row (action="stop": at the first).
    non_finite_guard=dict(type="NonFiniteGuardHook", action="skip", max_consecutive=3),
    # Datasets with skip_bad_samples=True list the samples they skipped in the work dir; reported
    # after every epoch and at the end.
    bad_sample_report=dict(type="BadSampleReportHook"),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    # tools/train.py switches to gloo when a torchrun job has no GPU.
    dist_cfg=dict(backend="nccl"),
)

log_processor = dict(type="LogProcessor", window_size=50, by_epoch=True)
log_level = "INFO"
vis_backends = [dict(type="LocalVisBackend")]
# No fixed name: mmengine keeps one Visualizer per name for the process, so a fixed name made a
# second Runner in the same process write its scalars into the first run's work_dir. Unnamed, the
# Runner names it after the experiment (config name + timestamp).
visualizer = dict(type="Visualizer", vis_backends=vis_backends)

randomness = dict(seed=0)
load_from = None
resume = False
