# The UGCL demo model on stereo pairs rendered at 256x192 instead of 128x96 (same scenes and rigs,
# f exactly 2x), with the deepest level at stride 16 (stage 3 kept: its 12x16 map is the demo's
# stride-8 map of the same field of view) and 12 correlation shifts. Not a 10-minute schedule:
# 2146 s on the 2-core machine (training ~1850 s, the 6-view evaluation ~290 s; 2026-11-24).
# Test MAE (1600 pairs): fx 7.13 px = 3.45 % of f (demo at 128x96: 4.04 %, 4.17 % over three
# seeds), tz 0.58 m, ty 0.12 m, pitch 0.53 deg, baseline 0.016 m; u0 1.34 px (worse than the demo's
# 0.52 px). With the demo's stride-8 fusion at this size: fx 3.50 %, tz 0.62 m, pitch 0.56 deg,
# u0 1.45 px (1837 s).
# Twice the schedule does not reach 3 % either: 22 epochs (train_cfg.max_epochs and the cosine
# T_max / end set to 22) give fx 6.93 px = 3.35 %, tz 0.53 m, pitch 0.49 deg, u0 0.66 px,
# baseline 0.012 m in 3729 s (2026-11-25, single run).
# Data first (about 17 min with one worker, 10 with two):
#   python tools/create_data.py cvgl --out-dir data/synthetic_cvgl_256x192 --width 256 --height 192
# then: python tools/train.py configs/ugcl_calib_regnetx002_1xb16-11e_cvgl256x192.py
_base_ = ["./ugcl_calib_demo.py"]

data_root = "data/synthetic_cvgl_256x192"
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# The training split's statistics at 256x192 (meta.json "train_stats"): the pixel quantities fx, fy
# and disparity double and the principal point moves to the new centre (its +-3 px offset range is
# kept); the metric ones are the base config's (merged key by key).
param_stats = dict(fx=(205.2, 34.8), fy=(205.2, 34.8), u0=(127.5, 1.76), v0=(95.5, 1.74), disparity=(7.74, 3.8))
model = dict(
    backbone=dict(out_indices=(1, 3)),
    max_disp=12,
    head=dict(
        param_stats=param_stats,
        # 36 classes of 4 px over [140, 284) px: the FOV of 50-80 deg at W = 256 is 153-275 px.
        binned=dict(
            fx=dict(low=140.0, bin_width=4.0, num_bins=36, label_sigma=4.0),
            fy=dict(low=140.0, bin_width=4.0, num_bins=36, label_sigma=4.0),
        ),
    ),
)
