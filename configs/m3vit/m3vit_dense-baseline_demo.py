# Dense baseline of m3vit_demo.py with equal active parameters: the same ViT whose MLPs are all
# dense with ratio 4 (= 4 active experts of ratio 1), one shared backbone forward for all tasks,
# same data and schedule.
_base_ = ["./m3vit_demo.py"]

model = dict(trunk_mode="shared", backbone=dict(moe_cfg=None, mlp_ratio=4.0))
