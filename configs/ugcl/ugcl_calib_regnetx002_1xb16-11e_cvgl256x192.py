# The UGCL demo model on stereo pairs rendered at 256x192 (f exactly 2x the demo's), the deepest level
# at stride 16 and 12 correlation shifts. Data: create_data.py cvgl --out-dir data/synthetic_cvgl_256x192
# --width 256 --height 192. Results: configs/ugcl/README.md.
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
